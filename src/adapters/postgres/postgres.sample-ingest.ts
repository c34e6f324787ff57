import type pg from 'pg';
import { SensoryError } from '../../domain/errors.js';
import { WriteBatcher } from '../../lib/write-batcher.js';
import type { AddOutcome, DatasetRecord, NewSample, SampleRecord } from '../../ports/metadata-store.js';
import { SYSTEM_ACTOR } from '../../ports/metadata-store.js';

/**
 * The PostgreSQL side of an upload: the lookup before it is decoded and the group commit after.
 * On a database over the network each statement is a round trip that costs the server and the
 * service more CPU than the few rows it carries, so both go as few statements as they can.
 */

/** What the function sensory_add_samples (postgres.migrations.ts) answers per item. */
interface ItemRow {
  kind: 'added' | 'duplicate' | 'conflict' | 'undeclared' | 'blob-missing';
  id: number | null;
  revision: number | null;
  category_idx: number | null;
  existing: SampleRecord | null;
  same_as: number | null;
  before_rev: number;
  after_rev: number;
}

const ADD_SAMPLES_SQL = `SELECT kind, id, revision, category_idx, existing, same_as, before_rev, after_rev
  FROM sensory_add_samples($1, $2, $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::integer[], $9::text[], $10::text[],
    $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::boolean[])`;

/** SQLSTATE the function raises when the dataset is gone. */
const NO_DATASET = 'P0002';

/**
 * Commits a group of uploads to a dataset in one statement (one round trip, one transaction):
 * the function locks the dataset row, reads what is live under that lock and decides item by
 * item as one transaction would (dedupe by SHA-256 against live samples and within the group,
 * declared categories, blobs still indexed), then inserts samples, labels, audit rows, new
 * categories and blob index rows set by set. Returns the outcomes in item order and the
 * dataset's revision before and after.
 */
export async function addSamplesInOneStatement(
  db: pg.Pool,
  datasetId: number,
  samples: readonly NewSample[],
): Promise<{ outcomes: AddOutcome[]; revisions: { before: number; after: number } }> {
  const createdAt = new Date().toISOString();
  const column = <T>(pick: (sample: NewSample) => T) => samples.map(pick);
  let rows: ItemRow[];
  try {
    ({ rows } = await db.query<ItemRow>(ADD_SAMPLES_SQL, [
      datasetId,
      createdAt,
      column((s) => s.sha256),
      column((s) => s.category),
      column((s) => s.mediaType),
      column((s) => s.bytes),
      column((s) => s.pixelSlot),
      column((s) => s.splitBucket),
      column((s) => s.filename ?? null),
      column((s) => JSON.stringify(s.tags ?? [])),
      column((s) => JSON.stringify(s.metadata ?? {})),
      column((s) => (s.actor ?? SYSTEM_ACTOR).name),
      column((s) => (s.actor ?? SYSTEM_ACTOR).roles.join(',')),
      column((s) => s.perceptualHash ?? null),
      column((s) => s.newBlob?.segment ?? null),
      column((s) => s.newBlob?.offset ?? null),
      column((s) => s.newBlob?.length ?? null),
      column((s) => s.requireIndexedBlob === true),
    ]));
  } catch (error) {
    if ((error as { code?: string }).code === NO_DATASET) throw new SensoryError('SENSORY_ERR_DATASET_NOT_FOUND', `No dataset with id ${datasetId}.`);
    throw error;
  }
  if (rows.length !== samples.length) throw new Error(`sensory_add_samples answered ${rows.length} rows for ${samples.length} samples`);
  const added: (SampleRecord | undefined)[] = rows.map((row, i) => (row.kind === 'added' ? addedRecord(datasetId, samples[i], row, createdAt) : undefined));
  const outcomes = rows.map((row, i): AddOutcome => {
    switch (row.kind) {
      case 'added':
        return { kind: 'added', sample: added[i]! };
      case 'duplicate':
      case 'conflict': {
        // same_as is the 1-based position of the item of this group that added the bytes.
        const sample = row.existing ?? added[row.same_as! - 1];
        if (!sample) throw new Error(`sensory_add_samples named no sample for item ${i + 1} (${row.kind})`);
        return row.kind === 'duplicate' ? { kind: 'duplicate', sample } : { kind: 'conflict', existing: sample };
      }
      case 'undeclared':
        return { kind: 'undeclared', category: samples[i].category };
      case 'blob-missing':
        return { kind: 'blob-missing' };
      default:
        throw new Error(`sensory_add_samples answered an unknown outcome ${String(row.kind)}`);
    }
  });
  const revisions = rows.length > 0 ? { before: rows[0].before_rev, after: rows[0].after_rev } : { before: 0, after: 0 };
  return { outcomes, revisions };
}

function addedRecord(datasetId: number, item: NewSample, row: ItemRow, createdAt: string): SampleRecord {
  const { sha256, category, mediaType, bytes, pixelSlot, splitBucket } = item;
  return {
    id: row.id!,
    datasetId,
    sha256,
    category,
    categoryIndex: row.category_idx!,
    revision: row.revision!,
    createdAt,
    mediaType,
    bytes,
    pixelSlot,
    splitBucket,
    filename: item.filename ?? null,
    tags: [...(item.tags ?? [])],
    metadata: item.metadata ?? {},
  };
}

export interface LiveSampleLookup {
  readonly dataset?: DatasetRecord;
  readonly existing?: SampleRecord;
  readonly blobIndexed?: boolean;
}

/**
 * The lookup every upload makes before it is decoded (its dataset, a live sample with its bytes,
 * whether its blob is indexed), coalesced: the lookups asked while one is in flight go together
 * in the next, one statement per dataset name for any number of SHA-256s. Uploads arriving
 * together (the load that makes the server's CPU scarce) thus share one round trip. What it
 * answers is a hint taken without a lock, as before: the commit decides again under the lock.
 */
export class LiveSampleLookups {
  private readonly batcher: WriteBatcher<{ name: string; sha256: string }, LiveSampleLookup>;
  private readonly sql: string;

  constructor(private readonly db: pg.Pool, datasetColumns: string) {
    // The samples and blobs are read by sensory_find_live (postgres.migrations.ts), whose plans
    // are kept: this statement itself plans as cheaply as a lookup by name.
    this.sql = `SELECT ${datasetColumns}, f.live AS existing, f.indexed AS "indexedBlobs"
       FROM datasets CROSS JOIN LATERAL sensory_find_live(datasets.id, $2::text[]) f WHERE name = $1`;
    this.batcher = new WriteBatcher((items) => this.lookUp(items));
  }

  find(name: string, sha256: string): Promise<LiveSampleLookup> {
    return this.batcher.submit({ name, sha256 });
  }

  private async lookUp(items: readonly { name: string; sha256: string }[]): Promise<LiveSampleLookup[]> {
    const names = [...new Set(items.map((item) => item.name))];
    const answers = new Map(
      await Promise.all(
        names.map(async (name) => {
          const shas = [...new Set(items.filter((item) => item.name === name).map((item) => item.sha256))];
          return [name, await this.lookUpName(name, shas)] as const;
        }),
      ),
    );
    return items.map(({ name, sha256 }) => {
      const answer = answers.get(name)!;
      if (!answer.dataset) return {};
      return { dataset: answer.dataset, existing: answer.live.get(sha256), blobIndexed: answer.indexed.has(sha256) };
    });
  }

  private async lookUpName(name: string, shas: string[]): Promise<{ dataset?: DatasetRecord; live: Map<string, SampleRecord>; indexed: Set<string> }> {
    const { rows } = await this.db.query<DatasetRecord & { existing: SampleRecord[] | null; indexedBlobs: string[] }>(this.sql, [name, shas]);
    if (!rows[0]) return { live: new Map(), indexed: new Set() };
    const { existing, indexedBlobs, ...dataset } = rows[0];
    return { dataset, live: new Map((existing ?? []).map((sample) => [sample.sha256, sample])), indexed: new Set(indexedBlobs) };
  }
}
