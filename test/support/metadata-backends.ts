/**
 * What the MetadataStore contract suites share: the backends they run on, cleaned up after the
 * test file, and samples unique to the run (the PostgreSQL schema is shared within a file).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { PostgresMetadataStore } from '../../src/adapters/postgres/postgres.metadata-store.js';
import { SqliteMetadataStore } from '../../src/adapters/sqlite/sqlite.metadata-store.js';
import type { AddOutcome, MetadataStore, NewSample, SampleRecord } from '../../src/ports/metadata-store.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, selectBackends, uniqueSchema, useSchema } from './postgres.js';

export interface MetadataBackend {
  readonly name: string;
  /** A store on the backend's one database: calling it again reopens the same data. */
  readonly create: () => Promise<MetadataStore>;
  /** A reason to skip the backend (its server is unreachable outside CI), or false. */
  readonly skip: false | string;
}

/**
 * SQLite in a temporary dir and PostgreSQL in a schema of its own for this run (both removed
 * after the file), narrowed by SENSORY_TEST_BACKENDS; under CI=true PostgreSQL must answer (see
 * postgres.ts).
 */
export async function metadataBackends(label: string): Promise<MetadataBackend[]> {
  const dir = mkdtempSync(join(tmpdir(), `sensory-${label}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const schema = uniqueSchema(label);
  after(dropSchemas);
  const selected = selectBackends<MetadataBackend>([
    { name: 'sqlite', skip: false, create: async () => new SqliteMetadataStore(join(dir, 'x.db')) },
    { name: 'postgres', skip: await postgresSkip(), create: async () => new PostgresMetadataStore(await useSchema(schema)) },
  ]);
  if (selected.some((backend) => backend.name === 'postgres')) await requirePostgresInCi();
  return selected;
}

/**
 * A suite's store on `backend`: opened and migrated before the suite's tests (then handed to
 * `use`), closed after them.
 */
export function storeForSuite(backend: MetadataBackend, use: (store: MetadataStore) => void): void {
  let store: MetadataStore | undefined;
  before(async () => {
    store = await backend.create();
    await store.migrate();
    use(store);
  });
  after(async () => {
    await store?.close();
  });
}

/** Names, SHA-256s and samples unique to this run, so that suites sharing a database never collide. */
export function runSamples() {
  const run = randomBytes(4).toString('hex');
  let seq = 0;
  const sha = (label: string | number) => createHash('sha256').update(`${run}:${label}`).digest('hex');
  return {
    uniqueName: (prefix: string) => `${prefix}-${run}-${++seq}`,
    sha,
    sample: (label: string | number, category: string, extra: Partial<NewSample> = {}): NewSample => ({
      sha256: sha(label),
      category,
      mediaType: 'image/png',
      bytes: 123,
      pixelSlot: 0,
      splitBucket: 50,
      ...extra,
    }),
  };
}

/** The sample an addSamples outcome added (fails on a duplicate or a conflict). */
export function added(outcome: AddOutcome): SampleRecord {
  assert.equal(outcome.kind, 'added', JSON.stringify(outcome));
  return (outcome as Extract<AddOutcome, { kind: 'added' }>).sample;
}
