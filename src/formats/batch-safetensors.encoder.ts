import { categoryMap, dataShape, type BatchPlan } from '../domain/batch-plan.js';
import { recordBytes } from '../domain/dataset-shape.js';
import { releaseChunk, takeChunk } from '../lib/chunk-pool.js';
import type { EncodedBatch, PixelViews, Render, TakeTarget } from './encoded-batch.js';
import { isRecordLayout, valueBytes, writeTensorValues } from './pixel-tensor.js';
import { safetensorsLayout, type TensorSpec } from './safetensors.js';

/**
 * About 1 MiB of tensor bytes per chunk. Chunks come from the chunk pool and go back to it once
 * sent, so their pages are touched once, not once per batch; fewer, larger writes then cost
 * less than many small ones (256 KiB chunks measured slower).
 */
const CHUNK_BYTES = 1024 * 1024;

function tensorSpecs(plan: BatchPlan): TensorSpec[] {
  const n = plan.samples.length;
  return [
    { name: 'data', dtype: plan.dtype === 'uint8' ? 'U8' : 'F32', shape: dataShape(plan) },
    plan.labels === 'index'
      ? { name: 'labels', dtype: plan.labelDtype === 'int64' ? 'I64' : 'I32', shape: [n] }
      : { name: 'labels', dtype: 'U8', shape: [n, plan.categories.length] },
  ];
}

/**
 * A safetensors file streamed chunk by chunk: the header is computed from sizes alone, then
 * pixels are rendered about a MiB at a time, so memory stays bounded whatever the batch size.
 * A chunk may come from the chunk pool: a consumer done with one may give it back
 * (releaseChunk), and must not read it after that. `takeTarget` makes the chunks that `render`
 * fills directly, in the records' own layout (takeChunk by default).
 */
export function encodeSafetensors(
  plan: BatchPlan,
  render: Render,
  extraMetadata: Record<string, string> = {},
  views?: PixelViews,
  takeTarget: TakeTarget = takeChunk,
): EncodedBatch {
  const metadata = {
    ids: JSON.stringify(plan.samples.map((sample) => sample.id)),
    revision: String(plan.revision),
    seed: String(plan.seed),
    categories: JSON.stringify(categoryMap(plan)),
    dataset: plan.dataset.name,
    layout: plan.layout ?? 'nhwc',
    ...extraMetadata,
  };
  const layout = safetensorsLayout(tensorSpecs(plan), metadata);
  return { contentLength: layout.totalBytes, chunks: safetensorsChunks(plan, render, layout.head, views, takeTarget) };
}

async function* safetensorsChunks(plan: BatchPlan, render: Render, head: Buffer, views: PixelViews | undefined, takeTarget: TakeTarget): AsyncGenerator<Uint8Array> {
  yield head;
  const record = recordBytes(plan.dataset);
  const tensorRecord = record * valueBytes(plan.dtype);
  const step = Math.max(1, Math.floor(CHUNK_BYTES / tensorRecord));
  const direct = isRecordLayout(plan.dtype, plan.layout, plan.dataset);
  if (direct && views) {
    // The records are in memory already, in the tensor's layout: sent as they are.
    yield* views();
    yield labelBytes(plan);
    return;
  }
  if (direct) {
    yield* directChunks(plan, render, step, tensorRecord, takeTarget);
    yield labelBytes(plan);
    return;
  }
  // Converted tensors (float32, channels first) are rendered here first, then written out.
  const staging = takeChunk(Math.min(step, plan.samples.length) * record);
  try {
    for (let start = 0; start < plan.samples.length; start += step) {
      const count = Math.min(step, plan.samples.length - start);
      const chunk = takeChunk(count * tensorRecord);
      await render(start, count, staging);
      writeTensorValues(staging, count, plan.dataset, plan.dtype, plan.layout, chunk);
      yield chunk;
    }
  } finally {
    releaseChunk(staging);
  }
  yield labelBytes(plan);
}

/**
 * Record-layout chunks, each rendered while the one before it is sent: where rendering waits on
 * something else (warps on worker threads), the event loop writes the previous chunk meanwhile.
 */
async function* directChunks(plan: BatchPlan, render: Render, step: number, tensorRecord: number, takeTarget: TakeTarget): AsyncGenerator<Uint8Array> {
  const n = plan.samples.length;
  const renderAt = (start: number): Promise<Uint8Array> => {
    const count = Math.min(step, n - start);
    const chunk = takeTarget(count * tensorRecord);
    const rendered = render(start, count, chunk).then(
      () => chunk,
      (error: unknown) => {
        releaseChunk(chunk);
        throw error;
      },
    );
    // Awaited below, or in the finally block when the reader stops first.
    rendered.catch(() => undefined);
    return rendered;
  };
  let next: Promise<Uint8Array> | undefined = n > 0 ? renderAt(0) : undefined;
  try {
    for (let start = 0; start < n; start += step) {
      const chunk: Uint8Array = await next!;
      next = start + step < n ? renderAt(start + step) : undefined;
      yield chunk;
    }
  } finally {
    if (next) await next.then(releaseChunk, () => undefined);
  }
}

function labelBytes(plan: BatchPlan): Uint8Array {
  const samples = plan.samples;
  const n = samples.length;
  if (plan.labels === 'index') {
    // int64 as two little-endian int32 words: indexes are never negative, so the high word is 0.
    const words = plan.labelDtype === 'int64' ? 2 : 1;
    const out = new Int32Array(n * words);
    for (let i = 0; i < n; i++) out[i * words] = samples[i].categoryIndex;
    return new Uint8Array(out.buffer);
  }
  const k = plan.categories.length;
  const onehot = new Uint8Array(n * k);
  for (let row = 0; row < n; row++) onehot[row * k + samples[row].categoryIndex] = 1;
  return onehot;
}
