import { createHash } from 'node:crypto';
import pg from 'pg';
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
import { addSamplesInOneStatement, LiveSampleLookups } from './postgres.sample-ingest.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS_TABLE_SQL, POSTGRES_MIGRATIONS } from './postgres.migrations.js';

const INT8_OID = 20;
const CONNECT_TIMEOUT_MS = 10_000;

/** `bigint` values (ids, revisions, counters, count(*)) come back as numbers: they stay below 2^53. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A client that sends every query with parameters as a named prepared statement (the name is a
 * digest of its text): each connection parses and plans a statement once instead of on every
 * call, which is most of the server's work for the small queries of an upload.
 */
class PreparingClient extends pg.Client {
  private static readonly names = new Map<string, string>();

  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // A connection lost while checked out (server restart, pg_terminate_backend) emits 'error' on
    // the client, and the pool listens only to idle ones: without this the process would exit.
    // The query in flight fails by itself; release() then discards the dead client.
    this.on('error', () => undefined);
  }

  // pg's query() has many overloads; only (text, values[, callback]) is rewritten.
  override query(...args: unknown[]): any {
    const [text, values] = args;
    if (typeof text === 'string' && Array.isArray(values)) {
      let name = PreparingClient.names.get(text);
      if (!name) {
        name = `sensory_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
        PreparingClient.names.set(text, name);
      }
      return (super.query as (...rest: unknown[]) => unknown)({ name, text, values }, ...args.slice(2));
    }
    return (super.query as (...rest: unknown[]) => unknown)(...args);
  }
}

/**
 * Runs `work` in one transaction on one connection of the pool. A failed ROLLBACK discards the
 * connection instead of handing it back.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

// Columns are aliased to the record fields, so rows are the records themselves.
const DATASET_COLUMNS = `id, name, width, height, channels, test_percent AS "testPercent", revision,
  live_count AS "sampleCount", created_at AS "createdAt", purged_rev AS "purgedRevision",
  categories_declared AS "categoriesDeclared"`;
const DATASET_SELECT = `SELECT ${DATASET_COLUMNS} FROM datasets`;

const SAMPLE_SELECT = `
  SELECT s.id, s.dataset_id AS "datasetId", s.sha256, c.name AS category, s.category_idx AS "categoryIndex",
         s.added_rev AS revision, s.created_at AS "createdAt", s.media_type AS "mediaType", s.bytes,
         s.pixel_slot AS "pixelSlot", s.split_bucket AS "splitBucket", s.filename, s.tags, s.metadata
  FROM samples s JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx`;

/** Tombstones removed per transaction by a purge. */
const PURGE_BATCH = 2000;

/** Sample ids covered by one eligibleSamples query. */
const ELIGIBLE_ID_SPAN = 1_000_000;

// One text "id,categoryIndex,pixelSlot,id,…" per id range instead of 100,000 result rows: the
// driver builds rows one by one, slower than the query. The label at R is the current one unless
// it was set after R; then it is the newest label row <= R.
const ELIGIBLE_SQL = `
  SELECT string_agg(s.id || ',' ||
           CASE WHEN s.label_rev <= $2 THEN s.category_idx
             ELSE (SELECT l.category_idx FROM sample_labels l
                   WHERE l.sample_id = s.id AND l.from_rev <= $2
                   ORDER BY l.from_rev DESC LIMIT 1) END
           || ',' || s.pixel_slot, ',' ORDER BY s.id) AS list
  FROM samples s
  WHERE s.dataset_id = $1 AND s.id > $3 AND s.id <= $4 AND s.added_rev <= $2
    AND (s.deleted_rev IS NULL OR s.deleted_rev > $2)
    AND s.split_bucket >= $5 AND s.split_bucket < $6`;

// The export's selection: labels as at $2, the split by bucket ($4), categories ($5, all when NULL).
const EXPORT_SELECTION = `
  SELECT id, sha256, "mediaType", "categoryIndex", "pixelSlot", "splitBucket" FROM (
    SELECT s.id AS id, s.sha256 AS sha256, s.media_type AS "mediaType", s.pixel_slot AS "pixelSlot", s.split_bucket AS "splitBucket",
      CASE WHEN s.label_rev <= $2 THEN s.category_idx
        ELSE (SELECT l.category_idx FROM sample_labels l
              WHERE l.sample_id = s.id AND l.from_rev <= $2
              ORDER BY l.from_rev DESC LIMIT 1) END AS "categoryIndex"
    FROM samples s JOIN datasets d ON d.id = s.dataset_id
    WHERE s.dataset_id = $1 AND s.id > $3 AND s.added_rev <= $2
      AND (s.deleted_rev IS NULL OR s.deleted_rev > $2)
      AND ($4::text = 'all' OR ($4::text = 'test') = (s.split_bucket < d.test_percent))) e
  WHERE $5::integer[] IS NULL OR "categoryIndex" = ANY($5::integer[])`;

/** Bounds on split_bucket selecting a split: lo <= bucket < hi (within PostgreSQL's integer range). */
function splitBounds(split: Split | undefined, testPercent: number): { lo: number; hi: number } {
  const MIN = -2_147_483_648;
  const MAX = 2_147_483_647;
  if (split === 'test') return { lo: MIN, hi: testPercent };
  if (split === 'train') return { lo: testPercent, hi: MAX };
  return { lo: MIN, hi: MAX };
}

/**
 * MetadataStore on PostgreSQL through a pg.Pool, for several replicas on one database. Every write
 * that raises a revision first locks the dataset row (SELECT … FOR UPDATE), so writes to one
 * dataset run one after the other across replicas: revisions have no gaps or repeats, a category
 * gets one index, and the same bytes become one sample (the unique index on live SHA-256s backs it).
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly kind = 'postgres';
  /** Shared with the order store, which lives in the same database. */
  readonly pool: pg.Pool;
  private ending: Promise<void> | undefined;
  private readonly lookups: LiveSampleLookups;

  constructor(url: string, options: { max?: number } = {}) {
    // A server that accepts TCP but never answers must not hold requests forever.
    this.pool = new pg.Pool({ connectionString: url, types: TYPES, Client: PreparingClient, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...options });
    // An idle connection dropped by the server: the pool discards it and opens another on demand.
    this.pool.on('error', () => undefined);
    this.lookups = new LiveSampleLookups(this.pool, DATASET_COLUMNS);
  }

  async migrate(): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      await client.query(MIGRATIONS_TABLE_SQL);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM sensory_schema_migrations');
      const applied = new Set(rows.map((row) => row.version));
      for (let i = 0; i < POSTGRES_MIGRATIONS.length; i++) {
        if (applied.has(i + 1)) continue;
        await client.query(POSTGRES_MIGRATIONS[i]);
        await client.query('INSERT INTO sensory_schema_migrations (version) VALUES ($1)', [i + 1]);
      }
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    this.ending ??= this.pool.end();
    await this.ending;
  }

  async putDataset(spec: DatasetSpec): Promise<{ dataset: DatasetRecord; created: boolean }> {
    const { name, width, height, channels, testPercent } = spec;
    for (;;) {
      const inserted = await this.pool.query<DatasetRecord>(
        `INSERT INTO datasets (name, width, height, channels, test_percent, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING RETURNING ${DATASET_COLUMNS}`,
        [name, width, height, channels, testPercent, new Date().toISOString()],
      );
      if (inserted.rows[0]) return { dataset: await this.declare(inserted.rows[0], spec.categories), created: true };
      const dataset = await this.getDataset(name);
      if (!dataset) {
        // The unique index on lower(name) refused it: a name differing only in case exists.
        const variant = (await this.pool.query<{ name: string }>('SELECT name FROM datasets WHERE lower(name) = lower($1)', [name])).rows[0];
        if (variant) throw caseConflict(name, variant.name);
        continue; // deleted in between: try again
      }
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
      return { dataset: await this.declare(dataset, spec.categories), created: false };
    }
  }

  /**
   * Declares (or extends) the dataset's class list under its row lock: the names after its
   * current categories are appended at the next indices. On a dataset with samples this raises
   * the revision, so that snapshots before it keep their category map.
   */
  private async declare(dataset: DatasetRecord, categories: readonly string[] | undefined): Promise<DatasetRecord> {
    if (!categories) return dataset;
    return inTransaction(this.pool, async (client) => {
      const locked = await client.query<DatasetRecord>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1 FOR UPDATE`, [dataset.id]);
      const current = locked.rows[0];
      if (!current) throw datasetNotFound(dataset.id);
      const existing = (await client.query<{ name: string }>('SELECT name FROM categories WHERE dataset_id = $1 ORDER BY idx', [dataset.id])).rows.map((row) => row.name);
      const append = categoriesToAppend(current.name, existing, categories);
      if (append.length === 0 && current.categoriesDeclared) return current;
      const revision = append.length > 0 && current.revision > 0 ? await bumpRevision(client, dataset.id, 0) : current.revision;
      const first = existing.length;
      if (append.length > 0) {
        await client.query(
          `INSERT INTO categories (dataset_id, idx, name, created_rev) SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::bigint[])`,
          [dataset.id, append.map((_, i) => first + i), append, append.map(() => revision)],
        );
      }
      const updated = await client.query<DatasetRecord>(
        `UPDATE datasets SET categories_declared = true, next_category_index = $2 WHERE id = $1 RETURNING ${DATASET_COLUMNS}`,
        [dataset.id, first + append.length],
      );
      return updated.rows[0];
    });
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    return (await this.pool.query<DatasetRecord>(`${DATASET_SELECT} WHERE name = $1`, [name])).rows[0];
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return (await this.pool.query<DatasetRecord>(`${DATASET_SELECT} ORDER BY name COLLATE "C"`)).rows;
  }

  async deleteDataset(name: string): Promise<DatasetRecord | undefined> {
    return (await this.pool.query<DatasetRecord>(`DELETE FROM datasets WHERE name = $1 RETURNING ${DATASET_COLUMNS}`, [name])).rows[0];
  }

  async reservePixelSlots(datasetId: number, count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `Cannot reserve ${count} pixel slots.`);
    }
    const { rows } = await this.pool.query<{ first: number }>(
      `UPDATE datasets SET next_pixel_slot = next_pixel_slot + $2 WHERE id = $1 RETURNING next_pixel_slot - $2 AS first`,
      [datasetId, count],
    );
    if (!rows[0]) throw datasetNotFound(datasetId);
    return rows[0].first;
  }

  async addSamples(datasetId: number, samples: readonly NewSample[]): Promise<AddOutcome[]> {
    const { outcomes, revisions } = await addSamplesInOneStatement(this.pool, datasetId, samples);
    if (crossesDoubling(revisions.before, revisions.after)) await this.refreshSampleStatistics();
    return outcomes;
  }

  /**
   * Plans chosen on statistics taken before a bulk load are wrong by orders of magnitude (an
   * upload's SHA-256 lookup scans the whole dataset), and prepared statements keep such plans. The
   * autovacuum daemon catches up only within minutes, so the store refreshes the statistics itself
   * each time a dataset's revision doubles past STATISTICS_MIN_REVISION: a few dozen ANALYZE runs
   * over a dataset's life, each followed by fresh plans.
   */
  private async refreshSampleStatistics(): Promise<void> {
    await this.pool.query('ANALYZE samples, sample_labels');
  }

  async findLiveSampleBySha(datasetId: number, sha256: string): Promise<SampleRecord | undefined> {
    return (await this.pool.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.sha256 = $2 AND s.deleted_rev IS NULL`, [datasetId, sha256])).rows[0];
  }

  findDatasetAndLiveSample(name: string, sha256: string): Promise<{ dataset?: DatasetRecord; existing?: SampleRecord; blobIndexed?: boolean }> {
    return this.lookups.find(name, sha256);
  }

  async getSample(datasetId: number, id: number): Promise<SampleRecord | undefined> {
    return liveSampleById(this.pool, datasetId, id);
  }

  async listSamples(datasetId: number, query: SampleQuery): Promise<SampleRecord[]> {
    const testPercent = await this.testPercent(datasetId);
    if (testPercent === undefined || query.limit <= 0) return [];
    const { lo, hi } = splitBounds(query.split, testPercent);
    const params: unknown[] = [datasetId, query.afterId ?? 0, lo, hi, query.limit];
    const where = ['s.dataset_id = $1', 's.deleted_rev IS NULL', 's.split_bucket >= $3', 's.split_bucket < $4'];
    const param = (value: unknown) => `$${params.push(value)}`;
    // Names compare COLLATE "C": byte-wise on UTF-8, code point order, as SQLite's BINARY does.
    let order = `s.id${query.newestFirst ? ' DESC' : ''}`;
    if (query.orderBy === 'category') {
      order = 'c.name COLLATE "C", s.id';
      if (query.afterId !== undefined) {
        const key = param(query.afterKey ?? '');
        where.push(`(c.name COLLATE "C" > ${key} OR (c.name COLLATE "C" = ${key} AND s.id > $2))`);
      }
    } else if (query.orderBy === 'filename') {
      order = 's.filename COLLATE "C" NULLS LAST, s.id';
      if (query.afterId !== undefined) {
        if (query.afterKey === null || query.afterKey === undefined) where.push('(s.filename IS NULL AND s.id > $2)');
        else {
          const key = param(query.afterKey);
          where.push(`(s.filename IS NULL OR s.filename COLLATE "C" > ${key} OR (s.filename COLLATE "C" = ${key} AND s.id > $2))`);
        }
      }
    }
    if (query.orderBy === undefined || query.afterId === undefined) where.push(query.newestFirst && query.afterId !== undefined ? 's.id < $2' : 's.id > $2');
    if (query.category !== undefined) {
      const category = await this.pool.query<{ idx: number }>('SELECT idx FROM categories WHERE dataset_id = $1 AND name = $2', [datasetId, query.category]);
      if (!category.rows[0]) return [];
      where.push(`s.category_idx = ${param(category.rows[0].idx)}`);
    }
    if (query.filename !== undefined) where.push(`strpos(lower(s.filename), ${param(query.filename.toLowerCase())}) > 0`);
    if (query.tag !== undefined) where.push(`s.tags ? ${param(query.tag)}`);
    if (query.search !== undefined) {
      const { text, id, shaPrefix } = query.search;
      const conditions = [`strpos(lower(coalesce(s.filename, '')), ${param(text.toLowerCase())}) > 0`, `s.tags ? ${param(text)}`];
      if (id !== undefined) conditions.push(`s.id = ${param(id)}`);
      if (shaPrefix !== undefined) conditions.push(`left(s.sha256, ${shaPrefix.length}) = ${param(shaPrefix)}`);
      where.push(`(${conditions.join(' OR ')})`);
    }
    const { rows } = await this.pool.query<SampleRecord>(`${SAMPLE_SELECT} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT $5`, params);
    return rows;
  }

  async annotateSample(datasetId: number, id: number, change: AnnotationChange, actor?: Actor): Promise<SampleRecord | undefined> {
    return inTransaction(this.pool, async (client) => {
      const row = (await client.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.id = $2 AND s.deleted_rev IS NULL FOR UPDATE OF s`, [datasetId, id])).rows[0];
      if (!row) return undefined;
      const next = applyAnnotationChange(row, change);
      await client.query('UPDATE samples SET filename = $2, tags = $3::jsonb, metadata = $4::jsonb WHERE id = $1', [id, next.filename, JSON.stringify(next.tags), JSON.stringify(next.metadata)]);
      const revision = (await client.query<{ revision: number }>('SELECT revision FROM datasets WHERE id = $1', [datasetId])).rows[0].revision;
      await audit(client, datasetId, [{ sampleId: id, action: 'annotate', revision, detail: { ...change } }], actor, null);
      return next;
    });
  }

  async relabelSample(datasetId: number, id: number, category: string, actor?: Actor): Promise<SampleRecord | undefined> {
    return inTransaction(this.pool, async (client) => {
      if (!(await lockDataset(client, datasetId))) return undefined;
      const row = await liveSampleById(client, datasetId, id);
      if (!row) return undefined;
      if (row.category === category) return row;
      const flags = await client.query<{ name: string; categories_declared: boolean; known: boolean }>(
        'SELECT name, categories_declared, EXISTS (SELECT 1 FROM categories WHERE dataset_id = $1 AND name = $2) AS known FROM datasets WHERE id = $1',
        [datasetId, category],
      );
      if (flags.rows[0]?.categories_declared && !flags.rows[0].known) throw undeclaredCategory(flags.rows[0].name, category);
      const revision = await bumpRevision(client, datasetId, 0);
      const categoryIndex = await ensureCategory(client, datasetId, category, revision);
      await client.query('INSERT INTO sample_labels (sample_id, from_rev, category_idx) VALUES ($1, $2, $3)', [id, revision, categoryIndex]);
      await client.query('UPDATE samples SET category_idx = $1, label_rev = $2 WHERE id = $3', [categoryIndex, revision, id]);
      await audit(client, datasetId, [{ sampleId: id, action: 'relabel', revision, detail: { from: row.category, to: category } }], actor, null);
      return { ...row, category, categoryIndex };
    });
  }

  async deleteSample(datasetId: number, id: number, actor?: Actor): Promise<SampleRecord | undefined> {
    return inTransaction(this.pool, async (client) => {
      if (!(await lockDataset(client, datasetId))) return undefined;
      const row = await liveSampleById(client, datasetId, id);
      if (!row) return undefined;
      const revision = await bumpRevision(client, datasetId, -1);
      await client.query('UPDATE samples SET deleted_rev = $1, deleted_at = $3 WHERE id = $2', [revision, id, new Date().toISOString()]);
      await audit(client, datasetId, [{ sampleId: id, action: 'delete', revision, detail: { category: row.category } }], actor, null);
      return row;
    });
  }

  async listCategories(datasetId: number): Promise<CategoryRecord[]> {
    const { rows } = await this.pool.query<CategoryRecord>(
      `SELECT c.name, c.idx AS "index", c.created_rev AS "createdRevision",
              (SELECT count(*) FROM samples s
               WHERE s.dataset_id = c.dataset_id AND s.category_idx = c.idx AND s.deleted_rev IS NULL) AS count
       FROM categories c WHERE c.dataset_id = $1 ORDER BY c.idx`,
      [datasetId],
    );
    return rows.map(({ name, index, count, createdRevision }) => ({ name, index, count, createdRevision }));
  }

  async eligibleSamples(datasetId: number, query: EligibleQuery): Promise<EligibleSample[]> {
    // One snapshot across the id ranges.
    return inTransaction(
      this.pool,
      async (client) => {
        const meta = await client.query<{ test_percent: number; lo: number | null; hi: number | null }>(
          `SELECT test_percent, (SELECT min(id) FROM samples WHERE dataset_id = $1) AS lo, (SELECT max(id) FROM samples WHERE dataset_id = $1) AS hi
           FROM datasets WHERE id = $1`,
          [datasetId],
        );
        if (!meta.rows[0]) return [];
        // The per-row label subquery makes the planner's cost estimate large enough to start JIT
        // compilation once the table is analysed, which costs more than the whole scan.
        await client.query('SET LOCAL jit = off');
        const { test_percent: testPercent, lo, hi } = meta.rows[0];
        const wanted = query.categoryIndexes && new Set(query.categoryIndexes);
        const { lo: bucketLo, hi: bucketHi } = splitBounds(query.split, testPercent);
        const out: EligibleSample[] = [];
        // By id ranges, so one text stays far below string limits however large the dataset.
        for (let fromId = (lo ?? 1) - 1; fromId < (hi ?? 0); fromId += ELIGIBLE_ID_SPAN) {
          const params = [datasetId, query.revision, fromId, fromId + ELIGIBLE_ID_SPAN, bucketLo, bucketHi];
          const { rows } = await client.query<{ list: string | null }>(ELIGIBLE_SQL, params);
          const flat = JSON.parse(`[${rows[0]?.list ?? ''}]`) as number[];
          for (let i = 0; i < flat.length; i += 3) {
            const categoryIndex = flat[i + 1];
            if (!wanted || wanted.has(categoryIndex)) out.push({ id: flat[i], categoryIndex, pixelSlot: flat[i + 2] });
          }
        }
        return out;
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async countEligible(datasetId: number, query: EligibleQuery): Promise<number> {
    const { rows } = await this.pool.query<{ count: number }>(`SELECT count(*) AS count FROM (${EXPORT_SELECTION}) c`, [
      datasetId,
      query.revision,
      0,
      query.split,
      query.categoryIndexes ?? null,
    ]);
    return Number(rows[0].count);
  }

  async exportPage(datasetId: number, query: ExportPageQuery): Promise<ExportSample[]> {
    const { rows } = await this.pool.query<ExportSample>(`${EXPORT_SELECTION} ORDER BY id LIMIT $6`, [
      datasetId,
      query.revision,
      query.afterId,
      query.split,
      query.categoryIndexes ?? null,
      query.limit,
    ]);
    return rows;
  }

  async purgeCandidates(cutoff: string): Promise<PurgeCandidates[]> {
    const { rows } = await this.pool.query<PurgeCandidates>(
      `SELECT s.dataset_id AS "datasetId", d.name AS "datasetName", count(*) AS samples, max(s.deleted_rev) AS "maxDeletedRevision"
       FROM samples s JOIN datasets d ON d.id = s.dataset_id
       WHERE s.deleted_rev IS NOT NULL AND s.deleted_at < $1
       GROUP BY s.dataset_id, d.name ORDER BY s.dataset_id`,
      [cutoff],
    );
    return rows;
  }

  async purgeChangesRevision(datasetId: number, cutoff: string, revision: number): Promise<boolean> {
    const { rows } = await this.pool.query<{ changes: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM samples WHERE dataset_id = $1 AND deleted_rev IS NOT NULL AND deleted_at < $2
                      AND added_rev <= $3 AND deleted_rev > $3) AS changes`,
      [datasetId, cutoff, revision],
    );
    return rows[0].changes;
  }

  async raisePurgedRevision(datasetId: number, revision: number): Promise<number> {
    const { rows } = await this.pool.query<{ purged_rev: number }>(
      'UPDATE datasets SET purged_rev = GREATEST(purged_rev, $2) WHERE id = $1 RETURNING purged_rev',
      [datasetId, revision],
    );
    if (!rows[0]) throw datasetNotFound(datasetId);
    return rows[0].purged_rev;
  }

  async purgeSamples(datasetId: number, cutoff: string): Promise<{ samples: number; purgedRevision: number }> {
    let samples = 0;
    let purgedRevision = 0;
    // Batches of a few thousand rows: each raises the floor past its rows before they go.
    for (;;) {
      const batch = await inTransaction(this.pool, async (client) => {
        const { rows } = await client.query<{ id: number; deleted_rev: number }>(
          `SELECT id, deleted_rev FROM samples WHERE dataset_id = $1 AND deleted_rev IS NOT NULL AND deleted_at < $2 LIMIT $3 FOR UPDATE`,
          [datasetId, cutoff, PURGE_BATCH],
        );
        if (rows.length === 0) return { removed: 0, floor: undefined };
        const revision = Math.max(...rows.map((row) => row.deleted_rev));
        const raised = await client.query<{ purged_rev: number }>(
          'UPDATE datasets SET purged_rev = GREATEST(purged_rev, $2) WHERE id = $1 RETURNING purged_rev',
          [datasetId, revision],
        );
        await client.query('DELETE FROM samples WHERE id = ANY($1::bigint[])', [rows.map((row) => row.id)]);
        return { removed: rows.length, floor: raised.rows[0]?.purged_rev };
      });
      samples += batch.removed;
      if (batch.floor !== undefined) purgedRevision = batch.floor;
      if (batch.removed < PURGE_BATCH) break;
    }
    if (samples === 0) {
      purgedRevision = (await this.pool.query<{ purged_rev: number }>('SELECT purged_rev FROM datasets WHERE id = $1', [datasetId])).rows[0]?.purged_rev ?? 0;
    }
    return { samples, purgedRevision };
  }

  async dropUnreferencedBlobs(): Promise<number> {
    let dropped = 0;
    for (let prefix = 0; prefix < 256; prefix++) {
      const from = prefix.toString(16).padStart(2, '0');
      const to = prefix === 255 ? 'g' : (prefix + 1).toString(16).padStart(2, '0');
      dropped += await inTransaction(this.pool, async (client) => {
        // Lock the candidates first (waiting for uploads that hold them FOR KEY SHARE), then
        // delete with a fresh snapshot: a sample committed meanwhile keeps its blob.
        const { rows } = await client.query<{ sha256: string }>(
          `SELECT sha256 FROM blob_index b WHERE b.sha256 >= $1 AND b.sha256 < $2
             AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.sha256 = b.sha256) FOR UPDATE`,
          [from, to],
        );
        if (rows.length === 0) return 0;
        const deleted = await client.query(
          `DELETE FROM blob_index b WHERE b.sha256 = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.sha256 = b.sha256)`,
          [rows.map((row) => row.sha256)],
        );
        return deleted.rowCount ?? 0;
      });
    }
    return dropped;
  }

  async applyBulk(datasetId: number, ids: readonly number[], change: BulkChange, actor: Actor): Promise<BulkOutcome> {
    return inTransaction(this.pool, async (client) => {
      const dataset = (await client.query<DatasetRecord>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1 FOR UPDATE`, [datasetId])).rows[0];
      if (!dataset) throw datasetNotFound(datasetId);
      let targetIndex: number | undefined;
      if (change.kind === 'relabel') {
        targetIndex = (await client.query<{ idx: number }>('SELECT idx FROM categories WHERE dataset_id = $1 AND name = $2', [datasetId, change.category])).rows[0]?.idx;
        if (targetIndex === undefined && dataset.categoriesDeclared) throw undeclaredCategory(dataset.name, change.category);
      }
      const unique = [...new Set(ids)];
      const rows = (await client.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.id = ANY($2::bigint[]) AND s.deleted_rev IS NULL FOR UPDATE OF s`, [datasetId, unique])).rows;
      const byId = new Map(rows.map((row) => [row.id, row]));
      const results: BulkItemResult[] = [];
      const undo: unknown[] = [];
      const audits: AuditEntry[] = [];
      const relabelled: number[] = [];
      const deleted: number[] = [];
      const annotated: { id: number; tags: readonly string[] }[] = [];
      for (const id of unique) {
        const row = byId.get(id);
        const plan = row && planBulkItem(row, change);
        results.push({ id, status: !row ? 'not_found' : plan ? 'changed' : 'unchanged' });
        if (!row || !plan) continue;
        if (plan.kind === 'relabel') relabelled.push(id);
        else if (plan.kind === 'delete') deleted.push(id);
        else annotated.push({ id, tags: plan.next.tags }), undo.push([id, plan.tags]);
        if (plan.kind !== 'annotate') undo.push(plan.kind === 'relabel' ? [id, row.categoryIndex, -1] : id);
        audits.push({
          sampleId: id,
          action: plan.kind === 'annotate' ? 'annotate' : plan.kind,
          revision: 0,
          detail: plan.kind === 'relabel' ? { from: row.category, to: plan.to } : plan.kind === 'delete' ? { category: row.category } : change.kind === 'tag' ? { addTags: plan.tags } : { removeTags: plan.tags },
        });
      }
      let revision = dataset.revision;
      if (relabelled.length > 0 || deleted.length > 0) revision = await bumpRevision(client, datasetId, -deleted.length);
      if (relabelled.length > 0) {
        const index = targetIndex ?? (await ensureCategory(client, datasetId, (change as { category: string }).category, revision));
        for (const entry of undo) if (Array.isArray(entry) && entry[2] === -1) entry[2] = index;
        await client.query('INSERT INTO sample_labels (sample_id, from_rev, category_idx) SELECT unnest($1::bigint[]), $2, $3', [relabelled, revision, index]);
        await client.query('UPDATE samples SET category_idx = $2, label_rev = $3 WHERE id = ANY($1::bigint[])', [relabelled, index, revision]);
      }
      if (deleted.length > 0) {
        await client.query('UPDATE samples SET deleted_rev = $2, deleted_at = $3 WHERE id = ANY($1::bigint[])', [deleted, revision, new Date().toISOString()]);
      }
      if (annotated.length > 0) {
        await client.query('UPDATE samples SET tags = u.tags::jsonb FROM unnest($1::bigint[], $2::text[]) AS u(id, tags) WHERE samples.id = u.id', [
          annotated.map((a) => a.id),
          annotated.map((a) => JSON.stringify(a.tags)),
        ]);
      }
      const action = await insertBulk(client, datasetId, change.kind, actor, revision, audits.length, null, undo);
      await audit(client, datasetId, audits.map((entry) => ({ ...entry, revision })), actor, action.id);
      return { action, results };
    });
  }

  async undoBulk(datasetId: number, actionId: number, actor: Actor): Promise<BulkOutcome> {
    return inTransaction(this.pool, async (client) => {
      const dataset = (await client.query<DatasetRecord>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1 FOR UPDATE`, [datasetId])).rows[0];
      if (!dataset) throw datasetNotFound(datasetId);
      const row = (await client.query<BulkRow>(`${BULK_SELECT} WHERE dataset_id = $1 AND id = $2`, [datasetId, actionId])).rows[0];
      if (!row) throw bulkNotFound(actionId);
      const last = (await client.query<BulkRow>(`${BULK_SELECT} WHERE dataset_id = $1 AND kind <> 'undo' ORDER BY id DESC LIMIT 1`, [datasetId])).rows[0];
      assertUndoable(row, last);
      const entries = row.undo as unknown[];
      const results: BulkItemResult[] = [];
      const audits: AuditEntry[] = [];
      let revision: number | undefined;
      const raise = async (liveDelta: number) => (revision ??= await bumpRevision(client, datasetId, liveDelta));
      const names = new Map((await client.query<{ idx: number; name: string }>('SELECT idx, name FROM categories WHERE dataset_id = $1', [datasetId])).rows.map((c) => [c.idx, c.name]));
      if (row.kind === 'relabel') {
        const wanted = entries as [number, number, number][];
        const live = new Map((await client.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.id = ANY($2::bigint[]) AND s.deleted_rev IS NULL FOR UPDATE OF s`, [datasetId, wanted.map((e) => e[0])])).rows.map((r) => [r.id, r]));
        const back: [number, number][] = [];
        for (const [id, from, to] of wanted) {
          const sample = live.get(id);
          if (!sample || sample.categoryIndex !== to) results.push({ id, status: 'skipped', reason: sample ? 'relabelled since' : 'deleted since' });
          else {
            back.push([id, from]);
            results.push({ id, status: 'changed' });
            audits.push({ sampleId: id, action: 'relabel', revision: 0, detail: { from: sample.category, to: names.get(from) ?? String(from) } });
          }
        }
        if (back.length > 0) {
          const rev = await raise(0);
          await client.query('INSERT INTO sample_labels (sample_id, from_rev, category_idx) SELECT u.id, $3, u.idx FROM unnest($1::bigint[], $2::integer[]) AS u(id, idx)', [back.map((b) => b[0]), back.map((b) => b[1]), rev]);
          await client.query('UPDATE samples SET category_idx = u.idx, label_rev = $3 FROM unnest($1::bigint[], $2::integer[]) AS u(id, idx) WHERE samples.id = u.id', [back.map((b) => b[0]), back.map((b) => b[1]), rev]);
        }
      } else if (row.kind === 'delete') {
        for (const id of entries as number[]) {
          const tomb = (await client.query<{ sha256: string }>('SELECT sha256 FROM samples WHERE dataset_id = $1 AND id = $2 AND deleted_rev IS NOT NULL', [datasetId, id])).rows[0];
          if (!tomb) {
            results.push({ id, status: 'skipped', reason: 'purged' });
            continue;
          }
          if ((await client.query('SELECT 1 FROM samples WHERE dataset_id = $1 AND sha256 = $2 AND deleted_rev IS NULL', [datasetId, tomb.sha256])).rows.length > 0) {
            results.push({ id, status: 'skipped', reason: 'its bytes are a live sample again' });
            continue;
          }
          const rev = await raise(0);
          const restored = (
            await client.query<{ id: number; category_idx: number }>(
              `INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, label_rev, added_rev, created_at, filename, tags, metadata, phash)
               SELECT dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, $2, $2, created_at, filename, tags, metadata, phash FROM samples WHERE id = $1
               RETURNING id, category_idx`,
              [id, rev],
            )
          ).rows[0];
          await client.query('INSERT INTO sample_labels (sample_id, from_rev, category_idx) VALUES ($1, $2, $3)', [restored.id, rev, restored.category_idx]);
          results.push({ id, status: 'restored', newId: restored.id });
          audits.push({ sampleId: restored.id, action: 'restore', revision: 0, detail: { from: id, category: names.get(restored.category_idx) ?? '' } });
        }
        const restoredCount = results.filter((r) => r.status === 'restored').length;
        if (restoredCount > 0) await client.query('UPDATE datasets SET live_count = live_count + $2 WHERE id = $1', [datasetId, restoredCount]);
      } else {
        const wanted = entries as [number, string[]][];
        const live = new Map((await client.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.id = ANY($2::bigint[]) AND s.deleted_rev IS NULL FOR UPDATE OF s`, [datasetId, wanted.map((e) => e[0])])).rows.map((r) => [r.id, r]));
        const updates: { id: number; tags: readonly string[] }[] = [];
        for (const [id, tags] of wanted) {
          const sample = live.get(id);
          if (!sample) {
            results.push({ id, status: 'skipped', reason: 'deleted since' });
            continue;
          }
          const inverse: BulkChange = row.kind === 'tag' ? { kind: 'untag', tags } : { kind: 'tag', tags };
          const plan = planBulkItem(sample, inverse);
          if (!plan || plan.kind !== 'annotate') {
            results.push({ id, status: 'unchanged' });
            continue;
          }
          updates.push({ id, tags: plan.next.tags });
          results.push({ id, status: 'changed' });
          audits.push({ sampleId: id, action: 'annotate', revision: 0, detail: inverse.kind === 'tag' ? { addTags: plan.tags } : { removeTags: plan.tags } });
        }
        if (updates.length > 0) {
          await client.query('UPDATE samples SET tags = u.tags::jsonb FROM unnest($1::bigint[], $2::text[]) AS u(id, tags) WHERE samples.id = u.id', [updates.map((u) => u.id), updates.map((u) => JSON.stringify(u.tags))]);
        }
      }
      const finalRevision = revision ?? dataset.revision;
      const action = await insertBulk(client, datasetId, 'undo', actor, finalRevision, audits.length, actionId, []);
      await client.query('UPDATE bulk_actions SET undone_by = $1 WHERE id = $2', [action.id, actionId]);
      await audit(client, datasetId, audits.map((entry) => ({ ...entry, revision: finalRevision })), actor, action.id);
      return { action, results };
    });
  }

  async listBulkActions(datasetId: number, limit: number): Promise<BulkActionRecord[]> {
    return (await this.pool.query<BulkRow>(`${BULK_SELECT} WHERE dataset_id = $1 ORDER BY id DESC LIMIT $2`, [datasetId, limit])).rows.map(toBulkRecord);
  }

  async listAudit(datasetId: number, query: AuditQuery): Promise<AuditRecord[]> {
    const params: unknown[] = [datasetId, query.beforeId ?? Number.MAX_SAFE_INTEGER, query.limit];
    const bySample = query.sampleId !== undefined ? `AND sample_id = $${params.push(query.sampleId)}` : '';
    const { rows } = await this.pool.query<Omit<AuditRecord, 'actor'> & { actor: string; roles: string }>(
      `SELECT id, sample_id AS "sampleId", action, actor, roles, at, revision, bulk_id AS "bulkId", detail FROM audit_log
       WHERE dataset_id = $1 AND id < $2 ${bySample} ORDER BY id DESC LIMIT $3`,
      params,
    );
    return rows.map(({ actor, roles, ...rest }) => ({ ...rest, actor: { name: actor, roles: roles === '' ? [] : roles.split(',') } }));
  }

  async samplesWithoutPerceptualHash(afterId: number, limit: number): Promise<UnhashedSample[]> {
    const { rows } = await this.pool.query<UnhashedSample>(
      'SELECT id, dataset_id AS "datasetId", pixel_slot AS "pixelSlot" FROM samples WHERE phash IS NULL AND id > $1 ORDER BY id LIMIT $2',
      [afterId, limit],
    );
    return rows;
  }

  async setPerceptualHashes(hashes: readonly { readonly id: number; readonly hash: string }[]): Promise<void> {
    if (hashes.length === 0) return;
    await this.pool.query('UPDATE samples SET phash = u.hash FROM unnest($1::bigint[], $2::text[]) AS u(id, hash) WHERE samples.id = u.id', [
      hashes.map((h) => h.id),
      hashes.map((h) => h.hash),
    ]);
  }

  async hashedSamples(datasetId: number, query: HashedQuery): Promise<HashedSample[]> {
    const { rows } = await this.pool.query<HashedSample>(
      `SELECT s.id, ${labelAt('$2')} AS "categoryIndex", s.split_bucket AS "splitBucket", s.pixel_slot AS "pixelSlot", s.phash AS hash
       FROM samples s
       WHERE s.dataset_id = $1 AND s.id > $3 AND s.added_rev <= $2 AND (s.deleted_rev IS NULL OR s.deleted_rev > $2)
       ORDER BY s.id LIMIT $4`,
      [datasetId, query.revision, query.afterId, query.limit],
    );
    return rows;
  }

  async putFeedback(datasetId: number, items: readonly FeedbackInput[], revision: number, at: string): Promise<number[]> {
    if (items.length === 0) return [];
    // One statement: the items as arrays, joined to the dataset's live samples (others are skipped).
    const { rows } = await this.pool.query<{ id: number }>(
      `INSERT INTO sample_feedback (dataset_id, sample_id, loss, probs, predicted, revision, received_at, decision, decided_at)
       SELECT s.dataset_id, s.id, u.loss, u.probs, u.predicted, $6, $7, NULL, NULL
         FROM unnest($2::bigint[], $3::float8[], $4::text[], $5::int[]) AS u(id, loss, probs, predicted)
         JOIN samples s ON s.id = u.id AND s.dataset_id = $1 AND s.deleted_rev IS NULL
       ON CONFLICT (dataset_id, sample_id) DO UPDATE SET
         loss = excluded.loss, probs = excluded.probs, predicted = excluded.predicted, revision = excluded.revision,
         received_at = excluded.received_at, decision = NULL, decided_at = NULL
       RETURNING sample_id AS id`,
      [
        datasetId,
        items.map((item) => item.id),
        items.map((item) => item.loss ?? null),
        items.map((item) => (item.probs ? JSON.stringify(item.probs) : null)),
        items.map((item) => item.predicted ?? null),
        revision,
        at,
      ],
    );
    const stored = new Set(rows.map((row) => row.id));
    return items.filter((item) => stored.has(item.id)).map((item) => item.id);
  }

  async listFeedback(datasetId: number): Promise<FeedbackRecord[]> {
    const { rows } = await this.pool.query<Omit<FeedbackRecord, 'probs'> & { probs: string | null }>(
      `SELECT f.sample_id AS id, s.category_idx AS "categoryIndex", s.label_rev AS "labelRevision", f.loss, f.probs, f.predicted, f.revision, f.received_at AS "receivedAt", f.decision
         FROM sample_feedback f JOIN samples s ON s.id = f.sample_id
        WHERE f.dataset_id = $1 AND s.deleted_rev IS NULL ORDER BY f.sample_id`,
      [datasetId],
    );
    return rows.map((row) => ({ ...row, probs: row.probs === null ? null : (JSON.parse(row.probs) as number[]) }));
  }

  async decideFeedback(datasetId: number, id: number, decision: ReviewDecision, at: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO sample_feedback (dataset_id, sample_id, revision, received_at, decision, decided_at)
       SELECT s.dataset_id, s.id, d.revision, $4, $3, $4
         FROM samples s JOIN datasets d ON d.id = s.dataset_id
        WHERE s.dataset_id = $1 AND s.id = $2 AND s.deleted_rev IS NULL
       ON CONFLICT (dataset_id, sample_id) DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at`,
      [datasetId, id, decision, at],
    );
    return (rowCount ?? 0) > 0;
  }

  async revisionChanges(datasetId: number, query: ChangeQuery): Promise<RevisionChange[]> {
    // Only samples added, deleted or relabelled after \`from\` can differ; the label history says how.
    const { rows } = await this.pool.query<RevisionChange>(
      `SELECT id, before, after FROM (
         SELECT s.id,
           CASE WHEN s.added_rev <= $2 AND (s.deleted_rev IS NULL OR s.deleted_rev > $2) THEN ${labelAt('$2')} END AS before,
           CASE WHEN s.added_rev <= $3 AND (s.deleted_rev IS NULL OR s.deleted_rev > $3) THEN ${labelAt('$3')} END AS after
         FROM samples s
         WHERE s.dataset_id = $1 AND s.id > $4 AND (s.added_rev > $2 OR s.deleted_rev > $2 OR s.label_rev > $2)
       ) c WHERE before IS DISTINCT FROM after ORDER BY id LIMIT $5`,
      [datasetId, query.from, query.to, query.afterId, query.limit],
    );
    return rows;
  }

  private async testPercent(datasetId: number): Promise<number | undefined> {
    return (await this.pool.query<{ test_percent: number }>('SELECT test_percent FROM datasets WHERE id = $1', [datasetId])).rows[0]?.test_percent;
  }
}

type Queryable = pg.Pool | pg.PoolClient;

const BULK_SELECT = `SELECT id, kind, actor, roles, at, revision, changed, undoes, undone_by AS "undoneBy", undo FROM bulk_actions`;

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
  undo: unknown;
}

function toBulkRecord(row: BulkRow): BulkActionRecord {
  const { undo: _undo, roles, actor, ...rest } = row;
  return { ...rest, actor: { name: actor, roles: roles === '' ? [] : roles.split(',') } };
}

async function insertBulk(client: pg.PoolClient, datasetId: number, kind: string, actor: Actor, revision: number, changed: number, undoes: number | null, undo: unknown[]): Promise<BulkActionRecord> {
  const { rows } = await client.query<BulkRow>(
    `INSERT INTO bulk_actions (dataset_id, kind, actor, roles, at, revision, changed, undoes, undo) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
     RETURNING id, kind, actor, roles, at, revision, changed, undoes, undone_by AS "undoneBy", undo`,
    [datasetId, kind, actor.name, actor.roles.join(','), new Date().toISOString(), revision, changed, undoes, JSON.stringify(undo)],
  );
  return toBulkRecord(rows[0]);
}

interface AuditEntry {
  readonly sampleId: number;
  readonly action: AuditAction;
  readonly revision: number;
  readonly detail: Record<string, unknown>;
}

/** Audit rows for changes made in this transaction, in one statement. */
async function audit(client: pg.PoolClient, datasetId: number, entries: readonly AuditEntry[], actor: Actor | undefined, bulkId: number | null): Promise<void> {
  if (entries.length === 0) return;
  const who = actor ?? SYSTEM_ACTOR;
  await client.query(
    `INSERT INTO audit_log (dataset_id, sample_id, action, actor, roles, at, revision, bulk_id, detail)
     SELECT $1, u.sample, u.action, $2, $3, $4, u.rev, $5, u.detail::jsonb FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::text[]) AS u(sample, action, rev, detail)`,
    [datasetId, who.name, who.roles.join(','), new Date().toISOString(), bulkId, entries.map((e) => e.sampleId), entries.map((e) => e.action), entries.map((e) => e.revision), entries.map((e) => JSON.stringify(e.detail))],
  );
}

/** The category index of sample `s` at a revision (a parameter): its current label unless set after it, then the label history's. */
function labelAt(revision: string): string {
  return `(CASE WHEN s.label_rev <= ${revision} THEN s.category_idx
            ELSE (SELECT l.category_idx FROM sample_labels l WHERE l.sample_id = s.id AND l.from_rev <= ${revision}
                  ORDER BY l.from_rev DESC LIMIT 1) END)`;
}

async function liveSampleById(db: Queryable, datasetId: number, id: number): Promise<SampleRecord | undefined> {
  return (await db.query<SampleRecord>(`${SAMPLE_SELECT} WHERE s.dataset_id = $1 AND s.id = $2 AND s.deleted_rev IS NULL`, [datasetId, id])).rows[0];
}

/** Locks the dataset row until the transaction ends; false when there is no such dataset. */
async function lockDataset(client: pg.PoolClient, datasetId: number): Promise<boolean> {
  return (await client.query('SELECT 1 FROM datasets WHERE id = $1 FOR UPDATE', [datasetId])).rows.length > 0;
}

/** Raises the dataset's revision by one, moves its live count by `liveDelta`; returns the new revision. */
async function bumpRevision(client: pg.PoolClient, datasetId: number, liveDelta: number): Promise<number> {
  const { rows } = await client.query<{ revision: number }>(
    'UPDATE datasets SET revision = revision + 1, live_count = live_count + $2 WHERE id = $1 RETURNING revision',
    [datasetId, liveDelta],
  );
  if (!rows[0]) throw datasetNotFound(datasetId);
  return rows[0].revision;
}

/** The category's index, creating it at `revision` on first appearance. Call with the dataset locked. */
async function ensureCategory(client: pg.PoolClient, datasetId: number, name: string, revision: number): Promise<number> {
  const existing = await client.query<{ idx: number }>('SELECT idx FROM categories WHERE dataset_id = $1 AND name = $2', [datasetId, name]);
  if (existing.rows[0]) return existing.rows[0].idx;
  const { rows } = await client.query<{ idx: number }>(
    'UPDATE datasets SET next_category_index = next_category_index + 1 WHERE id = $1 RETURNING next_category_index - 1 AS idx',
    [datasetId],
  );
  await client.query('INSERT INTO categories (dataset_id, idx, name, created_rev) VALUES ($1, $2, $3, $4)', [datasetId, rows[0].idx, name, revision]);
  return rows[0].idx;
}

/** Below this revision a dataset is small enough for any plan. */
const STATISTICS_MIN_REVISION = 1024;

/** True when going from revision `before` to `after` passes 1024, 2048, 4096, … */
function crossesDoubling(before: number, after: number): boolean {
  if (after < STATISTICS_MIN_REVISION) return false;
  return before < STATISTICS_MIN_REVISION || Math.floor(Math.log2(before)) !== Math.floor(Math.log2(after));
}

function datasetNotFound(datasetId: number): SensoryError {
  return new SensoryError('SENSORY_ERR_DATASET_NOT_FOUND', `No dataset with id ${datasetId}.`);
}
