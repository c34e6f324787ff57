import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { drawAugment } from '../../src/domain/augmentation.js';
import { parseSafetensors } from '@sensory/client';
import { AMQP_ADDRESS, AMQP_URL, amqpAvailable, brokerSkip, cleanBroker, inCi, uniqueAmqpNames } from '../support/broker.js';
import { removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';
import type { OrderView } from '../support/order-polls.js';

/**
 * Batch orders over HTTP, the same scenarios on both queue backends: the in-process queue and
 * RabbitMQ (unique exchange and task queue per app), each with the in-process worker.
 */

const SAFETENSORS = 'application/x-safetensors';
const W = 4;
const H = 4;
const C = 3;
const RECORD = W * H * C;
const SAMPLES = 7;
const CATEGORIES = ['zero', 'one', 'two'];

type Backend = 'memory' | 'amqp';

interface Augment {
  rotation: number;
  scale: number;
}

/** What the polls of one order handed out, by slot. */
interface Delivery {
  readonly bySlot: Map<number, { id: number; label: number | number[]; augment: Augment; data: number[] }>;
  polls: number;
}

/** What each backend's app delivered for the shared seed, to compare the backends. */
const sequences = new Map<Backend, number[]>();

const amqpSkip = await brokerSkip();
if (inCi() && !(await amqpAvailable())) {
  describe('batch orders on RabbitMQ', () => {
    it(`needs RabbitMQ at ${AMQP_ADDRESS}`, () => assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS}: the broker tests must run under CI`));
  });
}

/** An app on the backend, with its worker running unless `worker` is false. */
async function openApp(backend: Backend, env: Record<string, string> = {}, worker = true): Promise<{ t: TestApp; close(): Promise<void> }> {
  const names = uniqueAmqpNames('orders');
  const t = await startTestApp({
    ...(backend === 'amqp'
      ? { SENSORY_AMQP_URL: AMQP_URL, SENSORY_AMQP_EXCHANGE: names.exchange, SENSORY_AMQP_TASK_QUEUE: names.taskQueue, SENSORY_AMQP_TASK_ROUTING_KEY: names.taskRoutingKey }
      : {}),
    ...env,
  });
  if (backend === 'amqp') await t.runtime.queue.ping();
  if (worker) await t.runtime.startWorker(2);
  return {
    t,
    close: async () => {
      const listed = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') });
      const ids = listed.statusCode === 200 ? (listed.json().orders as OrderView[]).map((order) => order.id) : [];
      // Nothing may keep a worker waiting on a full result queue past the test.
      for (const id of ids) await t.app.inject({ method: 'DELETE', url: `/v1/orders/${id}`, headers: t.auth('read') });
      await t.close();
      removeDir(t.dataDir);
      if (backend === 'amqp') await cleanBroker({ exchanges: [names.exchange], taskQueues: [names.taskQueue], orderIds: ids });
    },
  };
}

function expectError(res: { statusCode: number; body: string; json(): any }, status: number, code?: string): string {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body), ['error'], res.body);
  assert.equal(typeof body.error.code, 'string', res.body);
  assert.equal(typeof body.error.message, 'string', res.body);
  if (code) assert.equal(body.error.code, code, res.body);
  return body.error.message as string;
}

/** Seeds a dataset of `SAMPLES` 4×4×3 PNGs; returns each sample id's source pixels and label. */
async function seedSmallDataset(t: TestApp, name: string): Promise<Map<number, { pixels: Buffer; label: number }>> {
  const { samples, pixels } = await seedDataset(t, name, { width: W, height: H, channels: C }, SAMPLES, CATEGORIES);
  return new Map(samples.map((sample) => [sample.id, { pixels: pixels.get(sample.id)!, label: sample.categoryIndex }]));
}

async function createOrder(t: TestApp, dataset: string, body: Record<string, unknown>): Promise<{ id: string; status: string; size: number; shards: number; revision: number }> {
  const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/orders`, headers: t.auth('read'), payload: body });
  assert.equal(res.statusCode, 202, res.body);
  const created = res.json();
  assert.deepEqual(Object.keys(created).sort(), ['id', 'revision', 'shards', 'size', 'status']);
  assert.equal(typeof created.id, 'string');
  assert.ok(['queued', 'running'].includes(created.status), created.status);
  assert.equal(created.size, body.size);
  return created;
}

async function getOrder(t: TestApp, id: string): Promise<OrderView> {
  const res = await t.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: t.auth('read') });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as OrderView;
}

async function poll(t: TestApp, id: string, body: Record<string, unknown>, accept?: string) {
  return t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: { ...t.auth('read'), ...(accept ? { accept } : {}) }, payload: body });
}

async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(25);
  }
}

/** Polls an order as JSON until `done`, checking every response; the samples by slot. */
async function drainJson(t: TestApp, id: string, size: number, options: { max?: number; waitMs?: number }, timeoutMs = 20_000): Promise<Delivery> {
  const delivery: Delivery = { bySlot: new Map(), polls: 0 };
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    assert.ok(performance.now() < deadline, `order ${id} not done after ${timeoutMs} ms (${delivery.bySlot.size} of ${size} delivered)`);
    const res = await poll(t, id, options);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /application\/json/);
    delivery.polls++;
    const body = res.json();
    const n = body.ids.length;
    assert.ok(n <= (options.max ?? 4096), `a poll of max ${options.max} gave ${n}`);
    for (const key of ['slots', 'labels', 'augment', 'data']) assert.equal(body[key].length, n, `${key} has one entry per sample`);
    assert.deepEqual(body.shape, [n, H, W, C]);
    body.ids.forEach((sampleId: number, i: number) => {
      const slot = body.slots[i] as number;
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < size, `slot ${slot} is inside the order`);
      assert.ok(!delivery.bySlot.has(slot), `slot ${slot} was delivered twice`);
      delivery.bySlot.set(slot, { id: sampleId, label: body.labels[i], augment: body.augment[i], data: (body.data[i] as unknown[]).flat(2) as number[] });
    });
    assert.equal(body.remaining, size - delivery.bySlot.size, 'remaining counts what is still to come');
    assert.equal(res.headers['sensory-remaining'], String(body.remaining));
    assert.equal(res.headers['sensory-done'], String(body.done));
    assert.equal(typeof body.done, 'boolean');
    if (body.done) {
      assert.equal(body.remaining, 0);
      return delivery;
    }
    if (n === 0 && !options.waitMs) await sleep(10);
  }
}

/** Every slot 0..size-1 once; each epoch of `SAMPLES` slots a permutation of every sample. */
function assertEpochs(delivery: Delivery, size: number, ids: readonly number[]): number[] {
  const sequence = Array.from({ length: size }, (_, slot) => {
    const got = delivery.bySlot.get(slot);
    assert.ok(got, `slot ${slot} was delivered`);
    return got.id;
  });
  assert.equal(delivery.bySlot.size, size);
  const sorted = [...ids].sort((a, b) => a - b);
  const counts = new Map<number, number>();
  for (let from = 0; from < size; from += SAMPLES) {
    const epoch = sequence.slice(from, from + SAMPLES);
    if (epoch.length === SAMPLES) assert.deepEqual([...epoch].sort((a, b) => a - b), sorted, `epoch ${from / SAMPLES} is a permutation`);
    else assert.equal(new Set(epoch).size, epoch.length, 'the last, partial epoch draws without replacement');
    for (const id of epoch) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const fullEpochs = Math.floor(size / SAMPLES);
  const partial = new Set(sequence.slice(fullEpochs * SAMPLES));
  for (const id of ids) assert.equal(counts.get(id) ?? 0, fullEpochs + (partial.has(id) ? 1 : 0), `sample ${id} count`);
  return sequence;
}

for (const backend of ['memory', 'amqp'] as const) {
  describe(`batch orders over HTTP: ${backend}`, { skip: backend === 'amqp' ? amqpSkip : false }, () => {
    let app: Awaited<ReturnType<typeof openApp>>;
    let t: TestApp;
    let samples: Map<number, { pixels: Buffer; label: number }>;
    let ids: number[];

    before(async () => {
      app = await openApp(backend);
      t = app.t;
      samples = await seedSmallDataset(t, 'digits');
      ids = [...samples.keys()];
      const empty = await t.app.inject({ method: 'PUT', url: '/v1/datasets/empty', headers: t.auth('admin'), payload: { width: W, height: H, channels: C } });
      assert.equal(empty.statusCode, 201, empty.body);
    });
    after(async () => {
      await app?.close();
    });

    describe('delivery', () => {
      const SIZE = 50;
      const SEED = 1234;
      const combos = [
        { shardSize: 1, max: 5, waitMs: 0 },
        { shardSize: 3, max: 1, waitMs: 0 },
        { shardSize: 7, max: 4096, waitMs: 500 },
        { shardSize: 16, max: 5, waitMs: 200 },
        { shardSize: 100, max: 4096, waitMs: 2000 },
      ];
      const bySeed: number[][] = [];

      for (const { shardSize, max, waitMs } of combos) {
        it(`size ${SIZE}, shardSize ${shardSize}, polled with max ${max} and waitMs ${waitMs}: every slot once, in epochs`, async () => {
          const created = await createOrder(t, 'digits', { size: SIZE, shardSize, seed: SEED });
          assert.equal(created.shards, Math.ceil(SIZE / shardSize));
          const delivery = await drainJson(t, created.id, SIZE, { max, waitMs });
          const sequence = assertEpochs(delivery, SIZE, ids);
          bySeed.push(sequence);
          for (const [slot, got] of delivery.bySlot) {
            const source = samples.get(got.id)!;
            assert.equal(got.label, source.label, `slot ${slot}: label`);
            assert.deepEqual(got.augment, { rotation: 0, scale: 1 }, `slot ${slot}: no noise, no augmentation`);
            assert.deepEqual(got.data, [...source.pixels], `slot ${slot}: the source pixels of sample ${got.id}`);
          }
          const order = await getOrder(t, created.id);
          assert.equal(order.status, 'complete');
          assert.equal(order.dataset, 'digits');
          assert.equal(order.size, SIZE);
          assert.equal(order.seed, SEED);
          assert.deepEqual(order.samples, { produced: SIZE, delivered: SIZE });
          assert.equal(order.shards.total, Math.ceil(SIZE / shardSize));
          await until(() => getOrder(t, created.id), (o) => o.shards.done === o.shards.total, 'every shard marked done');
          // Once done, polls give nothing more.
          const more = await poll(t, created.id, { max: 10 });
          assert.equal(more.statusCode, 200, more.body);
          const body = more.json();
          assert.deepEqual([body.ids, body.slots, body.data, body.remaining, body.done, body.status], [[], [], [], 0, true, 'complete']);
        });
      }

      it('the same seed gives the same sample sequence whatever the shards and polls', () => {
        assert.equal(bySeed.length, combos.length);
        for (const sequence of bySeed.slice(1)) assert.deepEqual(sequence, bySeed[0]);
        sequences.set(backend, bySeed[0]);
      });

      it('another seed gives another sequence', async () => {
        const created = await createOrder(t, 'digits', { size: SIZE, shardSize: 10, seed: SEED + 1 });
        const sequence = assertEpochs(await drainJson(t, created.id, SIZE, { max: 64 }), SIZE, ids);
        assert.notDeepEqual(sequence, bySeed[0]);
      });

      it('an order smaller than the dataset draws without replacement', async () => {
        const created = await createOrder(t, 'digits', { size: 4, seed: 3 });
        assert.equal(created.shards, 1);
        const delivery = await drainJson(t, created.id, 4, { max: 4096, waitMs: 1000 });
        const sequence = assertEpochs(delivery, 4, ids);
        assert.equal(new Set(sequence).size, 4);
      });
    });

    describe('formats', () => {
      it('safetensors polls carry Sensory-Remaining and Sensory-Done, and ids and slots in the metadata', async () => {
        const size = 20;
        const created = await createOrder(t, 'digits', { size, shardSize: 5, seed: 99 });
        const seen = new Set<number>();
        const deadline = performance.now() + 20_000;
        for (;;) {
          assert.ok(performance.now() < deadline, 'the safetensors order finishes');
          const res = await poll(t, created.id, { max: 6, waitMs: 300 }, SAFETENSORS);
          assert.equal(res.statusCode, 200, res.body);
          assert.match(String(res.headers['content-type']), /application\/x-safetensors/);
          assert.equal(Number(res.headers['content-length']), res.rawPayload.length);
          const parsed = parseSafetensors(res.rawPayload);
          const metaIds = JSON.parse(parsed.metadata.ids) as number[];
          const metaSlots = JSON.parse(parsed.metadata.slots) as number[];
          const n = metaIds.length;
          assert.ok(n <= 6);
          assert.equal(metaSlots.length, n);
          assert.equal(parsed.tensors.data.dtype, 'U8');
          assert.deepEqual(parsed.tensors.data.shape, [n, H, W, C]);
          assert.equal(parsed.tensors.labels.dtype, 'I32');
          assert.deepEqual(parsed.tensors.labels.shape, [n]);
          assert.equal(parsed.metadata.revision, String(created.revision));
          assert.equal(parsed.metadata.seed, '99');
          assert.deepEqual(JSON.parse(parsed.metadata.categories), { zero: 0, one: 1, two: 2 });
          const labels = new Int32Array(Uint8Array.from(parsed.tensors.labels.data).buffer);
          metaIds.forEach((id, i) => {
            assert.ok(!seen.has(metaSlots[i]), `slot ${metaSlots[i]} twice`);
            seen.add(metaSlots[i]);
            assert.equal(labels[i], samples.get(id)!.label);
            assert.ok(Buffer.from(parsed.tensors.data.data.subarray(i * RECORD, (i + 1) * RECORD)).equals(samples.get(id)!.pixels), `sample ${id}`);
          });
          const remaining = res.headers['sensory-remaining'];
          const done = res.headers['sensory-done'];
          assert.equal(remaining, String(size - seen.size));
          assert.ok(done === 'true' || done === 'false', String(done));
          assert.equal(parsed.metadata.remaining, remaining);
          assert.equal(parsed.metadata.done, done);
          if (done === 'true') break;
        }
        assert.equal(seen.size, size);
        assert.equal((await getOrder(t, created.id)).status, 'complete');
      });

      it('float32 data and one-hot labels, as JSON and as safetensors', async () => {
        const size = 14;
        const json = await createOrder(t, 'digits', { size, seed: 5, dtype: 'float32', labels: 'onehot' });
        const delivery = await drainJson(t, json.id, size, { max: 4096, waitMs: 500 });
        assertEpochs(delivery, size, ids);
        for (const [slot, got] of delivery.bySlot) {
          const source = samples.get(got.id)!;
          assert.deepEqual(got.label, CATEGORIES.map((_, k) => (k === source.label ? 1 : 0)), `slot ${slot}: one-hot label`);
          assert.deepEqual(got.data, [...source.pixels].map((v) => Math.fround(v / 255)), `slot ${slot}: float32 pixels`);
        }

        const st = await createOrder(t, 'digits', { size, seed: 5, dtype: 'float32', labels: 'onehot' });
        const seen = new Map<number, number>();
        const deadline = performance.now() + 20_000;
        let done = 'false';
        while (done !== 'true') {
          assert.ok(performance.now() < deadline, 'the float32 safetensors order finishes');
          const res = await poll(t, st.id, { waitMs: 300 }, SAFETENSORS);
          assert.equal(res.statusCode, 200, res.body);
          done = String(res.headers['sensory-done']);
          const parsed = parseSafetensors(res.rawPayload);
          const metaIds = JSON.parse(parsed.metadata.ids) as number[];
          const metaSlots = JSON.parse(parsed.metadata.slots) as number[];
          const n = metaIds.length;
          assert.equal(parsed.tensors.data.dtype, 'F32');
          assert.deepEqual(parsed.tensors.data.shape, [n, H, W, C]);
          assert.equal(parsed.tensors.labels.dtype, 'U8');
          assert.deepEqual(parsed.tensors.labels.shape, [n, CATEGORIES.length]);
          const floats = new Float32Array(Uint8Array.from(parsed.tensors.data.data).buffer);
          metaIds.forEach((id, i) => {
            const source = samples.get(id)!;
            assert.deepEqual([...floats.subarray(i * RECORD, (i + 1) * RECORD)], [...source.pixels].map((v) => Math.fround(v / 255)));
            assert.deepEqual([...parsed.tensors.labels.data.subarray(i * CATEGORIES.length, (i + 1) * CATEGORIES.length)], CATEGORIES.map((_, k) => (k === source.label ? 1 : 0)));
            seen.set(metaSlots[i], id);
          });
        }
        assert.equal(seen.size, size);
        // Same seed as the JSON order: the same sequence.
        for (const [slot, got] of delivery.bySlot) assert.equal(seen.get(slot), got.id);
      });

      it('noise 1: every slot rotated within ±10° and rescaled within 0.7–1.5×, the same for the same seed', async () => {
        const size = 14;
        const first = await createOrder(t, 'digits', { size, seed: 77, noise: 1, shardSize: 3 });
        const second = await createOrder(t, 'digits', { size, seed: 77, noise: 1, shardSize: 7 });
        const other = await createOrder(t, 'digits', { size, seed: 78, noise: 1 });
        const a = await drainJson(t, first.id, size, { max: 5 });
        const b = await drainJson(t, second.id, size, { max: 4096, waitMs: 500 });
        const c = await drainJson(t, other.id, size, { max: 4096, waitMs: 500 });
        let changed = 0;
        for (let slot = 0; slot < size; slot++) {
          const x = a.bySlot.get(slot)!;
          const y = b.bySlot.get(slot)!;
          assert.ok(Math.abs(x.augment.rotation) <= 10 && x.augment.rotation !== 0, `slot ${slot}: rotation ${x.augment.rotation}`);
          assert.ok(x.augment.scale >= 0.7 && x.augment.scale <= 1.5 && x.augment.scale !== 1, `slot ${slot}: scale ${x.augment.scale}`);
          assert.deepEqual(x.augment, drawAugment(77, slot, 1), `slot ${slot}: drawn from (seed, slot)`);
          assert.deepEqual(y, x, `slot ${slot}: the same seed gives the same sample, augmentation and pixels`);
          assert.notDeepEqual(c.bySlot.get(slot)!.augment, x.augment, `slot ${slot}: another seed, another augmentation`);
          if (x.data.some((v, i) => v !== samples.get(x.id)!.pixels[i])) changed++;
        }
        assert.ok(changed > size / 2, `augmented pixels differ from the source (${changed} of ${size})`);
      });
    });

    describe('cancel', () => {
      it('DELETE cancels: status cancelled, later polls return nothing and done', async () => {
        const created = await createOrder(t, 'digits', { size: 50, shardSize: 1, seed: 11 });
        const first = await until(
          () => poll(t, created.id, { max: 5, waitMs: 1000 }),
          (res) => res.statusCode !== 200 || res.json().ids.length > 0,
          'a first sample',
        );
        assert.equal(first.statusCode, 200, first.body);
        const delivered = first.json().ids.length;
        const cancelled = await t.app.inject({ method: 'DELETE', url: `/v1/orders/${created.id}`, headers: t.auth('read') });
        assert.equal(cancelled.statusCode, 200, cancelled.body);
        assert.equal(cancelled.json().status, 'cancelled');
        assert.equal(cancelled.json().id, created.id);
        const started = performance.now();
        const after = await poll(t, created.id, { max: 10, waitMs: 5000 });
        assert.equal(after.statusCode, 200, after.body);
        const body = after.json();
        assert.deepEqual(body.ids, []);
        assert.deepEqual(body.data, []);
        assert.equal(body.done, true);
        assert.equal(body.status, 'cancelled');
        assert.equal(after.headers['sensory-done'], 'true');
        assert.ok(performance.now() - started < 2000, 'a poll of a cancelled order does not wait');
        const order = await getOrder(t, created.id);
        assert.equal(order.status, 'cancelled');
        assert.equal(order.samples.delivered, delivered);
        const again = await t.app.inject({ method: 'DELETE', url: `/v1/orders/${created.id}`, headers: t.auth('read') });
        assert.equal(again.statusCode, 200, again.body);
        assert.equal(again.json().status, 'cancelled');
        await sleep(300);
        assert.equal((await getOrder(t, created.id)).status, 'cancelled', 'the workers do not revive it');
      });

      it('a complete order stays complete when deleted', async () => {
        const created = await createOrder(t, 'digits', { size: 3, seed: 12 });
        await drainJson(t, created.id, 3, { waitMs: 1000 });
        const res = await t.app.inject({ method: 'DELETE', url: `/v1/orders/${created.id}`, headers: t.auth('read') });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().status, 'complete');
      });
    });

    describe('listing', () => {
      it('GET /v1/orders lists orders newest first; ?active=true only queued and running ones', async () => {
        const done = await createOrder(t, 'digits', { size: 2, seed: 21 });
        await drainJson(t, done.id, 2, { waitMs: 1000 });
        const active = await createOrder(t, 'digits', { size: 50, seed: 22 });
        const all = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') });
        assert.equal(all.statusCode, 200, all.body);
        const listed = all.json().orders as OrderView[];
        assert.equal(listed[0].id, active.id, 'newest first');
        assert.ok(listed.some((o) => o.id === done.id && o.status === 'complete'));
        assert.equal(listed.find((o) => o.id === active.id)!.dataset, 'digits');
        const onlyActive = await t.app.inject({ method: 'GET', url: '/v1/orders?active=true', headers: t.auth('read') });
        assert.equal(onlyActive.statusCode, 200, onlyActive.body);
        const activeList = onlyActive.json().orders as OrderView[];
        assert.ok(activeList.some((o) => o.id === active.id));
        assert.ok(activeList.every((o) => o.status === 'queued' || o.status === 'running'), JSON.stringify(activeList.map((o) => o.status)));
        assert.ok(!activeList.some((o) => o.id === done.id));
        await t.app.inject({ method: 'DELETE', url: `/v1/orders/${active.id}`, headers: t.auth('read') });
        const afterCancel = await t.app.inject({ method: 'GET', url: '/v1/orders?active=true', headers: t.auth('read') });
        assert.ok(!(afterCancel.json().orders as OrderView[]).some((o) => o.id === active.id));
      });
    });

    describe('errors', () => {
      async function orderCount(): Promise<number> {
        const res = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') });
        return (res.json().orders as unknown[]).length;
      }

      it('an unknown order id is 404 SENSORY_ERR_ORDER_NOT_FOUND for GET, poll and DELETE', async () => {
        const id = randomUUID();
        expectError(await t.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: t.auth('read') }), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
        expectError(await poll(t, id, { max: 1 }), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
        expectError(await poll(t, id, {}, SAFETENSORS), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
        expectError(await t.app.inject({ method: 'DELETE', url: `/v1/orders/${id}`, headers: t.auth('read') }), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
      });

      it('invalid order fields are 400 and store nothing', async () => {
        const before = await orderCount();
        const bad: Array<Record<string, unknown>> = [
          { size: 0 },
          { size: -1 },
          { size: '5' },
          { size: 1.5 },
          { size: 100_000_001 },
          {},
          { size: 5, shardSize: 0 },
          { size: 5, noise: 2 },
          { size: 5, dtype: 'float64' },
          { size: 5, unknown: 1 },
          { size: 5, balance: true },
        ];
        for (const body of bad) {
          const res = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload: body });
          expectError(res, 400);
        }
        assert.equal(await orderCount(), before);
      });

      it('invalid poll fields are 400', async () => {
        const created = await createOrder(t, 'digits', { size: 2, seed: 31 });
        for (const body of [{ max: 0 }, { max: 4097 }, { max: '5' }, { waitMs: 20_001 }, { waitMs: -1 }, { unknown: true }]) {
          expectError(await poll(t, created.id, body), 400);
        }
        await drainJson(t, created.id, 2, { waitMs: 1000 });
      });

      it('unknown dataset 404, unknown category 422, empty dataset 422', async () => {
        const before = await orderCount();
        const missing = await t.app.inject({ method: 'POST', url: '/v1/datasets/nothing/orders', headers: t.auth('read'), payload: { size: 5 } });
        expectError(missing, 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
        const category = await t.app.inject({ method: 'POST', url: '/v1/datasets/digits/orders', headers: t.auth('read'), payload: { size: 5, categories: ['seven'] } });
        assert.match(expectError(category, 422, 'SENSORY_ERR_UNKNOWN_CATEGORY'), /seven/);
        const empty = await t.app.inject({ method: 'POST', url: '/v1/datasets/empty/orders', headers: t.auth('read'), payload: { size: 5 } });
        expectError(empty, 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
        assert.equal(await orderCount(), before);
      });

      it('no key is 401, a write-only key 403', async () => {
        const created = await createOrder(t, 'digits', { size: 1, seed: 41 });
        const routes = [
          { method: 'POST' as const, url: '/v1/datasets/digits/orders', payload: { size: 5 } },
          { method: 'GET' as const, url: '/v1/orders' },
          { method: 'GET' as const, url: `/v1/orders/${created.id}` },
          { method: 'POST' as const, url: `/v1/orders/${created.id}/poll`, payload: { max: 1 } },
          { method: 'DELETE' as const, url: `/v1/orders/${created.id}` },
        ];
        for (const route of routes) {
          expectError(await t.app.inject({ ...route }), 401, 'SENSORY_ERR_UNAUTHORIZED');
          expectError(await t.app.inject({ ...route, headers: { 'api-access-key': 'not-a-key' } }), 401, 'SENSORY_ERR_UNAUTHORIZED');
          expectError(await t.app.inject({ ...route, headers: t.auth('write') }), 403, 'SENSORY_ERR_FORBIDDEN');
        }
        // None of that touched the order.
        const order = await getOrder(t, created.id);
        assert.ok(['queued', 'running'].includes(order.status), order.status);
        assert.equal(order.samples.delivered, 0);
        await drainJson(t, created.id, 1, { waitMs: 1000 });
      });
    });

    describe('a dataset deleted under an order', () => {
      it('fails a running order, with an error naming the dataset', async () => {
        await seedSmallDataset(t, 'doomed');
        // Far more than the result queue holds: the workers wait on back-pressure.
        const created = await createOrder(t, 'doomed', { size: 100_000, shardSize: 1000, seed: 1 });
        await until(() => getOrder(t, created.id), (o) => o.status === 'running' && o.samples.produced > 0, 'the order to run');
        // The result queue fills up (its bound of 72 messages of 64 samples: 4,608); the workers then wait for room.
        await until(() => getOrder(t, created.id), (o) => o.samples.produced >= 4000, 'the result queue to fill', 15_000);
        await sleep(300);
        const deleted = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed', headers: t.auth('admin') });
        assert.equal(deleted.statusCode, 200, deleted.body);
        const failed = await until(() => getOrder(t, created.id), (o) => o.status === 'failed', 'the order to fail', 10_000);
        assert.match(failed.error ?? '', /doomed/);
        const res = await poll(t, created.id, { max: 10 });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual([res.json().ids, res.json().done, res.json().status], [[], true, 'failed']);
      });
    });
  });

  describe(`batch orders over HTTP: ${backend}, separate apps`, { skip: backend === 'amqp' ? amqpSkip : false }, () => {
    it('fails a queued order whose dataset was deleted before a worker took it', async () => {
      const app = await openApp(backend, {}, false);
      try {
        const { t } = app;
        await seedSmallDataset(t, 'doomed');
        const created = await createOrder(t, 'doomed', { size: 20, shardSize: 5, seed: 1 });
        assert.equal((await getOrder(t, created.id)).status, 'queued');
        const deleted = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed', headers: t.auth('admin') });
        assert.equal(deleted.statusCode, 200, deleted.body);
        await t.runtime.startWorker(2);
        const failed = await until(() => getOrder(t, created.id), (o) => o.status === 'failed', 'the order to fail', 10_000);
        assert.match(failed.error ?? '', /doomed/);
        assert.equal(failed.samples.delivered, 0);
        const res = await poll(t, created.id, { max: 10 });
        assert.deepEqual([res.json().ids, res.json().done], [[], true]);
      } finally {
        await app.close();
      }
    });

    it('expires an order with no sample delivered for SENSORY_ORDER_TTL_SECONDS, in its status and in the list', async () => {
      const app = await openApp(backend, { SENSORY_ORDER_TTL_SECONDS: '1' });
      try {
        const { t } = app;
        await seedSmallDataset(t, 'digits');
        const created = await createOrder(t, 'digits', { size: 20, seed: 1 });
        const fresh = await getOrder(t, created.id);
        assert.ok(['queued', 'running'].includes(fresh.status));
        assert.ok(Date.parse(fresh.expiresAt) - Date.parse(fresh.createdAt) <= 1500, `${fresh.createdAt} → ${fresh.expiresAt}`);
        await sleep(2500);
        // The list is the first to read it after its TTL: it shows it expired, as the order itself does.
        const listed = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('read') });
        assert.deepEqual(listed.json().orders.map((order: { id: string; status: string }) => [order.id, order.status]), [[created.id, 'expired']]);
        const expired = await getOrder(t, created.id);
        assert.equal(expired.status, 'expired');
        assert.match(expired.error ?? '', /no sample was delivered for 1 s/);
        const res = await poll(t, created.id, { max: 10 });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual([res.json().ids, res.json().done, res.json().status], [[], true, 'expired']);
        const active = await t.app.inject({ method: 'GET', url: '/v1/orders?active=true', headers: t.auth('read') });
        assert.deepEqual(active.json().orders, []);
      } finally {
        await app.close();
      }
    });
  });
}

describe('batch orders: both backends', { skip: amqpSkip }, () => {
  it('the same seed gives the same sample sequence on the in-process queue and on RabbitMQ', () => {
    assert.ok(sequences.get('memory'), 'the memory run recorded its sequence');
    assert.ok(sequences.get('amqp'), 'the RabbitMQ run recorded its sequence');
    assert.deepEqual(sequences.get('amqp'), sequences.get('memory'));
  });
});
