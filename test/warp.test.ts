import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drawAugment, warpFixedPoint, warpInto, type Augment } from '../src/domain/augmentation.js';
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

describe('fixed-point warp against the floating-point warp', () => {
  const shapes: DatasetShape[] = [
    { width: 100, height: 100, channels: 3 },
    { width: 224, height: 224, channels: 3 },
    { width: 28, height: 28, channels: 1 },
    { width: 64, height: 17, channels: 3 },
    { width: 1, height: 9, channels: 1 },
    { width: 2, height: 2, channels: 3 },
    { width: 333, height: 41, channels: 1 },
  ];

  it('every value within one level, over 1,400 seeded augmentations on 7 shapes', () => {
    let compared = 0;
    let differing = 0;
    for (const shape of shapes) {
      for (let seed = 1; seed <= 200; seed++) {
        const augment = drawAugment(seed * 7919, seed, 1);
        const source = testImage(shape, seed);
        const fixed = new Uint8Array(source.length);
        const float = new Uint8Array(source.length);
        warpFixedPoint(source, shape, augment, fixed, 0);
        floatWarp(source, shape, augment, float);
        for (let i = 0; i < source.length; i++) {
          const difference = Math.abs(fixed[i] - float[i]);
          assert.ok(difference <= 1, `${JSON.stringify(shape)} ${JSON.stringify(augment)}: value ${i} is ${fixed[i]}, the float warp gives ${float[i]}`);
          if (difference) differing++;
        }
        compared += source.length;
      }
    }
    // Off by one only where rounding falls within a hair of a half: a small share.
    assert.ok(differing / compared < 0.02, `${differing} of ${compared} values differ by one`);
  });

  it('the extremes of the transform family: ±10° and scales 0.7 and 1.5', () => {
    for (const shape of shapes) {
      for (const rotation of [-10, -9.999, -0.001, 0, 0.001, 10]) {
        for (const scale of [0.7, 0.70001, 1, 1.49999, 1.5]) {
          if (rotation === 0 && scale === 1) continue;
          const source = testImage(shape, 3);
          const fixed = new Uint8Array(source.length);
          const float = new Uint8Array(source.length);
          warpFixedPoint(source, shape, { rotation, scale }, fixed, 0);
          floatWarp(source, shape, { rotation, scale }, float);
          for (let i = 0; i < source.length; i++) assert.ok(Math.abs(fixed[i] - float[i]) <= 1, `${JSON.stringify(shape)} rotation ${rotation} scale ${scale}: value ${i}`);
        }
      }
    }
  });

  it('the WebAssembly SIMD warp of 3-channel samples gives the same bytes as the JavaScript one', () => {
    const probe = new Uint8Array(12);
    assert.ok(warpRgbSimd(new Uint8Array(12), { width: 2, height: 2, channels: 3 }, 1, 0, probe, 0), 'WebAssembly SIMD is available on Node 20');
    for (const shape of shapes.filter((s) => s.channels === 3)) {
      for (let seed = 1; seed <= 300; seed++) {
        const augment = drawAugment(seed * 104729, seed, 1);
        const source = testImage(shape, seed);
        // Written at an offset inside a larger buffer, as a batch chunk holds many samples.
        const simd = new Uint8Array(source.length + 10).fill(7);
        const js = new Uint8Array(source.length + 10).fill(7);
        warpInto(source, shape, augment, simd, 5);
        warpFixedPoint(source, shape, augment, js, 5);
        assert.deepEqual(simd, js, `${JSON.stringify(shape)} ${JSON.stringify(augment)}`);
      }
    }
  });
});
