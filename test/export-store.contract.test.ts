/**
 * The ExportStore contract: one suite, run against every backend (narrowed by
 * SENSORY_TEST_BACKENDS). Jobs get ids unique to this run; no ordering is asserted that the
 * interface does not promise. PostgreSQL: in a schema of its own, dropped after (CI=true: it must run).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresExportStore } from '../src/adapters/postgres/postgres.export-store.js';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { SqliteDatabase } from '../src/adapters/sqlite/sqlite.database.js';
import { SqliteExportStore } from '../src/adapters/sqlite/sqlite.export-store.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import type { ExportJob, ExportSpec } from '../src/domain/export-job.js';
import type { ExportStore } from '../src/ports/export-store.js';
import type { MetadataStore } from '../src/ports/metadata-store.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, selectBackends, uniqueSchema, useSchema } from './support/postgres.js';

const TMP = mkdtempSync(join(tmpdir(), 'sensory-exports-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const PG_SCHEMA = uniqueSchema('exports');
after(dropSchemas);

interface Backend {
  readonly name: string;
  readonly skip: false | string;
  readonly open: () => Promise<{ jobs: ExportStore; owner: MetadataStore }>;
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const database = new SqliteDatabase(join(TMP, 'exports.db'));
      const owner = new SqliteMetadataStore(database);
      await owner.migrate();
      return { owner, jobs: new SqliteExportStore(database) };
    },
  },
  {
    name: 'postgres',
    skip: await postgresSkip(),
    open: async () => {
      const owner = new PostgresMetadataStore(await useSchema(PG_SCHEMA));
      await owner.migrate();
      return { owner, jobs: new PostgresExportStore(owner.pool) };
    },
  },
];

const selected = selectBackends(BACKENDS);
if (selected.some((b) => b.name === 'postgres')) await requirePostgresInCi();

const RUN = randomBytes(4).toString('hex');
let seq = 0;

function job(overrides: Partial<ExportSpec> = {}, createdAt = `2026-01-01T00:00:${String(10 + (seq % 50)).padStart(2, '0')}.000Z`): ExportJob {
  const spec: ExportSpec = {
    id: `export-${RUN}-${++seq}`,
    datasetId: 3,
    datasetName: `pets-${RUN}`,
    format: 'webdataset',
    revision: 9,
    split: 'train',
    categoryIndexes: [0, 2],
    categories: [
      { name: 'cat', index: 0 },
      { name: 'dog', index: 1 },
      { name: 'bird', index: 2 },
    ],
    shardSize: 100,
    width: 4,
    height: 3,
    channels: 3,
    testPercent: 20,
    total: 250,
    ...overrides,
  };
  return { spec, status: 'queued', done: 0, files: [], error: null, runner: null, leaseUntil: 0, attempts: 0, createdAt, finishedAt: null };
}

const hold = (runner: string, now: number, leaseMs = 1000) => ({ runner, now, leaseMs });

for (const backend of selected) {
  describe(`ExportStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let jobs: ExportStore;
    let owner: MetadataStore;
    it('opens', async () => {
      ({ jobs, owner } = await backend.open());
    });
    after(async () => owner?.close());

    it('insert and get give the job back as it was', async () => {
      const j = job();
      await jobs.insert(j);
      assert.deepEqual(await jobs.get(j.spec.id), j);
      assert.equal(await jobs.get(`missing-${RUN}`), undefined);
    });

    it('claim by id: a queued job becomes running under the runner, once; attempts counted', async () => {
      const j = job();
      await jobs.insert(j);
      const taken = await jobs.claim(j.spec.id, hold('a', 1000));
      assert.equal(taken?.status, 'running');
      assert.equal(taken?.runner, 'a');
      assert.equal(taken?.leaseUntil, 2000);
      assert.equal(taken?.attempts, 1);
      assert.equal(await jobs.claim(j.spec.id, hold('b', 1500)), undefined, 'held until its lease runs out');
      const again = await jobs.claim(j.spec.id, hold('b', 2000));
      assert.equal(again?.runner, 'b', 'taken over once the lease ran out');
      assert.equal(again?.attempts, 2);
      assert.equal(await jobs.renew(j.spec.id, hold('a', 2100), 5), false, 'the old runner lost it');
      assert.equal(await jobs.claim(`missing-${RUN}`, hold('a', 0)), undefined);
    });

    it('countByStatus counts the jobs in each status as they move', async () => {
      const count = async () => Object.fromEntries(await jobs.countByStatus()) as Record<string, number>;
      const before = await count();
      const delta = async () => {
        const now = await count();
        return Object.fromEntries(['queued', 'running', 'complete', 'failed'].map((status) => [status, (now[status] ?? 0) - (before[status] ?? 0)]));
      };
      const [a, b, c] = [job(), job(), job()];
      for (const j of [a, b, c]) await jobs.insert(j);
      assert.deepEqual(await delta(), { queued: 3, running: 0, complete: 0, failed: 0 });
      await jobs.claim(a.spec.id, hold('r', 100));
      await jobs.claim(b.spec.id, hold('r', 100));
      await jobs.finish(b.spec.id, 'r', { status: 'failed', error: 'x', finishedAt: '2026-01-01T00:01:00.000Z' });
      assert.deepEqual(await delta(), { queued: 1, running: 1, complete: 0, failed: 1 });
      for (const j of [a, b, c]) await jobs.remove(j.spec.id);
      assert.deepEqual(await delta(), { queued: 0, running: 0, complete: 0, failed: 0 });
    });

    it('renew and addFile record progress and files under the runner only', async () => {
      const j = job();
      await jobs.insert(j);
      await jobs.claim(j.spec.id, hold('a', 0));
      assert.equal(await jobs.renew(j.spec.id, hold('a', 500), 40), true);
      assert.equal((await jobs.get(j.spec.id))?.leaseUntil, 1500);
      const file = { name: 'f-0.tar', bytes: 1234, samples: 100, lastId: 117 };
      assert.equal(await jobs.addFile(j.spec.id, hold('a', 600), file, 100), true);
      assert.equal(await jobs.addFile(j.spec.id, hold('b', 600), { ...file, name: 'f-1.tar' }, 200), false);
      const second = { name: 'f-1.tar', bytes: 99, samples: 100, lastId: 230 };
      assert.equal(await jobs.addFile(j.spec.id, hold('a', 700), second, 200), true);
      const got = await jobs.get(j.spec.id);
      assert.deepEqual(got?.files, [file, second]);
      assert.equal(got?.done, 200);
      assert.equal(got?.leaseUntil, 1700);
    });

    it('finish ends the job once, by its runner; release hands it back to be taken at once', async () => {
      const j = job();
      await jobs.insert(j);
      await jobs.claim(j.spec.id, hold('a', 0));
      assert.equal(await jobs.release(j.spec.id, 'b'), false);
      assert.equal(await jobs.release(j.spec.id, 'a'), true);
      assert.equal((await jobs.get(j.spec.id))?.status, 'queued');
      await jobs.claim(j.spec.id, hold('b', 10));
      assert.equal(await jobs.finish(j.spec.id, 'a', { status: 'complete', finishedAt: '2026-01-02T00:00:00.000Z' }), false);
      assert.equal(await jobs.finish(j.spec.id, 'b', { status: 'failed', error: 'disk gone', finishedAt: '2026-01-02T00:00:00.000Z' }), true);
      const ended = await jobs.get(j.spec.id);
      assert.equal(ended?.status, 'failed');
      assert.equal(ended?.error, 'disk gone');
      assert.equal(ended?.runner, null);
      assert.equal(ended?.finishedAt, '2026-01-02T00:00:00.000Z');
      assert.equal(await jobs.claim(j.spec.id, hold('c', 10_000_000)), undefined, 'an ended job is never taken again');
      assert.equal(await jobs.finish(j.spec.id, 'b', { status: 'complete', finishedAt: 'x' }), false);
    });

    it('claim without an id takes the oldest job that can be taken, each once, then none', async () => {
      // Far in the future so that jobs of other tests (created earlier, already ended or held) do not interfere.
      const now = 4_000_000_000_000;
      const early = job({}, '2001-01-01T00:00:00.000Z');
      const late = job({}, '2001-01-01T00:00:01.000Z');
      await jobs.insert(late);
      await jobs.insert(early);
      const taken: string[] = [];
      for (;;) {
        const next = await jobs.claim(undefined, hold('sweeper', now, 60_000));
        if (!next) break;
        taken.push(next.spec.id);
      }
      assert.ok(taken.indexOf(early.spec.id) >= 0 && taken.indexOf(early.spec.id) < taken.indexOf(late.spec.id), 'oldest first');
      assert.equal(await jobs.claim(undefined, hold('other', now + 1000)), undefined, 'all are held');
      const expired = await jobs.claim(undefined, hold('other', now + 60_000));
      assert.ok(expired, 'a job whose lease ran out is taken again');
    });

    it('concurrent claims of one job: exactly one runner gets it', async () => {
      const j = job();
      await jobs.insert(j);
      const results = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((runner) => jobs.claim(j.spec.id, hold(runner, 5))));
      assert.equal(results.filter(Boolean).length, 1);
    });

    it('list: newest first, by dataset; remove', async () => {
      const name = `listed-${RUN}`;
      const a = job({ datasetName: name }, '2026-03-01T00:00:00.000Z');
      const b = job({ datasetName: name }, '2026-03-02T00:00:00.000Z');
      await jobs.insert(a);
      await jobs.insert(b);
      assert.deepEqual((await jobs.list({ datasetName: name, limit: 10 })).map((x) => x.spec.id), [b.spec.id, a.spec.id]);
      assert.equal((await jobs.list({ datasetName: name, limit: 1 })).length, 1);
      assert.ok((await jobs.list({ limit: 1000 })).some((x) => x.spec.id === a.spec.id));
      assert.equal(await jobs.remove(a.spec.id), true);
      assert.equal(await jobs.remove(a.spec.id), false);
      assert.deepEqual((await jobs.list({ datasetName: name, limit: 10 })).map((x) => x.spec.id), [b.spec.id]);
    });
  });
}
