import type { DatasetShape } from './dataset-shape.js';
import { Stream, uniformStream } from './random.js';

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

/**
 * Rotation and rescale about the centre in one affine pass with bilinear sampling, writing the
 * result into `out` at `outOffset`. What falls outside the source is black. A rescale above 1 is
 * cropped back to the frame; below 1 it is padded, as the original did.
 */
export function warpInto(
  source: Uint8Array,
  shape: DatasetShape,
  augment: Augment,
  out: Uint8Array,
  outOffset: number,
): void {
  const { width, height, channels } = shape;
  if (isIdentity(augment)) {
    out.set(source.subarray(0, width * height * channels), outOffset);
    return;
  }
  const theta = (augment.rotation * Math.PI) / 180;
  // Inverse map: source = centre + R(-theta) (p - centre) / scale, in pixel-centre coordinates.
  // Screen y points down, so a counter-clockwise turn on screen uses the transposed matrix.
  const cos = Math.cos(theta) / augment.scale;
  const sin = Math.sin(theta) / augment.scale;
  const cx = width / 2;
  const cy = height / 2;
  const rowStride = width * channels;
  for (let y = 0; y < height; y++) {
    const py = y + 0.5 - cy;
    for (let x = 0; x < width; x++) {
      const px = x + 0.5 - cx;
      const sx = cos * px - sin * py + cx - 0.5;
      const sy = sin * px + cos * py + cy - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const target = outOffset + (y * width + x) * channels;
      const in00 = x0 >= 0 && x0 < width && y0 >= 0 && y0 < height;
      const in10 = x0 + 1 >= 0 && x0 + 1 < width && y0 >= 0 && y0 < height;
      const in01 = x0 >= 0 && x0 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const in11 = x0 + 1 >= 0 && x0 + 1 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const base = y0 * rowStride + x0 * channels;
      const w00 = (1 - fx) * (1 - fy);
      const w10 = fx * (1 - fy);
      const w01 = (1 - fx) * fy;
      const w11 = fx * fy;
      for (let c = 0; c < channels; c++) {
        let value = 0;
        if (in00) value += w00 * source[base + c];
        if (in10) value += w10 * source[base + channels + c];
        if (in01) value += w01 * source[base + rowStride + c];
        if (in11) value += w11 * source[base + rowStride + channels + c];
        out[target + c] = value + 0.5;
      }
    }
  }
}
