/**
 * The text of JSON batches, written from tables of value texts (a WebAssembly kernel for uint8
 * H×W×3, JavaScript for the rest): the very text JSON.stringify gives, whatever the values, the
 * shape, the layout and wherever a chunk ends; pooled chunks all come back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDENTITY } from '../../src/domain/augmentation.js';
import type { BatchPlan, Layout } from '../../src/domain/batch-plan.js';
import type { DatasetShape } from '../../src/domain/dataset-shape.js';
import { jsonSampleChunks, uint8SampleJson } from '../../src/formats/pixel-json.js';
import { chunkPoolStats, releaseChunk } from '../../src/lib/chunk-pool.js';

function planOf(shape: DatasetShape, count: number, layout: Layout = 'nhwc'): BatchPlan {
  return {
    dataset: { id: 1, name: 'd', ...shape },
    revision: 1,
    seed: 1,
    samples: Array.from({ length: count }, (_, i) => ({ id: i + 1, categoryIndex: 0, pixelSlot: i })),
    augments: Array.from({ length: count }, () => IDENTITY),
    categories: [{ name: 'a', index: 0 }],
    dtype: 'uint8',
    labels: 'index',
    layout,
  };
}

/** Sample i's values are those of `pixels` from i × record. */
function renderFrom(pixels: Uint8Array, record: number) {
  return async (start: number, count: number, target: Uint8Array) => {
    target.set(pixels.subarray(start * record, (start + count) * record));
  };
}

/** The samples as nested arrays in `layout`, as JSON.stringify prints them. */
function stringified(pixels: Uint8Array, shape: DatasetShape, count: number, layout: Layout): string {
  const { width, height, channels } = shape;
  const record = width * height * channels;
  const at = (n: number, y: number, x: number, c: number) => pixels[n * record + (y * width + x) * channels + c];
  const samples = Array.from({ length: count }, (_, n) =>
    layout === 'nchw'
      ? Array.from({ length: channels }, (_, c) => Array.from({ length: height }, (_, y) => Array.from({ length: width }, (_, x) => at(n, y, x, c))))
      : Array.from({ length: height }, (_, y) => Array.from({ length: width }, (_, x) => Array.from({ length: channels }, (_, c) => at(n, y, x, c)))),
  );
  return JSON.stringify({ data: samples });
}

/** The chunks as they come, each copied (and given back to the pool, as a response does). */
async function textChunks(plan: BatchPlan, pixels: Uint8Array): Promise<Buffer[]> {
  const record = plan.dataset.width * plan.dataset.height * plan.dataset.channels;
  const chunks: Buffer[] = [];
  for await (const chunk of jsonSampleChunks(plan, renderFrom(pixels, record), '{"data":[', ']}')) {
    chunks.push(Buffer.from(chunk));
    releaseChunk(chunk);
  }
  return chunks;
}

/** Pixels where every channel of every row and column position takes every value 0–255. */
function everyValue(shape: DatasetShape, count: number, salt: number): Uint8Array {
  const pixels = new Uint8Array(shape.width * shape.height * shape.channels * count);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + Math.floor(i / 256) * salt) & 0xff;
  return pixels;
}

describe('JSON batch text', () => {
  const shapes: { shape: DatasetShape; layout: Layout; what: string }[] = [
    { shape: { width: 16, height: 16, channels: 3 }, layout: 'nhwc', what: 'uint8 H×W×3 (the WebAssembly kernel)' },
    { shape: { width: 1, height: 1, channels: 3 }, layout: 'nhwc', what: 'a 1×1×3 sample' },
    { shape: { width: 9, height: 2, channels: 3 }, layout: 'nchw', what: 'channels first (JavaScript)' },
    { shape: { width: 16, height: 16, channels: 1 }, layout: 'nhwc', what: 'one channel (JavaScript)' },
    { shape: { width: 5, height: 7, channels: 1 }, layout: 'nchw', what: 'one channel, channels first' },
  ];
  for (const { shape, layout, what } of shapes) {
    it(`renders every byte value 0–255 exactly as JSON.stringify does: ${what}`, async () => {
      const count = Math.max(3, Math.ceil(256 / (shape.width * shape.height)) * 2);
      const pixels = everyValue(shape, count, 13);
      const seen = new Set(pixels);
      assert.equal(seen.size, 256);
      const text = Buffer.concat(await textChunks(planOf(shape, count, layout), pixels)).toString('latin1');
      assert.equal(text, stringified(pixels, shape, count, layout));
    });
  }

  it('a sample alone (legacy answers) is the same text as in a batch', () => {
    const shape: DatasetShape = { width: 16, height: 16, channels: 3 };
    const pixels = everyValue(shape, 1, 5);
    assert.equal(uint8SampleJson(pixels, shape).toString('latin1'), stringified(pixels, shape, 1, 'nhwc').slice('{"data":['.length, -2));
  });

  it('chunks end between whole samples, the text across them is unbroken, and only the first sample has no comma before it', async () => {
    // 100×100×3: 23 samples per chunk, so 60 samples end in a chunk of 14; values of 1, 2
    // and 3 digits everywhere so every chunk starts and ends at a different byte alignment.
    const shape: DatasetShape = { width: 100, height: 100, channels: 3 };
    const count = 60;
    const pixels = everyValue(shape, count, 101);
    const chunks = await textChunks(planOf(shape, count), pixels);
    assert.ok(chunks.length >= 5, `${chunks.length} chunks`);
    const text = Buffer.concat(chunks).toString('latin1');
    assert.equal(text, stringified(pixels, shape, count, 'nhwc'));
    const sampleChunks = chunks.slice(1, -1).map((chunk) => chunk.toString('latin1'));
    assert.ok(sampleChunks[0].startsWith('[[['));
    for (const chunk of sampleChunks.slice(1)) assert.ok(chunk.startsWith(',[[['), chunk.slice(0, 20));
    for (const chunk of sampleChunks) assert.ok(chunk.endsWith(']]]'), chunk.slice(-20));
    assert.equal(sampleChunks.join(',').split(',[[[').length, count, 'no sample is split between chunks');
  });

  it('the largest JSON batch the default limits allow (100×100×3, SENSORY_MAX_BATCH_BYTES 256 MiB) is every sample as its own text says', async () => {
    // The service refuses a JSON batch estimated above 256 MiB at 6 bytes a value: 1,491 samples.
    const shape: DatasetShape = { width: 100, height: 100, channels: 3 };
    const record = 30_000;
    const count = Math.floor((256 * 1024 * 1024) / (record * 6));
    const distinct = everyValue(shape, 7, 29);
    const render = async (start: number, n: number, target: Uint8Array) => {
      for (let i = 0; i < n; i++) target.set(distinct.subarray(((start + i) % 7) * record, (((start + i) % 7) + 1) * record), i * record);
    };
    const texts = Array.from({ length: 7 }, (_, k) => uint8SampleJson(distinct.subarray(k * record, (k + 1) * record), shape).toString('latin1'));
    const before = chunkPoolStats();
    let sample = 0;
    let bytes = 0;
    for await (const chunk of jsonSampleChunks(planOf(shape, count), render, '{"data":[', ']}')) {
      const text = Buffer.from(chunk).toString('latin1');
      releaseChunk(chunk);
      bytes += text.length;
      if (text.startsWith('{') || text === ']}') continue;
      for (const part of text.split(/,(?=\[\[\[)/)) {
        if (part === '') continue;
        assert.equal(part, texts[sample % 7], `sample ${sample}`);
        sample++;
      }
    }
    assert.equal(sample, count);
    assert.equal(bytes, '{"data":['.length + texts.reduce((sum, text) => sum + text.length, 0) * (count / 7) + count - 1 + 2);
    assert.equal(chunkPoolStats().lentBytes, before.lentBytes, 'every chunk came back');
    assert.ok(chunkPoolStats().madeBuffers - before.madeBuffers <= 3, 'chunks are reused, not made anew for each');
  });

  it('a reader that stops early gets every pooled chunk back (the encoder gives back what it holds)', async () => {
    const shape: DatasetShape = { width: 100, height: 100, channels: 3 };
    const pixels = everyValue(shape, 80, 3);
    const before = chunkPoolStats();
    for (let round = 0; round < 20; round++) {
      let taken = 0;
      for await (const chunk of jsonSampleChunks(planOf(shape, 80), renderFrom(pixels, 30_000), '[', ']')) {
        releaseChunk(chunk);
        if (++taken === 2 + (round % 3)) break;
      }
    }
    assert.equal(chunkPoolStats().lentBytes, before.lentBytes);
    assert.ok(chunkPoolStats().madeBuffers - before.madeBuffers <= 3, `${chunkPoolStats().madeBuffers - before.madeBuffers} buffers made for 20 readers`);
  });
});
