import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drawAugment, inMemoryScratchBytes, warpFixedPoint, warpInMemory, warpInto, type Augment } from '../src/domain/augmentation.js';
import { warpRgbSimd } from '../src/domain/warp-simd.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';

/**
 * The warp as it was first written, in floating point: one inverse affine map about the centre,
 * bilinear sampling, black outside the frame, rounded half up. The fixed-point warp must stay
 * within one level of it everywhere.
 */
function floatWarp(source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array): void {
  const { width, height, channels } = shape;
  const theta = (augment.rotation * Math.PI) / 180;
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
      const target = (y * width + x) * channels;
      const in00 = x0 >= 0 && x0 < width && y0 >= 0 && y0 < height;
      const in10 = x0 + 1 >= 0 && x0 + 1 < width && y0 >= 0 && y0 < height;
      const in01 = x0 >= 0 && x0 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const in11 = x0 + 1 >= 0 && x0 + 1 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const base = y0 * rowStride + x0 * channels;
      for (let c = 0; c < channels; c++) {
        let value = 0;
        if (in00) value += (1 - fx) * (1 - fy) * source[base + c];
        if (in10) value += fx * (1 - fy) * source[base + channels + c];
        if (in01) value += (1 - fx) * fy * source[base + rowStride + c];
        if (in11) value += fx * fy * source[base + rowStride + channels + c];
        out[target + c] = value + 0.5;
      }
    }
  }
}

const POSITION_BITS = 16;
const WEIGHT_BITS = 11;
const WEIGHT_ONE = 1 << WEIGHT_BITS;
const WEIGHT_SHIFT = POSITION_BITS - WEIGHT_BITS;
const VALUE_SHIFT = 2 * WEIGHT_BITS;
const VALUE_HALF = 1 << (VALUE_SHIFT - 1);
const POSITION_ONE = 1 << POSITION_BITS;
const ROUND_TO_WEIGHT = 1 << (WEIGHT_SHIFT - 1);
const ROUNDER = 6755399441055744;

/**
 * The fixed-point warp as it was before positions became exact along a row: each step added in
 * double precision, the position rounded to 1/65536 pixel (half to even), weights of 11 bits.
 * Today's warp must stay within one level of it everywhere.
 */
function previousFixedPointWarp(source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array, outOffset: number): void {
  const { width, height, channels } = shape;
  // Screen y points down, so a counter-clockwise turn on screen uses the transposed matrix.
  const theta = (augment.rotation * Math.PI) / 180;
  const cos = Math.cos(theta) / augment.scale;
  const sin = Math.sin(theta) / augment.scale;
  const cx = width / 2;
  const cy = height / 2;
  const stepX = cos * POSITION_ONE;
  const stepY = sin * POSITION_ONE;
  const rowStride = width * channels;
  const lastX = width - 1;
  const lastY = height - 1;
  const px = 0.5 - cx;
  let target = outOffset;
  for (let y = 0; y < height; y++) {
    const py = y + 0.5 - cy;
    // Pixel-centre coordinates; the same expressions, in the same order, as warp-rgb.wat.
    let exactX = (cos * px - sin * py + cx - 0.5) * POSITION_ONE + ROUND_TO_WEIGHT;
    let exactY = (sin * px + cos * py + cy - 0.5) * POSITION_ONE + ROUND_TO_WEIGHT;
    for (let x = 0; x < width; x++, exactX += stepX, exactY += stepY, target += channels) {
      const sx = (exactX + ROUNDER - ROUNDER) | 0;
      const sy = (exactY + ROUNDER - ROUNDER) | 0;
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

/** Noise, hard edges and flat areas: the worst case for a difference in sampling positions. */
function testImage(shape: DatasetShape, seed: number): Uint8Array {
  const { width, height, channels } = shape;
  const pixels = new Uint8Array(width * height * channels);
  let state = seed * 2654435761 || 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        const edge = ((x >> 3) + (y >> 2) + c) % 2 === 0 ? 255 : 0;
        pixels[(y * width + x) * channels + c] = (seed + y) % 3 === 0 ? state >>> 24 : edge;
      }
    }
  }
  return pixels;
}

/** Datasets have 1 or 3 channels; the JavaScript warp takes any count, so 4 is tried too. */
const shape = (width: number, height: number, channels: number) => ({ width, height, channels }) as DatasetShape;

const SHAPES: DatasetShape[] = [
  shape(100, 100, 3),
  shape(224, 224, 3),
  shape(28, 28, 1),
  shape(64, 17, 3),
  shape(17, 64, 3),
  shape(1, 9, 1),
  shape(2, 2, 3),
  shape(333, 41, 1),
  shape(30, 22, 4),
  shape(5, 3, 3),
];

/** The largest difference between two warps' values, and how many differ, over `seeds` seeded augmentations per shape. */
function compare(
  shapes: readonly DatasetShape[],
  seeds: number,
  warp: (source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array) => void,
  reference: (source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array) => void,
): { compared: number; differing: number } {
  let compared = 0;
  let differing = 0;
  for (const shape of shapes) {
    for (let seed = 1; seed <= seeds; seed++) {
      const augment = drawAugment(seed * 7919, seed, 1);
      const source = testImage(shape, seed);
      const ours = new Uint8Array(source.length);
      const theirs = new Uint8Array(source.length);
      warp(source, shape, augment, ours);
      reference(source, shape, augment, theirs);
      for (let i = 0; i < source.length; i++) {
        const difference = Math.abs(ours[i] - theirs[i]);
        assert.ok(difference <= 1, `${JSON.stringify(shape)} ${JSON.stringify(augment)}: value ${i} is ${ours[i]}, the reference gives ${theirs[i]}`);
        if (difference) differing++;
      }
      compared += source.length;
    }
  }
  return { compared, differing };
}

describe('fixed-point warp against the floating-point warp', () => {
  it('every value within one level, over 2,000 seeded augmentations on 10 shapes (1, 3 and 4 channels)', () => {
    const { compared, differing } = compare(SHAPES, 200, (s, sh, a, o) => warpFixedPoint(s, sh, a, o, 0), floatWarp);
    // Off by one only where rounding falls within a hair of a half: a small share.
    assert.ok(differing / compared < 0.02, `${differing} of ${compared} values differ by one`);
  });

  it('the extremes of the transform family: ±10° and scales 0.7 and 1.5', () => {
    for (const shape of SHAPES) {
      for (const rotation of [-10, -9.999, -0.001, 0, 0.001, 10]) {
        for (const scale of [0.7, 0.70001, 1, 1.49999, 1.5]) {
          const source = testImage(shape, 3);
          const fixed = new Uint8Array(source.length);
          const float = new Uint8Array(source.length);
          // Rotation 0 at scale 1 too: warpInto copies it, the warp itself must give the source back.
          warpFixedPoint(source, shape, { rotation, scale }, fixed, 0);
          floatWarp(source, shape, { rotation, scale }, float);
          for (let i = 0; i < source.length; i++) assert.ok(Math.abs(fixed[i] - float[i]) <= 1, `${JSON.stringify(shape)} rotation ${rotation} scale ${scale}: value ${i}`);
          if (rotation === 0 && scale === 1) assert.deepEqual(fixed, source);
        }
      }
    }
  });

  it('positions do not drift along a row or a column of the largest side (4,096)', () => {
    for (const long of [shape(4096, 3, 3), shape(3, 4096, 1)]) {
      for (const augment of [{ rotation: 9.7, scale: 0.7 }, { rotation: -0.3, scale: 1.4999 }, { rotation: 4.1, scale: 1.01 }]) {
        const source = testImage(long, 5);
        const fixed = new Uint8Array(source.length);
        const float = new Uint8Array(source.length);
        const simd = new Uint8Array(source.length);
        warpFixedPoint(source, long, augment, fixed, 0);
        floatWarp(source, long, augment, float);
        warpInto(source, long, augment, simd, 0);
        for (let i = 0; i < source.length; i++) assert.ok(Math.abs(fixed[i] - float[i]) <= 1, `${JSON.stringify(long)} ${JSON.stringify(augment)}: value ${i}`);
        assert.deepEqual(simd, fixed);
      }
    }
  });
});

describe('the warp against its previous fixed-point version', () => {
  it('every value within one level, over 3,000 seeded augmentations on 10 shapes, and rarely different', () => {
    const { compared, differing } = compare(SHAPES, 300, (s, sh, a, o) => warpInto(s, sh, a, o, 0), (s, sh, a, o) => previousFixedPointWarp(s, sh, a, o, 0));
    // Positions now differ from the previous ones by under 1/65536 pixel: a weight moves by one
    // step now and then, a value by one level far more rarely.
    assert.ok(differing / compared < 0.005, `${differing} of ${compared} values differ by one`);
  });

  it('borders and tiny images: every extreme of the family within one level', () => {
    const tiny = [shape(1, 1, 1), shape(1, 1, 3), shape(2, 1, 3), shape(1, 2, 3), shape(3, 3, 3), shape(4, 4, 4), shape(7, 2, 1)];
    for (const small of tiny) {
      for (const rotation of [-10, -3, 0, 0.001, 10]) {
        for (const scale of [0.7, 0.9, 1, 1.2, 1.5]) {
          if (rotation === 0 && scale === 1) continue;
          const source = testImage(small, 11);
          const ours = new Uint8Array(source.length);
          const previous = new Uint8Array(source.length);
          const float = new Uint8Array(source.length);
          warpInto(source, small, { rotation, scale }, ours, 0);
          previousFixedPointWarp(source, small, { rotation, scale }, previous, 0);
          floatWarp(source, small, { rotation, scale }, float);
          for (let i = 0; i < source.length; i++) {
            assert.ok(Math.abs(ours[i] - previous[i]) <= 1 && Math.abs(ours[i] - float[i]) <= 1, `${JSON.stringify(small)} rotation ${rotation} scale ${scale}: value ${i}`);
          }
        }
      }
    }
  });

  it('what comes from outside the frame is black, up to the last pixel of every edge', () => {
    // Shrunk to 0.7, a white image keeps a black frame about 15% wide on every side.
    for (const padded of [shape(100, 100, 3), shape(37, 23, 3), shape(40, 40, 1)]) {
      const source = new Uint8Array(padded.width * padded.height * padded.channels).fill(255);
      const out = new Uint8Array(source.length).fill(7);
      warpInto(source, padded, { rotation: 0, scale: 0.7 }, out, 0);
      const { width, height, channels } = padded;
      const at = (x: number, y: number) => out[(y * width + x) * channels];
      for (let i = 0; i < Math.min(width, height); i++) {
        const x = Math.floor((i * width) / Math.min(width, height));
        const y = Math.floor((i * height) / Math.min(width, height));
        assert.equal(at(x, 0), 0, `${JSON.stringify(padded)}: top edge at x ${x}`);
        assert.equal(at(x, height - 1), 0, `${JSON.stringify(padded)}: bottom edge at x ${x}`);
        assert.equal(at(0, y), 0, `${JSON.stringify(padded)}: left edge at y ${y}`);
        assert.equal(at(width - 1, y), 0, `${JSON.stringify(padded)}: right edge at y ${y}`);
      }
      assert.equal(at(width >> 1, height >> 1), 255);
    }
  });
});

describe('the WebAssembly SIMD warp', () => {
  it('gives the same bytes as the JavaScript one for 3-channel samples, widths not a multiple of 4 included', () => {
    const probe = new Uint8Array(12);
    assert.ok(warpRgbSimd(new Uint8Array(12), shape(2, 2, 3), 1, 0, probe, 0), 'WebAssembly SIMD is available on Node 20');
    const shapes = [...SHAPES.filter((s) => s.channels === 3), shape(1, 1, 3), shape(3, 7, 3), shape(6, 5, 3), shape(101, 99, 3)];
    for (const rgb of shapes) {
      for (let seed = 1; seed <= 300; seed++) {
        const augment = drawAugment(seed * 104729, seed, 1);
        const source = testImage(rgb, seed);
        // Written at an offset inside a larger buffer, as a batch chunk holds many samples.
        const simd = new Uint8Array(source.length + 10).fill(7);
        const js = new Uint8Array(source.length + 10).fill(7);
        warpInto(source, rgb, augment, simd, 5);
        warpFixedPoint(source, rgb, augment, js, 5);
        assert.deepEqual(simd, js, `${JSON.stringify(rgb)} ${JSON.stringify(augment)}`);
      }
    }
  });

  it('gives the same bytes over a grid of rotations and scales, in place too: rows cut into black and the stretch that sees the frame, and maps past the module\'s steps', () => {
    // Beyond the augmentations' range as well: turned a quarter or half round (negative steps),
    // unturned with a rescale (a row's v never changes), and scales under 0.5, whose steps the
    // module does not take (the JavaScript warp runs, in place too).
    const rotations = [-180, -90, -10, -0.001, 0, 0.001, 7.5, 10, 45, 90];
    const scales = [0.3, 0.5, 0.7, 0.99, 1, 1.01, 1.5, 4];
    for (const rgb of [shape(100, 100, 3), shape(5, 3, 3), shape(37, 23, 3), shape(1, 1, 3)]) {
      const size = rgb.width * rgb.height * 3;
      const scratch = inMemoryScratchBytes(rgb)!;
      const at = 16;
      const scratchAt = at + size;
      const memory = new WebAssembly.Memory({ initial: Math.ceil((scratchAt + scratch + 16) / 65536) });
      const bytes = new Uint8Array(memory.buffer);
      for (const rotation of rotations) {
        for (const scale of scales) {
          const augment = { rotation, scale };
          const source = testImage(rgb, Math.round(rotation * 10 + scale * 100));
          const js = new Uint8Array(size);
          const simd = new Uint8Array(size);
          warpFixedPoint(source, rgb, augment, js, 0);
          warpInto(source, rgb, augment, simd, 0);
          assert.deepEqual(simd, js, `${JSON.stringify(rgb)} ${JSON.stringify(augment)}`);
          bytes.fill(7);
          bytes.set(source, at);
          warpInMemory(memory, at, rgb, augment, scratchAt);
          assert.deepEqual(bytes.subarray(at, at + size), js, `in place: ${JSON.stringify(rgb)} ${JSON.stringify(augment)}`);
          assert.ok(bytes.subarray(0, at).every((b) => b === 7), 'before the sample');
          assert.ok(bytes.subarray(scratchAt + scratch).every((b) => b === 7), 'after the scratch');
        }
      }
    }
  });

  it('maps the identity to the source itself', () => {
    for (const rgb of [shape(1, 1, 3), shape(5, 3, 3), shape(100, 100, 3)]) {
      const source = testImage(rgb, 2);
      const out = new Uint8Array(source.length);
      assert.ok(warpRgbSimd(source, rgb, 1, 0, out, 0));
      assert.deepEqual(out, source);
    }
  });

  it('warps samples where they lie in a WebAssembly memory: the same bytes, and nothing written outside each sample and the scratch', () => {
    assert.equal(inMemoryScratchBytes(shape(28, 28, 1)), undefined, 'one channel: warpInto only');
    for (const rgb of [shape(100, 100, 3), shape(5, 3, 3), shape(6, 5, 3), shape(1, 1, 3), shape(37, 23, 3)]) {
      const size = rgb.width * rgb.height * 3;
      const count = 7;
      const scratch = inMemoryScratchBytes(rgb)!;
      // guard bytes, the samples back to back (as in a batch chunk), the scratch, guard bytes
      const at = 16;
      const scratchAt = at + count * size;
      const memory = new WebAssembly.Memory({ initial: Math.ceil((scratchAt + scratch + 16) / 65536) });
      const bytes = new Uint8Array(memory.buffer);
      bytes.fill(7);
      const expected = new Uint8Array(count * size);
      for (let i = 0; i < count; i++) {
        const source = testImage(rgb, i + 1);
        bytes.set(source, at + i * size);
        const augment = i === 3 ? { rotation: 0, scale: 1 } : drawAugment(4242, i, 1);
        warpInto(source, rgb, augment, expected, i * size);
      }
      for (let i = 0; i < count; i++) warpInMemory(memory, at + i * size, rgb, i === 3 ? { rotation: 0, scale: 1 } : drawAugment(4242, i, 1), scratchAt);
      assert.deepEqual(bytes.subarray(at, scratchAt), expected, JSON.stringify(rgb));
      assert.ok(bytes.subarray(0, at).every((b) => b === 7), 'before the samples');
      assert.ok(bytes.subarray(scratchAt + scratch).every((b) => b === 7), 'after the scratch');
    }
  });
});
