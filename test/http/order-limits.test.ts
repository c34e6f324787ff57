import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertError, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, uniqueSchema, useSchema } from '../support/postgres.js';

/**
 * SENSORY_MAX_ACTIVE_ORDERS_PER_KEY over HTTP, on both metadata backends (SQLite, PostgreSQL):
 * past it a placement is 429 SENSORY_ERR_TOO_MANY_ORDERS with Retry-After and stores nothing;
 * orders cancelled, complete or expired do not count; a known order key still answers its order.
 */

await requirePostgresInCi();
const pgSkip = await postgresSkip();
const MAX = 2;

const backends = [
  { name: 'sqlite', skip: false as const, env: async () => ({}) },
  { name: 'postgres', skip: pgSkip, env: async () => ({ SENSORY_DATABASE_URL: await useSchema(uniqueSchema('order_limits')) }) },
];

for (const backend of backends) {
  describe(`active orders per key (${backend.name})`, { skip: backend.skip }, () => {
    let t: TestApp;

    before(async () => {
      t = await startTestApp({ ...(await backend.env()), SENSORY_MAX_ACTIVE_ORDERS_PER_KEY: String(MAX) });
      await t.runtime.startWorker(2);
      await seedDataset(t, 'limited', { width: 4, height: 4, channels: 1 }, 4, ['a', 'b']);
    });

    after(async () => {
      await t.close();
      removeDir(t.dataDir);
      if (backend.name === 'postgres') await dropSchemas();
    });

    const place = (kind: 'read' | 'readWrite', payload: Record<string, unknown>) =>
      t.app.inject({ method: 'POST', url: '/v1/datasets/limited/orders', headers: t.auth(kind), payload });
    const active = async (kind: 'read' | 'readWrite') =>
      ((await t.app.inject({ method: 'GET', url: '/v1/orders?active=true', headers: t.auth(kind) })).json() as { orders: { id: string }[] }).orders.map((o) => o.id);

    it(`the ${MAX + 1}th active order of a key is 429 SENSORY_ERR_TOO_MANY_ORDERS with Retry-After, and stores nothing`, async () => {
      const first = await place('read', { size: 400, key: 'first' });
      const second = await place('read', { size: 400 });
      assert.equal(first.statusCode, 202, first.body);
      assert.equal(second.statusCode, 202, second.body);
      const refused = await place('read', { size: 400 });
      const body = assertError(refused, 429, 'SENSORY_ERR_TOO_MANY_ORDERS');
      assert.match(body.error.message, /SENSORY_MAX_ACTIVE_ORDERS_PER_KEY/);
      assert.match(body.error.message, /2 active orders/);
      assert.equal(refused.headers['retry-after'], '10');
      assert.equal((await active('read')).length, MAX, 'nothing stored for the refused order');
      // A known key answers its order (no new order), even at the limit.
      const again = await place('read', { size: 400, key: 'first' });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json().id, first.json().id);
      // Another key has its own count.
      assert.equal((await place('readWrite', { size: 400 })).statusCode, 202);
    });

    it('a cancelled order frees its place', async () => {
      const [newest] = await active('read');
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/orders/${newest}`, headers: t.auth('read') })).statusCode, 200);
      assert.equal((await place('read', { size: 400 })).statusCode, 202);
      assertError(await place('read', { size: 400 }), 429, 'SENSORY_ERR_TOO_MANY_ORDERS');
    });

    it('an expired order frees its place (found expired when the next order is placed)', async () => {
      const [newest] = await active('read');
      const patch = await t.app.inject({ method: 'PATCH', url: `/v1/orders/${newest}`, headers: t.auth('read'), payload: { ttlSeconds: 1 } });
      assert.equal(patch.statusCode, 200, patch.body);
      await sleep(1300);
      const placed = await place('read', { size: 400 });
      assert.equal(placed.statusCode, 202, placed.body);
      assert.equal((await t.app.inject({ method: 'GET', url: `/v1/orders/${newest}`, headers: t.auth('admin') })).json().status, 'expired');
    });

    it('a complete order frees its place', async () => {
      const [newest] = await active('read');
      for (let polls = 0; polls < 100; polls++) {
        const reply = await t.app.inject({ method: 'POST', url: `/v1/orders/${newest}/poll`, headers: t.auth('read'), payload: { max: 400, waitMs: 2000 } });
        assert.equal(reply.statusCode, 200, reply.body.slice(0, 300));
        if (reply.json().done) break;
      }
      // The last answer's delivery is committed once it was sent: a moment after the poll returns.
      let status = '';
      for (let i = 0; i < 100 && status !== 'complete'; i++, await sleep(50)) {
        status = (await t.app.inject({ method: 'GET', url: `/v1/orders/${newest}`, headers: t.auth('admin') })).json().status;
      }
      assert.equal(status, 'complete');
      assert.equal((await place('read', { size: 400 })).statusCode, 202);
      assertError(await place('read', { size: 400 }), 429, 'SENSORY_ERR_TOO_MANY_ORDERS');
    });
  });
}
