/**
 * PostgreSQL under several replicas: separate stores (separate pools, as separate processes would
 * have) on one schema, writing at the same moment; and the store's own refresh of the planner's
 * statistics as a dataset grows. SENSORY_TEST_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test), a schema of its own per run, dropped after. Under CI
 * (CI=true) it always runs, so a server that is down fails; elsewhere it is skipped with a message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { POSTGRES_MIGRATIONS } from '../src/adapters/postgres/postgres.migrations.js';
import { PostgresOrderStore } from '../src/adapters/postgres/postgres.order-store.js';
import type { AddOutcome, NewSample } from '../src/ports/metadata-store.js';
import { planOrder } from '../src/domain/order-streams.js';
import { claim, commit } from '../src/domain/stream-ledger.js';
import { deliveredCount, newStream } from '../src/domain/stream-state.js';
import type { OrderRow, OrderSpec } from '../src/ports/order-store.js';
import { dropSchemas, postgresQuery, postgresSkip, requirePostgresInCi, uniqueSchema, useSchema } from './support/postgres.js';

const RUN = randomBytes(6).toString('hex');

await requirePostgresInCi();
const skip = await postgresSkip();
after(dropSchemas);

const sha = (label: string | number) => createHash('sha256').update(`${RUN}:${label}`).digest('hex');
function sample(label: string | number, category: string): NewSample {
  return { sha256: sha(label), category, mediaType: 'image/png', bytes: 10, pixelSlot: 0, splitBucket: 50 };
}

describe('PostgreSQL: several replicas at once', { skip }, () => {
  let a: PostgresMetadataStore;
  let b: PostgresMetadataStore;

  before(async () => {
    const url = await useSchema(uniqueSchema('conc_rep'));
    a = new PostgresMetadataStore(url);
    b = new PostgresMetadataStore(url);
    await Promise.all([a.migrate(), b.migrate()]);
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
  });

  const replica = (i: number) => (i % 2 === 0 ? a : b);
  async function dataset(name: string) {
    return (await a.putDataset({ name: `${name}-${RUN}`, width: 4, height: 4, channels: 1, testPercent: 0 })).dataset;
  }

  it('migrations started by 3 instances at once run each exactly once', async () => {
    const schema = uniqueSchema('conc_mig');
    const url = await useSchema(schema);
    const stores = [0, 1, 2].map(() => new PostgresMetadataStore(url));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      await Promise.all(stores.map((store) => store.migrate()));
      const rows = await postgresQuery<{ version: number }>(`SELECT version FROM ${schema}.sensory_schema_migrations ORDER BY version`);
      assert.deepEqual(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      await stores[2].putDataset({ name: 'works', width: 1, height: 1, channels: 1, testPercent: 0 });
      assert.equal((await stores[0].listDatasets()).length, 1);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('20 adds through two replicas introducing the same new category at once give it one index', async () => {
    const ds = await dataset('newcat');
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => replica(i).addSamples(ds.id, [sample(`newcat-${i}`, 'fresh')])));
    const added = outcomes.map(([o]) => (o as Extract<AddOutcome, { kind: 'added' }>).sample);
    assert.ok(outcomes.every(([o]) => o.kind === 'added'));
    assert.deepEqual([...new Set(added.map((s) => s.categoryIndex))], [0]);
    assert.deepEqual(await b.listCategories(ds.id), [{ name: 'fresh', index: 0, count: 20, createdRevision: 1 }]);
    assert.deepEqual(added.map((s) => s.revision).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('200 adds of distinct samples through two replicas get revisions 1..200, no gap, no repeat', async () => {
    const ds = await dataset('revs');
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => replica(i).addSamples(ds.id, [sample(`rev-${i}`, `c${i % 3}`)])),
    );
    const revisions = outcomes.map(([o]) => (o as Extract<AddOutcome, { kind: 'added' }>).sample.revision).sort((x, y) => x - y);
    assert.deepEqual(revisions, Array.from({ length: 200 }, (_, i) => i + 1));
    const now = (await b.getDataset(ds.name))!;
    assert.equal(now.revision, 200);
    assert.equal(now.sampleCount, 200);
    // Indices follow first appearance, which the race decides: names, counts, and indices 0..2.
    const categories = await a.listCategories(ds.id);
    assert.deepEqual(categories.map((c) => c.index), [0, 1, 2]);
    assert.deepEqual(Object.fromEntries(categories.map((c) => [c.name, c.count])), { c0: 67, c1: 67, c2: 66 });
    const eligible = await b.eligibleSamples(ds.id, { revision: 200, split: 'all' });
    assert.equal(eligible.length, 200);
  });

  it('relabels, deletes and adds through two replicas at once: every change raises the revision once', async () => {
    const ds = await dataset('mixed');
    const seeded = (await a.addSamples(ds.id, Array.from({ length: 20 }, (_, i) => sample(`mixed-${i}`, 'x')))).map(
      (o) => (o as Extract<AddOutcome, { kind: 'added' }>).sample,
    );
    await Promise.all([
      ...seeded.slice(0, 10).map((s, i) => replica(i).relabelSample(ds.id, s.id, 'y')),
      ...seeded.slice(10).map((s, i) => replica(i + 1).deleteSample(ds.id, s.id)),
      ...Array.from({ length: 10 }, (_, i) => replica(i).addSamples(ds.id, [sample(`mixed-new-${i}`, 'z')])),
    ]);
    const now = (await a.getDataset(ds.name))!;
    assert.equal(now.revision, 50);
    assert.equal(now.sampleCount, 20);
    const categories = await b.listCategories(ds.id);
    // y and z appear in an order the race decides.
    assert.deepEqual(Object.fromEntries(categories.map((c) => [c.name, c.count])), { x: 0, y: 10, z: 10 });
    assert.deepEqual(categories.map((c) => c.index).sort(), [0, 1, 2]);
    assert.equal(categories.find((c) => c.name === 'x')!.index, 0);
  });

  it('the same bytes through two replicas at once become one sample: one added, one duplicate', async () => {
    const ds = await dataset('same');
    for (let round = 0; round < 10; round++) {
      const outcomes = await Promise.all([a.addSamples(ds.id, [sample(`same-${round}`, 'cat')]), b.addSamples(ds.id, [sample(`same-${round}`, 'cat')])]);
      const kinds = outcomes.map(([o]) => o.kind).sort();
      assert.deepEqual(kinds, ['added', 'duplicate'], `round ${round}`);
      const ids = outcomes.map(([o]) => (o as { sample: { id: number } }).sample.id);
      assert.equal(ids[0], ids[1], 'the duplicate names the added sample');
    }
    const conflict = await Promise.all([a.addSamples(ds.id, [sample('same-x', 'cat')]), b.addSamples(ds.id, [sample('same-x', 'dog')])]);
    assert.deepEqual(conflict.map(([o]) => o.kind).sort(), ['added', 'conflict']);
    const now = (await a.getDataset(ds.name))!;
    assert.equal(now.revision, 11);
    assert.equal(now.sampleCount, 11);
  });

  it('overlapping groups through two replicas at once: each set of bytes one sample, every copy naming it, revisions gapless', async () => {
    const ds = await dataset('overlap');
    // Each round: replica a commits bytes 0..9, replica b bytes 5..14 (and one of them twice), at once.
    for (let round = 0; round < 5; round++) {
      const label = (i: number) => `overlap-${round}-${i}`;
      const groupA = Array.from({ length: 10 }, (_, i) => sample(label(i), 'cat'));
      const groupB = [...Array.from({ length: 10 }, (_, i) => sample(label(i + 5), 'cat')), sample(label(7), 'cat')];
      const [outA, outB] = await Promise.all([a.addSamples(ds.id, groupA), b.addSamples(ds.id, groupB)]);
      const idBySha = new Map<string, number>();
      for (const [item, outcome] of [...groupA.map((s, i) => [s, outA[i]] as const), ...groupB.map((s, i) => [s, outB[i]] as const)]) {
        assert.ok(outcome.kind === 'added' || outcome.kind === 'duplicate', `round ${round}: ${outcome.kind}`);
        const id = outcome.sample.id;
        assert.equal(idBySha.get(item.sha256) ?? id, id, `round ${round}: one sample per set of bytes`);
        idBySha.set(item.sha256, id);
      }
      assert.equal(idBySha.size, 15);
      assert.equal([...outA, ...outB].filter((o) => o.kind === 'added').length, 15, `round ${round}: each set of bytes added once`);
    }
    const now = (await b.getDataset(ds.name))!;
    assert.deepEqual([now.revision, now.sampleCount], [75, 75]);
    const eligible = await a.eligibleSamples(ds.id, { revision: 75, split: 'all' });
    assert.equal(eligible.length, 75);
  });

  it('the same dataset created through two replicas at once is created once', async () => {
    const spec = { name: `twice-${RUN}`, width: 2, height: 2, channels: 3 as const, testPercent: 5 };
    const results = await Promise.all([a.putDataset(spec), b.putDataset(spec), a.putDataset(spec), b.putDataset(spec)]);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.dataset.id)).size, 1);
  });

  it('order ledger: the same message claimed through two replicas goes to one poll; commits count each position once', async () => {
    const ordersA = new PostgresOrderStore(a.pool);
    const ordersB = new PostgresOrderStore(b.pool);
    const size = 2000;
    const spec: OrderSpec = {
      id: `order-${RUN}`, datasetId: 1, datasetName: 'x', size, shardSize: 500, chunkSamples: 50, seed: 1, noise: 0,
      split: 'all', categoryIndexes: null, revision: 1, dtype: 'uint8', labels: 'index', eligibleCount: 10,
      width: 1, height: 1, channels: 1, categories: [], createdAt: new Date().toISOString(),
    };
    const order: OrderRow = { spec, owner: 'o', key: null, request: null, plan: planOrder(size, 1, 'exact'), status: 'queued', ttlSeconds: 60, expiresAt: '2030-01-01T00:00:00.000Z' };
    assert.equal(await ordersA.insert(order, [newStream(0, 0, size)]), 'inserted');
    const key = { orderId: spec.id, generation: 0, stream: 0 };
    const now = Date.now();
    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? ordersB : ordersA).updateStream(key, (state) => {
          const { state: next, outcome } = claim(state, `poll-${i}`, { from: 0, to: 3 }, 100, now + 60_000, now);
          return { state: next, result: outcome };
        }),
      ),
    );
    assert.equal(claims.filter((c) => c!.kind === 'claimed').length, 1);
    assert.equal(claims.filter((c) => c!.kind === 'busy').length, 9);
    const winner = `poll-${claims.findIndex((c) => c!.kind === 'claimed')}`;
    const added = await ordersB.updateStream(key, (state) => {
      const committed = commit(state, winner, [{ from: 0, to: 3 }]);
      return { state: committed.state, result: committed.added };
    });
    assert.equal(added, 3);

    // Overlapping polls (claim and commit in one change) and producers from both replicas: each position counts once.
    const pieces = Array.from({ length: 40 }, (_, i) => ({ from: i * 50, to: Math.min(size, i * 50 + 75) })); // each overlaps the next by 25
    await Promise.all([
      ...pieces.map((piece, i) =>
        (i % 2 ? ordersB : ordersA).updateStream(key, (state) => {
          const claimed = claim(state, `piece-${i}`, piece, 1000, now + 60_000, now);
          const committed = commit(claimed.state, `piece-${i}`, claimed.outcome.kind === 'claimed' ? claimed.outcome.ranges : []);
          return { state: committed.state, result: committed.added };
        }),
      ),
      ...pieces.map((piece, i) =>
        (i % 2 ? ordersA : ordersB).updateStream(key, (state) => ({ state: { ...state, produced: Math.max(state.produced, piece.to) }, result: undefined })),
      ),
    ]);
    const stream = (await ordersB.stream(key))!;
    assert.equal(deliveredCount(stream), size);
    assert.deepEqual([stream.leases, stream.returned], [[], []]);
    assert.equal(stream.produced, size);
  });
});

describe('PostgreSQL: planner statistics follow a growing dataset', { skip }, () => {
  it('ANALYZE runs when a revision passes 1024, 2048, 4096, … and not in between, so no plan outlives a bulk load', async () => {
    const schema = uniqueSchema('stats');
    const store = new PostgresMetadataStore(await useSchema(schema));
    try {
      await store.migrate();
      const ds = (await store.putDataset({ name: 'growing', width: 1, height: 1, channels: 1, testPercent: 0 })).dataset;
      // analyze_count counts explicit ANALYZE runs only; the autovacuum daemon's are counted apart.
      const analyzed = async () => {
        const [row] = await postgresQuery<{ n: number }>(
          `SELECT analyze_count::int AS n FROM pg_stat_all_tables WHERE schemaname = '${schema}' AND relname = 'samples'`,
        );
        return row.n;
      };
      let next = 0;
      const addUpTo = async (revision: number) => {
        const items = Array.from({ length: revision - next }, (_, i) => sample(`stats-${next + i}`, 'c'));
        next = revision;
        await store.addSamples(ds.id, items);
      };
      await addUpTo(1000);
      assert.equal(await analyzed(), 0);
      await addUpTo(1030);
      assert.equal(await analyzed(), 1);
      await addUpTo(2000);
      assert.equal(await analyzed(), 1);
      await addUpTo(5000); // past 2048 and 4096 in one call: one run
      assert.equal(await analyzed(), 2);
    } finally {
      await store.close();
    }
  });
});
