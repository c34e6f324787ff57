import { categoryMap, labelIndexes, type BatchPlan } from '../domain/batch-plan.js';
import { recordBytes } from '../domain/dataset-shape.js';
import type { EncodedBatch, Render } from './encoded-batch.js';
import { safetensorsLayout, type TensorSpec } from './safetensors.js';

/**
 * About 256 KiB of pixels per chunk. A larger buffer is a fresh memory mapping each time, and on
 * a virtual machine the first touch of each of its pages is a costly fault (4 MiB chunks spent
 * more time faulting than copying); buffers of this size are reused from the heap.
 */
const CHUNK_BYTES = 256 * 1024;

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
  const step = Math.max(1, Math.floor(CHUNK_BYTES / (record * (float ? 4 : 1))));
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
