/**
 * The OrderStore contract: one suite, run against every backend in BACKENDS (narrowed by
 * SENSORY_TEST_BACKENDS, e.g. "sqlite" or "sqlite,postgres"). It uses only the interface, gives
 * every order an id unique to this run, and asserts no ordering the interface does not promise.
 * The store reads and writes rows; what a change does is the domain's (tested in test/domain).
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
import pg from 'pg';
import Database from 'better-sqlite3';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { POSTGRES_MIGRATIONS } from '../src/adapters/postgres/postgres.migrations.js';
import { PostgresOrderStore } from '../src/adapters/postgres/postgres.order-store.js';
import { SqliteDatabase } from '../src/adapters/sqlite/sqlite.database.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { SQLITE_MIGRATIONS } from '../src/adapters/sqlite/sqlite.migrations.js';
import { SqliteOrderStore } from '../src/adapters/sqlite/sqlite.order-store.js';
import { SensoryError } from '../src/domain/errors.js';
import { planOrder, reshapePlan } from '../src/domain/order-streams.js';
import { deliveredCount, newStream, type StreamState } from '../src/domain/stream-state.js';
import type { MetadataStore } from '../src/ports/metadata-store.js';
import type { OrderRow, OrderSpec, OrderStore, StoredOrder } from '../src/ports/order-store.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, selectBackends, uniqueSchema, useSchema } from './support/postgres.js';

const TMP = mkdtempSync(join(tmpdir(), 'sensory-orders-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const PG_SCHEMA = uniqueSchema('orders');
after(dropSchemas);

interface Opened {
  readonly orders: OrderStore;
  /** The metadata store on the same database (closing it closes the order store's database too). */
  readonly owner: MetadataStore;
}

interface Backend {
  readonly name: string;
  readonly skip: false | string;
  /** An order store on the backend's one database (migrated). */
  readonly open: () => Promise<Opened>;
  /** A database at the schema before orders had streams, with `setup` run on it, then migrated. */
  readonly openOld: (setup: (sql: (text: string) => Promise<void>) => Promise<void>) => Promise<Opened>;
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const database = new SqliteDatabase(join(TMP, 'orders.db'));
      const owner = new SqliteMetadataStore(database);
      await owner.migrate();
      return { owner, orders: new SqliteOrderStore(database) };
    },
    openOld: async (setup) => {
      const file = join(TMP, `old-${randomBytes(4).toString('hex')}.db`);
      const old = new Database(file);
      for (const migration of SQLITE_MIGRATIONS.slice(0, 2)) old.exec(migration);
      old.pragma('user_version = 2');
      await setup(async (text) => void old.exec(text));
      old.close();
      const database = new SqliteDatabase(file);
      const owner = new SqliteMetadataStore(database);
      await owner.migrate();
      return { owner, orders: new SqliteOrderStore(database) };
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
    openOld: async (setup) => {
      const url = await useSchema(uniqueSchema('oldorders'));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('CREATE TABLE sensory_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
        for (const [i, migration] of POSTGRES_MIGRATIONS.slice(0, 2).entries()) {
          await client.query(migration);
          await client.query('INSERT INTO sensory_schema_migrations (version) VALUES ($1)', [i + 1]);
        }
        await setup(async (text) => void (await client.query(text)));
      } finally {
        await client.end();
      }
      const owner = new PostgresMetadataStore(url);
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
const EXPIRES = '2030-01-01T00:00:00.000Z';

function spec(overrides: Partial<OrderSpec> = {}): OrderSpec {
  return {
    id: uniqueId(),
    datasetId: 7,
    datasetName: 'digits',
    size: 12,
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
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** An order row of `ranks` streams and those streams, as a placement makes them. */
function placed(overrides: Partial<OrderSpec> = {}, row: Partial<OrderRow> = {}, ranks = 2): { order: OrderRow; streams: StreamState[] } {
  const s = spec(overrides);
  const plan = planOrder(s.size, ranks, 'exact');
  const order: OrderRow = { spec: s, owner: 'owner-a', key: null, request: null, plan, status: 'queued', ttlSeconds: 1800, expiresAt: EXPIRES, ...row };
  return { order, streams: Array.from({ length: ranks }, (_, q) => newStream(0, q, s.size / ranks)) };
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

    async function insert(overrides: Partial<OrderSpec> = {}, row: Partial<OrderRow> = {}, ranks = 2): Promise<StoredOrder> {
      const { order, streams } = placed(overrides, row, ranks);
      assert.equal(await store.insert(order, streams, { durable: true }), 'inserted');
      return { order, streams };
    }
    async function get(id: string): Promise<StoredOrder> {
      const stored = await store.get(id);
      assert.ok(stored, `order ${id} exists`);
      return stored;
    }

    it('insert keeps the whole row and its streams; get reads them back; an id is unique', async () => {
      const { order, streams } = placed({ categoryIndexes: null, dtype: 'uint8', labels: 'index', channels: 1, size: 123_456, shardSize: 5000 }, { key: 'run-1', request: '{"size":123456}' }, 4);
      assert.equal(await store.insert(order, streams), 'inserted');
      const read = await get(order.spec.id);
      assert.deepEqual(read, { order, streams });
      assert.ok(!('error' in read.order), 'no error field on a healthy order');
      assert.equal(await store.get(uniqueId('missing')), undefined);
      await assert.rejects(store.insert({ ...order, key: null }, streams), 'an id is unique');
    });

    it('a key is unique per owner: the same key again is key-taken and stores nothing; another owner may use it', async () => {
      const key = `key-${RUN}-${seq}`;
      const first = await insert({}, { key, owner: 'owner-k' });
      const again = placed({}, { key, owner: 'owner-k' });
      assert.equal(await store.insert(again.order, again.streams), 'key-taken');
      assert.equal(await store.get(again.order.spec.id), undefined, 'nothing of it was stored');
      assert.deepEqual(await store.findByKey('owner-k', key), first);
      assert.equal(await store.findByKey('owner-other', key), undefined);
      await insert({}, { key, owner: 'owner-other' });
      // Two placements with one key at the same moment: one is stored.
      const racing = [placed({}, { key: `${key}-race`, owner: 'owner-k' }), placed({}, { key: `${key}-race`, owner: 'owner-k' })];
      const outcomes = await Promise.all(racing.map(({ order, streams }) => store.insert(order, streams)));
      assert.deepEqual([...outcomes].sort(), ['inserted', 'key-taken']);
    });

    it('list: newest first, by owner or all, activeOnly leaves out finished orders, limit; listed orders are whole', async () => {
      // Far in the future, so that these are the newest orders of the database.
      const at = (minute: number) => `2999-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
      const base = 10 + (seq % 40);
      const oldest = await insert({ createdAt: at(base) });
      const middle = await insert({ createdAt: at(base + 2) }, {}, 3);
      const newest = await insert({ createdAt: at(base + 3) }, { owner: 'owner-b' });
      const finished = await insert({ createdAt: at(base + 1) }, { status: 'cancelled' });

      const all = (await store.list({ activeOnly: false, limit: 4 })).map((o) => o.order.spec.id);
      assert.deepEqual(all, [newest, middle, finished, oldest].map((o) => o.order.spec.id));
      const active = (await store.list({ activeOnly: true, limit: 3 })).map((o) => o.order.spec.id);
      assert.deepEqual(active, [newest, middle, oldest].map((o) => o.order.spec.id));
      assert.deepEqual((await store.list({ activeOnly: false, limit: 2 })).map((o) => o.order.spec.id), [newest.order.spec.id, middle.order.spec.id]);
      const mine = (await store.list({ owner: 'owner-a', activeOnly: false, limit: 3 })).map((o) => o.order.spec.id);
      assert.deepEqual(mine, [middle, finished, oldest].map((o) => o.order.spec.id));
      assert.deepEqual((await store.list({ owner: 'owner-b', activeOnly: true, limit: 1000 })).map((o) => o.order.spec.id).slice(0, 1), [newest.order.spec.id]);
      const long = await store.list({ activeOnly: true, limit: 1000 });
      assert.ok(long.every((o) => o.order.status === 'queued' || o.order.status === 'running'));
      assert.ok(!long.some((o) => o.order.spec.id === finished.order.spec.id));
      assert.deepEqual(long.find((o) => o.order.spec.id === middle.order.spec.id), await get(middle.order.spec.id), 'listed orders are whole, streams included');
    });

    it('updateStream runs the change on the stream and writes what it returns; nothing when it returns no state or throws', async () => {
      const { order } = await insert();
      const key = { orderId: order.spec.id, generation: 0, stream: 1 };
      const result = await store.updateStream(key, (state) => ({ state: { ...state, produced: 4, mode: 'cursor', acked: 2 }, result: state.produced }), { durable: true });
      assert.equal(result, 0);
      assert.deepEqual(await store.stream(key), { ...newStream(0, 1, 6), produced: 4, mode: 'cursor', acked: 2 });
      assert.equal((await get(order.spec.id)).streams[0].produced, 0, 'the other stream is untouched');

      assert.equal(await store.updateStream(key, () => ({ result: 'nothing' })), 'nothing');
      assert.equal((await store.stream(key))!.produced, 4);
      await assert.rejects(
        store.updateStream(key, (state) => {
          void state;
          throw new SensoryError('SENSORY_ERR_POLL_MODE_CONFLICT', 'refused');
        }),
        (error: SensoryError) => error.code === 'SENSORY_ERR_POLL_MODE_CONFLICT',
      );
      assert.equal((await store.stream(key))!.produced, 4, 'a change that throws writes nothing');
      assert.equal(await store.updateStream({ ...key, stream: 2 }, () => ({ result: 1 })), undefined, 'no such stream');
      assert.equal(await store.stream({ ...key, generation: 1 }), undefined);
    });

    it('changes of one stream from two stores at once run one after the other: no update is lost', async () => {
      const { order } = await insert({ size: 1000 });
      const second = await backend.open();
      try {
        const key = { orderId: order.spec.id, generation: 0, stream: 0 };
        const bump = (s: OrderStore) => s.updateStream(key, (state) => ({ state: { ...state, produced: state.produced + 1 }, result: state.produced }));
        const seen = await Promise.all(Array.from({ length: 40 }, (_, i) => bump(i % 2 ? second.orders : store)));
        assert.deepEqual([...seen].sort((a, b) => a! - b!), Array.from({ length: 40 }, (_, i) => i), 'each change saw the one before');
        assert.equal((await store.stream(key))!.produced, 40);
      } finally {
        await second.owner.close();
      }
    });

    it('updateOrder locks the order with its current streams and writes both: a reshape moves the order to its new generation', async () => {
      const { order, streams } = await insert({ size: 12 });
      const delivered = [{ ...streams[0], mode: 'cursor' as const, acked: 6 }, { ...streams[1], mode: 'cursor' as const, acked: 2 }];
      await store.updateOrder(order.spec.id, (stored) => ({ streams: delivered, result: stored.streams.length }));
      const result = await store.updateOrder(order.spec.id, (stored) => {
        assert.deepEqual(stored.streams, delivered);
        const plan = reshapePlan(stored.order.plan, [[], [{ from: 2, to: 6 }]], 4, 'exact');
        const next = [0, 1, 2, 3].map((q) => newStream(1, q, 1));
        return {
          order: { ...stored.order, plan, status: 'running', expiresAt: '2031-01-01T00:00:00.000Z', ttlSeconds: 60 },
          streams: [...stored.streams.map((s) => ({ ...s, closed: true })), ...next],
          result: 'reshaped',
        };
      }, { durable: true });
      assert.equal(result, 'reshaped');
      const now = await get(order.spec.id);
      assert.equal(now.order.plan.generations.length, 2);
      assert.deepEqual([now.order.status, now.order.expiresAt, now.order.ttlSeconds], ['running', '2031-01-01T00:00:00.000Z', 60]);
      assert.deepEqual(now.streams, [0, 1, 2, 3].map((q) => newStream(1, q, 1)), 'the current generation\'s streams');
      assert.equal((await store.stream({ orderId: order.spec.id, generation: 0, stream: 0 }))!.closed, true, 'the old ones are kept, closed');
      assert.equal(deliveredCount((await store.stream({ orderId: order.spec.id, generation: 0, stream: 1 }))!), 2);

      await assert.rejects(store.updateOrder(order.spec.id, () => {
        throw new Error('refused');
      }));
      await store.updateOrder(order.spec.id, (stored) => ({ order: { ...stored.order, status: 'failed', error: 'a shard could not be built' }, result: undefined }));
      assert.deepEqual([(await get(order.spec.id)).order.status, (await get(order.spec.id)).order.error], ['failed', 'a shard could not be built']);
      assert.equal(await store.updateOrder(uniqueId('missing'), () => ({ result: 1 })), undefined);
    });

    it('a second store on the same database sees the same orders and streams', async () => {
      const { order } = await insert();
      const key = { orderId: order.spec.id, generation: 0, stream: 0 };
      await store.updateStream(key, (state) => ({ state: { ...state, mode: 'shared', frontier: 3 }, result: undefined }), { durable: true });
      const second = await backend.open();
      try {
        assert.deepEqual(await second.orders.get(order.spec.id), await get(order.spec.id));
        assert.equal((await second.orders.stream(key))!.frontier, 3);
      } finally {
        await second.owner.close();
      }
    });

    it('a database with orders of the earlier schema opens: active orders are failed with a clear error, finished ones keep their counts', async () => {
      const oldSpec = (id: string) => JSON.stringify({ ...spec({ id, size: 100 }), ttlSeconds: 900 });
      const q = (text: string) => text.replace(/'/g, "''");
      const active = uniqueId('old-active');
      const complete = uniqueId('old-complete');
      const opened = await backend.openOld(async (sql) => {
        await sql(`INSERT INTO orders (id, dataset_id, spec, status, shards_total, shards_done, produced, delivered, size, created_at, expires_at)
          VALUES ('${active}', 7, '${q(oldSpec(active))}', 'running', 4, 1, 40, 30, 100, '2024-01-01T00:00:00.000Z', '${EXPIRES}'),
                 ('${complete}', 7, '${q(oldSpec(complete))}', 'complete', 4, 4, 100, 100, 100, '2024-01-02T00:00:00.000Z', '${EXPIRES}')`);
        await sql(`INSERT INTO order_shards_done (order_id, shard) VALUES ('${active}', 0)`);
        await sql(`INSERT INTO order_claims (order_id, poll_id, from_slot, to_slot, lease_until) VALUES ('${active}', 'p', 30, 40, 1)`);
      });
      try {
        const failed = (await opened.orders.get(active))!;
        assert.equal(failed.order.status, 'failed');
        assert.match(failed.order.error ?? '', /placed before an upgrade .* place it again/);
        assert.equal(failed.order.ttlSeconds, 900);
        assert.equal(failed.order.owner, null);
        assert.deepEqual(failed.order.plan, planOrder(100, 1, 'exact'));
        const done = (await opened.orders.get(complete))!;
        assert.equal(done.order.status, 'complete');
        assert.equal(done.streams.length, 1);
        assert.deepEqual([done.streams[0].produced, deliveredCount(done.streams[0]), done.streams[0].length], [100, 100, 100]);
        assert.equal(deliveredCount(failed.streams[0]), 30);
        assert.deepEqual(failed.streams[0], { ...newStream(0, 0, 100), mode: 'shared', frontier: 30, produced: 40 });
        // The migrated database takes new orders.
        const { order, streams } = placed();
        assert.equal(await opened.orders.insert(order, streams), 'inserted');
      } finally {
        await opened.owner.close();
      }
    });
  });
}
