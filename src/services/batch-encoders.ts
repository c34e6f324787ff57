import { recordBytes } from '../domain/dataset-shape.js';
import { safetensorsLayout, type TensorSpec } from '../domain/safetensors.js';
import type { BatchPlan } from './batch.service.js';

/** Fills `target` with the uint8 pixels of plan samples [start, start + count). */
export type Render = (start: number, count: number, target: Uint8Array) => Promise<void>;

/**
 * About 256 KiB of pixels per chunk. A larger buffer is a fresh memory mapping each time, and on
 * a virtual machine the first touch of each of its pages is a costly fault (4 MiB chunks spent
 * more time faulting than copying); buffers of this size are reused from the heap.
 */
const CHUNK_BYTES = 256 * 1024;
/** Pixels per JSON chunk (about four times as many bytes of text); smaller chunks measured slower. */
const JSON_CHUNK_PIXEL_BYTES = 1024 * 1024;

function samplesPerChunk(plan: BatchPlan, bytesPerValue: number): number {
  return Math.max(1, Math.floor(CHUNK_BYTES / (recordBytes(plan.dataset) * bytesPerValue)));
}

export function categoryMap(plan: Pick<BatchPlan, 'categories'>): Record<string, number> {
  return Object.fromEntries(plan.categories.map((category) => [category.name, category.index]));
}

export function labelIndexes(plan: BatchPlan): number[] {
  return plan.samples.map((sample) => sample.categoryIndex);
}

function tensorSpecs(plan: BatchPlan): TensorSpec[] {
  const { width, height, channels } = plan.dataset;
  const n = plan.samples.length;
  return [
    { name: 'data', dtype: plan.dtype === 'uint8' ? 'U8' : 'F32', shape: [n, height, width, channels] },
    plan.labels === 'index'
      ? { name: 'labels', dtype: 'I32', shape: [n] }
      : { name: 'labels', dtype: 'U8', shape: [n, plan.categories.length] },
  ];
}

export interface EncodedBatch {
  readonly contentLength?: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/**
 * A safetensors file streamed chunk by chunk: the header is computed from sizes alone, then
 * pixels are rendered a few hundred KiB at a time, so memory stays bounded whatever the batch size.
 */
export function encodeSafetensors(plan: BatchPlan, render: Render, extraMetadata: Record<string, string> = {}): EncodedBatch {
  const metadata = {
    ids: JSON.stringify(plan.samples.map((sample) => sample.id)),
    revision: String(plan.revision),
    seed: String(plan.seed),
    categories: JSON.stringify(categoryMap(plan)),
    dataset: plan.dataset.name,
    ...extraMetadata,
  };
  const layout = safetensorsLayout(tensorSpecs(plan), metadata);
  return { contentLength: layout.totalBytes, chunks: safetensorsChunks(plan, render, layout.head) };
}

async function* safetensorsChunks(plan: BatchPlan, render: Render, head: Buffer): AsyncGenerator<Uint8Array> {
  yield head;
  const record = recordBytes(plan.dataset);
  const float = plan.dtype === 'float32';
  const step = samplesPerChunk(plan, float ? 4 : 1);
  for (let start = 0; start < plan.samples.length; start += step) {
    const count = Math.min(step, plan.samples.length - start);
    const pixels = Buffer.allocUnsafe(count * record);
    await render(start, count, pixels);
    if (!float) {
      yield pixels;
      continue;
    }
    const values = new Float32Array(pixels.length);
    for (let i = 0; i < pixels.length; i++) values[i] = pixels[i] / 255;
    yield new Uint8Array(values.buffer);
  }
  yield labelBytes(plan);
}

function labelBytes(plan: BatchPlan): Uint8Array {
  const indexes = labelIndexes(plan);
  if (plan.labels === 'index') return new Uint8Array(Int32Array.from(indexes).buffer);
  const k = plan.categories.length;
  const onehot = new Uint8Array(indexes.length * k);
  indexes.forEach((index, row) => {
    onehot[row * k + index] = 1;
  });
  return onehot;
}

/** The JSON batch of the modern API; `data` comes last so it can be streamed sample by sample. */
export function encodeJson(plan: BatchPlan, render: Render, extra: Record<string, unknown> = {}): EncodedBatch {
  const { width, height, channels } = plan.dataset;
  const k = plan.categories.length;
  const labels = labelIndexes(plan).map((index) => (plan.labels === 'index' ? index : Array.from({ length: k }, (_, i) => (i === index ? 1 : 0))));
  const head = JSON.stringify({
    ids: plan.samples.map((sample) => sample.id),
    labels,
    shape: [plan.samples.length, height, width, channels],
    dtype: plan.dtype,
    revision: plan.revision,
    seed: plan.seed,
    categories: categoryMap(plan),
    augment: plan.augments,
    ...extra,
  });
  return { chunks: jsonChunks(plan, render, `${head.slice(0, -1)},"data":[`, ']}') };
}

/** Streams `prefix`, the samples as nested H×W×C arrays separated by commas, then `suffix`. */
export async function* jsonChunks(plan: BatchPlan, render: Render, prefix: string, suffix: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(prefix, 'utf8');
  const record = recordBytes(plan.dataset);
  const step = Math.max(1, Math.floor(JSON_CHUNK_PIXEL_BYTES / record));
  const pixels = Buffer.allocUnsafe(step * record);
  for (let start = 0; start < plan.samples.length; start += step) {
    const count = Math.min(step, plan.samples.length - start);
    await render(start, count, pixels);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const sample = pixels.subarray(i * record, (i + 1) * record);
      const text = plan.dtype === 'uint8' ? uint8SampleJson(sample, plan.dataset) : Buffer.from(float32SampleJson(sample, plan.dataset), 'utf8');
      parts.push(start + i === 0 ? text : Buffer.concat([COMMA, text]));
    }
    yield Buffer.concat(parts);
  }
  yield Buffer.from(suffix, 'utf8');
}

const COMMA = Buffer.from(',');
const BYTE_TEXT = Array.from({ length: 256 }, (_, value) => Buffer.from(String(value), 'ascii'));

interface Shape {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** `[[[r,g,b],…],…]` written straight into bytes: JSON.stringify of nested arrays is far slower. */
export function uint8SampleJson(pixels: Uint8Array, shape: Shape): Buffer {
  const { width, height, channels } = shape;
  const out = Buffer.allocUnsafe(pixels.length * 4 + width * height * 3 + height * 3 + 4);
  let at = 0;
  let p = 0;
  out[at++] = 0x5b;
  for (let y = 0; y < height; y++) {
    if (y > 0) out[at++] = 0x2c;
    out[at++] = 0x5b;
    for (let x = 0; x < width; x++) {
      if (x > 0) out[at++] = 0x2c;
      out[at++] = 0x5b;
      for (let c = 0; c < channels; c++) {
        if (c > 0) out[at++] = 0x2c;
        const digits = BYTE_TEXT[pixels[p++]];
        for (let d = 0; d < digits.length; d++) out[at++] = digits[d];
      }
      out[at++] = 0x5d;
    }
    out[at++] = 0x5d;
  }
  out[at++] = 0x5d;
  return out.subarray(0, at);
}

function float32SampleJson(pixels: Uint8Array, shape: Shape): string {
  const { width, height, channels } = shape;
  const rows: string[] = [];
  let p = 0;
  for (let y = 0; y < height; y++) {
    const cells: string[] = [];
    for (let x = 0; x < width; x++) {
      const values: number[] = [];
      for (let c = 0; c < channels; c++) values.push(FLOAT_OF_BYTE[pixels[p++]]);
      cells.push(`[${values.join(',')}]`);
    }
    rows.push(`[${cells.join(',')}]`);
  }
  return `[${rows.join(',')}]`;
}

/** The float32 value a byte becomes (v / 255 rounded to single precision), as JSON prints it. */
const FLOAT_OF_BYTE = Array.from({ length: 256 }, (_, value) => Math.fround(value / 255));
