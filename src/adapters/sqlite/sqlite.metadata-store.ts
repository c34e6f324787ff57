import type Database from 'better-sqlite3';
import { SensoryError } from '../../domain/errors.js';
import { caseConflict } from '../../domain/names.js';
import type { Split } from '../../domain/split.js';
import type {
  AddOutcome,
  CategoryRecord,
  ChangeQuery,
  HashedQuery,
  HashedSample,
  RevisionChange,
  UnhashedSample,
  DatasetRecord,
  DatasetSpec,
  EligibleQuery,
  EligibleSample,
  MetadataStore,
  NewSample,
  PurgeCandidates,
  SampleQuery,
  SampleRecord,
} from '../../ports/metadata-store.js';
import { SqliteDatabase } from './sqlite.database.js';

// Columns are aliased to the record fields, so rows are the records themselves.
const DATASET_SELECT = `
  SELECT id, name, width, height, channels, test_percent AS testPercent, revision,
         live_count AS sampleCount, created_at AS createdAt, purged_rev AS purgedRevision
  FROM datasets`;

const SAMPLE_SELECT = `
  SELECT s.id, s.dataset_id AS datasetId, s.sha256, c.name AS category, s.category_idx AS categoryIndex,
         s.added_rev AS revision, s.created_at AS createdAt, s.media_type AS mediaType, s.bytes,
         s.pixel_slot AS pixelSlot, s.split_bucket AS splitBucket
  FROM samples s JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx`;

/** Tombstones removed per transaction by a purge. */
const PURGE_BATCH = 2000;

/** Sample ids covered by one eligibleSamples query. */
const ELIGIBLE_ID_SPAN = 1_000_000;

/** Bounds on split_bucket selecting a split: lo <= bucket < hi. */
function splitBounds(split: Split | undefined, testPercent: number): { lo: number; hi: number } {
  if (split === 'test') return { lo: Number.MIN_SAFE_INTEGER, hi: testPercent };
  if (split === 'train') return { lo: testPercent, hi: Number.MAX_SAFE_INTEGER };
  return { lo: Number.MIN_SAFE_INTEGER, hi: Number.MAX_SAFE_INTEGER };
}

/** The category index of sample `s` at a revision: its current label unless set after it, then the label history's. */
function labelAt(revision: string): string {
  return `(CASE WHEN s.label_rev <= ${revision} THEN s.category_idx
            ELSE (SELECT l.category_idx FROM sample_labels l WHERE l.sample_id = s.id AND l.from_rev <= ${revision}
                  ORDER BY l.from_rev DESC LIMIT 1) END)`;
}

function prepareAll(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    datasetByName: p(`${DATASET_SELECT} WHERE name = ?`),
    datasetNameFolded: p('SELECT name FROM datasets WHERE lower(name) = lower(?)'),
    datasetById: p(`${DATASET_SELECT} WHERE id = ?`),
    listDatasets: p(`${DATASET_SELECT} ORDER BY name`),
    insertDataset: p(`INSERT INTO datasets (name, width, height, channels, test_percent, created_at)
                      VALUES (@name, @width, @height, @channels, @testPercent, @createdAt)`),
    deleteDataset: p(`DELETE FROM datasets WHERE id = ?`),
    testPercent: p(`SELECT test_percent FROM datasets WHERE id = ?`).pluck(true),
    idSpan: p(`SELECT min(id) AS lo, max(id) AS hi FROM samples WHERE dataset_id = ?`),
    reserveSlots: p(`UPDATE datasets SET next_pixel_slot = next_pixel_slot + @count WHERE id = @id
                     RETURNING next_pixel_slot - @count AS first`),
    bumpRevision: p(`UPDATE datasets SET revision = revision + 1, live_count = live_count + @liveDelta
                     WHERE id = @datasetId RETURNING revision`),
    categoryIdx: p(`SELECT idx FROM categories WHERE dataset_id = ? AND name = ?`),
    nextCategoryIdx: p(`UPDATE datasets SET next_category_index = next_category_index + 1 WHERE id = ?
                        RETURNING next_category_index - 1 AS idx`),
    insertCategory: p(`INSERT INTO categories (dataset_id, idx, name, created_rev) VALUES (?, ?, ?, ?)`),
    insertSample: p(`INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket,
                       category_idx, label_rev, added_rev, created_at, phash)
                     VALUES (@datasetId, @sha256, @mediaType, @bytes, @pixelSlot, @splitBucket,
                       @categoryIndex, @revision, @revision, @createdAt, @phash)`),
    insertLabel: p(`INSERT INTO sample_labels (sample_id, from_rev, category_idx) VALUES (?, ?, ?)`),
    setLabel: p(`UPDATE samples SET category_idx = ?, label_rev = ? WHERE id = ?`),
    tombstone: p(`UPDATE samples SET deleted_rev = ?, deleted_at = ? WHERE id = ?`),
    blobIndexed: p(`SELECT 1 FROM blob_index WHERE sha256 = ?`).pluck(true),
    indexBlob: p(`INSERT OR IGNORE INTO blob_index (sha256, segment_id, byte_offset, byte_length) VALUES (@sha256, @segment, @offset, @length)`),
    purgeCandidates: p(`
      SELECT s.dataset_id AS datasetId, d.name AS datasetName, COUNT(*) AS samples, MAX(s.deleted_rev) AS maxDeletedRevision
      FROM samples s JOIN datasets d ON d.id = s.dataset_id
      WHERE s.deleted_rev IS NOT NULL AND s.deleted_at < ?
      GROUP BY s.dataset_id ORDER BY s.dataset_id`),
    purgeChangesRevision: p(`
      SELECT EXISTS (SELECT 1 FROM samples WHERE dataset_id = @datasetId AND deleted_rev IS NOT NULL AND deleted_at < @cutoff
                     AND added_rev <= @revision AND deleted_rev > @revision)`).pluck(true),
    purgeBatch: p(`SELECT id, deleted_rev AS deletedRev FROM samples
                   WHERE dataset_id = ? AND deleted_rev IS NOT NULL AND deleted_at < ? LIMIT ?`),
    deleteSample: p(`DELETE FROM samples WHERE id = ?`),
    raisePurged: p(`UPDATE datasets SET purged_rev = MAX(purged_rev, @revision) WHERE id = @datasetId RETURNING purged_rev AS purgedRevision`),
    dropUnreferenced: p(`DELETE FROM blob_index WHERE sha256 >= ? AND sha256 < ?
                           AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.sha256 = blob_index.sha256)`),
    liveSampleById: p(`${SAMPLE_SELECT} WHERE s.dataset_id = ? AND s.id = ? AND s.deleted_rev IS NULL`),
    liveSampleBySha: p(`${SAMPLE_SELECT} WHERE s.dataset_id = ? AND s.sha256 = ? AND s.deleted_rev IS NULL`),
    listSamples: p(`${SAMPLE_SELECT}
      WHERE s.dataset_id = @datasetId AND s.deleted_rev IS NULL AND s.id > @afterId
        AND s.split_bucket >= @lo AND s.split_bucket < @hi
      ORDER BY s.id LIMIT @limit`),
    listSamplesInCategory: p(`${SAMPLE_SELECT}
      WHERE s.dataset_id = @datasetId AND s.deleted_rev IS NULL AND s.category_idx = @categoryIndex
        AND s.id > @afterId AND s.split_bucket >= @lo AND s.split_bucket < @hi
      ORDER BY s.id LIMIT @limit`),
    listCategories: p(`
      SELECT c.name, c.idx AS "index", c.created_rev AS createdRevision,
             (SELECT COUNT(*) FROM samples s
              WHERE s.dataset_id = c.dataset_id AND s.category_idx = c.idx AND s.deleted_rev IS NULL) AS count
      FROM categories c WHERE c.dataset_id = ? ORDER BY c.idx`),
    unhashed: p(`SELECT id, dataset_id AS datasetId, pixel_slot AS pixelSlot FROM samples
                 WHERE phash IS NULL AND id > ? ORDER BY id LIMIT ?`),
    setHash: p(`UPDATE samples SET phash = ? WHERE id = ?`),
    hashed: p(`
      SELECT s.id, ${labelAt('@revision')} AS categoryIndex, s.split_bucket AS splitBucket, s.pixel_slot AS pixelSlot, s.phash AS hash
      FROM samples s
      WHERE s.dataset_id = @datasetId AND s.id > @afterId AND s.added_rev <= @revision
        AND (s.deleted_rev IS NULL OR s.deleted_rev > @revision)
      ORDER BY s.id LIMIT @limit`),
    // Only samples added, deleted or relabelled after \`from\` can differ; the label history says how.
    changes: p(`
      SELECT id, before, after FROM (
        SELECT s.id,
          CASE WHEN s.added_rev <= @from AND (s.deleted_rev IS NULL OR s.deleted_rev > @from) THEN ${labelAt('@from')} END AS before,
          CASE WHEN s.added_rev <= @to AND (s.deleted_rev IS NULL OR s.deleted_rev > @to) THEN ${labelAt('@to')} END AS after
        FROM samples s
        WHERE s.dataset_id = @datasetId AND s.id > @afterId
          AND (s.added_rev > @from OR s.deleted_rev > @from OR s.label_rev > @from)
      ) WHERE before IS NOT after ORDER BY id LIMIT @limit`),
    // One JSON text [[id, categoryIndex, pixelSlot], ...] instead of 100,000 result rows: building
    // the rows one by one costs more than the query. The label at R is the current one unless it was
    // set after R; then it is the newest label row <= R.
    eligible: p(`
      SELECT json_group_array(json_array(s.id,
               CASE WHEN s.label_rev <= @revision THEN s.category_idx
                 ELSE (SELECT l.category_idx FROM sample_labels l
                       WHERE l.sample_id = s.id AND l.from_rev <= @revision
                       ORDER BY l.from_rev DESC LIMIT 1) END,
               s.pixel_slot))
      FROM samples s
      WHERE s.dataset_id = @datasetId AND s.id > @fromId AND s.id <= @toId AND s.added_rev <= @revision
        AND (s.deleted_rev IS NULL OR s.deleted_rev > @revision)
        AND s.split_bucket >= @lo AND s.split_bucket < @hi`).pluck(true),
  };
}

type Statements = ReturnType<typeof prepareAll>;

/**
 * MetadataStore on one SQLite file through better-sqlite3 (synchronous, one connection). The
 * connection belongs to a SqliteDatabase, which the order store may share; closing this store
 * closes that database.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly kind = 'sqlite';
  readonly database: SqliteDatabase;
  private readonly db: Database.Database;
  private statements: Statements | undefined;

  constructor(database: SqliteDatabase | string) {
    this.database = typeof database === 'string' ? new SqliteDatabase(database) : database;
    this.db = this.database.connection;
  }

  /** Resolves once everything committed so far is on disk. */
  async syncCommitted(): Promise<void> {
    await this.database.syncCommitted();
  }

  private async durable<T>(result: T): Promise<T> {
    await this.database.syncCommitted();
    return result;
  }

  /** Statements are prepared once, on first use (the tables must exist: call migrate() first). */
  private get q(): Statements {
    this.statements ??= prepareAll(this.db);
    return this.statements;
  }

  async migrate(): Promise<void> {
    this.database.migrate();
  }

  async ping(): Promise<void> {
    this.database.ping();
  }

  async close(): Promise<void> {
    await this.database.close();
  }

  async putDataset(spec: DatasetSpec): Promise<{ dataset: DatasetRecord; created: boolean }> {
    return this.durable(
      this.db
        .transaction(() => {
          const dataset = this.q.datasetByName.get(spec.name) as DatasetRecord | undefined;
          if (dataset) {
            const fields = ['width', 'height', 'channels', 'testPercent'] as const;
            const differs = fields.filter((f) => dataset[f] !== spec[f]);
            if (differs.length > 0) {
              const what = differs.map((f) => `${f} ${dataset[f]} (asked ${spec[f]})`).join(', ');
              throw new SensoryError(
                'SENSORY_ERR_DATASET_SHAPE_CONFLICT',
                `Dataset '${spec.name}' exists with ${what}.`,
                Object.fromEntries(differs.map((f) => [f, { existing: dataset[f], requested: spec[f] }])),
              );
            }
            return { dataset, created: false };
          }
          const variant = this.q.datasetNameFolded.get(spec.name) as { name: string } | undefined;
          if (variant) throw caseConflict(spec.name, variant.name);
          const { name, width, height, channels, testPercent } = spec;
          const createdAt = new Date().toISOString();
          const info = this.q.insertDataset.run({ name, width, height, channels, testPercent, createdAt });
          return { dataset: this.q.datasetById.get(info.lastInsertRowid) as DatasetRecord, created: true };
        })
        .immediate(),
    );
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.q.datasetByName.get(name) as DatasetRecord | undefined;
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return this.q.listDatasets.all() as DatasetRecord[];
  }

  async deleteDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = this.q.datasetByName.get(name) as DatasetRecord | undefined;
          if (!row) return undefined;
          this.q.deleteDataset.run(row.id);
          return row;
        })
        .immediate(),
    );
  }

  async reservePixelSlots(datasetId: number, count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `Cannot reserve ${count} pixel slots.`);
    }
    const row = this.q.reserveSlots.get({ id: datasetId, count }) as { first: number } | undefined;
    if (!row) throw datasetNotFound(datasetId);
    return row.first;
  }

  async addSamples(datasetId: number, samples: readonly NewSample[]): Promise<AddOutcome[]> {
    return this.durable(
      this.db
        .transaction(() => {
          if (this.q.testPercent.get(datasetId) === undefined) throw datasetNotFound(datasetId);
          const outcomes: AddOutcome[] = [];
          for (const item of samples) {
            const live = this.q.liveSampleBySha.get(datasetId, item.sha256) as SampleRecord | undefined;
            if (live) {
              const same = live.category === item.category;
              outcomes.push(same ? { kind: 'duplicate', sample: live } : { kind: 'conflict', existing: live });
              continue;
            }
            if (item.newBlob) {
              const { sha256, segment, offset, length } = item.newBlob;
              this.q.indexBlob.run({ sha256, segment, offset, length });
            } else if (item.requireIndexedBlob && this.q.blobIndexed.get(item.sha256) === undefined) {
              outcomes.push({ kind: 'blob-missing' });
              continue;
            }
            const revision = this.bumpRevision(datasetId, +1);
            const categoryIndex = this.ensureCategory(datasetId, item.category, revision);
            const createdAt = new Date().toISOString();
            const row = { ...item, datasetId, categoryIndex, revision, createdAt, phash: item.perceptualHash ?? null };
            const id = Number(this.q.insertSample.run(row).lastInsertRowid);
            this.q.insertLabel.run(id, revision, categoryIndex);
            const { sha256, category, mediaType, bytes, pixelSlot, splitBucket } = item;
            const sample = { id, datasetId, sha256, category, categoryIndex, revision, createdAt };
            outcomes.push({ kind: 'added', sample: { ...sample, mediaType, bytes, pixelSlot, splitBucket } });
          }
          return outcomes;
        })
        .immediate(),
    );
  }

  async findLiveSampleBySha(datasetId: number, sha256: string): Promise<SampleRecord | undefined> {
    return this.q.liveSampleBySha.get(datasetId, sha256) as SampleRecord | undefined;
  }

  async findDatasetAndLiveSample(name: string, sha256: string): Promise<{ dataset?: DatasetRecord; existing?: SampleRecord; blobIndexed?: boolean }> {
    const dataset = this.q.datasetByName.get(name) as DatasetRecord | undefined;
    if (!dataset) return {};
    const existing = this.q.liveSampleBySha.get(dataset.id, sha256) as SampleRecord | undefined;
    return { dataset, existing, blobIndexed: this.q.blobIndexed.get(sha256) !== undefined };
  }

  async getSample(datasetId: number, id: number): Promise<SampleRecord | undefined> {
    return this.q.liveSampleById.get(datasetId, id) as SampleRecord | undefined;
  }

  async listSamples(datasetId: number, query: SampleQuery): Promise<SampleRecord[]> {
    const testPercent = this.q.testPercent.get(datasetId) as number | undefined;
    if (testPercent === undefined || query.limit <= 0) return [];
    const bounds = splitBounds(query.split, testPercent);
    const params = { datasetId, afterId: query.afterId ?? 0, limit: query.limit, ...bounds };
    if (query.category === undefined) {
      return this.q.listSamples.all(params) as SampleRecord[];
    }
    const category = this.q.categoryIdx.get(datasetId, query.category) as { idx: number } | undefined;
    if (!category) return [];
    return this.q.listSamplesInCategory.all({ ...params, categoryIndex: category.idx }) as SampleRecord[];
  }

  async relabelSample(datasetId: number, id: number, category: string): Promise<SampleRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = this.q.liveSampleById.get(datasetId, id) as SampleRecord | undefined;
          if (!row) return undefined;
          if (row.category === category) return row;
          const revision = this.bumpRevision(datasetId, 0);
          const categoryIndex = this.ensureCategory(datasetId, category, revision);
          this.q.insertLabel.run(id, revision, categoryIndex);
          this.q.setLabel.run(categoryIndex, revision, id);
          return { ...row, category, categoryIndex };
        })
        .immediate(),
    );
  }

  async deleteSample(datasetId: number, id: number): Promise<SampleRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = this.q.liveSampleById.get(datasetId, id) as SampleRecord | undefined;
          if (!row) return undefined;
          const revision = this.bumpRevision(datasetId, -1);
          this.q.tombstone.run(revision, new Date().toISOString(), id);
          return row;
        })
        .immediate(),
    );
  }

  async listCategories(datasetId: number): Promise<CategoryRecord[]> {
    return this.q.listCategories.all(datasetId) as CategoryRecord[];
  }

  async eligibleSamples(datasetId: number, query: EligibleQuery): Promise<EligibleSample[]> {
    return this.db.transaction(() => {
      const testPercent = this.q.testPercent.get(datasetId) as number | undefined;
      if (testPercent === undefined) return [];
      const span = this.q.idSpan.get(datasetId) as { lo: number | null; hi: number | null };
      const wanted = query.categoryIndexes && new Set(query.categoryIndexes);
      const out: EligibleSample[] = [];
      const bounds = splitBounds(query.split, testPercent);
      // By id ranges, so one JSON text stays far below string limits however large the dataset.
      for (let fromId = (span.lo ?? 1) - 1; fromId < (span.hi ?? 0); fromId += ELIGIBLE_ID_SPAN) {
        const params = { datasetId, revision: query.revision, fromId, toId: fromId + ELIGIBLE_ID_SPAN, ...bounds };
        const rows = JSON.parse(this.q.eligible.get(params) as string) as [number, number, number][];
        // The scan runs along samples(dataset_id, id), so rows come by id; sort only if a plan ever differs.
        if (rows.some((row, i) => i > 0 && row[0] < rows[i - 1][0])) rows.sort((a, b) => a[0] - b[0]);
        for (const [id, categoryIndex, pixelSlot] of rows) {
          if (!wanted || wanted.has(categoryIndex)) out.push({ id, categoryIndex, pixelSlot });
        }
      }
      return out;
    })();
  }

  async purgeCandidates(cutoff: string): Promise<PurgeCandidates[]> {
    return this.q.purgeCandidates.all(cutoff) as PurgeCandidates[];
  }

  async purgeChangesRevision(datasetId: number, cutoff: string, revision: number): Promise<boolean> {
    return this.q.purgeChangesRevision.get({ datasetId, cutoff, revision }) === 1;
  }

  async raisePurgedRevision(datasetId: number, revision: number): Promise<number> {
    const row = this.q.raisePurged.get({ datasetId, revision }) as { purgedRevision: number } | undefined;
    if (!row) throw datasetNotFound(datasetId);
    await this.syncCommitted();
    return row.purgedRevision;
  }

  async purgeSamples(datasetId: number, cutoff: string): Promise<{ samples: number; purgedRevision: number }> {
    let samples = 0;
    let purgedRevision = 0;
    // A few thousand rows per transaction, yielding between them: a large purge never holds the
    // database (and this event loop) for long. The revision floor rises with each batch, before
    // its rows go, so no snapshot below it is served incomplete.
    for (;;) {
      const removed = this.db
        .transaction(() => {
          const rows = this.q.purgeBatch.all(datasetId, cutoff, PURGE_BATCH) as { id: number; deletedRev: number }[];
          if (rows.length === 0) return 0;
          const revision = Math.max(...rows.map((row) => row.deletedRev));
          const raised = this.q.raisePurged.get({ datasetId, revision }) as { purgedRevision: number } | undefined;
          purgedRevision = raised?.purgedRevision ?? purgedRevision;
          for (const row of rows) this.q.deleteSample.run(row.id);
          return rows.length;
        })
        .immediate();
      await this.syncCommitted();
      samples += removed;
      if (removed < PURGE_BATCH) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (samples === 0) purgedRevision = (this.q.datasetById.get(datasetId) as DatasetRecord | undefined)?.purgedRevision ?? 0;
    return { samples, purgedRevision };
  }

  async samplesWithoutPerceptualHash(afterId: number, limit: number): Promise<UnhashedSample[]> {
    return this.q.unhashed.all(afterId, limit) as UnhashedSample[];
  }

  async setPerceptualHashes(hashes: readonly { readonly id: number; readonly hash: string }[]): Promise<void> {
    if (hashes.length === 0) return;
    this.db.transaction(() => {
      for (const { id, hash } of hashes) this.q.setHash.run(hash, id);
    })();
    await this.syncCommitted();
  }

  async hashedSamples(datasetId: number, query: HashedQuery): Promise<HashedSample[]> {
    return this.q.hashed.all({ datasetId, ...query }) as HashedSample[];
  }

  async revisionChanges(datasetId: number, query: ChangeQuery): Promise<RevisionChange[]> {
    return this.q.changes.all({ datasetId, ...query }) as RevisionChange[];
  }

  async dropUnreferencedBlobs(): Promise<number> {
    let dropped = 0;
    // 256 ranges of the SHA-256 space, one transaction each, so a large index is never held long.
    for (let prefix = 0; prefix < 256; prefix++) {
      const from = prefix.toString(16).padStart(2, '0');
      const to = prefix === 255 ? 'g' : (prefix + 1).toString(16).padStart(2, '0');
      dropped += this.db.transaction(() => this.q.dropUnreferenced.run(from, to).changes).immediate();
      if (prefix % 32 === 31) await new Promise((resolve) => setImmediate(resolve));
    }
    await this.syncCommitted();
    return dropped;
  }

  /** Raises the dataset's revision by one, moves its live count by `liveDelta`; returns the new revision. */
  private bumpRevision(datasetId: number, liveDelta: number): number {
    const row = this.q.bumpRevision.get({ datasetId, liveDelta }) as { revision: number } | undefined;
    if (!row) throw datasetNotFound(datasetId);
    return row.revision;
  }

  /** The category's index, creating it at `revision` on first appearance. */
  private ensureCategory(datasetId: number, name: string, revision: number): number {
    const existing = this.q.categoryIdx.get(datasetId, name) as { idx: number } | undefined;
    if (existing) return existing.idx;
    const { idx } = this.q.nextCategoryIdx.get(datasetId) as { idx: number };
    this.q.insertCategory.run(datasetId, idx, name, revision);
    return idx;
  }
}

function datasetNotFound(datasetId: number): SensoryError {
  return new SensoryError('SENSORY_ERR_DATASET_NOT_FOUND', `No dataset with id ${datasetId}.`);
}
