/**
 * The OrderStore contract: one suite, run against every backend in BACKENDS (narrowed by
 * SENSORY_TEST_BACKENDS, e.g. "sqlite" or "sqlite,postgres"). It uses only the interface, gives
 * every order an id unique to this run, and asserts no ordering the interface does not promise.
 *
 * PostgreSQL: SENSORY_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), in a
 * schema of its own for this run, dropped after. Under CI (CI=true) it always runs, so a server
 * that is down fails the suite; elsewhere it is skipped with a message when unreachable.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { PostgresOrderStore } from '../src/adapters/postgres/postgres.order-store.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { SqliteOrderStore } from '../src/adapters/sqlite/sqlite.order-store.js';
import type { MetadataStore } from '../src/ports/metadata-store.js';
import type { OrderRecord, OrderSpec, OrderStore } from '../src/ports/order-store.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, selectBackends, uniqueSchema, useSchema } from './support/postgres.js';

const TMP = mkdtempSync(join(tmpdir(), 'sensory-orders-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const PG_SCHEMA = uniqueSchema('orders');
after(dropSchemas);

interface Opened {
  readonly orders: OrderStore;
  /** The metadata store owning the connection (closing it closes the order store). */
  readonly owner: MetadataStore;
}

interface Backend {
  readonly name: string;
  readonly skip: false | string;
  /** An order store on the backend's one database (migrated). */
  readonly open: () => Promise<Opened>;
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const owner = new SqliteMetadataStore(join(TMP, 'orders.db'));
      await owner.migrate();
      return { owner, orders: new SqliteOrderStore(owner.db) };
    },
  },
  {
    name: 'postgres',
    skip: await postgresSkip(),
    open: async () => {
      const owner = new PostgresMetadataStore(await useSchema(PG_SCHEMA));
      await owner.migrate();
      return { owner, orders: new PostgresOrderStore(owner.pool) };
    },
  },
];

const selected = selectBackends(BACKENDS);
if (selected.some((b) => b.name === 'postgres')) await requirePostgresInCi();

const RUN = randomBytes(4).toString('hex');
let seq = 0;
const uniqueId = (prefix = 'order') => `${prefix}-${RUN}-${++seq}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const EXPIRES = '2030-01-01T00:00:00.000Z';

function spec(overrides: Partial<OrderSpec> = {}): OrderSpec {
  return {
    id: uniqueId(),
    datasetId: 7,
    datasetName: 'digits',
    size: 10,
    shardSize: 5,
    chunkSamples: 2,
    seed: 42,
    noise: 0.25,
    split: 'train',
    categoryIndexes: [0, 2],
    revision: 12,
    dtype: 'float32',
    labels: 'onehot',
    eligibleCount: 8,
    width: 4,
    height: 3,
    channels: 3,
    categories: [
      { name: 'zero', index: 0 },
      { name: 'one', index: 1 },
      { name: 'two', index: 2 },
    ],
    ttlSeconds: 1800,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

for (const backend of selected) {
  describe(`OrderStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let store: OrderStore;
    let owner: MetadataStore;

    before(async () => {
      ({ orders: store, owner } = await backend.open());
    });
    after(async () => {
      await owner.close();
    });

    async function order(overrides: Partial<OrderSpec> = {}, shards = 2): Promise<OrderRecord> {
      return store.createOrder(spec(overrides), shards, EXPIRES);
    }
    async function get(id: string): Promise<OrderRecord> {
      const record = await store.getOrder(id);
      assert.ok(record, `order ${id} exists`);
      return record;
    }

    it('createOrder keeps the whole spec and starts queued with zero counters; getOrder reads it back', async () => {
      const input = spec({ categoryIndexes: null, dtype: 'uint8', labels: 'index', channels: 1, size: 123_456, shardSize: 5000 });
      const created = await store.createOrder(input, 25, EXPIRES);
      assert.deepEqual(created, {
        ...input,
        status: 'queued',
        shardsTotal: 25,
        shardsDone: 0,
        produced: 0,
        delivered: 0,
        expiresAt: EXPIRES,
      });
      assert.ok(!('error' in created), 'no error field on a healthy order');
      assert.deepEqual(await store.getOrder(input.id), created);
      assert.equal(await store.getOrder(uniqueId('missing')), undefined);
      await assert.rejects(store.createOrder(input, 25, EXPIRES), 'an id is unique');
    });

    it('listOrders: newest first, activeOnly leaves out finished orders, limit', async () => {
      // Far in the future, so that these are the newest orders of the database.
      const at = (minute: number) => `2999-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
      const base = 10 + (seq % 40);
      const oldest = await order({ createdAt: at(base) });
      const middle = await order({ createdAt: at(base + 2) });
      const newest = await order({ createdAt: at(base + 3) });
      const finished = await order({ createdAt: at(base + 1) });
      assert.equal(await store.finish(finished.id, 'cancelled'), true);

      const all = (await store.listOrders({ activeOnly: false, limit: 4 })).map((o) => o.id);
      assert.deepEqual(all, [newest.id, middle.id, finished.id, oldest.id]);
      const active = (await store.listOrders({ activeOnly: true, limit: 3 })).map((o) => o.id);
      assert.deepEqual(active, [newest.id, middle.id, oldest.id]);
      assert.deepEqual((await store.listOrders({ activeOnly: false, limit: 2 })).map((o) => o.id), [newest.id, middle.id]);
      const long = await store.listOrders({ activeOnly: true, limit: 1000 });
      assert.ok(long.every((o) => o.status === 'queued' || o.status === 'running'));
      assert.ok(!long.some((o) => o.id === finished.id));
      assert.deepEqual(long.find((o) => o.id === middle.id), await get(middle.id), 'listed records are whole');
    });

    it('recordProduced moves queued to running and counts only slots not produced before', async () => {
      const o = await order();
      await store.recordProduced(o.id, [0, 1, 2]);
      let now = await get(o.id);
      assert.equal(now.status, 'running');
      assert.equal(now.produced, 3);

      await store.recordProduced(o.id, [2, 3, 3, 1, 4]); // 2 and 1 again; 3 twice in one call
      now = await get(o.id);
      assert.equal(now.produced, 5);
      assert.equal(now.status, 'running');

      await store.recordProduced(o.id, [0, 1, 2, 3, 4]);
      assert.equal((await get(o.id)).produced, 5, 'a repeated shard counts nothing');
      assert.equal((await get(o.id)).delivered, 0);
    });

    it('recordProduced leaves a final status as it is', async () => {
      const o = await order();
      await store.finish(o.id, 'cancelled');
      await store.recordProduced(o.id, [0, 1]);
      const now = await get(o.id);
      assert.equal(now.status, 'cancelled');
      assert.equal(now.produced, 2);
    });

    it('markShardDone counts each shard once; pendingShards lists those not done', async () => {
      const o = await order({}, 4);
      assert.deepEqual(await store.pendingShards(o.id), [0, 1, 2, 3]);
      await store.markShardDone(o.id, 2);
      await store.markShardDone(o.id, 2);
      await store.markShardDone(o.id, 0);
      assert.equal((await get(o.id)).shardsDone, 2);
      assert.deepEqual(await store.pendingShards(o.id), [1, 3]);
      await Promise.all([store.markShardDone(o.id, 1), store.markShardDone(o.id, 1), store.markShardDone(o.id, 3)]);
      assert.equal((await get(o.id)).shardsDone, 4);
      assert.deepEqual(await store.pendingShards(o.id), []);
      assert.deepEqual(await store.pendingShards(uniqueId('missing')), []);
    });

    it('undelivered keeps the slots not yet committed, in the order given', async () => {
      const o = await order();
      assert.deepEqual(await store.undelivered(o.id, [5, 1, 3]), [5, 1, 3]);
      await store.commitDelivery(o.id, 'poll-a', [1, 4], EXPIRES);
      assert.deepEqual(await store.undelivered(o.id, [5, 1, 3, 4, 0]), [5, 3, 0]);
      assert.deepEqual(await store.undelivered(o.id, []), []);
    });

    it('claim: claimed with the open slots, delivered when all are delivered', async () => {
      const o = await order();
      const now = 1_000_000;
      await store.commitDelivery(o.id, 'earlier', [0, 1, 3], EXPIRES);
      const outcomes = await store.claim(o.id, 'poll-a', [[0, 1], [2, 3, 4], [3], [5, 6]], now + 5000, now);
      assert.deepEqual(outcomes, [
        { kind: 'delivered' },
        { kind: 'claimed', slots: [2, 4] },
        { kind: 'delivered' },
        { kind: 'claimed', slots: [5, 6] },
      ]);
    });

    it('claim: busy while another poll holds a live lease on an overlapping range; the holder itself is not blocked', async () => {
      const o = await order({ size: 20 });
      const now = 2_000_000;
      assert.deepEqual(await store.claim(o.id, 'poll-a', [[4, 5, 6]], now + 5000, now), [{ kind: 'claimed', slots: [4, 5, 6] }]);

      const b = await store.claim(o.id, 'poll-b', [[6, 7], [2, 3], [0, 9], [5], [7, 8]], now + 5000, now + 1);
      // [0, 9] spans 0..9, which covers a's range 4..6 even though 4, 5 and 6 are not among its slots.
      assert.deepEqual(b, [{ kind: 'busy' }, { kind: 'claimed', slots: [2, 3] }, { kind: 'busy' }, { kind: 'busy' }, { kind: 'claimed', slots: [7, 8] }]);

      // b now holds 2..3 and 7..8: a is blocked there, but not on its own range.
      const a = await store.claim(o.id, 'poll-a', [[4, 5, 6], [3], [8, 9]], now + 5000, now + 2);
      assert.deepEqual(a, [{ kind: 'claimed', slots: [4, 5, 6] }, { kind: 'busy' }, { kind: 'busy' }]);
      // Adjacent ranges do not overlap.
      assert.deepEqual(await store.claim(o.id, 'poll-c', [[1], [9]], now + 5000, now + 3), [
        { kind: 'claimed', slots: [1] },
        { kind: 'claimed', slots: [9] },
      ]);
    });

    it('claim: an expired lease no longer blocks', async () => {
      const o = await order();
      const now = 3_000_000;
      await store.claim(o.id, 'poll-a', [[0, 1, 2]], now + 1000, now);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[1]], now + 5000, now + 999), [{ kind: 'busy' }]);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[1]], now + 5000, now + 1000), [{ kind: 'claimed', slots: [1] }]);
      // b's lease is live now, and a's expired one is gone: a is the one blocked.
      assert.deepEqual(await store.claim(o.id, 'poll-a', [[0, 1, 2]], now + 9000, now + 1001), [{ kind: 'busy' }]);
      assert.deepEqual(await store.claim(o.id, 'poll-a', [[0]], now + 9000, now + 1001), [{ kind: 'claimed', slots: [0] }]);
    });

    it('commitDelivery counts only new slots, drops the poll’s claims, completes exactly at size and extends expiresAt', async () => {
      const o = await order({ size: 6 });
      const now = 4_000_000;
      await store.recordProduced(o.id, range(0, 6));
      await store.claim(o.id, 'poll-a', [[0, 1, 2], [3, 4]], now + 60_000, now);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[4]], now + 60_000, now), [{ kind: 'busy' }]);

      await store.commitDelivery(o.id, 'poll-a', [0, 1, 2, 2, 3], '2031-01-01T00:00:00.000Z');
      let record = await get(o.id);
      assert.equal(record.delivered, 4);
      assert.equal(record.status, 'running');
      assert.equal(record.expiresAt, '2031-01-01T00:00:00.000Z');
      // a's claim on 3..4 went with the commit, though 4 was not delivered.
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[3, 4]], now + 60_000, now), [{ kind: 'claimed', slots: [4] }]);

      await store.commitDelivery(o.id, 'poll-b', [1, 2, 3], '2031-01-02T00:00:00.000Z');
      record = await get(o.id);
      assert.equal(record.delivered, 4, 'delivered slots count once');
      assert.equal(record.status, 'running');
      assert.equal(record.expiresAt, '2031-01-02T00:00:00.000Z');

      await store.commitDelivery(o.id, 'poll-b', [4], EXPIRES);
      record = await get(o.id);
      assert.equal(record.delivered, 5);
      assert.equal(record.status, 'running', 'one short of size is not complete');

      await store.commitDelivery(o.id, 'poll-c', [5, 4], '2031-02-01T00:00:00.000Z');
      record = await get(o.id);
      assert.equal(record.delivered, 6);
      assert.equal(record.status, 'complete');
      assert.equal(record.expiresAt, '2031-02-01T00:00:00.000Z');
      assert.deepEqual(await store.claim(o.id, 'poll-d', [[0, 5], [3]], now + 60_000, now), [{ kind: 'delivered' }, { kind: 'delivered' }]);

      await store.commitDelivery(o.id, 'poll-c', [5], EXPIRES);
      assert.equal((await get(o.id)).delivered, 6);
      assert.equal((await get(o.id)).status, 'complete');
    });

    it('commitDelivery completes a queued order too, and never revives a finished one', async () => {
      const queued = await order({ size: 2 });
      await store.commitDelivery(queued.id, 'poll-a', [0, 1], EXPIRES);
      assert.equal((await get(queued.id)).status, 'complete');

      const cancelled = await order({ size: 2 });
      await store.finish(cancelled.id, 'cancelled');
      await store.commitDelivery(cancelled.id, 'poll-a', [0, 1], EXPIRES);
      const record = await get(cancelled.id);
      assert.equal(record.status, 'cancelled');
      assert.equal(record.delivered, 2);
    });

    it('releaseClaims drops only that poll’s leases', async () => {
      const o = await order();
      const now = 5_000_000;
      await store.claim(o.id, 'poll-a', [[0, 1]], now + 60_000, now);
      await store.claim(o.id, 'poll-c', [[5, 6]], now + 60_000, now);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[1], [6]], now + 60_000, now), [{ kind: 'busy' }, { kind: 'busy' }]);
      await store.releaseClaims(o.id, 'poll-a');
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[1], [6]], now + 60_000, now), [{ kind: 'claimed', slots: [1] }, { kind: 'busy' }]);
      assert.equal((await get(o.id)).delivered, 0, 'releasing delivers nothing');
      await store.releaseClaims(o.id, 'poll-nobody');
    });

    it('finish moves only an active order to a final status; complete is never overwritten', async () => {
      const queued = await order();
      assert.equal(await store.finish(queued.id, 'failed', 'a shard could not be built'), true);
      let record = await get(queued.id);
      assert.equal(record.status, 'failed');
      assert.equal(record.error, 'a shard could not be built');
      assert.equal(await store.finish(queued.id, 'cancelled'), false);
      assert.equal((await get(queued.id)).status, 'failed');

      const running = await order();
      await store.recordProduced(running.id, [0]);
      assert.equal(await store.finish(running.id, 'expired', 'not polled for 1800 s'), true);
      assert.equal((await get(running.id)).status, 'expired');

      const cancelled = await order();
      assert.equal(await store.finish(cancelled.id, 'cancelled'), true);
      record = await get(cancelled.id);
      assert.equal(record.status, 'cancelled');
      assert.ok(!('error' in record), 'no error given, no error field');

      const complete = await order({ size: 1 });
      await store.commitDelivery(complete.id, 'poll-a', [0], EXPIRES);
      for (const status of ['cancelled', 'failed', 'expired'] as const) {
        assert.equal(await store.finish(complete.id, status, 'too late'), false);
      }
      record = await get(complete.id);
      assert.equal(record.status, 'complete');
      assert.ok(!('error' in record));

      assert.equal(await store.finish(uniqueId('missing'), 'cancelled'), false);
    });

    it('slots beyond 65,536 (later bitmap blocks) are produced, claimed and delivered like the first ones', async () => {
      const size = 300_000;
      const o = await order({ size, shardSize: 100_000 }, 3);
      const edges = [0, 65_535, 65_536, 65_537, 131_071, 131_072, 299_999];
      await store.recordProduced(o.id, edges);
      await store.recordProduced(o.id, [65_536, 299_999, 200_000]);
      assert.equal((await get(o.id)).produced, edges.length + 1);

      const now = 6_000_000;
      const claims = await store.claim(o.id, 'poll-a', [[65_535, 65_536], [131_072, 299_999]], now + 60_000, now);
      assert.deepEqual(claims, [{ kind: 'claimed', slots: [65_535, 65_536] }, { kind: 'claimed', slots: [131_072, 299_999] }]);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[200_000]], now + 60_000, now), [{ kind: 'busy' }], 'inside 131,072..299,999');
      await store.commitDelivery(o.id, 'poll-a', [65_535, 65_536, 131_072, 299_999], EXPIRES);
      assert.equal((await get(o.id)).delivered, 4);
      assert.deepEqual(await store.undelivered(o.id, edges), [0, 65_537, 131_071]);
      assert.deepEqual(await store.claim(o.id, 'poll-b', [[65_536], [200_000, 299_999]], now + 60_000, now), [
        { kind: 'delivered' },
        { kind: 'claimed', slots: [200_000] },
      ]);

      // Deliver everything, one big block-spanning commit.
      await store.commitDelivery(o.id, 'poll-b', range(0, size), EXPIRES);
      const done = await get(o.id);
      assert.equal(done.delivered, size);
      assert.equal(done.status, 'complete');
      assert.deepEqual(await store.undelivered(o.id, [0, 65_536, 299_999]), []);
    });

    it('a second store on the same database sees the same orders and ledger', async () => {
      const o = await order();
      await store.commitDelivery(o.id, 'poll-a', [3], EXPIRES);
      const second = await backend.open();
      try {
        assert.deepEqual(await second.orders.getOrder(o.id), await get(o.id));
        assert.deepEqual(await second.orders.undelivered(o.id, [2, 3, 4]), [2, 4]);
        const now = 7_000_000;
        await store.claim(o.id, 'poll-a', [[4, 5]], now + 60_000, now);
        assert.deepEqual(await second.orders.claim(o.id, 'poll-b', [[5]], now + 60_000, now), [{ kind: 'busy' }]);
      } finally {
        await second.owner.close();
      }
    });
  });
}
