import type { BatchPlan } from '../domain/batch-plan.js';
import { recordBytes, type DatasetShape } from '../domain/dataset-shape.js';
import type { Render } from './encoded-batch.js';

/** Pixels per JSON chunk (about four times as many bytes of text); smaller chunks measured slower. */
const JSON_CHUNK_PIXEL_BYTES = 1024 * 1024;

/** Streams `prefix`, the samples as nested H×W×C arrays separated by commas, then `suffix`. */
export async function* jsonSampleChunks(plan: BatchPlan, render: Render, prefix: string, suffix: string): AsyncGenerator<Uint8Array> {
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

/** `[[[r,g,b],…],…]` written straight into bytes: JSON.stringify of nested arrays is far slower. */
export function uint8SampleJson(pixels: Uint8Array, shape: DatasetShape): Buffer {
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

function float32SampleJson(pixels: Uint8Array, shape: DatasetShape): string {
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
