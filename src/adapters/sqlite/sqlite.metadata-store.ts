import type Database from 'better-sqlite3';
import { SensoryError } from '../../domain/errors.js';
import { caseConflict } from '../../domain/names.js';
import { categoriesToAppend, undeclaredCategory } from '../../domain/category-list.js';
import type { Split } from '../../domain/split.js';
import type {
  FeedbackInput,
  FeedbackRecord,
  ReviewDecision,
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
  ExportPageQuery,
  ExportSample,
  MetadataStore,
  NewSample,
  PurgeCandidates,
  SampleQuery,
  SampleRecord,
  AnnotationChange,
  Actor,
  AuditAction,
  AuditQuery,
  AuditRecord,
  BulkActionRecord,
  BulkChange,
  BulkItemResult,
  BulkOutcome,
} from '../../ports/metadata-store.js';
import { SYSTEM_ACTOR } from '../../ports/metadata-store.js';
import { assertUndoable, bulkNotFound, planBulkItem } from '../../domain/bulk-actions.js';
import { applyAnnotationChange } from '../../domain/sample-annotations.js';
import { SqliteDatabase } from './sqlite.database.js';

// Columns are aliased to the record fields, so rows are the records themselves.
const DATASET_COLUMNS = `
  id, name, width, height, channels, test_percent AS testPercent, revision,
  live_count AS sampleCount, created_at AS createdAt, purged_rev AS purgedRevision,
  categories_declared AS categoriesDeclared`;
const DATASET_SELECT = `SELECT ${DATASET_COLUMNS} FROM datasets`;

const SAMPLE_SELECT = `
  SELECT s.id, s.dataset_id AS datasetId, s.sha256, c.name AS category, s.category_idx AS categoryIndex,
         s.added_rev AS revision, s.created_at AS createdAt, s.media_type AS mediaType, s.bytes,
         s.pixel_slot AS pixelSlot, s.split_bucket AS splitBucket, s.filename, s.tags, s.metadata
  FROM samples s JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx`;

const BULK_SELECT = `
  SELECT id, kind, actor, roles, at, revision, changed, undoes, undone_by AS undoneBy, undo FROM bulk_actions`;

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

function exportParams(datasetId: number, query: ExportPageQuery) {
  const categories = query.categoryIndexes ? JSON.stringify(query.categoryIndexes) : null;
  return { datasetId, revision: query.revision, afterId: query.afterId, limit: query.limit, split: query.split, categories };
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
    // What every upload asks first, in one statement: the dataset, the id of its live sample
    // with these bytes (the whole sample is read only then), and whether the blob is indexed.
    datasetLiveIdBlob: p(`
      SELECT ${DATASET_COLUMNS},
             (SELECT s.id FROM samples s WHERE s.dataset_id = datasets.id AND s.sha256 = @sha256 AND s.deleted_rev IS NULL) AS liveId,
             EXISTS (SELECT 1 FROM blob_index WHERE sha256 = @sha256) AS blobIndexed
      FROM datasets WHERE name = @name`),
    datasetNameFolded: p('SELECT name FROM datasets WHERE lower(name) = lower(?)'),
    datasetById: p(`${DATASET_SELECT} WHERE id = ?`),
    listDatasets: p(`${DATASET_SELECT} ORDER BY name`),
    insertDataset: p(`INSERT INTO datasets (name, width, height, channels, test_percent, created_at)
                      VALUES (@name, @width, @height, @channels, @testPercent, @createdAt)`),
    deleteDataset: p(`DELETE FROM datasets WHERE id = ?`),
    testPercent: p(`SELECT test_percent FROM datasets WHERE id = ?`).pluck(true),
    declared: p(`SELECT categories_declared FROM datasets WHERE id = ?`).pluck(true),
    setDeclared: p(`UPDATE datasets SET categories_declared = 1 WHERE id = ?`),
    categoryNames: p(`SELECT name FROM categories WHERE dataset_id = ? ORDER BY idx`).pluck(true),
    idSpan: p(`SELECT min(id) AS lo, max(id) AS hi FROM samples WHERE dataset_id = ?`),
    reserveSlots: p(`UPDATE datasets SET next_pixel_slot = next_pixel_slot + @count WHERE id = @id
                     RETURNING next_pixel_slot - @count AS first`),
    bumpRevision: p(`UPDATE datasets SET revision = revision + 1, live_count = live_count + @liveDelta
                     WHERE id = @datasetId RETURNING revision`),
    revisionAndDeclared: p(`SELECT revision, categories_declared AS declared FROM datasets WHERE id = ?`),
    setRevision: p(`UPDATE datasets SET revision = @revision, live_count = live_count + @liveDelta WHERE id = @datasetId`),
    categoryIdx: p(`SELECT idx FROM categories WHERE dataset_id = ? AND name = ?`),
    nextCategoryIdx: p(`UPDATE datasets SET next_category_index = next_category_index + 1 WHERE id = ?
                        RETURNING next_category_index - 1 AS idx`),
    insertCategory: p(`INSERT INTO categories (dataset_id, idx, name, created_rev) VALUES (?, ?, ?, ?)`),
    insertSample: p(`INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket,
                         category_idx, label_rev, added_rev, created_at, filename, tags, metadata, phash)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    setAnnotations: p(`UPDATE samples SET filename = @filename, tags = @tagsJson, metadata = @metadataJson WHERE id = @id`),
    revisionOf: p(`SELECT revision FROM datasets WHERE id = ?`).pluck(true),
    adjustLive: p(`UPDATE datasets SET live_count = live_count + ? WHERE id = ?`),
    insertAudit: p(`INSERT INTO audit_log (dataset_id, sample_id, action, actor, roles, at, revision, bulk_id, detail)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertBulk: p(`INSERT INTO bulk_actions (dataset_id, kind, actor, roles, at, revision, changed, undoes, undo)
                   VALUES (@datasetId, @kind, @actor, @roles, @at, @revision, @changed, @undoes, @undo)`),
    bulkById: p(`${BULK_SELECT} WHERE dataset_id = ? AND id = ?`),
    lastBulk: p(`${BULK_SELECT} WHERE dataset_id = ? AND kind <> 'undo' ORDER BY id DESC LIMIT 1`),
    listBulk: p(`${BULK_SELECT} WHERE dataset_id = ? ORDER BY id DESC LIMIT ?`),
    setUndoneBy: p(`UPDATE bulk_actions SET undone_by = ? WHERE id = ?`),
    tombstoneById: p(`SELECT id, sha256 FROM samples WHERE dataset_id = ? AND id = ? AND deleted_rev IS NOT NULL`),
    restore: p(`INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, label_rev, added_rev, created_at, filename, tags, metadata, phash)
                SELECT dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, @revision, @revision, created_at, filename, tags, metadata, phash
                FROM samples WHERE id = @id`),
    insertLabel: p(`INSERT INTO sample_labels (sample_id, from_rev, category_idx) VALUES (?, ?, ?)`),
    setLabel: p(`UPDATE samples SET category_idx = ?, label_rev = ? WHERE id = ?`),
    tombstone: p(`UPDATE samples SET deleted_rev = ?, deleted_at = ? WHERE id = ?`),
    blobIndexed: p(`SELECT 1 FROM blob_index WHERE sha256 = ?`).pluck(true),
    indexBlob: p(`INSERT OR IGNORE INTO blob_index (sha256, segment_id, byte_offset, byte_length) VALUES (?, ?, ?, ?)`),
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
    liveIdBySha: p(`SELECT id FROM samples WHERE dataset_id = ? AND sha256 = ? AND deleted_rev IS NULL`).pluck(true),
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
    // The export's selection: labels as at @revision, the split by bucket, categories from a JSON array (or all when NULL).
    exportPage: p(`${EXPORT_SELECTION} LIMIT @limit`),
    countEligible: p(`SELECT count(*) FROM (${EXPORT_SELECTION})`).pluck(true),
  };
}

const EXPORT_SELECTION = `
  SELECT id, sha256, mediaType, categoryIndex, pixelSlot, splitBucket FROM (
    SELECT s.id AS id, s.sha256 AS sha256, s.media_type AS mediaType, s.pixel_slot AS pixelSlot, s.split_bucket AS splitBucket,
      CASE WHEN s.label_rev <= @revision THEN s.category_idx
        ELSE (SELECT l.category_idx FROM sample_labels l
              WHERE l.sample_id = s.id AND l.from_rev <= @revision
              ORDER BY l.from_rev DESC LIMIT 1) END AS categoryIndex
    FROM samples s JOIN datasets d ON d.id = s.dataset_id
    WHERE s.dataset_id = @datasetId AND s.id > @afterId AND s.added_rev <= @revision
      AND (s.deleted_rev IS NULL OR s.deleted_rev > @revision)
      AND (@split = 'all' OR (@split = 'test') = (s.split_bucket < d.test_percent))
    ORDER BY s.id)
  WHERE @categories IS NULL OR categoryIndex IN (SELECT value FROM json_each(@categories))`;

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
  /** Listing statements, by their SQL (one per combination of filters). */
  private readonly listStatements = new Map<string, Database.Statement>();
  /** addSamples' transaction, made on first use: better-sqlite3 builds four wrappers and their properties for each transaction() call. */
  private addSamplesTransaction: Database.Transaction<(datasetId: number, samples: readonly NewSample[]) => AddOutcome[]> | undefined;

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
          const dataset = toDataset(this.q.datasetByName.get(spec.name));
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
            return { dataset: this.declare(dataset, spec.categories), created: false };
          }
          const variant = this.q.datasetNameFolded.get(spec.name) as { name: string } | undefined;
          if (variant) throw caseConflict(spec.name, variant.name);
          const { name, width, height, channels, testPercent } = spec;
          const createdAt = new Date().toISOString();
          const info = this.q.insertDataset.run({ name, width, height, channels, testPercent, createdAt });
          return { dataset: this.declare(toDataset(this.q.datasetById.get(info.lastInsertRowid))!, spec.categories), created: true };
        })
        .immediate(),
    );
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    return toDataset(this.q.datasetByName.get(name));
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return this.q.listDatasets.all().map((row) => toDataset(row)!);
  }

  /**
   * Declares (or extends) the dataset's class list, inside the caller's transaction: the names
   * after its current categories are appended at the next indices. On a dataset with samples
   * this raises the revision, so that snapshots before it keep their category map.
   */
  private declare(dataset: DatasetRecord, categories: readonly string[] | undefined): DatasetRecord {
    if (!categories) return dataset;
    const existing = this.q.categoryNames.all(dataset.id) as string[];
    const append = categoriesToAppend(dataset.name, existing, categories);
    if (append.length === 0 && dataset.categoriesDeclared) return dataset;
    const revision = append.length > 0 && dataset.revision > 0 ? this.bumpRevision(dataset.id, 0) : dataset.revision;
    for (const name of append) {
      const { idx } = this.q.nextCategoryIdx.get(dataset.id) as { idx: number };
      this.q.insertCategory.run(dataset.id, idx, name, revision);
    }
    this.q.setDeclared.run(dataset.id);
    return toDataset(this.q.datasetById.get(dataset.id))!;
  }

  async deleteDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = toDataset(this.q.datasetByName.get(name));
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
    this.addSamplesTransaction ??= this.db.transaction((id: number, items: readonly NewSample[]) => this.addSamplesNow(id, items));
    return this.durable(this.addSamplesTransaction.immediate(datasetId, samples));
  }

  /** addSamples' transaction body: a group commit's samples, in one transaction made once per store. */
  private addSamplesNow(datasetId: number, samples: readonly NewSample[]): AddOutcome[] {
    const q = this.q;
    const counters = q.revisionAndDeclared.get(datasetId) as { revision: number; declared: number } | undefined;
    if (counters === undefined) throw datasetNotFound(datasetId);
    const { declared } = counters;
    // Each added sample takes the next revision; the dataset row is written once, at the end.
    let revision = counters.revision;
    let added = 0;
    const outcomes: AddOutcome[] = [];
    for (const item of samples) {
      // Most items are new: their check reads one index entry, the whole sample only when there is one.
      const liveId = q.liveIdBySha.get(datasetId, item.sha256) as number | undefined;
      const live = liveId === undefined ? undefined : toSample(q.liveSampleById.get(datasetId, liveId));
      if (live) {
        const same = live.category === item.category;
        outcomes.push(same ? { kind: 'duplicate', sample: live } : { kind: 'conflict', existing: live });
        continue;
      }
      if (declared === 1 && q.categoryIdx.get(datasetId, item.category) === undefined) {
        outcomes.push({ kind: 'undeclared', category: item.category });
        continue;
      }
      if (item.newBlob) {
        const { sha256, segment, offset, length } = item.newBlob;
        q.indexBlob.run(sha256, segment, offset, length);
      } else if (item.requireIndexedBlob && q.blobIndexed.get(item.sha256) === undefined) {
        outcomes.push({ kind: 'blob-missing' });
        continue;
      }
      revision += 1;
      added += 1;
      const categoryIndex = this.ensureCategory(datasetId, item.category, revision);
      const createdAt = new Date().toISOString();
      const { sha256, category, mediaType, bytes, pixelSlot, splitBucket } = item;
      const filename = item.filename ?? null;
      const tags = [...(item.tags ?? [])];
      const metadata = item.metadata ?? {};
      // Bound by position (named parameters are looked up by name in the row object, each time).
      const id = Number(
        q.insertSample.run(datasetId, sha256, mediaType, bytes, pixelSlot, splitBucket, categoryIndex, revision, revision, createdAt, filename, JSON.stringify(tags), JSON.stringify(metadata), item.perceptualHash ?? null)
          .lastInsertRowid,
      );
      q.insertLabel.run(id, revision, categoryIndex);
      this.audit(datasetId, id, 'add', item.actor, revision, null, { category });
      outcomes.push({ kind: 'added', sample: { id, datasetId, sha256, category, categoryIndex, revision, createdAt, mediaType, bytes, pixelSlot, splitBucket, filename, tags, metadata } });
    }
    if (added > 0) q.setRevision.run({ datasetId, revision, liveDelta: added });
    return outcomes;
  }

  async findLiveSampleBySha(datasetId: number, sha256: string): Promise<SampleRecord | undefined> {
    return toSample(this.q.liveSampleBySha.get(datasetId, sha256));
  }

  async findDatasetAndLiveSample(name: string, sha256: string): Promise<{ dataset?: DatasetRecord; existing?: SampleRecord; blobIndexed?: boolean }> {
    const row = this.q.datasetLiveIdBlob.get({ name, sha256 }) as (Record<string, unknown> & { liveId: number | null; blobIndexed: number }) | undefined;
    if (!row) return {};
    const { liveId, blobIndexed, ...datasetRow } = row;
    const dataset = toDataset(datasetRow)!;
    const existing = liveId === null ? undefined : toSample(this.q.liveSampleById.get(dataset.id, liveId));
    return { dataset, existing, blobIndexed: blobIndexed === 1 };
  }

  async getSample(datasetId: number, id: number): Promise<SampleRecord | undefined> {
    return toSample(this.q.liveSampleById.get(datasetId, id));
  }

  async listSamples(datasetId: number, query: SampleQuery): Promise<SampleRecord[]> {
    const testPercent = this.q.testPercent.get(datasetId) as number | undefined;
    if (testPercent === undefined || query.limit <= 0) return [];
    const bounds = splitBounds(query.split, testPercent);
    const params: Record<string, unknown> = { datasetId, afterId: query.afterId ?? 0, limit: query.limit, ...bounds };
    const where = ['s.dataset_id = @datasetId', 's.deleted_rev IS NULL', 's.split_bucket >= @lo', 's.split_bucket < @hi'];
    // Names compare with SQLite's default BINARY collation: byte-wise on UTF-8, which is code point order.
    let order = `s.id${query.newestFirst ? ' DESC' : ''}`;
    if (query.orderBy === 'category') {
      order = 'c.name, s.id';
      if (query.afterId !== undefined) {
        params.afterKey = query.afterKey ?? '';
        where.push('(c.name > @afterKey OR (c.name = @afterKey AND s.id > @afterId))');
      }
    } else if (query.orderBy === 'filename') {
      order = 's.filename IS NULL, s.filename, s.id';
      if (query.afterId !== undefined) {
        if (query.afterKey === null || query.afterKey === undefined) where.push('(s.filename IS NULL AND s.id > @afterId)');
        else {
          params.afterKey = query.afterKey;
          where.push('(s.filename IS NULL OR s.filename > @afterKey OR (s.filename = @afterKey AND s.id > @afterId))');
        }
      }
    } else where.push(query.newestFirst && query.afterId !== undefined ? 's.id < @afterId' : 's.id > @afterId');
    if (query.category !== undefined) {
      const category = this.q.categoryIdx.get(datasetId, query.category) as { idx: number } | undefined;
      if (!category) return [];
      params.categoryIndex = category.idx;
      where.push('s.category_idx = @categoryIndex');
    }
    if (query.filename !== undefined) {
      params.filename = query.filename.toLowerCase();
      where.push('instr(lower(s.filename), @filename) > 0');
    }
    if (query.tag !== undefined) {
      params.tag = query.tag;
      where.push('EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value = @tag)');
    }
    if (query.search !== undefined) {
      const { text, id, shaPrefix } = query.search;
      Object.assign(params, { qText: text, qLower: text.toLowerCase(), qId: id ?? -1, qSha: shaPrefix ?? '' });
      where.push(`(s.id = @qId OR (@qSha <> '' AND substr(s.sha256, 1, length(@qSha)) = @qSha)
        OR instr(lower(coalesce(s.filename, '')), @qLower) > 0 OR EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value = @qText))`);
    }
    const sql = `${SAMPLE_SELECT} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT @limit`;
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    return statement.all(params).map((row) => toSample(row)!);
  }

  async annotateSample(datasetId: number, id: number, change: AnnotationChange, actor?: Actor): Promise<SampleRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = toSample(this.q.liveSampleById.get(datasetId, id));
          if (!row) return undefined;
          const next = applyAnnotationChange(row, change);
          this.q.setAnnotations.run({ id, filename: next.filename, tagsJson: JSON.stringify(next.tags), metadataJson: JSON.stringify(next.metadata) });
          this.audit(datasetId, id, 'annotate', actor, this.q.revisionOf.get(datasetId) as number, null, { ...change });
          return next;
        })
        .immediate(),
    );
  }

  async relabelSample(datasetId: number, id: number, category: string, actor?: Actor): Promise<SampleRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = toSample(this.q.liveSampleById.get(datasetId, id));
          if (!row) return undefined;
          if (row.category === category) return row;
          if (this.q.declared.get(datasetId) === 1 && this.q.categoryIdx.get(datasetId, category) === undefined) {
            const dataset = toDataset(this.q.datasetById.get(datasetId))!;
            throw undeclaredCategory(dataset.name, category);
          }
          const revision = this.bumpRevision(datasetId, 0);
          const categoryIndex = this.ensureCategory(datasetId, category, revision);
          this.q.insertLabel.run(id, revision, categoryIndex);
          this.q.setLabel.run(categoryIndex, revision, id);
          this.audit(datasetId, id, 'relabel', actor, revision, null, { from: row.category, to: category });
          return { ...row, category, categoryIndex };
        })
        .immediate(),
    );
  }

  async deleteSample(datasetId: number, id: number, actor?: Actor): Promise<SampleRecord | undefined> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = toSample(this.q.liveSampleById.get(datasetId, id));
          if (!row) return undefined;
          const revision = this.bumpRevision(datasetId, -1);
          this.q.tombstone.run(revision, new Date().toISOString(), id);
          this.audit(datasetId, id, 'delete', actor, revision, null, { category: row.category });
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

  async countEligible(datasetId: number, query: EligibleQuery): Promise<number> {
    return this.q.countEligible.get(exportParams(datasetId, { ...query, afterId: 0, limit: 0 })) as number;
  }

  async exportPage(datasetId: number, query: ExportPageQuery): Promise<ExportSample[]> {
    return this.q.exportPage.all(exportParams(datasetId, query)) as ExportSample[];
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
    if (samples === 0) purgedRevision = toDataset(this.q.datasetById.get(datasetId))?.purgedRevision ?? 0;
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

  async putFeedback(datasetId: number, items: readonly FeedbackInput[], revision: number, at: string): Promise<number[]> {
    const put = this.db.prepare(`
      INSERT INTO sample_feedback (dataset_id, sample_id, loss, probs, predicted, revision, received_at, decision, decided_at)
      SELECT dataset_id, id, @loss, @probs, @predicted, @revision, @at, NULL, NULL
        FROM samples WHERE dataset_id = @datasetId AND id = @id AND deleted_rev IS NULL
      ON CONFLICT (dataset_id, sample_id) DO UPDATE SET
        loss = excluded.loss, probs = excluded.probs, predicted = excluded.predicted, revision = excluded.revision,
        received_at = excluded.received_at, decision = NULL, decided_at = NULL`);
    return this.durable(
      this.db
        .transaction(() => {
          const stored: number[] = [];
          for (const item of items) {
            const changes = put.run({
              datasetId,
              id: item.id,
              loss: item.loss ?? null,
              probs: item.probs ? JSON.stringify(item.probs) : null,
              predicted: item.predicted ?? null,
              revision,
              at,
            }).changes;
            if (changes > 0) stored.push(item.id);
          }
          return stored;
        })
        .immediate(),
    );
  }

  async listFeedback(datasetId: number): Promise<FeedbackRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT f.sample_id AS id, s.category_idx AS categoryIndex, s.label_rev AS labelRevision, f.loss, f.probs, f.predicted, f.revision, f.received_at AS receivedAt, f.decision
           FROM sample_feedback f JOIN samples s ON s.id = f.sample_id
          WHERE f.dataset_id = ? AND s.deleted_rev IS NULL ORDER BY f.sample_id`,
      )
      .all(datasetId) as (Omit<FeedbackRecord, 'probs'> & { probs: string | null })[];
    return rows.map((row) => ({ ...row, probs: row.probs === null ? null : (JSON.parse(row.probs) as number[]) }));
  }

  async decideFeedback(datasetId: number, id: number, decision: ReviewDecision, at: string): Promise<boolean> {
    const changes = this.db
      .prepare(
        `INSERT INTO sample_feedback (dataset_id, sample_id, revision, received_at, decision, decided_at)
         SELECT s.dataset_id, s.id, d.revision, @at, @decision, @at
           FROM samples s JOIN datasets d ON d.id = s.dataset_id
          WHERE s.dataset_id = @datasetId AND s.id = @id AND s.deleted_rev IS NULL
         ON CONFLICT (dataset_id, sample_id) DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at`,
      )
      .run({ datasetId, id, decision, at }).changes;
    return this.durable(changes > 0);
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

  async applyBulk(datasetId: number, ids: readonly number[], change: BulkChange, actor: Actor): Promise<BulkOutcome> {
    return this.durable(
      this.db
        .transaction(() => {
          const dataset = toDataset(this.q.datasetById.get(datasetId));
          if (!dataset) throw datasetNotFound(datasetId);
          if (change.kind === 'relabel' && dataset.categoriesDeclared && this.q.categoryIdx.get(datasetId, change.category) === undefined) {
            throw undeclaredCategory(dataset.name, change.category);
          }
          let revision: number | undefined;
          const raise = () => (revision ??= this.bumpRevision(datasetId, 0));
          const at = new Date().toISOString();
          const results: BulkItemResult[] = [];
          const undo: unknown[] = [];
          const audits: (() => void)[] = [];
          let live = 0;
          for (const id of new Set(ids)) {
            const row = toSample(this.q.liveSampleById.get(datasetId, id));
            if (!row) {
              results.push({ id, status: 'not_found' });
              continue;
            }
            const plan = planBulkItem(row, change);
            if (!plan) {
              results.push({ id, status: 'unchanged' });
              continue;
            }
            if (plan.kind === 'relabel') {
              const rev = raise();
              const categoryIndex = this.ensureCategory(datasetId, plan.to, rev);
              this.q.insertLabel.run(id, rev, categoryIndex);
              this.q.setLabel.run(categoryIndex, rev, id);
              undo.push([id, row.categoryIndex, categoryIndex]);
              audits.push(() => this.audit(datasetId, id, 'relabel', actor, rev, bulkId, { from: row.category, to: plan.to }));
            } else if (plan.kind === 'delete') {
              const rev = raise();
              this.q.tombstone.run(rev, at, id);
              live -= 1;
              undo.push(id);
              audits.push(() => this.audit(datasetId, id, 'delete', actor, rev, bulkId, { category: row.category }));
            } else if (plan.kind === 'annotate') {
              this.setAnnotations(id, plan.next);
              undo.push([id, plan.tags]);
              const detail = change.kind === 'tag' ? { addTags: plan.tags } : { removeTags: plan.tags };
              audits.push(() => this.audit(datasetId, id, 'annotate', actor, revision ?? dataset.revision, bulkId, detail));
            }
            results.push({ id, status: 'changed' });
          }
          if (live !== 0) this.q.adjustLive.run(live, datasetId);
          const bulkId = this.insertBulk(datasetId, change.kind, actor, at, revision ?? dataset.revision, audits.length, null, undo);
          for (const write of audits) write();
          return { action: this.bulkRecord(datasetId, bulkId), results };
        })
        .immediate(),
    );
  }

  async undoBulk(datasetId: number, actionId: number, actor: Actor): Promise<BulkOutcome> {
    return this.durable(
      this.db
        .transaction(() => {
          const row = this.q.bulkById.get(datasetId, actionId) as BulkRow | undefined;
          if (!row) throw bulkNotFound(actionId);
          const last = this.q.lastBulk.get(datasetId) as BulkRow | undefined;
          assertUndoable(row, last);
          const dataset = toDataset(this.q.datasetById.get(datasetId))!;
          let revision: number | undefined;
          const raise = () => (revision ??= this.bumpRevision(datasetId, 0));
          const at = new Date().toISOString();
          const results: BulkItemResult[] = [];
          const audits: (() => void)[] = [];
          let live = 0;
          let names: Map<number, string> | undefined;
          for (const entry of JSON.parse(row.undo) as unknown[]) {
            if (row.kind === 'relabel') {
              const [id, from, to] = entry as [number, number, number];
              const sample = toSample(this.q.liveSampleById.get(datasetId, id));
              if (!sample || sample.categoryIndex !== to) {
                results.push({ id, status: 'skipped', reason: sample ? 'relabelled since' : 'deleted since' });
                continue;
              }
              const rev = raise();
              this.q.insertLabel.run(id, rev, from);
              this.q.setLabel.run(from, rev, id);
              names ??= new Map((this.q.listCategories.all(datasetId) as CategoryRecord[]).map((c) => [c.index, c.name]));
              const back = names.get(from) ?? String(from);
              audits.push(() => this.audit(datasetId, id, 'relabel', actor, rev, bulkId, { from: sample.category, to: back }));
              results.push({ id, status: 'changed' });
            } else if (row.kind === 'delete') {
              const id = entry as number;
              const tomb = this.q.tombstoneById.get(datasetId, id) as { id: number; sha256: string } | undefined;
              if (!tomb) {
                results.push({ id, status: 'skipped', reason: 'purged' });
                continue;
              }
              if (this.q.liveSampleBySha.get(datasetId, tomb.sha256)) {
                results.push({ id, status: 'skipped', reason: 'its bytes are a live sample again' });
                continue;
              }
              const rev = raise();
              const newId = Number(this.q.restore.run({ id, revision: rev }).lastInsertRowid);
              const restored = toSample(this.q.liveSampleById.get(datasetId, newId))!;
              this.q.insertLabel.run(newId, rev, restored.categoryIndex);
              live += 1;
              audits.push(() => this.audit(datasetId, newId, 'restore', actor, rev, bulkId, { from: id, category: restored.category }));
              results.push({ id, status: 'restored', newId });
            } else {
              const [id, tags] = entry as [number, string[]];
              const sample = toSample(this.q.liveSampleById.get(datasetId, id));
              if (!sample) {
                results.push({ id, status: 'skipped', reason: 'deleted since' });
                continue;
              }
              const inverse: BulkChange = row.kind === 'tag' ? { kind: 'untag', tags } : { kind: 'tag', tags };
              const plan = planBulkItem(sample, inverse);
              if (!plan || plan.kind === 'relabel' || plan.kind === 'delete') {
                results.push({ id, status: 'unchanged' });
                continue;
              }
              this.setAnnotations(id, plan.next);
              const detail = inverse.kind === 'tag' ? { addTags: plan.tags } : { removeTags: plan.tags };
              audits.push(() => this.audit(datasetId, id, 'annotate', actor, revision ?? dataset.revision, bulkId, detail));
              results.push({ id, status: 'changed' });
            }
          }
          if (live !== 0) this.q.adjustLive.run(live, datasetId);
          const bulkId = this.insertBulk(datasetId, 'undo', actor, at, revision ?? dataset.revision, audits.length, actionId, []);
          this.q.setUndoneBy.run(bulkId, actionId);
          for (const write of audits) write();
          return { action: this.bulkRecord(datasetId, bulkId), results };
        })
        .immediate(),
    );
  }

  async listBulkActions(datasetId: number, limit: number): Promise<BulkActionRecord[]> {
    return (this.q.listBulk.all(datasetId, limit) as BulkRow[]).map(toBulkRecord);
  }

  async listAudit(datasetId: number, query: AuditQuery): Promise<AuditRecord[]> {
    const where = ['dataset_id = @datasetId', 'id < @beforeId'];
    if (query.sampleId !== undefined) where.push('sample_id = @sampleId');
    const sql = `SELECT id, sample_id AS sampleId, action, actor, roles, at, revision, bulk_id AS bulkId, detail FROM audit_log
                 WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT @limit`;
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    const rows = statement.all({ datasetId, beforeId: query.beforeId ?? Number.MAX_SAFE_INTEGER, limit: query.limit, sampleId: query.sampleId }) as AuditRow[];
    return rows.map((row) => ({
      id: row.id,
      sampleId: row.sampleId,
      action: row.action,
      actor: { name: row.actor, roles: row.roles === '' ? [] : row.roles.split(',') },
      at: row.at,
      revision: row.revision,
      bulkId: row.bulkId,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
    }));
  }

  private audit(datasetId: number, sampleId: number, action: AuditAction, actor: Actor | undefined, revision: number, bulkId: number | null, detail: Record<string, unknown>): void {
    const who = actor ?? SYSTEM_ACTOR;
    this.q.insertAudit.run(datasetId, sampleId, action, who.name, who.roles.join(','), new Date().toISOString(), revision, bulkId, JSON.stringify(detail));
  }

  private setAnnotations(id: number, next: { filename: string | null; tags: readonly string[]; metadata: Readonly<Record<string, unknown>> }): void {
    this.q.setAnnotations.run({ id, filename: next.filename, tagsJson: JSON.stringify(next.tags), metadataJson: JSON.stringify(next.metadata) });
  }

  private insertBulk(datasetId: number, kind: string, actor: Actor, at: string, revision: number, changed: number, undoes: number | null, undo: unknown[]): number {
    const info = this.q.insertBulk.run({ datasetId, kind, actor: actor.name, roles: actor.roles.join(','), at, revision, changed, undoes, undo: JSON.stringify(undo) });
    return Number(info.lastInsertRowid);
  }

  private bulkRecord(datasetId: number, id: number): BulkActionRecord {
    return toBulkRecord(this.q.bulkById.get(datasetId, id) as BulkRow);
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

interface BulkRow {
  id: number;
  kind: BulkActionRecord['kind'];
  actor: string;
  roles: string;
  at: string;
  revision: number;
  changed: number;
  undoes: number | null;
  undoneBy: number | null;
  undo: string;
}

interface AuditRow {
  id: number;
  sampleId: number;
  action: AuditAction;
  actor: string;
  roles: string;
  at: string;
  revision: number;
  bulkId: number | null;
  detail: string;
}

function toBulkRecord(row: BulkRow): BulkActionRecord {
  const { undo: _undo, roles, actor, ...rest } = row;
  return { ...rest, actor: { name: actor, roles: roles === '' ? [] : roles.split(',') } };
}

/** A sample row as its record: tags and metadata are JSON text in SQLite. */
function toSample(row: unknown): SampleRecord | undefined {
  if (!row) return undefined;
  const record = row as Omit<SampleRecord, 'tags' | 'metadata'> & { tags: string; metadata: string };
  return { ...record, tags: JSON.parse(record.tags) as string[], metadata: JSON.parse(record.metadata) as Record<string, unknown> };
}

/** A dataset row as its record (SQLite has no booleans). */
function toDataset(row: unknown): DatasetRecord | undefined {
  if (!row) return undefined;
  const record = row as Omit<DatasetRecord, 'categoriesDeclared'> & { categoriesDeclared: unknown };
  return { ...record, categoriesDeclared: record.categoriesDeclared === 1 || record.categoriesDeclared === true };
}

function datasetNotFound(datasetId: number): SensoryError {
  return new SensoryError('SENSORY_ERR_DATASET_NOT_FOUND', `No dataset with id ${datasetId}.`);
}
