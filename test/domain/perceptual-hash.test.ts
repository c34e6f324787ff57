import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HammingIndex, MAX_DISTANCE, linearNear } from '../../src/domain/hamming-index.js';
import {
  formatHash,
  hammingDistance,
  isPerceptualHash,
  parseHash,
  perceptualHash,
  perceptualHashWords,
  perceptualHashWordsInJs,
  popcount32,
} from '../../src/domain/perceptual-hash.js';

/** A smooth scene: gradients and a bright disc, at any size (the same picture). */
function scene(width: number, height: number, channels: number, cx = 0.35, cy = 0.6): Uint8Array {
  const pixels = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = (x + 0.5) / width;
      const v = (y + 0.5) / height;
      const disc = (u - cx) ** 2 + (v - cy) ** 2 < 0.04 ? 120 : 0;
      for (let c = 0; c < channels; c++) pixels[(y * width + x) * channels + c] = Math.min(255, Math.round(60 * u + 40 * v * (c + 1) + disc));
    }
  }
  return pixels;
}

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

describe('perceptual hash', () => {
  it('is 16 hex digits, the same for the same pixels, and parses back to its words', () => {
    const pixels = scene(40, 30, 3);
    const hash = perceptualHash(pixels, { width: 40, height: 30, channels: 3 });
    assert.ok(isPerceptualHash(hash));
    assert.equal(perceptualHash(pixels, { width: 40, height: 30, channels: 3 }), hash);
    assert.deepEqual(parseHash(hash), perceptualHashWords(pixels, { width: 40, height: 30, channels: 3 }));
    assert.equal(formatHash(0xffffffff, 1), 'ffffffff00000001');
  });

  it('stays within a few bits across sizes (up and down) and channel counts, and is far from another picture', () => {
    const base = perceptualHash(scene(64, 64, 3), { width: 64, height: 64, channels: 3 });
    for (const [w, h] of [[200, 200], [28, 28], [100, 50]]) {
      assert.ok(hammingDistance(base, perceptualHash(scene(w, h, 3), { width: w, height: h, channels: 3 })) <= 4, `${w}×${h}`);
    }
    assert.ok(hammingDistance(base, perceptualHash(scene(64, 64, 1), { width: 64, height: 64, channels: 1 })) <= 8);
    assert.ok(hammingDistance(base, perceptualHash(scene(64, 64, 3, 0.7, 0.25), { width: 64, height: 64, channels: 3 })) > 12);
  });

  it('gives the same words through the WebAssembly resample of 3-channel pixels as through the JavaScript one', () => {
    const next = random(7);
    for (const [width, height] of [[100, 100], [32, 32], [33, 47], [255, 97], [640, 480], [31, 200], [64, 64]]) {
      const shape = { width, height, channels: 3 };
      const noise = new Uint8Array(width * height * 3).map(() => next() >>> 24);
      const white = new Uint8Array(width * height * 3).fill(255);
      for (const pixels of [scene(width, height, 3), noise, white, new Uint8Array(width * height * 3)]) {
        assert.deepEqual(perceptualHashWords(pixels, shape), perceptualHashWordsInJs(pixels, shape), `${width}×${height}`);
      }
    }
    // Grey pixels and small images take the JavaScript resample either way.
    const grey = scene(64, 64, 1);
    assert.deepEqual(perceptualHashWords(grey, { width: 64, height: 64, channels: 1 }), perceptualHashWordsInJs(grey, { width: 64, height: 64, channels: 1 }));
  });

  it('refuses pixels of the wrong size', () => {
    assert.throws(() => perceptualHash(new Uint8Array(10), { width: 4, height: 4, channels: 1 }));
  });

  it('counts bits', () => {
    assert.equal(popcount32(0), 0);
    assert.equal(popcount32(0xffffffff), 32);
    assert.equal(popcount32(0x80000001), 2);
    assert.equal(hammingDistance('0000000000000000', 'ffffffffffffffff'), 64);
  });
});

describe('multi-index hashing', () => {
  const n = 20_000;
  const next = random(7);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 10 === 9) {
      // A near copy of the hash before it: up to 9 bits flipped.
      hi[i] = hi[i - 1];
      lo[i] = lo[i - 1];
      for (let b = next() % 10; b > 0; b--) {
        const bit = next() % 64;
        if (bit < 32) hi[i] ^= 1 << bit;
        else lo[i] ^= 1 << (bit - 32);
      }
    } else {
      hi[i] = next();
      lo[i] = next();
    }
  }
  const index = new HammingIndex(hi, lo);

  it('finds exactly what a linear scan finds, at every distance', () => {
    for (const distance of [0, 3, 4, 7, 9, 12, MAX_DISTANCE]) {
      for (const q of [0, 9, 19, 1234, 19_999]) {
        const fromIndex: number[] = [];
        const fromScan: number[] = [];
        index.near(hi[q], lo[q], distance, (j) => fromIndex.push(j));
        linearNear(hi, lo, hi[q], lo[q], distance, (j) => fromScan.push(j));
        assert.deepEqual(fromIndex.sort((a, b) => a - b), fromScan, `distance ${distance}, query ${q}`);
      }
    }
  });

  it('groups near copies with their original, labelled by the smallest position', () => {
    const labels = index.components(9);
    for (let i = 9; i < n; i += 10) assert.equal(labels[i], labels[i - 1]);
    assert.equal(labels[8], 8);
    assert.equal(labels[9], 8);
  });

  it('refuses distances it cannot answer', () => {
    assert.throws(() => index.near(0, 0, MAX_DISTANCE + 1, () => undefined), RangeError);
    assert.throws(() => index.components(-1), RangeError);
  });
});
