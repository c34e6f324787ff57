import type { BatchPlan, Dtype, Layout } from '../domain/batch-plan.js';
import { recordBytes, type DatasetShape } from '../domain/dataset-shape.js';
import { releaseChunk, takeChunk, takeWasmChunk } from '../lib/chunk-pool.js';
import type { Render } from './encoded-batch.js';
import { FLOAT_OF_BYTE, writeTensorValues } from './pixel-tensor.js';
import { rgbTextKernel, TABLES_BYTES } from './rgb-text.wasm.js';

/**
 * About 4 MiB per chunk, from the chunk pool (see batch-safetensors.encoder.ts), holding as many
 * whole samples as fit: reused, larger chunks mean fewer writes (1 MiB measured about 5 % more
 * CPU per batch). The text alone in JavaScript; the pixels and their text together in the
 * WebAssembly chunks, so those stay in the pool's 4 MiB size (8 MiB ones crowded out the
 * safetensors chunks and the other way round).
 */
const JSON_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The text of each byte value as JSON prints it (an integer for uint8, v / 255 in single
 * precision for float32), followed by ',' in one table and by ']' in the other: a value and the
 * separator after it are one table copy. uint8 texts are at most 4 bytes with the separator, so
 * each is one little-endian 32-bit store (the bytes past its length are overwritten next).
 */
interface ValueTexts {
  /** 256 entries of `stride` bytes: the value's text and ','. */
  readonly comma: Uint8Array;
  /** The same with ']'. */
  readonly close: Uint8Array;
  /** 32-bit words of `comma` and `close` (uint8 only). */
  readonly commaWord: Uint32Array;
  readonly closeWord: Uint32Array;
  /** Bytes of each entry, separator included. */
  readonly length: Uint8Array;
  readonly stride: number;
}

function valueTexts(print: (value: number) => string): ValueTexts {
  const texts = Array.from({ length: 256 }, (_, value) => Buffer.from(print(value), 'ascii'));
  const stride = Math.ceil((Math.max(...texts.map((text) => text.length)) + 1) / 4) * 4;
  const comma = new Uint8Array(256 * stride);
  const close = new Uint8Array(256 * stride);
  const length = new Uint8Array(256);
  texts.forEach((text, value) => {
    comma.set(text, value * stride);
    close.set(text, value * stride);
    comma[value * stride + text.length] = 0x2c;
    close[value * stride + text.length] = 0x5d;
    length[value] = text.length + 1;
  });
  const words = (table: Uint8Array) => Uint32Array.from({ length: 256 }, (_, value) => new DataView(table.buffer).getUint32(value * stride, true));
  return { comma, close, commaWord: words(comma), closeWord: words(close), length, stride };
}

const UINT8_TEXTS = valueTexts(String);
const FLOAT32_TEXTS = valueTexts((value) => String(FLOAT_OF_BYTE[value]));

const OPEN = 0x5b;
const CLOSE = 0x5d;
const COMMA = 0x2c;

/** The nested array dimensions of one sample: [H, W, C] or [C, H, W]. */
function sampleDims(shape: DatasetShape, layout: Layout | undefined): [number, number, number] {
  return layout === 'nchw' ? [shape.channels, shape.height, shape.width] : [shape.height, shape.width, shape.channels];
}

/** The most bytes one sample's text takes, with 4 bytes of slack for the last 32-bit store. */
function maxSampleText(dims: readonly [number, number, number], dtype: Dtype): number {
  const [a, b, c] = dims;
  const texts = dtype === 'uint8' ? UINT8_TEXTS : FLOAT32_TEXTS;
  return a * b * c * texts.stride + (a * b + a + 1) * 3 + 4;
}

const U8_COMMA = UINT8_TEXTS.commaWord;
const U8_CLOSE = UINT8_TEXTS.closeWord;
const U8_LENGTH = UINT8_TEXTS.length;

/**
 * writeSampleText for uint8 H×W×3, the common case, on its own and unrolled: measured twice as
 * fast as the general loop.
 */
function writeRgbSampleText(source: Uint8Array, offset: number, height: number, width: number, out: Buffer, view: DataView, at: number): number {
  let p = offset;
  out[at++] = OPEN;
  for (let y = 0; y < height; y++) {
    if (y > 0) out[at++] = COMMA;
    out[at++] = OPEN;
    for (let x = 0; x < width; x++) {
      if (x > 0) out[at++] = COMMA;
      out[at++] = OPEN;
      let value = source[p];
      view.setUint32(at, U8_COMMA[value], true);
      at += U8_LENGTH[value];
      value = source[p + 1];
      view.setUint32(at, U8_COMMA[value], true);
      at += U8_LENGTH[value];
      value = source[p + 2];
      view.setUint32(at, U8_CLOSE[value], true);
      at += U8_LENGTH[value];
      p += 3;
    }
    out[at++] = CLOSE;
  }
  out[at++] = CLOSE;
  return at;
}

/**
 * Writes one sample (values row-major in `dims` order, from `source` at `offset`) as nested
 * JSON arrays into `out` at `at`; returns where it ended.
 */
function writeSampleText(source: Uint8Array, offset: number, dims: readonly [number, number, number], dtype: Dtype, out: Buffer, view: DataView, at: number): number {
  const [a, b, c] = dims;
  if (dtype === 'uint8' && c === 3) return writeRgbSampleText(source, offset, a, b, out, view, at);
  let p = offset;
  out[at++] = OPEN;
  for (let i = 0; i < a; i++) {
    if (i > 0) out[at++] = COMMA;
    out[at++] = OPEN;
    for (let j = 0; j < b; j++) {
      if (j > 0) out[at++] = COMMA;
      out[at++] = OPEN;
      if (dtype === 'uint8') {
        const { commaWord, closeWord, length } = UINT8_TEXTS;
        for (let k = 1; k < c; k++) {
          const value = source[p++];
          view.setUint32(at, commaWord[value], true);
          at += length[value];
        }
        const value = source[p++];
        view.setUint32(at, closeWord[value], true);
        at += length[value];
      } else {
        const { comma, close, length, stride } = FLOAT32_TEXTS;
        for (let k = 0; k < c; k++) {
          const value = source[p++];
          const table = k === c - 1 ? close : comma;
          const from = value * stride;
          const n = length[value];
          for (let d = 0; d < n; d++) out[at + d] = table[from + d];
          at += n;
        }
      }
    }
    out[at++] = CLOSE;
  }
  out[at++] = CLOSE;
  return at;
}

/**
 * Streams `prefix`, the samples as nested arrays (H×W×C, or C×H×W channels first) separated by
 * commas, then `suffix`. Values are written straight into bytes from tables of their texts:
 * JSON.stringify of nested arrays is far slower. uint8 H×W×3 samples, the common case, are
 * written by a WebAssembly kernel (rgb-text.wasm.ts) into chunks over its memory, the pixels
 * rendered into the same memory just before the text; the rest, or when no such memory can be
 * had, in JavaScript. Chunks come from the chunk pool.
 */
export async function* jsonSampleChunks(plan: BatchPlan, render: Render, prefix: string, suffix: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(prefix, 'utf8');
  const record = recordBytes(plan.dataset);
  const dims = sampleDims(plan.dataset, plan.layout);
  const maxText = maxSampleText(dims, plan.dtype);
  const channelsFirst = plan.layout === 'nchw' && plan.dataset.channels > 1;
  const rgb = plan.dtype === 'uint8' && !channelsFirst && dims[2] === 3;
  const perSample = rgb ? record + maxText + 1 : maxText;
  const step = Math.max(1, Math.floor((JSON_CHUNK_BYTES - (rgb ? TABLES_BYTES + 64 : 0)) / perSample));
  let pixels: Buffer | undefined;
  const planes = channelsFirst ? takeChunk(record) : undefined;
  try {
    for (let start = 0; start < plan.samples.length; start += step) {
      const count = Math.min(step, plan.samples.length - start);
      const text = rgb ? await wasmRgbText(render, start, count, record, dims, maxText) : undefined;
      if (text) {
        yield text;
        continue;
      }
      pixels ??= takeChunk(Math.min(step, plan.samples.length) * record);
      await render(start, count, pixels);
      const out = takeChunk(count * (maxText + 1));
      const view = new DataView(out.buffer, out.byteOffset, out.length);
      let at = 0;
      for (let i = 0; i < count; i++) {
        if (start + i > 0) out[at++] = COMMA;
        if (planes) {
          writeTensorValues(pixels.subarray(i * record, (i + 1) * record), 1, plan.dataset, 'uint8', 'nchw', planes);
          at = writeSampleText(planes, 0, dims, plan.dtype, out, view, at);
        } else {
          at = writeSampleText(pixels, i * record, dims, plan.dtype, out, view, at);
        }
      }
      yield out.subarray(0, at);
    }
  } finally {
    if (pixels) releaseChunk(pixels);
    if (planes) releaseChunk(planes);
  }
  yield Buffer.from(suffix, 'utf8');
}

/**
 * Samples [start, start + count) of a uint8 H×W×3 batch as text (with the comma before each
 * but the very first), in one chunk over a WebAssembly memory: the tables, then the pixels,
 * then the text, which is the part returned. Undefined when no such chunk can be had.
 */
async function wasmRgbText(render: Render, start: number, count: number, record: number, dims: readonly [number, number, number], maxText: number): Promise<Buffer | undefined> {
  const pixelsAt = TABLES_BYTES;
  const textAt = pixelsAt + Math.ceil((count * record) / 64) * 64;
  const taken = takeWasmChunk(textAt + count * (maxText + 1));
  if (!taken) return undefined;
  const { chunk, memory } = taken;
  try {
    await render(start, count, chunk.subarray(pixelsAt, pixelsAt + count * record));
  } catch (error) {
    releaseChunk(chunk);
    throw error;
  }
  const [height, width] = dims;
  const end = rgbTextKernel(memory)(pixelsAt, textAt, height, width, count, start > 0 ? 1 : 0);
  return chunk.subarray(textAt, end);
}

/** One uint8 sample as `[[[r,g,b],…],…]` (H×W×C), in a buffer of its own. */
export function uint8SampleJson(pixels: Uint8Array, shape: DatasetShape): Buffer {
  const dims = sampleDims(shape, 'nhwc');
  const out = Buffer.allocUnsafe(maxSampleText(dims, 'uint8'));
  const end = writeSampleText(pixels, 0, dims, 'uint8', out, new DataView(out.buffer, out.byteOffset, out.length), 0);
  return out.subarray(0, end);
}
