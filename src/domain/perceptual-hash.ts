/**
 * The perceptual hash of a sample's stored pixels (pHash): the pixels to grey, resampled to 32×32
 * (the mean of the pixels falling in each cell when shrinking, area weights when growing), a 2-D DCT-II of which the 8×8 lowest frequencies are kept, and one bit per
 * coefficient: above the median of the 64, or not. Images that look alike (resized, re-encoded,
 * slightly shifted or recoloured) get hashes a few bits apart; different images about 32 apart.
 *
 * A hash is 64 bits, written as 16 lowercase hex digits (bit 63 first: the DC coefficient), and
 * handled in code as two unsigned 32-bit words. No I/O: the same pixels always give the same hash.
 */
import { PERCEPTUAL_HASH_WASM_BASE64 } from './perceptual-hash.wasm.js';

export interface HashedShape {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** 16 lowercase hex digits. */
export type PerceptualHash = string;

export const HASH_BITS = 64;
const SIDE = 32;
const LOW = 8;

/**
 * Area weights of a resample from `source` pixels to SIDE, by source pixel: pixel i adds
 * `weights[k] × value` to output `outputs[k]` for k in starts[i] … starts[i + 1] (two outputs at
 * most when shrinking, a few when growing). Scattering from each source pixel reads the pixels
 * once, in order.
 */
interface AreaWeights {
  readonly starts: Int32Array;
  readonly outputs: Int32Array;
  readonly weights: Float64Array;
}

const weightCache = new Map<number, AreaWeights>();

/** Each output cell covers source/SIDE source pixels: every source pixel weighs by its overlap (works up and down). */
function areaWeights(source: number): AreaWeights {
  const cached = weightCache.get(source);
  if (cached) return cached;
  const step = source / SIDE;
  const starts = new Int32Array(source + 1);
  const outputs: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < source; i++) {
    starts[i] = outputs.length;
    const first = Math.floor(i / step);
    for (let o = first; o < SIDE && o * step < i + 1; o++) {
      const overlap = Math.min((o + 1) * step, i + 1) - Math.max(o * step, i);
      if (overlap > 0) {
        outputs.push(o);
        weights.push(overlap / step);
      }
    }
  }
  starts[source] = outputs.length;
  const table = { starts, outputs: Int32Array.from(outputs), weights: Float64Array.from(weights) };
  if (weightCache.size < 64) weightCache.set(source, table);
  return table;
}

/** cos((2x + 1) u π / 64) for u < 8, x < 32: the DCT-II rows of the low frequencies. */
const COS = (() => {
  const table = new Float64Array(LOW * SIDE);
  for (let u = 0; u < LOW; u++) for (let x = 0; x < SIDE; x++) table[u * SIDE + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SIDE));
  return table;
})();

const ACROSS = new Float64Array(SIDE);
const IMAGE = new Float64Array(SIDE * SIDE);
const HALF = new Float64Array(SIDE * LOW);
const EVEN = new Float64Array(SIDE / 2);
const ODD = new Float64Array(SIDE / 2);
const COEFFICIENTS = new Float64Array(LOW * LOW);
const SORTED = new Float64Array(LOW * LOW);

/** The hash of H×W×C uint8 pixels (C = 1 or 3; 3 is read as RGB). */
export function perceptualHash(pixels: Uint8Array, shape: HashedShape): PerceptualHash {
  const { hi, lo } = perceptualHashWords(pixels, shape);
  return formatHash(hi, lo);
}

/** The hash as two unsigned 32-bit words. */
export function perceptualHashWords(pixels: Uint8Array, shape: HashedShape): { hi: number; lo: number } {
  return hashWords(pixels, shape, true);
}

/** perceptualHashWords with the JavaScript resample only: what the module's hashes are checked against. */
export function perceptualHashWordsInJs(pixels: Uint8Array, shape: HashedShape): { hi: number; lo: number } {
  return hashWords(pixels, shape, false);
}

function hashWords(pixels: Uint8Array, shape: HashedShape, rgbModule: boolean): { hi: number; lo: number } {
  const { width, height, channels } = shape;
  if (pixels.length !== width * height * channels) throw new Error(`expected ${width * height * channels} pixel bytes, got ${pixels.length}`);
  const image = IMAGE.fill(0);
  if (width >= SIDE && height >= SIDE) {
    if (!(rgbModule && channels === 3 && boxResampleRgbModule(pixels, width, height, image))) boxResample(pixels, width, height, channels, image);
  } else areaResample(pixels, width, height, channels, image);
  return hashOf32(image);
}

/**
 * Output cell of each source pixel when shrinking (cell o holds x in [o·n/32, (o+1)·n/32)), each
 * cell's first pixel (and n after the last), and each cell's pixel count.
 */
interface Bins {
  readonly cell: Int32Array;
  readonly starts: Int32Array;
  readonly count: Float64Array;
}

const binCache = new Map<number, Bins>();

function bins(source: number): Bins {
  let found = binCache.get(source);
  if (!found) {
    const cell = new Int32Array(source);
    const starts = new Int32Array(SIDE + 1);
    const count = new Float64Array(SIDE);
    for (let i = 0; i < source; i++) {
      cell[i] = Math.floor((i * SIDE) / source);
      count[cell[i]]++;
    }
    for (let o = 0; o < SIDE; o++) starts[o + 1] = starts[o] + count[o];
    found = { cell, starts, count };
    if (binCache.size < 64) binCache.set(source, found);
  }
  return found;
}

/**
 * Shrinking: the mean grey of each cell's pixels, every pixel in the one cell its position falls
 * in. Integer luma (× 65,536: the bits compare coefficients with their median, so a common scale
 * changes nothing) and one add per pixel: this is most of the hash's cost.
 */
function boxResample(pixels: Uint8Array, width: number, height: number, channels: number, image: Float64Array): void {
  const bx = bins(width);
  const by = bins(height);
  const across = ACROSS;
  const cellX = bx.cell;
  for (let y = 0; y < height; y++) {
    across.fill(0);
    const base = y * width * channels;
    if (channels === 3) {
      for (let x = 0, p = base; x < width; x++, p += 3) across[cellX[x]] += 19595 * pixels[p] + 38470 * pixels[p + 1] + 7471 * pixels[p + 2];
    } else {
      for (let x = 0, p = base; x < width; x++, p += channels) across[cellX[x]] += pixels[p];
    }
    const row = by.cell[y] * SIDE;
    for (let x = 0; x < SIDE; x++) image[row + x] += across[x];
  }
  for (let o = 0; o < SIDE; o++) for (let x = 0; x < SIDE; x++) image[o * SIDE + x] /= by.count[o] * bx.count[x];
}

interface BoxRgbExports {
  readonly memory: WebAssembly.Memory;
  box_rgb(pixels: number, width: number, height: number, starts: number, rowCells: number, sums: number): void;
}

/** The compiled resample (perceptual-hash.wat), made on first use; null where WebAssembly is missing. */
let boxRgb: BoxRgbExports | null | undefined;

function boxRgbExports(): BoxRgbExports | null {
  if (boxRgb === undefined) {
    try {
      boxRgb = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(PERCEPTUAL_HASH_WASM_BASE64, 'base64')), {}).exports as unknown as BoxRgbExports;
    } catch {
      boxRgb = null;
    }
  }
  return boxRgb;
}

/** Where the module's memory holds the cell sums, the cell starts, each row's cell row, then the pixels. */
const SUMS_AT = 0;
const STARTS_AT = SIDE * SIDE * 3 * 4;
const ROW_CELLS_AT = STARTS_AT + 256;

/** Pixels in a cell at most, for the module's 32-bit sums (255 × this < 2^31). */
const MODULE_CELL_PIXELS = 8_000_000;

/** The module's memory at most (it never shrinks): larger samples take the JavaScript resample. */
const MODULE_MAX_BYTES = 16 * 1024 * 1024;

/**
 * boxResample for 3 channels in WebAssembly: the module sums each cell's red, green and blue
 * (in locals along a row, with no bounds check: about a quarter of the JavaScript loop's time on
 * a 100×100 sample), and the cell's grey is 19595 r + 38470 g + 7471 b, the same integer as the
 * JavaScript loop's sum of each pixel's luma. False where the module cannot take the pixels
 * (no WebAssembly, cells too large for its sums, more than 16 MiB of them, no memory for them):
 * the caller then resamples.
 */
function boxResampleRgbModule(pixels: Uint8Array, width: number, height: number, image: Float64Array): boolean {
  if (Math.ceil(width / SIDE) * Math.ceil(height / SIDE) > MODULE_CELL_PIXELS) return false;
  const module = boxRgbExports();
  if (!module) return false;
  const pixelsAt = ROW_CELLS_AT + height * 4;
  const needed = pixelsAt + pixels.length;
  if (needed > MODULE_MAX_BYTES) return false;
  try {
    const have = module.memory.buffer.byteLength;
    if (have < needed) module.memory.grow(Math.ceil((needed - have) / 65536));
  } catch {
    return false;
  }
  const bx = bins(width);
  const by = bins(height);
  const buffer = module.memory.buffer;
  const words = new Int32Array(buffer, 0, ROW_CELLS_AT / 4 + height);
  words.fill(0, SUMS_AT / 4, SUMS_AT / 4 + SIDE * SIDE * 3);
  words.set(bx.starts, STARTS_AT / 4);
  words.set(by.cell, ROW_CELLS_AT / 4);
  new Uint8Array(buffer, pixelsAt, pixels.length).set(pixels);
  module.box_rgb(pixelsAt, width, height, STARTS_AT, ROW_CELLS_AT, SUMS_AT);
  for (let o = 0; o < SIDE; o++) {
    for (let x = 0; x < SIDE; x++) {
      const at = SUMS_AT / 4 + (o * SIDE + x) * 3;
      image[o * SIDE + x] = (19595 * words[at] + 38470 * words[at + 1] + 7471 * words[at + 2]) / (by.count[o] * bx.count[x]);
    }
  }
  return true;
}

/** Growing (a side under 32 pixels): area weights, a source pixel shared by the cells it overlaps. */
function areaResample(pixels: Uint8Array, width: number, height: number, channels: number, image: Float64Array): void {
  const wx = areaWeights(width);
  const wy = areaWeights(height);
  const across = ACROSS;
  for (let y = 0; y < height; y++) {
    across.fill(0);
    const base = y * width * channels;
    const { starts, outputs, weights } = wx;
    for (let x = 0, p = base; x < width; x++, p += channels) {
      const grey = channels === 3 ? 19595 * pixels[p] + 38470 * pixels[p + 1] + 7471 * pixels[p + 2] : pixels[p];
      for (let k = starts[x], end = starts[x + 1]; k < end; k++) across[outputs[k]] += grey * weights[k];
    }
    for (let k = wy.starts[y], end = wy.starts[y + 1]; k < end; k++) {
      const row = wy.outputs[k] * SIDE;
      const weight = wy.weights[k];
      for (let x = 0; x < SIDE; x++) image[row + x] += across[x] * weight;
    }
  }
}

/** The bits of a 32×32 grey image: its DCT's 8×8 lowest frequencies against their median. */
function hashOf32(image: Float64Array): { hi: number; lo: number } {
  // DCT along rows (8 low frequencies of each of 32 rows), then along columns (8 × 8). The
  // cosines of x and 31 − x are equal for even frequencies and opposite for odd ones, so each
  // 32-term sum is a 16-term sum of the row folded in half: half the multiplications.
  const half = HALF;
  const even = EVEN;
  const odd = ODD;
  for (let y = 0; y < SIDE; y++) {
    const row = y * SIDE;
    for (let x = 0; x < SIDE / 2; x++) {
      even[x] = image[row + x] + image[row + SIDE - 1 - x];
      odd[x] = image[row + x] - image[row + SIDE - 1 - x];
    }
    for (let u = 0; u < LOW; u++) {
      const folded = u % 2 === 0 ? even : odd;
      let sum = 0;
      for (let x = 0; x < SIDE / 2; x++) sum += folded[x] * COS[u * SIDE + x];
      half[y * LOW + u] = sum;
    }
  }
  const coefficients = COEFFICIENTS;
  for (let u = 0; u < LOW; u++) {
    for (let y = 0; y < SIDE / 2; y++) {
      even[y] = half[y * LOW + u] + half[(SIDE - 1 - y) * LOW + u];
      odd[y] = half[y * LOW + u] - half[(SIDE - 1 - y) * LOW + u];
    }
    for (let v = 0; v < LOW; v++) {
      const folded = v % 2 === 0 ? even : odd;
      let sum = 0;
      for (let y = 0; y < SIDE / 2; y++) sum += folded[y] * COS[v * SIDE + y];
      coefficients[v * LOW + u] = sum;
    }
  }
  const sorted = SORTED;
  sorted.set(coefficients);
  sorted.sort();
  const median = (sorted[31] + sorted[32]) / 2;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 32; i++) {
    hi = (hi << 1) | (coefficients[i] > median ? 1 : 0);
    lo = (lo << 1) | (coefficients[32 + i] > median ? 1 : 0);
  }
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

export function formatHash(hi: number, lo: number): PerceptualHash {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

const HASH_PATTERN = /^[0-9a-f]{16}$/;

export function isPerceptualHash(value: unknown): value is PerceptualHash {
  return typeof value === 'string' && HASH_PATTERN.test(value);
}

/** The two words of a hash written by formatHash. */
export function parseHash(hash: PerceptualHash): { hi: number; lo: number } {
  if (!isPerceptualHash(hash)) throw new Error(`not a perceptual hash: ${hash}`);
  return { hi: Number.parseInt(hash.slice(0, 8), 16), lo: Number.parseInt(hash.slice(8), 16) };
}

/** Set bits of a 32-bit word. */
export function popcount32(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Bits in which two hashes differ (0–64). */
export function hammingDistance(a: PerceptualHash, b: PerceptualHash): number {
  const x = parseHash(a);
  const y = parseHash(b);
  return popcount32((x.hi ^ y.hi) >>> 0) + popcount32((x.lo ^ y.lo) >>> 0);
}
