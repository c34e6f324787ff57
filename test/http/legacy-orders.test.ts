import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AMQP_ADDRESS, AMQP_URL, amqpAvailable, brokerSkip, cleanBroker, inCi, uniqueAmqpNames } from '../support/broker.js';
import { expectError, KEYS, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

/**
 * The legacy dicebox batch endpoints: POST /api/sensory/batch places an order on
 * SENSORY_LEGACY_DATASET, POST /api/sensory/poll hands it out one sample per call.
 */

const DATASET = 'legacy_4x4';
const W = 4;
const H = 4;
const C = 3;
const CATEGORIES = ['cat', 'dog'];
const SAMPLES = 5;

type Backend = 'memory' | 'amqp';

const amqpSkip = await brokerSkip();
if (inCi() && !(await amqpAvailable())) {
  describe('legacy batch orders on RabbitMQ', () => {
    it(`needs RabbitMQ at ${AMQP_ADDRESS}`, () => assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS}: the broker tests must run under CI`));
  });
}

/** Legacy headers; `version` null leaves API-VERSION out, `key` null leaves the key out. */
function legacyHeaders(key: string | null = KEYS.read, version: string | null = '0.3.0'): Record<string, string> {
  return { ...(key === null ? {} : { 'api-access-key': key }), ...(version === null ? {} : { 'api-version': version }) };
}

/** The nested H×W×C arrays of `pixels`. */
function nested(pixels: Buffer): number[][][] {
  return Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => Array.from({ length: C }, (_, c) => pixels[(y * W + x) * C + c])));
}

for (const backend of ['memory', 'amqp'] as const satisfies readonly Backend[]) {
  describe(`legacy batch orders: ${backend}`, { skip: backend === 'amqp' ? amqpSkip : false }, () => {
    let t: TestApp;
    const names = uniqueAmqpNames('legacy-orders');
    /** The stored samples: nested pixels and label index. */
    const stored: Array<{ data: number[][][]; label: number }> = [];

    async function batch(body: unknown, headers = legacyHeaders()) {
      return t.app.inject({ method: 'POST', url: '/api/sensory/batch', headers, payload: body as Record<string, unknown> });
    }

    async function legacyPoll(body: unknown, headers = legacyHeaders()) {
      return t.app.inject({ method: 'POST', url: '/api/sensory/poll', headers, payload: body as Record<string, unknown> });
    }

    /** Polls one sample at a time until `count` came, then checks that nothing more comes. */
    async function pollAll(batchId: string, count: number): Promise<Array<{ label: number[]; data: number[][][] }>> {
      const got: Array<{ label: number[]; data: number[][][] }> = [];
      const deadline = performance.now() + 20_000;
      while (got.length < count) {
        assert.ok(performance.now() < deadline, `only ${got.length} of ${count} samples after 20 s`);
        const res = await legacyPoll({ batch_id: batchId });
        assert.equal(res.statusCode, 200, res.body);
        assert.match(String(res.headers['content-type']), /application\/json/);
        const body = res.json();
        assert.deepEqual(Object.keys(body).sort(), ['data', 'label']);
        if (body.label === null) {
          assert.equal(body.data, null, 'no label, no data');
          await sleep(10);
          continue;
        }
        assert.equal(body.label.length, 1);
        assert.equal(body.data.length, H);
        for (const row of body.data) {
          assert.equal(row.length, W);
          for (const pixel of row) assert.equal(pixel.length, C);
        }
        got.push(body);
      }
      // The order is delivered: every further poll is empty.
      for (let i = 0; i < 3; i++) {
        const res = await legacyPoll({ batch_id: batchId });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual(res.json(), { label: null, data: null });
        await sleep(50);
      }
      return got;
    }

    before(async () => {
      t = await startTestApp({
        SENSORY_LEGACY_DATASET: DATASET,
        SENSORY_API_VERSION: '0.3.0',
        ...(backend === 'amqp'
          ? { SENSORY_AMQP_URL: AMQP_URL, SENSORY_AMQP_EXCHANGE: names.exchange, SENSORY_AMQP_TASK_QUEUE: names.taskQueue, SENSORY_AMQP_TASK_ROUTING_KEY: names.taskRoutingKey }
          : {}),
      });
      await t.runtime.queue.ping();
      await t.runtime.startWorker(2);
      const { samples, pixels } = await seedDataset(t, DATASET, { width: W, height: H, channels: C }, SAMPLES, CATEGORIES);
      for (const sample of samples) stored.push({ data: nested(pixels.get(sample.id)!), label: sample.categoryIndex });
    });

    after(async () => {
      if (!t) return;
      const listed = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') });
      const ids = listed.statusCode === 200 ? (listed.json().orders as Array<{ id: string }>).map((order) => order.id) : [];
      for (const id of ids) await t.app.inject({ method: 'DELETE', url: `/v1/orders/${id}`, headers: t.auth('read') });
      await t.close();
      removeDir(t.dataDir);
      if (backend === 'amqp') await cleanBroker({ exchanges: [names.exchange], taskQueues: [names.taskQueue], orderIds: ids });
    });

    it('POST /api/sensory/batch answers 202 {"batch_id"} and nothing else', async () => {
      const res = await batch({ batch_size: 3, noise: 0 });
      assert.equal(res.statusCode, 202, res.body);
      assert.match(String(res.headers['content-type']), /application\/json/);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['batch_id']);
      assert.equal(typeof body.batch_id, 'string');
      assert.ok(body.batch_id.length > 0);
      await pollAll(body.batch_id, 3);
    });

    it('polls hand out one sample per call, batch_size in all, then {"label": null, "data": null}', async () => {
      const size = 12; // more than the dataset: successive epochs
      const res = await batch({ batch_size: size, noise: 0 });
      assert.equal(res.statusCode, 202, res.body);
      const { batch_id: batchId } = res.json();
      const got = await pollAll(batchId, size);
      assert.equal(got.length, size);
      const counts = new Map<number, number>();
      for (const sample of got) {
        const index = stored.findIndex((s) => JSON.stringify(s.data) === JSON.stringify(sample.data));
        assert.ok(index >= 0, 'each sample is one of the stored images, unaugmented');
        assert.deepEqual(sample.label, [stored[index].label], 'with its label');
        counts.set(index, (counts.get(index) ?? 0) + 1);
      }
      // Two full epochs of 5 and 2 more: each image 2 or 3 times.
      for (let i = 0; i < SAMPLES; i++) assert.ok([2, 3].includes(counts.get(i) ?? 0), `image ${i}: ${counts.get(i)} times`);
      const order = await t.app.inject({ method: 'GET', url: `/v1/orders/${batchId}`, headers: t.auth('read') });
      assert.equal(order.statusCode, 200, order.body);
      assert.equal(order.json().status, 'complete');
      assert.equal(order.json().dataset, DATASET);
      assert.deepEqual(order.json().samples, { produced: size, delivered: size });
    });

    it('noise is optional and accepted between 0 and 1', async () => {
      const noisy = await batch({ batch_size: 2, noise: 1 });
      assert.equal(noisy.statusCode, 202, noisy.body);
      const got = await pollAll(noisy.json().batch_id, 2);
      for (const sample of got) assert.ok(CATEGORIES.map((_, i) => i).includes(sample.label[0]));
      const plain = await batch({ batch_size: 1 });
      assert.equal(plain.statusCode, 202, plain.body);
      await pollAll(plain.json().batch_id, 1);
    });

    it('an unknown batch_id is 404; a missing batch_id is 400', async () => {
      expectError(await legacyPoll({ batch_id: randomUUID() }), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
      expectError(await legacyPoll({}), 400);
      expectError(await legacyPoll({ batch_id: 12 }), 400);
    });

    it('bad batch requests are 400', async () => {
      for (const body of [{}, { batch_size: 0 }, { batch_size: '5' }, { batch_size: 2, noise: 2 }]) expectError(await batch(body), 400);
    });

    it('no key or an unknown key is 403; a wrong or missing API-VERSION is 400', async () => {
      const placed = await batch({ batch_size: 1 });
      assert.equal(placed.statusCode, 202, placed.body);
      const batchId = placed.json().batch_id;
      for (const headers of [legacyHeaders(null), legacyHeaders('not-a-key')]) {
        expectError(await batch({ batch_size: 1 }, headers), 403, 'SENSORY_ERR_FORBIDDEN');
        expectError(await legacyPoll({ batch_id: batchId }, headers), 403, 'SENSORY_ERR_FORBIDDEN');
      }
      for (const headers of [legacyHeaders(KEYS.read, '0.2.0'), legacyHeaders(KEYS.read, null)]) {
        expectError(await batch({ batch_size: 1 }, headers), 400, 'SENSORY_ERR_LEGACY_VERSION');
        expectError(await legacyPoll({ batch_id: batchId }, headers), 400, 'SENSORY_ERR_LEGACY_VERSION');
      }
      // The refused polls took nothing from the order.
      const got = await pollAll(batchId, 1);
      assert.equal(got.length, 1);
    });
  });
}
