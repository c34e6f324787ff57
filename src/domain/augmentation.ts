import { recordBytes, type DatasetShape } from './dataset-shape.js';
import { Stream, uniformStream } from './random.js';
import { rgbWarpScratchBytes, warpRgbInMemory, warpRgbSimd } from './warp-simd.js';

export const MAX_ROTATION_DEGREES = 10;
export const MIN_SCALE = 0.7;
export const MAX_SCALE = 1.5;

export interface Augment {
  /** Degrees, counter-clockwise as seen on screen. */
  readonly rotation: number;
  readonly scale: number;
}

export const IDENTITY: Augment = Object.freeze({ rotation: 0, scale: 1 });

/**
 * The augmentation of one sample slot. Each augmentation is applied with probability `noise`.
 * Four draws are always taken, so a slot's values do not depend on which branches were taken.
 */
export function drawAugment(seed: number, slot: number, noise: number): Augment {
  if (noise <= 0) return IDENTITY;
  const uniform = uniformStream(seed, Stream.Augment, slot);
  const rotate = uniform() < noise;
  const rotation = (uniform() * 2 - 1) * MAX_ROTATION_DEGREES;
  const rescale = uniform() < noise;
  const scale = MIN_SCALE + uniform() * (MAX_SCALE - MIN_SCALE);
  return { rotation: rotate ? rotation : 0, scale: rescale ? scale : 1 };
}

export function isIdentity(augment: Augment): boolean {
  return augment.rotation === 0 && augment.scale === 1;
}

/** A pixel's position carries 16 fractional bits, its bilinear weights 11 (2048 steps per pixel). */
const POSITION_BITS = 16;
const WEIGHT_BITS = 11;
const WEIGHT_ONE = 1 << WEIGHT_BITS;
const WEIGHT_SHIFT = POSITION_BITS - WEIGHT_BITS;
const VALUE_SHIFT = 2 * WEIGHT_BITS;
const VALUE_HALF = 1 << (VALUE_SHIFT - 1);
/** Positions along a row are exact integers in 1/2^32 pixel: 2^32 is one pixel. */
const STEP_ONE = 4294967296;
/** From 1/2^32 to 1/2^16 pixel. */
const TO_POSITION = 1 << 16;
/** Half a weight step in 1/2^32 pixel, added so that truncating a position to its weights rounds it. */
const ROUND_TO_WEIGHT = 2 ** (32 - WEIGHT_BITS - 1);

/**
 * Rotation and rescale about the centre in one affine pass with bilinear sampling, writing the
 * result into `out` at `outOffset`. What falls outside the source is black. A rescale above 1 is
 * cropped back to the frame; below 1 it is padded, as the original did.
 *
 * 3-channel samples go through WebAssembly SIMD (warp-rgb.wat), others through
 * warpFixedPoint; both give the same bytes.
 */
export function warpInto(source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array, outOffset: number): void {
  if (isIdentity(augment)) {
    out.set(source.subarray(0, recordBytes(shape)), outOffset);
    return;
  }
  const { cos, sin } = inverseMatrix(augment);
  if (shape.channels === 3 && warpRgbSimd(source, shape, cos, sin, out, outOffset)) return;
  warpFixedPoint(source, shape, augment, out, outOffset);
}

/**
 * Scratch bytes that warpInMemory needs for a sample of this shape, or undefined where it cannot
 * warp in place (other channel counts, no WebAssembly SIMD): warpInto then runs.
 */
export function inMemoryScratchBytes(shape: DatasetShape): number | undefined {
  const bytes = shape.channels === 3 ? rgbWarpScratchBytes(shape) : 0;
  return bytes > 0 ? bytes : undefined;
}

/**
 * warpInto for a sample that lies in a WebAssembly memory at `at`, the result written over it
 * (the same bytes as warpInto gives), with `inMemoryScratchBytes(shape)` bytes of scratch at
 * `scratchAt` in the same memory. Nothing outside the sample and the scratch is written.
 */
export function warpInMemory(memory: WebAssembly.Memory, at: number, shape: DatasetShape, augment: Augment, scratchAt: number): void {
  if (isIdentity(augment)) return;
  if (shape.channels !== 3 || inMemoryScratchBytes(shape) === undefined) {
    throw new Error(`no in-place warp for ${shape.channels}-channel samples here: check inMemoryScratchBytes first`);
  }
  const { cos, sin } = inverseMatrix(augment);
  if (warpRgbInMemory(memory, at, shape, cos, sin, scratchAt)) return;
  // A map the module does not take (scales below its bound, outside the augmentations' range):
  // the JavaScript warp, from a copy.
  const sample = new Uint8Array(memory.buffer, at, recordBytes(shape));
  warpFixedPoint(sample.slice(), shape, augment, sample, 0);
}

/** The inverse map's entries: source = centre + R(−θ) (p − centre) / scale. */
function inverseMatrix(augment: Augment): { cos: number; sin: number } {
  const theta = (augment.rotation * Math.PI) / 180;
  return { cos: Math.cos(theta) / augment.scale, sin: Math.sin(theta) / augment.scale };
}

/**
 * The warp in fixed point with per-row increments. Along a row the source position is the row's
 * start plus x steps, exact integers in 1/2^32 pixel (the start and the step each rounded once
 * from the inverse map, so nothing accumulates along the row); a pixel uses its position
 * truncated to 1/65536 pixel, and its bilinear weights have 11 bits. Every value is within one
 * level of the same warp in floating point (test/warp.test.ts pins it over many seeds and
 * shapes), at a fraction of its cost: no float products per channel, and the bounds checks only
 * near the frame. warp-rgb.wat computes the same bytes for 3-channel samples.
 */
export function warpFixedPoint(source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array, outOffset: number): void {
  const { width, height, channels } = shape;
  // Screen y points down, so a counter-clockwise turn on screen uses the transposed matrix.
  const { cos, sin } = inverseMatrix(augment);
  const cx = width / 2;
  const cy = height / 2;
  const stepX = Math.floor(cos * STEP_ONE + 0.5);
  const stepY = Math.floor(sin * STEP_ONE + 0.5);
  const rowStride = width * channels;
  const lastX = width - 1;
  const lastY = height - 1;
  const px = 0.5 - cx;
  let target = outOffset;
  for (let y = 0; y < height; y++) {
    const py = y + 0.5 - cy;
    // Pixel-centre coordinates; the same expressions, in the same order, as warp-rgb.wat. The
    // integers stay below 2^53, so the doubles holding them are exact.
    let exactX = Math.floor((cos * px - sin * py + cx - 0.5) * STEP_ONE + 0.5) + ROUND_TO_WEIGHT;
    let exactY = Math.floor((sin * px + cos * py + cy - 0.5) * STEP_ONE + 0.5) + ROUND_TO_WEIGHT;
    for (let x = 0; x < width; x++, exactX += stepX, exactY += stepY, target += channels) {
      const sx = Math.floor(exactX / TO_POSITION);
      const sy = Math.floor(exactY / TO_POSITION);
      const x0 = sx >> POSITION_BITS;
      const y0 = sy >> POSITION_BITS;
      const fx = (sx >> WEIGHT_SHIFT) & (WEIGHT_ONE - 1);
      const fy = (sy >> WEIGHT_SHIFT) & (WEIGHT_ONE - 1);
      const w11 = fx * fy;
      const w10 = fx * WEIGHT_ONE - w11;
      const w01 = fy * WEIGHT_ONE - w11;
      const w00 = WEIGHT_ONE * WEIGHT_ONE - w10 - w01 - w11;
      const base = y0 * rowStride + x0 * channels;
      if (x0 >= 0 && x0 < lastX && y0 >= 0 && y0 < lastY) {
        const below = base + rowStride;
        for (let c = 0; c < channels; c++) {
          out[target + c] =
            (w00 * source[base + c] + w10 * source[base + channels + c] + w01 * source[below + c] + w11 * source[below + channels + c] + VALUE_HALF) >>
            VALUE_SHIFT;
        }
        continue;
      }
      if (x0 < -1 || x0 > lastX || y0 < -1 || y0 > lastY) {
        for (let c = 0; c < channels; c++) out[target + c] = 0;
        continue;
      }
      // Near the frame: taps outside it count as black.
      const in0x = x0 >= 0;
      const in1x = x0 < lastX;
      const in0y = y0 >= 0;
      const in1y = y0 < lastY;
      for (let c = 0; c < channels; c++) {
        let value = VALUE_HALF;
        if (in0y && in0x) value += w00 * source[base + c];
        if (in0y && in1x) value += w10 * source[base + channels + c];
        if (in1y && in0x) value += w01 * source[base + rowStride + c];
        if (in1y && in1x) value += w11 * source[base + rowStride + channels + c];
        out[target + c] = value >> VALUE_SHIFT;
      }
    }
  }
}
