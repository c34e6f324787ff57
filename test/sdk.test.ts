/**
 * The TypeScript SDK against a real `sensory serve` process (in-process queue and worker):
 * datasets, uploads from a path, a Buffer and a stream, duplicates, errors as SensoryApiError
 * with the server's code, decoded batches, orders iterated to the end, and an order that
 * survives a connection cut in the middle of a poll response by a TCP proxy.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { SensoryApiError, SensoryClient, type PolledBatch } from '@sensory/client';
import { CuttingProxy } from './support/cutting-proxy.js';
import { makePng } from './support/harness.js';
import { startServer, stop, type Server } from './support/process.js';

const ADMIN = 'sdk-admin-key-0123456789';
const READER = 'sdk-read-key-0123456789';

/** Every slot 0..size-1 exactly once. */
function assertExactSlots(batches: readonly PolledBatch[], size: number): void {
  const slots = batches.flatMap((batch) => batch.slots).sort((a, b) => a - b);
  assert.equal(slots.length, size, `${slots.length} slots delivered for an order of ${size}`);
  slots.forEach((slot, i) => assert.equal(slot, i, `slot ${i} delivered once`));
}

async function rejects(promise: Promise<unknown>, status: number, code: string): Promise<SensoryApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SensoryApiError, `a SensoryApiError, not ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    assert.ok(error.requestId, 'carries the request id');
    return error;
  }
  assert.fail(`expected ${status} ${code}`);
}

describe('SensoryClient against a real service', () => {
  let workDir: string;
  let service: Server;
  let client: SensoryClient;
  const pngs: Buffer[] = [];

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'sensory-sdk-'));
    service = await startServer(join(workDir, 'data'), { SENSORY_LOG_LEVEL: 'warn', SENSORY_API_KEYS: `${ADMIN}:admin;${READER}:read` });
    client = new SensoryClient({ url: service.url, key: ADMIN, retryDelayMs: 50 });
    for (let i = 0; i < 8; i++) pngs.push(await makePng(20 + i, 16, 3, i));
  });

  after(async () => {
    client?.close();
    if (service) await stop(service);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test("the package's entry point: import { SensoryClient } from '@sensory/client' (its dist/index.js)", async () => {
    const specifier = '@sensory/client'; // resolved through its package.json "exports", as a user's import would be
    const entry = (await import(specifier)) as Record<string, unknown>;
    for (const name of ['SensoryClient', 'SensoryApiError', 'SensoryConnectionError', 'SensoryOrderEndedError']) assert.equal(typeof entry[name], 'function', name);
  });

  test('datasets: put (created, then confirmed), get, list, categories, conflicting shape, delete', async () => {
    const first = await client.datasets.put('shapes', { width: 8, height: 8, channels: 1 });
    assert.equal(first.created, true);
    assert.deepEqual([first.dataset.name, first.dataset.width, first.dataset.height, first.dataset.channels], ['shapes', 8, 8, 1]);
    const again = await client.datasets.put('shapes', { width: 8, height: 8, channels: 1 });
    assert.equal(again.created, false);
    await rejects(client.datasets.put('shapes', { width: 9, height: 8, channels: 1 }), 409, 'SENSORY_ERR_DATASET_SHAPE_CONFLICT');
    await rejects(client.datasets.put('bad name!', { width: 8, height: 8, channels: 1 }), 400, 'SENSORY_ERR_INVALID_NAME');

    assert.equal((await client.datasets.get('shapes')).sampleCount, 0);
    assert.ok((await client.datasets.list()).some((dataset) => dataset.name === 'shapes'));
    assert.deepEqual(await client.datasets.categories('shapes'), { categories: [], map: {} });

    const reader = new SensoryClient({ url: service.url, key: READER });
    try {
      await rejects(reader.datasets.delete('shapes'), 403, 'SENSORY_ERR_FORBIDDEN');
    } finally {
      reader.close();
    }
    assert.equal((await client.datasets.delete('shapes')).name, 'shapes');
    await rejects(client.datasets.get('shapes'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });

  test('samples: upload from a path, a Buffer, a Uint8Array and a stream; duplicates; list pages; content; relabel; delete', async () => {
    await client.datasets.put('pets', { width: 16, height: 16, channels: 3 });
    const path = join(workDir, 'cat.png');
    writeFileSync(path, pngs[0]);

    const fromPath = await client.samples.upload('pets', path, { category: 'cat' });
    const fromBuffer = await client.samples.upload('pets', pngs[1], { category: 'dog' });
    const fromArray = await client.samples.upload('pets', new Uint8Array(pngs[2]), { category: 'cat' });
    // A stream in small pieces, as a webcam or a multipart reader would hand it over.
    const pieces = Array.from({ length: Math.ceil(pngs[3].length / 100) }, (_, i) => pngs[3].subarray(i * 100, (i + 1) * 100));
    const fromStream = await client.samples.upload('pets', Readable.from(pieces), { category: 'bird' });
    for (const sample of [fromPath, fromBuffer, fromArray, fromStream]) {
      assert.equal(sample.duplicate, undefined);
      assert.equal(sample.mediaType, 'image/png');
    }
    assert.deepEqual([fromPath.category, fromBuffer.category, fromArray.category, fromStream.category], ['cat', 'dog', 'cat', 'bird']);

    // The same bytes again (a retried upload): 200 with the existing sample.
    const duplicate = await client.samples.upload('pets', Readable.from([pngs[3]]), { category: 'bird' });
    assert.equal(duplicate.duplicate, true);
    assert.equal(duplicate.id, fromStream.id);

    await rejects(client.samples.upload('pets', pngs[3], { category: 'cat' }), 409, 'SENSORY_ERR_CATEGORY_CONFLICT');
    await rejects(client.samples.upload('pets', Buffer.from('just some text'), { category: 'cat' }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
    await rejects(client.samples.upload('no-such-dataset', pngs[4], { category: 'cat' }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    const stranger = new SensoryClient({ url: service.url, key: 'not-a-known-key-0123' });
    const reader = new SensoryClient({ url: service.url, key: READER });
    try {
      await rejects(stranger.samples.upload('pets', pngs[4], { category: 'cat' }), 401, 'SENSORY_ERR_UNAUTHORIZED');
      await rejects(reader.samples.upload('pets', pngs[4], { category: 'cat' }), 403, 'SENSORY_ERR_FORBIDDEN');
    } finally {
      stranger.close();
      reader.close();
    }
    for (let i = 4; i < 8; i++) await client.samples.upload('pets', pngs[i], { category: i % 2 ? 'dog' : 'cat' });

    // Listing: pages of 3, and the sample iterator over them.
    const pages = [];
    for await (const page of client.samples.pages('pets', { limit: 3 })) pages.push(page.samples.length);
    assert.deepEqual(pages, [3, 3, 2]);
    const listed = [];
    for await (const sample of client.samples.list('pets', { limit: 3 })) listed.push(sample.id);
    assert.equal(listed.length, 8);
    assert.equal(new Set(listed).size, 8);
    const cats = [];
    for await (const sample of client.samples.list('pets', { category: 'cat' })) cats.push(sample.category);
    assert.deepEqual(cats, ['cat', 'cat', 'cat', 'cat']);

    assert.equal((await client.samples.get('pets', fromBuffer.id)).sha256, fromBuffer.sha256);
    const content = await client.samples.content('pets', fromBuffer.id);
    assert.equal(content.contentType, 'image/png');
    assert.ok(content.bytes.equals(pngs[1]), 'the original bytes');

    const relabelled = await client.samples.relabel('pets', fromBuffer.id, 'cat');
    assert.equal(relabelled.category, 'cat');
    assert.equal((await client.samples.delete('pets', fromBuffer.id)).id, fromBuffer.id);
    await rejects(client.samples.get('pets', fromBuffer.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
    const categories = await client.datasets.categories('pets');
    assert.deepEqual(categories.map, { cat: 0, dog: 1, bird: 2 });
  });

  test('batch: decoded from safetensors (uint8 + index labels, float32 + one-hot), the same seed gives the same pixels', async () => {
    const dataset = await client.datasets.get('pets');
    const categoryOf = new Map<number, number>();
    for await (const sample of client.samples.list('pets')) categoryOf.set(sample.id, sample.categoryIndex);

    const bytes = await client.batch('pets', { size: 5, seed: 7 });
    assert.equal(bytes.dtype, 'uint8');
    assert.ok(bytes.data instanceof Uint8Array);
    assert.deepEqual(bytes.shape, [5, 16, 16, 3]);
    assert.equal(bytes.data.length, 5 * 16 * 16 * 3);
    assert.ok(bytes.labels instanceof Int32Array);
    assert.deepEqual(bytes.labelShape, [5]);
    assert.equal(bytes.ids.length, 5);
    assert.equal(new Set(bytes.ids).size, 5, 'drawn without replacement');
    bytes.ids.forEach((id, i) => assert.equal(bytes.labels[i], categoryOf.get(id), `label of sample ${id}`));
    assert.equal(bytes.revision, dataset.revision);
    assert.equal(bytes.seed, 7);
    assert.deepEqual(bytes.categories, { cat: 0, dog: 1, bird: 2 });

    const floats = await client.batch('pets', { size: 5, seed: 7, dtype: 'float32', labels: 'onehot' });
    assert.equal(floats.dtype, 'float32');
    assert.ok(floats.data instanceof Float32Array);
    assert.deepEqual(floats.ids, bytes.ids);
    assert.equal(floats.data.length, bytes.data.length);
    for (let i = 0; i < floats.data.length; i++) assert.equal(floats.data[i], Math.fround(bytes.data[i] / 255));
    assert.ok(floats.labels instanceof Uint8Array);
    assert.deepEqual(floats.labelShape, [5, 3]);
    const onehots = floats.labels as Uint8Array;
    for (let row = 0; row < 5; row++) {
      const onehot: number[] = Array.from(onehots.subarray(row * 3, row * 3 + 3));
      const label = bytes.labels[row];
      assert.deepEqual(onehot, [0, 1, 2].map((k): number => (k === label ? 1 : 0)));
    }

    // Torch-ready: channels first and int64 labels, the same samples and pixels.
    const torch = await client.batch('pets', { size: 5, seed: 7, layout: 'nchw', labelDtype: 'int64' });
    assert.equal(torch.layout, 'nchw');
    assert.equal(bytes.layout, 'nhwc');
    assert.deepEqual(torch.shape, [5, 3, 16, 16]);
    assert.ok(torch.labels instanceof BigInt64Array);
    assert.deepEqual(Array.from(torch.labels, Number), Array.from(bytes.labels));
    for (let n = 0; n < 5; n++) {
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < 16 * 16; p++) assert.equal(torch.data[n * 768 + c * 256 + p], bytes.data[n * 768 + p * 3 + c]);
      }
    }

    await rejects(client.batch('pets', { size: 50 }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
    await rejects(client.batch('pets', { size: 2, categories: ['horse'] }), 422, 'SENSORY_ERR_UNKNOWN_CATEGORY');

    // {reuse: true}: the same batch, read into the client's own buffer, which the next reuse read reads over.
    const reused = await client.batch('pets', { size: 5, seed: 7 }, { reuse: true });
    assert.deepEqual(reused.ids, bytes.ids);
    assert.deepEqual(Array.from(reused.data), Array.from(bytes.data));
    assert.deepEqual(Array.from(reused.labels), Array.from(bytes.labels));
    const again = await client.batch('pets', { size: 5, seed: 8 }, { reuse: true });
    assert.equal(again.data.buffer, reused.data.buffer, 'an answer of the same size: the same buffer');
    assert.deepEqual(Array.from(reused.labels), Array.from(again.labels), 'read over by the next reuse read');
    const torchReused = await client.batch('pets', { size: 5, seed: 7, layout: 'nchw', labelDtype: 'int64' }, { reuse: true });
    assert.ok(torchReused.labels instanceof BigInt64Array);
    assert.deepEqual(Array.from(torchReused.data), Array.from(torch.data));
    assert.deepEqual(Array.from(bytes.data.subarray(0, 10)), Array.from(floats.data.subarray(0, 10), (value) => Math.round(value * 255)), 'batches read without reuse keep their own memory');
  });

  test('an order iterated to the end: every slot exactly once, labels matching the samples', async () => {
    const categoryOf = new Map<number, number>();
    for await (const sample of client.samples.list('pets')) categoryOf.set(sample.id, sample.categoryIndex);
    const created = await client.createOrder('pets', { size: 53, shardSize: 10, seed: 3 });
    assert.equal(created.size, 53);
    assert.equal(created.shards, 6);

    const batches: PolledBatch[] = [];
    for await (const batch of client.order(created.id, { max: 8, waitMs: 1000 })) {
      assert.ok(batch.ids.length <= 8);
      assert.equal(batch.slots.length, batch.ids.length);
      assert.equal(batch.data.length, batch.ids.length * 16 * 16 * 3);
      batch.ids.forEach((id, i) => assert.equal(batch.labels[i], categoryOf.get(id)));
      batches.push(batch);
    }
    assertExactSlots(batches, 53);
    assert.equal(batches.at(-1)!.remaining, 0);

    // The same with {reuse: true}: each batch read into the client's own buffer, checked before the next.
    const reusedOrder = await client.createOrder('pets', { size: 21, shardSize: 10, seed: 4 });
    const reusedBatches: PolledBatch[] = [];
    let previous: ArrayBufferLike | undefined;
    for await (const batch of client.order(reusedOrder.id, { max: 8, waitMs: 1000, reuse: true })) {
      assert.equal(batch.data.length, batch.ids.length * 16 * 16 * 3);
      batch.ids.forEach((id, i) => assert.equal(batch.labels[i], categoryOf.get(id)));
      // The answer ends with the labels; one that fits the buffer of the poll before is read into it.
      if (previous && batch.labels.byteOffset + batch.labels.byteLength <= previous.byteLength) assert.equal(batch.data.buffer, previous, 'read into the same buffer');
      previous = batch.data.buffer;
      reusedBatches.push(batch);
    }
    assertExactSlots(reusedBatches, 21);
    assert.equal(batches.at(-1)!.done, true);
    const order = await client.getOrder(created.id);
    assert.equal(order.status, 'complete');
    assert.deepEqual(order.samples, { produced: 53, delivered: 53 });
    // Iterating a finished order again yields nothing more.
    const more = [];
    for await (const batch of client.order(created.id)) more.push(batch);
    assert.equal(more.length, 0);

    const cancelled = await client.createOrder('pets', { size: 10_000, shardSize: 100 });
    assert.equal((await client.cancelOrder(cancelled.id)).status, 'cancelled');
    await rejects(client.getOrder('no-such-order'), 404, 'SENSORY_ERR_ORDER_NOT_FOUND');
  });

  test('the iterator acknowledges a batch when the next one is asked for, and the last one at the end; a checkpoint\'s cursor resumes exactly after it', async () => {
    const size = 40;
    const eligible = (await client.datasets.get('pets')).sampleCount;
    const { id } = await client.createOrder('pets', { size, seed: 21 });
    const trained: number[] = [];
    let checkpoint: string | undefined;
    for await (const batch of client.order(id, { max: 6, waitMs: 1000 })) {
      assert.ok(batch.cursor, 'a cursor with every batch');
      assert.deepEqual(batch.epochs, batch.slots.map((slot) => Math.floor(slot / eligible)));
      assert.deepEqual([batch.rank, batch.generation], [0, 0]);
      const acknowledged = (await client.getOrder(id)).streams[0].acknowledged ?? 0;
      assert.equal(acknowledged, trained.length, 'the batches before this one are acknowledged, this one not yet');
      trained.push(...batch.slots);
      checkpoint = batch.cursor;
      if (trained.length >= 18) break; // the trainer stops (a preemption): its checkpoint is after 18
    }
    assert.equal((await client.getOrder(id)).samples.delivered, 12, 'the last batch was never acknowledged');
    // Restarted from the checkpoint: everything after it, once.
    const resumed: PolledBatch[] = [];
    for await (const batch of client.order(id, { max: 6, waitMs: 1000, cursor: checkpoint })) resumed.push(batch);
    assert.equal(resumed[0].slots[0], 18, 'exactly after the checkpoint');
    assertExactSlots([{ slots: trained } as PolledBatch, ...resumed], size);
    const order = await client.getOrder(id);
    assert.deepEqual([order.status, order.samples.delivered, order.streams[0].acknowledged], ['complete', size, size]);
  });

  test('ranks, reshape and the TTL through the SDK: each rank its equal part, then all of the rest over other ranks', async () => {
    const { id } = await client.createOrder('pets', { size: 24, ranks: 2, seed: 22 });
    const acknowledged: PolledBatch[] = [];
    await Promise.all(
      [0, 1].map(async (rank) => {
        const got: PolledBatch[] = [];
        for await (const batch of client.order(id, { rank, max: 4, waitMs: 1000 })) {
          assert.equal(batch.rank, rank);
          got.push(batch);
          if (got.length === 2) break; // asking for the second acknowledged the first
        }
        acknowledged.push(got[0]);
      }),
    );
    assert.equal((await client.getOrder(id)).samples.delivered, 8);
    const reshaped = await client.reshape(id, { ranks: 4 });
    assert.deepEqual([reshaped.generation, reshaped.ranks, reshaped.streams.map((s) => s.length)], [1, 4, [4, 4, 4, 4]]);
    const rest = await Promise.all(
      [0, 1, 2, 3].map(async (rank) => {
        const got: PolledBatch[] = [];
        for await (const batch of client.order(id, { rank, max: 3, waitMs: 1000 })) got.push(batch);
        return got;
      }),
    );
    assert.deepEqual(rest.map((batches) => batches.flatMap((b) => b.slots).length), [4, 4, 4, 4], 'equal counts');
    assertExactSlots([...acknowledged, ...rest.flat()], 24);
    assert.equal((await client.getOrder(id)).status, 'complete');
    await rejects(client.reshape(id, { ranks: 1 }), 409, 'SENSORY_ERR_ORDER_FINISHED');
    const other = await client.createOrder('pets', { size: 4 });
    const extended = await client.extendOrder(other.id, 3600);
    assert.equal(extended.ttlSeconds, 3600);
    await client.cancelOrder(other.id);
  });

  test('a restart on other ranks: every rank, which had read to its end, rewound to its checkpoint, then the rest reshaped over 3 ranks: every slot once', async () => {
    const request = { size: 30, ranks: 2, seed: 23, key: 'sdk-restart-23' };
    const { id } = await client.createOrder('pets', request);
    assert.equal((await client.createOrder('pets', request)).id, id, 'the same key and request: the same order');
    const checkpoints: string[] = [];
    const trained: number[] = [];
    await Promise.all(
      [0, 1].map(async (rank) => {
        let seen = 0;
        // A trainer reading ahead: it receives its whole part, but its checkpoint is after 5.
        for await (const batch of client.order(id, { rank, max: 5, waitMs: 1000 })) {
          if (seen === 0) {
            checkpoints[rank] = batch.cursor!;
            trained.push(...batch.slots);
          }
          seen += batch.slots.length;
          if (seen === 15) break; // killed before the final acknowledgement
        }
      }),
    );
    assert.equal((await client.getOrder(id)).samples.delivered, 20, 'what was read ahead was acknowledged, but not trained on');
    for (const rank of [0, 1]) {
      const rewound = await client.rewind(id, { rank, cursor: checkpoints[rank] });
      assert.deepEqual([rewound.ids.length, rewound.remaining], [0, 10], `rank ${rank} stands after its checkpoint`);
    }
    assert.equal((await client.getOrder(id)).samples.delivered, 10, 'delivered agrees with the checkpoints');
    const reshaped = await client.reshape(id, { ranks: 3, rounding: 'drop' });
    assert.deepEqual(reshaped.streams.map((stream) => stream.length), [6, 6, 6]);
    const rest = await Promise.all(
      [0, 1, 2].map(async (rank) => {
        const got: number[] = [];
        for await (const batch of client.order(id, { rank, max: 4, waitMs: 1000 })) got.push(...batch.slots);
        return got;
      }),
    );
    assert.deepEqual(rest.map((slots) => slots.length), [6, 6, 6], 'equal counts');
    const all = [...trained, ...rest.flat()].sort((a, b) => a - b);
    assert.equal(new Set(all).size, all.length, 'nothing twice');
    assert.equal(all.length, 28, 'the 10 trained on and 18 of the 20 after them (drop rounding leaves 2 out)');
    assert.equal((await client.getOrder(id)).status, 'complete');
  });

  test('a connection cut in the middle of a poll response: the iterator polls again and the total is exact', async () => {
    // Large samples, so that a poll response (512 × 48 KiB = 24 MiB) is far bigger than what the
    // kernel buffers: when the proxy cuts, the service is still writing and has acknowledged nothing.
    await client.datasets.put('big', { width: 128, height: 128, channels: 3 });
    for (let i = 0; i < 6; i++) await client.samples.upload('big', await makePng(128, 128, 3, 40 + i), { category: `c${i % 2}` });
    const size = 1536;
    // Placed with the key that polls it: an order belongs to the key that placed it.
    const owner = new SensoryClient({ url: service.url, key: READER });
    const created = await owner.createOrder('big', { size, shardSize: 256, seed: 11 });
    owner.close();
    // Wait until the worker produced everything, so that every poll carries a full 512.
    const deadline = performance.now() + 60_000;
    while ((await client.getOrder(created.id)).samples.produced < size) {
      assert.ok(performance.now() < deadline, 'the worker produces the order');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const target = new URL(service.url);
    const proxy = new CuttingProxy({ host: target.hostname, port: Number(target.port) }, 1024 * 1024, { armed: false });
    const proxied = new SensoryClient({ url: await proxy.listen(), key: READER, retryDelayMs: 50 });
    try {
      const batches: PolledBatch[] = [];
      for await (const batch of proxied.order(created.id, { max: 512, waitMs: 2000 })) {
        assert.equal(batch.data.length, batch.ids.length * 128 * 128 * 3, 'a whole batch, never a torn one');
        batches.push(batch);
        if (batches.length === 1) proxy.arm(); // cut the next answer after 1 MiB
      }
      assert.equal(proxy.cuts, 1, 'the proxy cut one response');
      assert.ok(proxy.bytesBeforeCut > 0 && proxy.bytesBeforeCut < 512 * 128 * 128 * 3, 'in its middle');
      assertExactSlots(batches, size);
      const order = await client.getOrder(created.id);
      assert.equal(order.status, 'complete');
      assert.deepEqual(order.samples, { produced: size, delivered: size });
    } finally {
      proxied.close();
      await proxy.close();
    }
  });
});
