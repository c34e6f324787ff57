import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { parseSafetensors, type ParsedSafetensors } from '@sensory/client';
import { warpInto } from '../../src/domain/augmentation.js';
import {
  addSample,
  createDataset,
  expectError,
  makePng,
  removeDir,
  seedDataset,
  startTestApp,
  type SampleView,
  type TestApp,
} from '../support/harness.js';

const SAFETENSORS = 'application/x-safetensors';

interface JsonBatch {
  ids: number[];
  labels: Array<number | number[]>;
  data: number[][][][];
  shape: [number, number, number, number];
  dtype: string;
  labelDtype?: string;
  layout: string;
  revision: number;
  categories: Record<string, number>;
  seed: number;
  augment: Array<{ rotation: number; scale: number }>;
}

async function batchResponse(t: TestApp, dataset: string, body: unknown, accept?: string, kind: 'admin' | 'read' = 'read') {
  return t.app.inject({
    method: 'POST',
    url: `/v1/datasets/${dataset}/batches`,
    headers: { ...t.auth(kind), ...(accept ? { accept } : {}) },
    payload: body as Record<string, unknown>,
  });
}

async function safetensorsBatch(t: TestApp, dataset: string, body: Record<string, unknown>): Promise<{ raw: Buffer; parsed: ParsedSafetensors; ids: number[] }> {
  const res = await batchResponse(t, dataset, body, SAFETENSORS);
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /application\/x-safetensors/);
  const raw = res.rawPayload;
  assert.equal(Number(res.headers['content-length']), raw.length);
  const parsed = parseSafetensors(raw);
  return { raw, parsed, ids: JSON.parse(parsed.metadata.ids) as number[] };
}

async function jsonBatch(t: TestApp, dataset: string, body: Record<string, unknown>): Promise<JsonBatch> {
  const res = await batchResponse(t, dataset, body);
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /application\/json/);
  return res.json() as JsonBatch;
}

function sampleBytes(parsed: ParsedSafetensors, index: number, recordBytes: number): Buffer {
  return parsed.tensors.data.data.subarray(index * recordBytes, (index + 1) * recordBytes);
}

function flattenNested(value: unknown): number[] {
  return (value as unknown[]).flat(Infinity as 1) as number[];
}

describe('POST /v1/datasets/{name}/batches', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  describe('pixels', () => {
    for (const channels of [3, 1] as const) {
      it(`serves the exact source pixels of ${channels}-channel images uploaded at the dataset size`, async () => {
        const name = `exact-${channels}`;
        const { samples, pixels } = await seedDataset(t, name, { width: 16, height: 12, channels }, 6, ['a', 'b']);
        const { parsed, ids } = await safetensorsBatch(t, name, { size: 6, seed: 7, noise: 0, dtype: 'uint8' });
        assert.deepEqual(parsed.tensors.data.shape, [6, 12, 16, channels]);
        assert.equal(parsed.tensors.data.dtype, 'U8');
        assert.deepEqual([...ids].sort((a, b) => a - b), samples.map((s) => s.id).sort((a, b) => a - b));
        const record = 16 * 12 * channels;
        ids.forEach((id, i) => {
          assert.ok(sampleBytes(parsed, i, record).equals(pixels.get(id)!), `sample ${id} differs from its source pixels`);
        });
        const labels = new Int32Array(Uint8Array.from(parsed.tensors.labels.data).buffer);
        ids.forEach((id, i) => assert.equal(labels[i], samples.find((s) => s.id === id)!.categoryIndex));
      });
    }

    it('stretches larger 3-channel images to the dataset size the way sharp does', async () => {
      const name = 'resized-3';
      await createDataset(t, name, { width: 16, height: 12, channels: 3 });
      const expected = new Map<number, Buffer>();
      for (let seed = 1; seed <= 4; seed++) {
        const png = await makePng(40, 30, 3, seed);
        const sample = await addSample(t, name, 'x', png);
        expected.set(sample.id, await sharp(png).resize(16, 12, { fit: 'fill' }).removeAlpha().raw().toBuffer());
      }
      const { parsed, ids } = await safetensorsBatch(t, name, { size: 4, seed: 1 });
      ids.forEach((id, i) => assert.ok(sampleBytes(parsed, i, 16 * 12 * 3).equals(expected.get(id)!), `sample ${id}`));
    });

    for (const sourceChannels of [1, 3] as const) {
      it(`stretches larger ${sourceChannels}-channel images into a 1-channel dataset as the imaging adapter does`, async () => {
        const name = `resized-1-from-${sourceChannels}`;
        await createDataset(t, name, { width: 16, height: 12, channels: 1 });
        const expected = new Map<number, Buffer>();
        for (let seed = 1; seed <= 4; seed++) {
          const png = await makePng(40, 30, sourceChannels, seed);
          const sample = await addSample(t, name, 'x', png);
          const reference = await sharp(png)
            .resize(16, 12, { fit: 'fill' })
            .flatten({ background: { r: 0, g: 0, b: 0 } })
            .greyscale()
            .raw()
            .toBuffer();
          assert.equal(reference.length, 16 * 12);
          expected.set(sample.id, reference);
        }
        const { parsed, ids } = await safetensorsBatch(t, name, { size: 4, seed: 1 });
        ids.forEach((id, i) => assert.ok(sampleBytes(parsed, i, 16 * 12).equals(expected.get(id)!), `sample ${id}`));
      });
    }
  });

  describe('formats', () => {
    const name = 'formats';
    let samples: SampleView[];
    before(async () => {
      ({ samples } = await seedDataset(t, name, { width: 8, height: 6, channels: 3 }, 9, ['cat', 'dog', 'eel']));
    });

    it('answers JSON by default with every documented field, data nested N×H×W×C equal to the safetensors bytes', async () => {
      const body = { size: 5, seed: 42, noise: 0.5 };
      const json = await jsonBatch(t, name, body);
      assert.deepEqual(
        Object.keys(json).sort(),
        ['augment', 'categories', 'data', 'dtype', 'ids', 'labelDtype', 'labels', 'layout', 'revision', 'seed', 'shape'].sort(),
      );
      assert.deepEqual(json.shape, [5, 6, 8, 3]);
      assert.equal(json.dtype, 'uint8');
      assert.equal(json.labelDtype, 'int32');
      assert.equal(json.layout, 'nhwc');
      assert.equal(json.seed, 42);
      assert.equal(json.revision, samples.at(-1)!.revision);
      assert.deepEqual(json.categories, { cat: 0, dog: 1, eel: 2 });
      assert.equal(json.ids.length, 5);
      assert.equal(json.augment.length, 5);
      assert.equal(json.data.length, 5);
      for (const sample of json.data) {
        assert.equal(sample.length, 6);
        for (const row of sample) {
          assert.equal(row.length, 8);
          for (const pixel of row) assert.equal(pixel.length, 3);
        }
      }
      json.ids.forEach((id, i) => assert.equal(json.labels[i], samples.find((s) => s.id === id)!.categoryIndex));

      const st = await safetensorsBatch(t, name, body);
      assert.deepEqual(st.ids, json.ids);
      assert.equal(st.parsed.metadata.revision, String(json.revision));
      assert.equal(st.parsed.metadata.seed, '42');
      assert.deepEqual(JSON.parse(st.parsed.metadata.categories), json.categories);
      assert.deepEqual(flattenNested(json.data), [...st.parsed.tensors.data.data]);
    });

    it('float32 is uint8 / 255 rounded to single precision, in both formats', async () => {
      const u8 = await safetensorsBatch(t, name, { size: 4, seed: 3, noise: 1 });
      const f32 = await safetensorsBatch(t, name, { size: 4, seed: 3, noise: 1, dtype: 'float32' });
      assert.equal(f32.parsed.tensors.data.dtype, 'F32');
      assert.deepEqual(f32.parsed.tensors.data.shape, [4, 6, 8, 3]);
      const bytes = Uint8Array.from(f32.parsed.tensors.data.data);
      const floats = new Float32Array(bytes.buffer);
      const expected = Float32Array.from(u8.parsed.tensors.data.data, (v) => v / 255);
      assert.deepEqual(floats, expected);

      const json = await jsonBatch(t, name, { size: 4, seed: 3, noise: 1, dtype: 'float32' });
      assert.equal(json.dtype, 'float32');
      assert.deepEqual(flattenNested(json.data), [...u8.parsed.tensors.data.data].map((v) => Math.fround(v / 255)));
    });

    it('labels as index (I32, N) or one-hot (U8, N×K)', async () => {
      const index = await safetensorsBatch(t, name, { size: 6, seed: 11 });
      assert.equal(index.parsed.tensors.labels.dtype, 'I32');
      assert.deepEqual(index.parsed.tensors.labels.shape, [6]);
      const indexes = [...new Int32Array(Uint8Array.from(index.parsed.tensors.labels.data).buffer)];
      assert.deepEqual(indexes, index.ids.map((id) => samples.find((s) => s.id === id)!.categoryIndex));

      const onehot = await safetensorsBatch(t, name, { size: 6, seed: 11, labels: 'onehot' });
      assert.equal(onehot.parsed.tensors.labels.dtype, 'U8');
      assert.deepEqual(onehot.parsed.tensors.labels.shape, [6, 3]);
      const expected = indexes.flatMap((i) => [0, 1, 2].map((k) => (k === i ? 1 : 0)));
      assert.deepEqual([...onehot.parsed.tensors.labels.data], expected);

      const json = await jsonBatch(t, name, { size: 6, seed: 11, labels: 'onehot' });
      assert.deepEqual(json.labels.flat(), expected);
      const jsonIndex = await jsonBatch(t, name, { size: 6, seed: 11 });
      assert.deepEqual(jsonIndex.labels, indexes);
    });

    it('one-hot labels have K = the number of categories at the revision asked for', async () => {
      const local = 'onehot-revision';
      await createDataset(t, local, { width: 4, height: 4, channels: 1 });
      const first = await addSample(t, local, 'a', await makePng(4, 4, 1, 1));
      await addSample(t, local, 'b', await makePng(4, 4, 1, 2));
      const pinned = await safetensorsBatch(t, local, { size: 1, seed: 1, labels: 'onehot', revision: first.revision });
      assert.deepEqual(pinned.parsed.tensors.labels.shape, [1, 1]);
      assert.deepEqual([...pinned.parsed.tensors.labels.data], [1]);
      assert.deepEqual(JSON.parse(pinned.parsed.metadata.categories), { a: 0 });
      const now = await safetensorsBatch(t, local, { size: 2, seed: 1, labels: 'onehot' });
      assert.deepEqual(now.parsed.tensors.labels.shape, [2, 2]);
    });
  });

  describe('determinism and augmentation', () => {
    const name = 'determinism';
    let pixels: Map<number, Buffer>;
    before(async () => {
      ({ pixels } = await seedDataset(t, name, { width: 12, height: 10, channels: 3 }, 12, ['a', 'b', 'c']));
    });

    for (const noise of [0, 1]) {
      it(`the same seed gives a byte-identical safetensors body (noise ${noise})`, async () => {
        const first = await safetensorsBatch(t, name, { size: 8, seed: 1234, noise });
        const second = await safetensorsBatch(t, name, { size: 8, seed: 1234, noise });
        assert.ok(first.raw.equals(second.raw));
        const json1 = await batchResponse(t, name, { size: 8, seed: 1234, noise });
        const json2 = await batchResponse(t, name, { size: 8, seed: 1234, noise });
        assert.equal(json1.body, json2.body);
      });
    }

    it('different seeds draw different selections', async () => {
      const selections = new Set<string>();
      for (const seed of [1, 2, 3, 4, 5]) selections.add(JSON.stringify((await safetensorsBatch(t, name, { size: 6, seed })).ids));
      assert.ok(selections.size >= 4, `five seeds gave only ${selections.size} distinct selections`);
    });

    it('without a seed, a random seed is chosen and reported; replaying it gives the same batch', async () => {
      const first = await safetensorsBatch(t, name, { size: 6, noise: 1 });
      const seed = Number(first.parsed.metadata.seed);
      assert.ok(Number.isSafeInteger(seed) && seed >= 0);
      const replay = await safetensorsBatch(t, name, { size: 6, noise: 1, seed });
      assert.ok(first.raw.equals(replay.raw));
    });

    it('noise 1 applies a rotation within ±10° and a scale within 0.7–1.5 to every sample, changing its pixels', async () => {
      const json = await jsonBatch(t, name, { size: 12, seed: 99, noise: 1 });
      for (const { rotation, scale } of json.augment) {
        assert.notEqual(rotation, 0);
        assert.notEqual(scale, 1);
        assert.ok(rotation >= -10 && rotation <= 10, `rotation ${rotation}`);
        assert.ok(scale >= 0.7 && scale <= 1.5, `scale ${scale}`);
      }
      const st = await safetensorsBatch(t, name, { size: 12, seed: 99, noise: 1 });
      assert.deepEqual(st.ids, json.ids);
      st.ids.forEach((id, i) => assert.ok(!sampleBytes(st.parsed, i, 12 * 10 * 3).equals(pixels.get(id)!), `sample ${id} was not augmented`));
    });

    it('noise 0 (and no noise) applies the identity to every sample', async () => {
      for (const body of [{ size: 12, seed: 5, noise: 0 }, { size: 12, seed: 5 }]) {
        const json = await jsonBatch(t, name, body);
        assert.deepEqual(json.augment, Array.from({ length: 12 }, () => ({ rotation: 0, scale: 1 })));
      }
    });

    it('a sample slot keeps its augmentation whatever the batch size (draws derive from seed and slot)', async () => {
      const small = await jsonBatch(t, name, { size: 3, seed: 77, noise: 1 });
      const large = await jsonBatch(t, name, { size: 9, seed: 77, noise: 1 });
      assert.deepEqual(large.augment.slice(0, 3), small.augment);
    });
  });

  describe('augmentation on warp threads (SENSORY_WARP_THREADS), chunks large enough for them', () => {
    const name = 'warp-threads';
    const shape = { width: 64, height: 48, channels: 3 } as const;
    const record = 64 * 48 * 3;
    let pixels: Map<number, Buffer>;
    // A service of its own, with warp threads (off by default).
    let threaded: TestApp;
    before(async () => {
      threaded = await startTestApp({ SENSORY_WARP_THREADS: '2' });
      ({ pixels } = await seedDataset(threaded, name, shape, 20, ['a', 'b']));
    });
    after(async () => {
      await threaded.close();
      removeDir(threaded.dataDir);
    });

    it('every sample is the warp of its stored pixels by its own augmentation, as safetensors and as JSON', async () => {
      // 20 records of 9,216 bytes: one chunk above the bound from which threads warp it.
      const json = await jsonBatch(threaded, name, { size: 20, seed: 31, noise: 1 });
      const st = await safetensorsBatch(threaded, name, { size: 20, seed: 31, noise: 1 });
      assert.deepEqual(st.ids, json.ids);
      assert.deepEqual(flattenNested(json.data), [...st.parsed.tensors.data.data]);
      st.ids.forEach((id, i) => {
        const expected = new Uint8Array(record);
        warpInto(pixels.get(id)!, shape, json.augment[i], expected, 0);
        assert.ok(sampleBytes(st.parsed, i, record).equals(expected), `sample ${id} (${JSON.stringify(json.augment[i])})`);
      });
      const again = await safetensorsBatch(threaded, name, { size: 20, seed: 31, noise: 1 });
      assert.ok(again.raw.equals(st.raw));
    });

    it('half the samples augmented (noise 0.5): the others are their stored pixels', async () => {
      const json = await jsonBatch(threaded, name, { size: 20, seed: 8, noise: 0.5 });
      const st = await safetensorsBatch(threaded, name, { size: 20, seed: 8, noise: 0.5 });
      st.ids.forEach((id, i) => {
        const expected = new Uint8Array(record);
        warpInto(pixels.get(id)!, shape, json.augment[i], expected, 0);
        assert.ok(sampleBytes(st.parsed, i, record).equals(expected), `sample ${id}`);
      });
    });
  });

  describe('sampling without replacement', () => {
    const name = 'sampling';
    let samples: SampleView[];
    before(async () => {
      ({ samples } = await seedDataset(t, name, { width: 4, height: 4, channels: 1 }, 10, ['a', 'b']));
    });

    it('never repeats a sample within a batch', async () => {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const { ids } = await safetensorsBatch(t, name, { size: 7, seed });
        assert.equal(new Set(ids).size, 7);
      }
    });

    it('a batch of the eligible count returns every sample once', async () => {
      const { ids } = await safetensorsBatch(t, name, { size: 10, seed: 3 });
      assert.deepEqual([...ids].sort((a, b) => a - b), samples.map((s) => s.id).sort((a, b) => a - b));
    });

    it('a size above the eligible count is a 422 naming both numbers', async () => {
      const message = expectError(await batchResponse(t, name, { size: 11, seed: 3 }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      assert.match(message, /\b11\b/);
      assert.match(message, /\b10\b/);
      const filtered = expectError(await batchResponse(t, name, { size: 6, categories: ['a'] }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      assert.match(filtered, /\b6\b/);
      assert.match(filtered, /\b5\b/);
    });
  });

  describe('train/test split', () => {
    it('splits by a stable hash: train and test are disjoint, cover everything, and never change as the dataset grows', async () => {
      const name = 'split';
      const { samples } = await seedDataset(t, name, { width: 6, height: 6, channels: 3, testPercent: 30 }, 24, ['a', 'b']);
      const train = samples.filter((s) => s.split === 'train').map((s) => s.id).sort((a, b) => a - b);
      const test = samples.filter((s) => s.split === 'test').map((s) => s.id).sort((a, b) => a - b);
      assert.ok(train.length > 0 && test.length > 0, `train ${train.length}, test ${test.length}`);

      const trainBatch = (await safetensorsBatch(t, name, { size: train.length, split: 'train', seed: 1 })).ids.sort((a, b) => a - b);
      const testBatch = (await safetensorsBatch(t, name, { size: test.length, split: 'test', seed: 1 })).ids.sort((a, b) => a - b);
      assert.deepEqual(trainBatch, train);
      assert.deepEqual(testBatch, test);
      assert.equal(trainBatch.filter((id) => testBatch.includes(id)).length, 0);
      assert.equal(trainBatch.length + testBatch.length, samples.length);
      expectError(await batchResponse(t, name, { size: train.length + 1, split: 'train' }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      expectError(await batchResponse(t, name, { size: test.length + 1, split: 'test' }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');

      const more: SampleView[] = [];
      for (let seed = 100; seed < 120; seed++) more.push(await addSample(t, name, 'c', await makePng(6, 6, 3, seed)));
      const train2 = [...train, ...more.filter((s) => s.split === 'train').map((s) => s.id)].sort((a, b) => a - b);
      const test2 = [...test, ...more.filter((s) => s.split === 'test').map((s) => s.id)].sort((a, b) => a - b);
      const trainAfter = (await safetensorsBatch(t, name, { size: train2.length, split: 'train', seed: 2 })).ids.sort((a, b) => a - b);
      const testAfter = (await safetensorsBatch(t, name, { size: test2.length, split: 'test', seed: 2 })).ids.sort((a, b) => a - b);
      assert.deepEqual(trainAfter, train2);
      assert.deepEqual(testAfter, test2);
      for (const id of train) assert.ok(trainAfter.includes(id), `sample ${id} left the train split`);
      for (const id of test) assert.ok(testAfter.includes(id), `sample ${id} left the test split`);

      const all = (await safetensorsBatch(t, name, { size: samples.length + more.length, split: 'all', seed: 2 })).ids;
      assert.equal(all.length, train2.length + test2.length);
    });
  });

  describe('categories and balance', () => {
    const name = 'categories';
    let samples: SampleView[];
    before(async () => {
      // a: 6 samples, b: 3, c: 3
      ({ samples } = await seedDataset(t, name, { width: 4, height: 4, channels: 3 }, 12, ['a', 'b', 'a', 'c']));
    });

    it('draws only from the categories asked for', async () => {
      const json = await jsonBatch(t, name, { size: 9, seed: 4, categories: ['a', 'c'] });
      const allowed = new Set(samples.filter((s) => s.category === 'a' || s.category === 'c').map((s) => s.id));
      assert.equal(allowed.size, 9);
      assert.deepEqual(new Set(json.ids), allowed);
      assert.deepEqual(new Set(json.labels), new Set([json.categories.a, json.categories.c]));
      // The category map still lists every category, so indices keep their meaning.
      assert.deepEqual(json.categories, { a: 0, b: 1, c: 2 });
    });

    it('an unknown category is a 422', async () => {
      const message = expectError(await batchResponse(t, name, { size: 1, categories: ['a', 'zebra'] }), 422, 'SENSORY_ERR_UNKNOWN_CATEGORY');
      assert.match(message, /zebra/);
    });

    it('an invalid category name is a 400', async () => {
      expectError(await batchResponse(t, name, { size: 1, categories: ['../a'] }), 400, 'SENSORY_ERR_INVALID_NAME');
    });

    it('balance: true draws the same number from every eligible category', async () => {
      for (const seed of [1, 2, 3]) {
        const json = await jsonBatch(t, name, { size: 9, seed, balance: true });
        const counts = new Map<number, number>();
        for (const label of json.labels as number[]) counts.set(label, (counts.get(label) ?? 0) + 1);
        assert.deepEqual([...counts.entries()].sort(), [[0, 3], [1, 3], [2, 3]]);
        assert.equal(new Set(json.ids).size, 9);
      }
      const filtered = await jsonBatch(t, name, { size: 6, seed: 1, balance: true, categories: ['a', 'b'] });
      assert.deepEqual((filtered.labels as number[]).filter((l) => l === 0).length, 3);
      assert.deepEqual((filtered.labels as number[]).filter((l) => l === 1).length, 3);
    });

    it('balance: true with a size that does not divide evenly, or a category too small, is a 422', async () => {
      const message = expectError(await batchResponse(t, name, { size: 10, balance: true }), 422, 'SENSORY_ERR_UNBALANCEABLE');
      assert.match(message, /\b10\b/);
      expectError(await batchResponse(t, name, { size: 12, balance: true }), 422, 'SENSORY_ERR_UNBALANCEABLE');
    });
  });

  describe('revision pinning', () => {
    it('a batch pinned to revision R is byte-identical after relabels, deletes and adds', async () => {
      const name = 'pinning';
      const { samples } = await seedDataset(t, name, { width: 5, height: 7, channels: 3 }, 8, ['a', 'b']);
      const r = samples.at(-1)!.revision;
      const bodies = [0, 1].flatMap((noise) => ['index', 'onehot'].map((labels) => ({ size: 8, seed: 21, noise, labels })));
      const before: Array<{ raw: Buffer; json: string }> = [];
      for (const body of bodies) {
        const st = await safetensorsBatch(t, name, body);
        assert.equal(st.parsed.metadata.revision, String(r));
        before.push({ raw: st.raw, json: (await batchResponse(t, name, body)).body });
      }

      const relabel = await t.app.inject({
        method: 'PATCH',
        url: `/v1/datasets/${name}/samples/${samples[0].id}`,
        headers: t.auth('admin'),
        payload: { category: 'c' },
      });
      assert.equal(relabel.statusCode, 200, relabel.body);
      const del = await t.app.inject({ method: 'DELETE', url: `/v1/datasets/${name}/samples/${samples[1].id}`, headers: t.auth('admin') });
      assert.equal(del.statusCode, 200, del.body);
      await addSample(t, name, 'd', await makePng(5, 7, 3, 500));

      for (const [i, body] of bodies.entries()) {
        const pinned = await safetensorsBatch(t, name, { ...body, revision: r });
        assert.ok(pinned.raw.equals(before[i].raw), `${JSON.stringify(body)}: the pinned batch changed`);
        const pinnedJson = await batchResponse(t, name, { ...body, revision: r });
        assert.equal(pinnedJson.body, before[i].json);
      }
      // Category filters apply the labels as they were at the revision asked for.
      const inA = samples.filter((s) => s.category === 'a').map((s) => s.id).sort((x, y) => x - y);
      const pinnedA = await jsonBatch(t, name, { size: inA.length, seed: 1, categories: ['a'], revision: r });
      assert.deepEqual([...pinnedA.ids].sort((x, y) => x - y), inA);
      const currentA = await jsonBatch(t, name, { size: inA.length - 1, seed: 1, categories: ['a'] });
      assert.ok(!currentA.ids.includes(samples[0].id), 'the relabelled sample is still drawn as a');
      expectError(await batchResponse(t, name, { size: inA.length, categories: ['a'] }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      // A category that appeared after R does not exist at R.
      expectError(await batchResponse(t, name, { size: 1, categories: ['c'], revision: r }), 422, 'SENSORY_ERR_UNKNOWN_CATEGORY');
      assert.deepEqual((await jsonBatch(t, name, { size: 1, categories: ['c'] })).ids, [samples[0].id]);

      // The current revision sees the changes: 8 live samples, the relabelled one in c.
      const now = await jsonBatch(t, name, { size: 8, seed: 21 });
      assert.equal(now.revision, r + 3);
      assert.ok(!now.ids.includes(samples[1].id));
      assert.equal(now.labels[now.ids.indexOf(samples[0].id)], now.categories.c);
      assert.deepEqual(now.categories, { a: 0, b: 1, c: 2, d: 3 });
      expectError(await batchResponse(t, name, { size: 9 }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
    });

    it('a revision above the current one is a 422', async () => {
      const name = 'pinning-unknown';
      const { samples } = await seedDataset(t, name, { width: 3, height: 3, channels: 1 }, 2, ['a']);
      const current = samples.at(-1)!.revision;
      await jsonBatch(t, name, { size: 1, revision: current });
      const message = expectError(await batchResponse(t, name, { size: 1, revision: current + 1 }), 422, 'SENSORY_ERR_UNKNOWN_REVISION');
      assert.match(message, new RegExp(`\\b${current + 1}\\b`));
    });

    it('revision 0 of a dataset has no samples', async () => {
      const name = 'pinning-zero';
      await seedDataset(t, name, { width: 3, height: 3, channels: 1 }, 1, ['a']);
      expectError(await batchResponse(t, name, { size: 1, revision: 0 }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
    });
  });

  describe('wrong requests', () => {
    const name = 'wrong';
    before(async () => {
      await seedDataset(t, name, { width: 3, height: 3, channels: 1 }, 3, ['a']);
    });

    const badBodies: Array<[string, unknown]> = [
      ['size 0', { size: 0 }],
      ['size "5"', { size: '5' }],
      ['size 1.5', { size: 1.5 }],
      ['no size', { seed: 1 }],
      ['noise 1.5', { size: 1, noise: 1.5 }],
      ['noise -0.1', { size: 1, noise: -0.1 }],
      ['seed -1', { size: 1, seed: -1 }],
      ['seed 1.5', { size: 1, seed: 1.5 }],
      ['seed above 2^53 - 1', { size: 1, seed: 2 ** 53 }],
      ['split "foo"', { size: 1, split: 'foo' }],
      ['dtype "int16"', { size: 1, dtype: 'int16' }],
      ['labels "x"', { size: 1, labels: 'x' }],
      ['an unknown field', { size: 1, colour: 'red' }],
      ['categories []', { size: 1, categories: [] }],
      ['balance "yes"', { size: 1, balance: 'yes' }],
      ['revision -1', { size: 1, revision: -1 }],
    ];
    for (const [label, body] of badBodies) {
      it(`${label} is a 400`, async () => {
        expectError(await batchResponse(t, name, body), 400, 'SENSORY_ERR_BAD_REQUEST');
      });
    }

    it('the largest seed is accepted', async () => {
      const json = await jsonBatch(t, name, { size: 2, seed: Number.MAX_SAFE_INTEGER, noise: 1 });
      assert.equal(json.seed, Number.MAX_SAFE_INTEGER);
    });

    it('errors are JSON even when safetensors was asked for', async () => {
      const res = await batchResponse(t, name, { size: 4 }, SAFETENSORS);
      expectError(res, 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      assert.match(String(res.headers['content-type']), /application\/json/);
    });

    it('a body that is not JSON is a 400', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/batches`,
        headers: { ...t.auth('read'), 'content-type': 'application/json' },
        payload: '{"size": ',
      });
      expectError(res, 400);
    });

    it('no key is a 401, an unknown key a 401, a write-only key a 403', async () => {
      const noKey = await t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/batches`, payload: { size: 1 } });
      expectError(noKey, 401, 'SENSORY_ERR_UNAUTHORIZED');
      const unknown = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/batches`,
        headers: { 'api-access-key': 'not-a-known-key-at-all' },
        payload: { size: 1 },
      });
      expectError(unknown, 401, 'SENSORY_ERR_UNAUTHORIZED');
      const writeOnly = await t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/batches`, headers: t.auth('write'), payload: { size: 1 } });
      expectError(writeOnly, 403, 'SENSORY_ERR_FORBIDDEN');
      const bearer = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/batches`,
        headers: { authorization: `Bearer ${t.auth('read')['api-access-key']}` },
        payload: { size: 1 },
      });
      assert.equal(bearer.statusCode, 200, bearer.body);
    });

    it('an unknown dataset is a 404, an invalid dataset name a 400', async () => {
      expectError(await batchResponse(t, 'no-such-dataset', { size: 1 }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      expectError(await batchResponse(t, '.hidden', { size: 1 }), 400, 'SENSORY_ERR_INVALID_NAME');
    });
  });
});

describe('small batches above SENSORY_MAX_BATCH_SAMPLES', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SENSORY_MAX_BATCH_SAMPLES: '8' });
    await seedDataset(t, 'big', { width: 6, height: 6, channels: 1 }, 10, ['a']);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  it('are a 413 pointing to batch orders', async () => {
    await jsonBatch(t, 'big', { size: 8, seed: 1 });
    const message = expectError(await batchResponse(t, 'big', { size: 9, seed: 1 }), 413, 'SENSORY_ERR_BATCH_TOO_LARGE');
    assert.match(message, /order/i);
    assert.match(message, /\b8\b/);
    assert.match(message, /SENSORY_MAX_BATCH_SAMPLES/);
  });
});
