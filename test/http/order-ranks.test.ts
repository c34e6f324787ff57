import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeCursor } from '../../src/domain/order-cursor.js';
import { parseSafetensors } from '@sensory/client';
import type { StreamRef } from '../../src/ports/order-queue.js';
import { AMQP_ADDRESS, AMQP_URL, amqpAvailable, brokerSkip, cleanBroker, inCi, uniqueAmqpNames } from '../support/broker.js';
import { expectError, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

/**
 * Orders with ranks over HTTP, on the in-process queue and on RabbitMQ with two workers: equal
 * counts, disjoint parts whose union is the order, the same parts for the same seed, reshape,
 * cursors and acknowledgement, the TTL, keys and owners — and every wrong input: a clear 4xx,
 * nothing changed.
 */

type Backend = 'memory' | 'amqp';
const SAFETENSORS = 'application/x-safetensors';
const SAMPLES = 7;

const amqpSkip = await brokerSkip();
if (inCi() && !(await amqpAvailable())) {
  describe('orders with ranks on RabbitMQ', () => {
    it(`needs RabbitMQ at ${AMQP_ADDRESS}`, () => assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS}: the broker tests must run under CI`));
  });
}

interface Answer {
  ids: number[];
  slots: number[];
  epochs: number[];
  rank: number;
  generation: number;
  cursor?: string;
  remaining: number;
  done: boolean;
  status: string;
}

for (const backend of ['memory', 'amqp'] as const satisfies readonly Backend[]) {
  describe(`orders with ranks over HTTP: ${backend}`, { skip: backend === 'amqp' ? amqpSkip : false }, () => {
    let t: TestApp;
    const names = uniqueAmqpNames('ranks');
    const refs: StreamRef[] = [];

    before(async () => {
      t = await startTestApp({
        SENSORY_ORDER_MAX_TTL_SECONDS: '86400',
        SENSORY_MAX_ORDER_RANKS: '16',
        ...(backend === 'amqp'
          ? { SENSORY_AMQP_URL: AMQP_URL, SENSORY_AMQP_EXCHANGE: names.exchange, SENSORY_AMQP_TASK_QUEUE: names.taskQueue, SENSORY_AMQP_TASK_ROUTING_KEY: names.taskRoutingKey }
          : {}),
      });
      await t.runtime.queue.ping();
      // Two workers on one task queue.
      await t.runtime.startWorker(1);
      await t.runtime.startWorker(1);
      await seedDataset(t, 'digits', { width: 4, height: 4, channels: 3 }, SAMPLES, ['a', 'b', 'c']);
    });

    after(async () => {
      if (!t) return;
      const listed = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('admin') });
      const orders = listed.statusCode === 200 ? (listed.json().orders as { id: string; generation: number; ranks: number }[]) : [];
      for (const order of orders) await t.app.inject({ method: 'DELETE', url: `/v1/orders/${order.id}`, headers: t.auth('admin') });
      await t.close();
      removeDir(t.dataDir);
      if (backend === 'amqp') {
        const all = orders.flatMap((order) => Array.from({ length: order.generation + 1 }, (_, g) => Array.from({ length: 16 }, (_, stream) => ({ orderId: order.id, generation: g, stream }))).flat());
        await cleanBroker({ exchanges: [names.exchange], taskQueues: [names.taskQueue], orderIds: [...all, ...refs] });
      }
    });

    async function place(body: Record<string, unknown>, kind: 'read' | 'readWrite' = 'read'): Promise<string> {
      const res = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth(kind), payload: body });
      assert.equal(res.statusCode, 202, res.body);
      return res.json().id;
    }

    async function view(id: string): Promise<any> {
      const res = await t.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    }

    function poll(id: string, body: Record<string, unknown>, kind: 'read' | 'readWrite' | 'admin' = 'read', accept?: string) {
      return t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: { ...t.auth(kind), ...(accept ? { accept } : {}) }, payload: body });
    }

    /** One rank in cursor mode until done (acknowledging each answer with the next poll, and a final ack). */
    async function drainRank(id: string, rank: number, max = 5, start = 'start'): Promise<{ slots: number[]; ids: number[]; epochs: number[] }> {
      const got = { slots: [] as number[], ids: [] as number[], epochs: [] as number[] };
      let cursor = start;
      let ack: string | undefined;
      const deadline = performance.now() + 20_000;
      for (;;) {
        assert.ok(performance.now() < deadline, `rank ${rank} of ${id} not done (${got.slots.length})`);
        const res = await poll(id, { rank, cursor, ...(ack ? { ack } : {}), max, waitMs: 500 });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as Answer;
        assert.equal(body.rank, rank);
        assert.equal(res.headers['sensory-cursor'], body.cursor);
        got.slots.push(...body.slots);
        got.ids.push(...body.ids);
        got.epochs.push(...body.epochs);
        cursor = body.cursor!;
        ack = cursor;
        if (body.done) {
          const final = await poll(id, { rank, cursor, ack: cursor, max: 0 });
          assert.equal(final.statusCode, 200, final.body);
          return got;
        }
      }
    }

    function assertExactlyOnce(slots: number[], count: number): void {
      assert.deepEqual([...slots].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
    }

    it('ranks: equal counts, disjoint parts whose union is the order, each sample\'s epoch, the same parts for the same seed', async () => {
      const runs: number[][][] = [];
      for (let run = 0; run < 2; run++) {
        const id = await place({ size: 42, ranks: 3, seed: 99 });
        const created = await view(id);
        assert.deepEqual([created.ranks, created.slots, created.generation, created.rounding, created.streams.map((s: any) => s.length)], [3, 42, 0, 'exact', [14, 14, 14]]);
        const ranks = await Promise.all([0, 1, 2].map((rank) => drainRank(id, rank)));
        assert.deepEqual(ranks.map((r) => r.slots.length), [14, 14, 14]);
        assertExactlyOnce(ranks.flatMap((r) => r.slots), 42);
        for (const r of ranks) assert.deepEqual(r.epochs, r.slots.map((slot) => Math.floor(slot / SAMPLES)));
        runs.push(ranks.map((r) => r.ids));
        const done = await view(id);
        assert.deepEqual([done.status, done.samples.delivered, done.streams.map((s: any) => [s.mode, s.delivered, s.acknowledged])], ['complete', 42, [['cursor', 14, 14], ['cursor', 14, 14], ['cursor', 14, 14]]]);
      }
      assert.deepEqual(runs[1], runs[0], 'the same seed: every rank the same samples in the same order');
    });

    it('reshape 2 → 1 mid-order, then 1 → 3: every slot exactly once, equal counts per rank', async () => {
      const id = await place({ size: 40, ranks: 2, seed: 7 });
      const seen: number[] = [];
      const first = (await poll(id, { rank: 0, cursor: 'start', max: 6, waitMs: 2000 })).json() as Answer;
      await poll(id, { rank: 0, cursor: first.cursor, ack: first.cursor, max: 0 });
      seen.push(...first.slots);
      const other = (await poll(id, { rank: 1, cursor: 'start', max: 2, waitMs: 2000 })).json() as Answer;
      await poll(id, { rank: 1, cursor: other.cursor, ack: other.cursor, max: 0 });
      seen.push(...other.slots);
      const res = await t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 1 } });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual([res.json().generation, res.json().ranks, res.json().streams[0].length], [1, 1, 40 - seen.length]);
      const g1 = (await poll(id, { cursor: 'start', max: 14, waitMs: 2000 })).json() as Answer;
      assert.equal(g1.generation, 1);
      await poll(id, { cursor: g1.cursor, ack: g1.cursor, max: 0 });
      seen.push(...g1.slots);
      const three = await t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 3, rounding: 'exact' } });
      assert.equal(three.statusCode, 200, three.body);
      assert.deepEqual(three.json().streams.map((s: any) => s.length), [6, 6, 6]);
      const last = await Promise.all([0, 1, 2].map((rank) => drainRank(id, rank, 4)));
      assert.deepEqual(last.map((r) => r.slots.length), [6, 6, 6]);
      seen.push(...last.flatMap((r) => r.slots));
      assertExactlyOnce(seen, 40);
      assert.equal((await view(id)).status, 'complete');
    });

    it('answers carry rank, generation, cursor and epochs as JSON fields, safetensors metadata and headers', async () => {
      const id = await place({ size: 10, ranks: 2, seed: 3 });
      const res = await poll(id, { rank: 1, cursor: 'start', max: 5, waitMs: 2000 }, 'read', SAFETENSORS);
      assert.equal(res.statusCode, 200, res.body);
      const file = parseSafetensors(res.rawPayload);
      assert.deepEqual([file.metadata.rank, file.metadata.generation, file.metadata.done, file.metadata.remaining], ['1', '0', 'true', '0']);
      assert.ok(['queued', 'running'].includes(file.metadata.status), file.metadata.status);
      assert.equal(file.metadata.cursor, res.headers['sensory-cursor']);
      assert.deepEqual(JSON.parse(file.metadata.epochs), JSON.parse(file.metadata.slots).map((slot: number) => Math.floor(slot / SAMPLES)));
      assert.deepEqual(JSON.parse(file.metadata.slots), [1, 3, 5, 7, 9]);
      const shared = (await poll(id, { rank: 0, max: 5, waitMs: 2000 })).json();
      assert.deepEqual([shared.rank, shared.generation, 'cursor' in shared], [0, 0, false]);
    });

    it('a key places one order: 202 then 200 with the same id; another request with the key is 409; another API key has its own', async () => {
      const body = { size: 12, ranks: 2, seed: 5, key: 'trainer-run:42' };
      const first = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload: body });
      const again = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload: body });
      assert.deepEqual([first.statusCode, again.statusCode], [202, 200], again.body);
      assert.equal(again.json().id, first.json().id);
      assert.equal((await view(first.json().id)).key, 'trainer-run:42');
      expectError(await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload: { ...body, size: 14 } }), 409, 'SENSORY_ERR_ORDER_KEY_CONFLICT');
      const other = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('readWrite'), payload: body });
      assert.equal(other.statusCode, 202, other.body);
      assert.notEqual(other.json().id, first.json().id);
    });

    it('PATCH ttlSeconds sets the TTL and moves the expiry; out of range is 400 and changes nothing', async () => {
      const id = await place({ size: 10, seed: 8 });
      const before = await view(id);
      for (const payload of [{ ttlSeconds: 0 }, { ttlSeconds: 86_401 }, { ttlSeconds: 1.5 }, { ttlSeconds: '60' }, {}, { ttlSeconds: 60, other: 1 }]) {
        expectError(await t.app.inject({ method: 'PATCH', url: `/v1/orders/${id}`, headers: t.auth('read'), payload }), 400);
      }
      const unchanged = await view(id);
      assert.deepEqual([unchanged.ttlSeconds, unchanged.expiresAt], [before.ttlSeconds, before.expiresAt]);
      const res = await t.app.inject({ method: 'PATCH', url: `/v1/orders/${id}`, headers: t.auth('read'), payload: { ttlSeconds: 86_400 } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().ttlSeconds, 86_400);
      assert.ok(Date.parse(res.json().expiresAt) - Date.now() > 86_000_000, res.json().expiresAt);
    });

    it('wrong inputs: a clear 4xx naming the field, and nothing changed', async () => {
      const id = await place({ size: 12, ranks: 2, seed: 9 });
      const foreign = await place({ size: 12, ranks: 2, seed: 9 });
      const started = (await poll(id, { rank: 1, cursor: 'start', max: 2, waitMs: 2000 })).json() as Answer;
      const state = async () => {
        const v = await view(id);
        return JSON.stringify([v.status, v.ranks, v.generation, v.ttlSeconds, v.streams.map((s: any) => [s.mode, s.delivered])]);
      };
      const before = await state();
      const cases: [string, () => Promise<any>, number, string, RegExp?][] = [
        ['rank out of range', () => poll(id, { rank: 2 }), 409, 'SENSORY_ERR_RANK_OUT_OF_RANGE', /rank 2/],
        ['rank negative', () => poll(id, { rank: -1 }), 400, 'SENSORY_ERR_BAD_REQUEST', /rank/],
        ['rank not a number', () => poll(id, { rank: '1' }), 400, 'SENSORY_ERR_BAD_REQUEST', /rank/],
        ['malformed cursor', () => poll(id, { rank: 1, cursor: 'garbage' }), 400, 'SENSORY_ERR_BAD_CURSOR', /cursor/],
        ['cursor too long', () => poll(id, { rank: 1, cursor: 'x'.repeat(201) }), 400, 'SENSORY_ERR_BAD_REQUEST', /cursor/],
        ['cursor of another order', () => poll(id, { rank: 1, cursor: encodeCursor({ orderId: foreign, generation: 0, stream: 1, position: 0 }) }), 409, 'SENSORY_ERR_CURSOR_CONFLICT', /another order/],
        ['cursor of another rank', () => poll(id, { rank: 1, cursor: encodeCursor({ orderId: id, generation: 0, stream: 0, position: 0 }) }), 409, 'SENSORY_ERR_CURSOR_CONFLICT', /rank 0/],
        ['malformed ack', () => poll(id, { rank: 1, cursor: started.cursor, ack: 'nope' }), 400, 'SENSORY_ERR_BAD_CURSOR', /ack/],
        ['ack past the cursor', () => poll(id, { rank: 1, cursor: 'start', ack: started.cursor }), 400, 'SENSORY_ERR_BAD_CURSOR', /past the cursor/],
        ['ack without a cursor', () => poll(id, { rank: 0, ack: started.cursor }), 400, 'SENSORY_ERR_BAD_REQUEST', /cursor/],
        ['resume not a boolean', () => poll(id, { rank: 1, cursor: 'start', resume: 'yes' }), 400, 'SENSORY_ERR_BAD_REQUEST', /resume/],
        ['max 0 without a cursor', () => poll(id, { rank: 0, max: 0 }), 400, 'SENSORY_ERR_BAD_REQUEST', /max 0/],
        ['cursor mode on a rank polled... the other way', () => poll(id, { rank: 1 }), 409, 'SENSORY_ERR_POLL_MODE_CONFLICT', /with cursors/],
        ['poll by another key', () => poll(id, { rank: 0 }, 'readWrite'), 403, 'SENSORY_ERR_NOT_ORDER_OWNER'],
        ['reshape by another key', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('readWrite'), payload: { ranks: 1 } }), 403, 'SENSORY_ERR_NOT_ORDER_OWNER'],
        ['cancel by another key', () => t.app.inject({ method: 'DELETE', url: `/v1/orders/${id}`, headers: t.auth('readWrite') }), 403, 'SENSORY_ERR_NOT_ORDER_OWNER'],
        ['ttl by another key', () => t.app.inject({ method: 'PATCH', url: `/v1/orders/${id}`, headers: t.auth('readWrite'), payload: { ttlSeconds: 60 } }), 403, 'SENSORY_ERR_NOT_ORDER_OWNER'],
        ['reshape by a write-only key', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('write'), payload: { ranks: 1 } }), 403, 'SENSORY_ERR_FORBIDDEN'],
        ['reshape to 0 ranks', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 0 } }), 400, 'SENSORY_ERR_BAD_REQUEST', /ranks/],
        ['reshape to more ranks than samples left', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 13, rounding: 'repeat' } }), 422, 'SENSORY_ERR_TOO_MANY_RANKS', /ranks 13 is above the undelivered samples 12/],
        ['reshape above SENSORY_MAX_ORDER_RANKS', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 17 } }), 422, 'SENSORY_ERR_TOO_MANY_RANKS', /SENSORY_MAX_ORDER_RANKS/],
        ['reshape unevenly with exact', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 5 } }), 422, 'SENSORY_ERR_UNEVEN_RANKS', /12 .*ranks 5/],
        ['reshape with an unknown rounding', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 1, rounding: 'round' } }), 400, 'SENSORY_ERR_BAD_REQUEST', /rounding/],
        ['reshape with an unknown field', () => t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 1, size: 3 } }), 400, 'SENSORY_ERR_BAD_REQUEST'],
      ];
      for (const [what, run, status, code, pattern] of cases) {
        const res = await run();
        const message = expectError(res, status, code);
        if (pattern) assert.match(message, pattern, what);
      }
      assert.equal(await state(), before, 'none of it changed the order');
      // Placement: bad ranks, rounding and keys store nothing.
      const count = async () => (await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') })).json().orders.length;
      const orders = await count();
      const bad: [Record<string, unknown>, number, string][] = [
        [{ size: 10, ranks: 0 }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 10, ranks: 11, rounding: 'drop' }, 422, 'SENSORY_ERR_TOO_MANY_RANKS'],
        [{ size: 100, ranks: 17 }, 422, 'SENSORY_ERR_TOO_MANY_RANKS'],
        [{ size: 10, ranks: 4097 }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 10, ranks: 3 }, 422, 'SENSORY_ERR_UNEVEN_RANKS'],
        [{ size: 10, ranks: 2, rounding: 'round' }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 10, key: '' }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 10, key: 'has space' }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 10, key: 'k'.repeat(129) }, 400, 'SENSORY_ERR_BAD_REQUEST'],
        [{ size: 100_000_000, shardSize: 1 }, 413, 'SENSORY_ERR_ORDER_TOO_LARGE'],
      ];
      for (const [payload, status, code] of bad) {
        expectError(await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload }), status, code);
      }
      assert.equal(await count(), orders, 'no order stored');
    });

    it('a finished order cannot be reshaped or extended (409); polls of it answer done', async () => {
      const id = await place({ size: 4, seed: 10 });
      const got = await drainRank(id, 0, 4);
      assertExactlyOnce(got.slots, 4);
      assert.equal((await view(id)).status, 'complete');
      expectError(await t.app.inject({ method: 'POST', url: `/v1/orders/${id}/reshape`, headers: t.auth('read'), payload: { ranks: 1 } }), 409, 'SENSORY_ERR_ORDER_FINISHED');
      expectError(await t.app.inject({ method: 'PATCH', url: `/v1/orders/${id}`, headers: t.auth('read'), payload: { ttlSeconds: 60 } }), 409, 'SENSORY_ERR_ORDER_FINISHED');
      const res = await poll(id, { cursor: 'start' });
      assert.deepEqual([res.json().ids, res.json().done, res.json().status], [[], true, 'complete']);
      const cancelled = await place({ size: 4, seed: 11 });
      await t.app.inject({ method: 'DELETE', url: `/v1/orders/${cancelled}`, headers: t.auth('read') });
      expectError(await t.app.inject({ method: 'POST', url: `/v1/orders/${cancelled}/reshape`, headers: t.auth('read'), payload: { ranks: 1 } }), 409, 'SENSORY_ERR_ORDER_FINISHED');
      await sleep(10);
    });

    it('an API key lists its own orders; an admin key lists them all', async () => {
      const mine = await place({ size: 4, seed: 12 });
      const theirs = await place({ size: 4, seed: 12 }, 'readWrite');
      const list = async (kind: 'read' | 'readWrite' | 'admin') =>
        ((await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth(kind) })).json().orders as { id: string }[]).map((o) => o.id);
      assert.ok((await list('read')).includes(mine) && !(await list('read')).includes(theirs));
      assert.ok((await list('readWrite')).includes(theirs) && !(await list('readWrite')).includes(mine));
      assert.ok((await list('admin')).includes(mine) && (await list('admin')).includes(theirs));
      refs.push({ orderId: mine, generation: 0, stream: 0 }, { orderId: theirs, generation: 0, stream: 0 });
    });
  });
}
