import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import {
  IDENTITY,
  MAX_ROTATION_DEGREES,
  MAX_SCALE,
  MIN_SCALE,
  drawAugment,
  isIdentity,
  warpInto,
} from '../src/domain/augmentation.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import { isSensoryError } from '../src/domain/errors.js';
import { NAME_PATTERN, assertValidName, legacyDatasetName, parseLegacyDatasetName } from '../src/domain/names.js';
import { MAX_SEED, Stream, uniformInt, uniformStream } from '../src/domain/random.js';
import { safetensorsLayout, tensorBytes, type TensorSpec } from '../src/formats/safetensors.js';
import { drawBalancedBatch, drawBatch, drawWithoutReplacement, permutation, type Candidate } from '../src/domain/sampling.js';
import { inSplit, isTestBucket, splitBucket } from '../src/domain/split.js';

function take(uniform: () => number, n: number): number[] {
  return Array.from({ length: n }, () => uniform());
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function rejectsWith(code: string) {
  return (error: unknown) => {
    assert.ok(isSensoryError(error), `expected a SensoryError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

describe('names', () => {
  const valid = ['a', 'A', '0', 'mnist', 'mnist_28x28', 'a.b-c_d', '9lives', 'x'.repeat(64), 'a'.padEnd(64, '.')];
  const invalid = [
    '',
    'x'.repeat(65),
    '.hidden',
    '-dash',
    '_under',
    '..',
    '.',
    '../etc',
    'a/b',
    'a\\b',
    '/abs',
    'a b',
    'a\nb',
    'mnist\n',
    'é',
    'a:b',
    'a%2Fb',
    'a\u0000b',
  ];

  for (const name of valid) {
    it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}… (${name.length})` : name)}`, () => {
      assert.equal(assertValidName('dataset', name), name);
      assert.ok(NAME_PATTERN.test(name));
    });
  }

  for (const name of invalid) {
    it(`rejects ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}… (${name.length})` : name)} naming the field`, () => {
      assert.throws(() => assertValidName('category', name), (error: unknown) => {
        rejectsWith('SENSORY_ERR_INVALID_NAME')(error);
        assert.equal((error as Error & { status: number }).status, 400);
        assert.match((error as Error).message, /^category /);
        return true;
      });
    });
  }

  it('accepts exactly 64 characters and rejects 65', () => {
    assert.doesNotThrow(() => assertValidName('dataset', `a${'b'.repeat(63)}`));
    assert.throws(() => assertValidName('dataset', `a${'b'.repeat(64)}`), rejectsWith('SENSORY_ERR_INVALID_NAME'));
  });

  it('rejects values that are not strings', () => {
    for (const value of [undefined, null, 5, ['a'], { name: 'a' }]) {
      assert.throws(() => assertValidName('dataset', value), rejectsWith('SENSORY_ERR_INVALID_NAME'));
    }
  });

  it('keeps the message short whatever the value', () => {
    assert.throws(() => assertValidName('dataset', `/${'x'.repeat(10_000)}`), (error: unknown) => {
      assert.ok((error as Error).message.length < 200);
      return true;
    });
  });

  it('names the legacy dataset <name>_<width>x<height>', () => {
    assert.equal(legacyDatasetName('mnist', 28, 28), 'mnist_28x28');
    assert.equal(legacyDatasetName('cam', 640, 480), 'cam_640x480');
  });

  it('reads a dicebox folder name back into name, width and height', () => {
    assert.deepEqual(parseLegacyDatasetName('mnist_28x28'), { name: 'mnist', width: 28, height: 28 });
    assert.deepEqual(parseLegacyDatasetName('my_cam_640x480'), { name: 'my_cam', width: 640, height: 480 });
    assert.deepEqual(parseLegacyDatasetName(legacyDatasetName('a.b-c', 1, 9999)), { name: 'a.b-c', width: 1, height: 9999 });
    for (const folder of ['mnist', 'mnist_28', 'mnist_28x', '_28x28', 'mnist_0x28', 'mnist_28x0', 'mnist_12345x1', 'mnist 28x28', 'bad name_28x28', 'mnist_28X28', 'x'.repeat(61) + '_1x1']) {
      assert.equal(parseLegacyDatasetName(folder), undefined, folder);
    }
  });
});

describe('random streams', () => {
  it('the same (seed, stream, index) gives the same sequence', () => {
    for (const seed of [0, 1, 42, 2 ** 32 - 1, 2 ** 32, MAX_SEED]) {
      assert.deepEqual(take(uniformStream(seed, Stream.Selection, 3), 50), take(uniformStream(seed, Stream.Selection, 3), 50));
    }
  });

  it('a different seed, stream or index gives a different sequence', () => {
    const base = take(uniformStream(7, Stream.Augment, 0), 8);
    assert.notDeepEqual(take(uniformStream(7, Stream.Augment, 1), 8), base);
    assert.notDeepEqual(take(uniformStream(8, Stream.Augment, 0), 8), base);
    assert.notDeepEqual(take(uniformStream(7, Stream.Selection, 0), 8), base);
    // Seeds differing only above bit 32 differ too.
    assert.notDeepEqual(take(uniformStream(7 + 2 ** 32, Stream.Augment, 0), 8), base);
    // Many indices: all first values distinct.
    const firsts = new Set(range(2000).map((index) => uniformStream(7, Stream.Augment, index)()));
    assert.equal(firsts.size, 2000);
  });

  it('values lie in [0, 1) and look uniform', () => {
    const values = take(uniformStream(123, Stream.Selection), 100_000);
    assert.ok(values.every((v) => v >= 0 && v < 1));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
    const buckets = new Array(10).fill(0);
    for (const v of values) buckets[Math.floor(v * 10)]++;
    for (const count of buckets) assert.ok(Math.abs(count - 10_000) < 600, `bucket count ${count}`);
  });

  it('uniformInt stays in [0, n)', () => {
    const uniform = uniformStream(5, Stream.Selection);
    for (const n of [1, 2, 3, 7, 1000]) {
      for (let i = 0; i < 200; i++) {
        const v = uniformInt(uniform, n);
        assert.ok(Number.isInteger(v) && v >= 0 && v < n);
      }
    }
  });
});

describe('drawWithoutReplacement', () => {
  const items = range(20);

  it('never repeats an item and is deterministic', () => {
    for (const seed of range(50)) {
      const drawn = drawWithoutReplacement(items, 12, seed);
      assert.equal(drawn.length, 12);
      assert.equal(new Set(drawn).size, 12);
      assert.ok(drawn.every((item) => items.includes(item)));
      assert.deepEqual(drawWithoutReplacement(items, 12, seed), drawn);
    }
  });

  it('drawing every item is a permutation; drawing none is empty; the input is not changed', () => {
    const copy = items.slice();
    assert.deepEqual([...drawWithoutReplacement(items, 20, 9)].sort((a, b) => a - b), items);
    assert.deepEqual(drawWithoutReplacement(items, 0, 9), []);
    assert.deepEqual(items, copy);
  });

  it('a shorter draw is a prefix of a longer one with the same seed', () => {
    assert.deepEqual(drawWithoutReplacement(items, 5, 33), drawWithoutReplacement(items, 15, 33).slice(0, 5));
  });

  it('refuses to draw more than there are', () => {
    assert.throws(() => drawWithoutReplacement(items, 21, 1), RangeError);
  });

  it('chooses every item about equally often over many seeds', () => {
    const n = 10;
    const size = 3;
    const seeds = 20_000;
    const counts = new Array(n).fill(0);
    const firstCounts = new Array(n).fill(0);
    for (let seed = 0; seed < seeds; seed++) {
      const drawn = drawWithoutReplacement(range(n), size, seed);
      for (const item of drawn) counts[item]++;
      firstCounts[drawn[0]]++;
    }
    // Each item is chosen with probability size/n; chi-square with 9 degrees of freedom has its
    // 99.99th percentile near 33, so 50 never flakes and still catches a real bias.
    const expected = (seeds * size) / n;
    const chi = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    assert.ok(chi < 50, `chi-square ${chi.toFixed(1)} over ${JSON.stringify(counts)}`);
    const expectedFirst = seeds / n;
    const chiFirst = firstCounts.reduce((sum, c) => sum + (c - expectedFirst) ** 2 / expectedFirst, 0);
    assert.ok(chiFirst < 50, `chi-square of first positions ${chiFirst.toFixed(1)}`);
  });
});

describe('permutation', () => {
  it('is a permutation of 0..n-1, deterministic per (seed, epoch), different across epochs', () => {
    for (const n of [0, 1, 2, 10, 1000]) {
      const p = permutation(n, 5, 0);
      assert.equal(p.length, n);
      assert.deepEqual([...p].sort((a, b) => a - b), range(n));
      assert.deepEqual(permutation(n, 5, 0), p);
    }
    assert.notDeepEqual([...permutation(100, 5, 0)], [...permutation(100, 5, 1)]);
    assert.notDeepEqual([...permutation(100, 5, 0)], [...permutation(100, 6, 0)]);
  });

  it('puts each element at each position about equally often', () => {
    const n = 5;
    const trials = 20_000;
    const atZero = new Array(n).fill(0);
    for (let seed = 0; seed < trials; seed++) atZero[permutation(n, seed, 0)[0]]++;
    const expected = trials / n;
    const chi = atZero.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    assert.ok(chi < 40, `chi-square ${chi.toFixed(1)} over ${JSON.stringify(atZero)}`);
  });
});

describe('drawBatch and drawBalancedBatch', () => {
  // 6 of category 0, 3 of category 1, 3 of category 4 (indices need not be consecutive).
  const candidates: Candidate[] = [
    ...range(6).map((i) => ({ id: i + 1, categoryIndex: 0 })),
    ...range(3).map((i) => ({ id: i + 101, categoryIndex: 1 })),
    ...range(3).map((i) => ({ id: i + 201, categoryIndex: 4 })),
  ];

  it('drawBatch above the candidates is SENSORY_ERR_NOT_ENOUGH_SAMPLES with both numbers', () => {
    assert.throws(() => drawBatch(candidates, 13, 1), (error: unknown) => {
      rejectsWith('SENSORY_ERR_NOT_ENOUGH_SAMPLES')(error);
      assert.match((error as Error).message, /\b13\b/);
      assert.match((error as Error).message, /\b12\b/);
      return true;
    });
    assert.equal(drawBatch(candidates, 12, 1).length, 12);
  });

  it('draws the same number from every category, without repeats, deterministically', () => {
    for (const seed of range(30)) {
      const batch = drawBalancedBatch(candidates, 9, seed);
      assert.equal(batch.length, 9);
      assert.equal(new Set(batch.map((c) => c.id)).size, 9);
      const counts = new Map<number, number>();
      for (const c of batch) counts.set(c.categoryIndex, (counts.get(c.categoryIndex) ?? 0) + 1);
      assert.deepEqual([...counts.entries()].sort((a, b) => a[0] - b[0]), [[0, 3], [1, 3], [4, 3]]);
      assert.deepEqual(drawBalancedBatch(candidates, 9, seed), batch);
    }
  });

  it('mixes the categories instead of sorting the batch by category', () => {
    const sorted = range(30).filter((seed) => {
      const labels = drawBalancedBatch(candidates, 9, seed).map((c) => c.categoryIndex);
      return labels.every((label, i) => i === 0 || labels[i - 1] <= label);
    });
    assert.ok(sorted.length < 3, `${sorted.length} of 30 balanced batches came sorted by category`);
  });

  it('draws a different subset of the large category across seeds', () => {
    const subsets = new Set(range(20).map((seed) => JSON.stringify(drawBalancedBatch(candidates, 6, seed).filter((c) => c.categoryIndex === 0).map((c) => c.id).sort())));
    assert.ok(subsets.size > 5);
  });

  it('a size that does not divide evenly, a category too small or no candidates is SENSORY_ERR_UNBALANCEABLE', () => {
    assert.throws(() => drawBalancedBatch(candidates, 10, 1), rejectsWith('SENSORY_ERR_UNBALANCEABLE'));
    assert.throws(() => drawBalancedBatch(candidates, 12, 1), rejectsWith('SENSORY_ERR_UNBALANCEABLE'));
    assert.throws(() => drawBalancedBatch([], 3, 1), rejectsWith('SENSORY_ERR_UNBALANCEABLE'));
  });
});

describe('split', () => {
  const sha = (i: number) => i.toString(16).padStart(8, '0').repeat(8);

  it('splitBucket is in 0..99, stable, and depends only on the hash', () => {
    for (const i of [0, 1, 99, 100, 12345, 0xffffffff]) {
      const bucket = splitBucket(sha(i));
      assert.ok(Number.isInteger(bucket) && bucket >= 0 && bucket <= 99, `bucket ${bucket}`);
      assert.equal(splitBucket(sha(i)), bucket);
    }
    assert.equal(splitBucket('00000000'.padEnd(64, 'f')), 0);
    assert.equal(splitBucket('00000064'.padEnd(64, '0')), 0);
    assert.equal(splitBucket('00000063'.padEnd(64, '0')), 99);
  });

  it('spreads real SHA-256 hashes over all buckets', async () => {
    const { createHash } = await import('node:crypto');
    const counts = new Array(100).fill(0);
    for (let i = 0; i < 20_000; i++) counts[splitBucket(createHash('sha256').update(String(i)).digest('hex'))]++;
    assert.ok(counts.every((c) => c > 100 && c < 300), JSON.stringify(counts));
  });

  it('a bucket below testPercent is in the test split, otherwise in train', () => {
    assert.equal(isTestBucket(29, 30), true);
    assert.equal(isTestBucket(30, 30), false);
    assert.equal(isTestBucket(0, 0), false);
    assert.equal(inSplit(10, 30, 'test'), true);
    assert.equal(inSplit(10, 30, 'train'), false);
    assert.equal(inSplit(50, 30, 'train'), true);
    assert.equal(inSplit(50, 30, 'all'), true);
    assert.equal(inSplit(10, 30, 'all'), true);
  });
});

describe('drawAugment', () => {
  it('noise 0 is always the identity', () => {
    for (const slot of range(100)) assert.deepEqual(drawAugment(1, slot, 0), IDENTITY);
    assert.ok(isIdentity(IDENTITY));
  });

  it('noise 1 always rotates and rescales, within the ranges', () => {
    for (const seed of [0, 1, 99]) {
      for (const slot of range(500)) {
        const { rotation, scale } = drawAugment(seed, slot, 1);
        assert.ok(!isIdentity({ rotation, scale }));
        assert.notEqual(rotation, 0);
        assert.notEqual(scale, 1);
        assert.ok(Math.abs(rotation) <= MAX_ROTATION_DEGREES, `rotation ${rotation}`);
        assert.ok(scale >= MIN_SCALE && scale <= MAX_SCALE, `scale ${scale}`);
      }
    }
    assert.equal(MAX_ROTATION_DEGREES, 10);
    assert.equal(MIN_SCALE, 0.7);
    assert.equal(MAX_SCALE, 1.5);
  });

  it('noise 1 covers the ranges (both directions of rotation, shrinking and growing)', () => {
    const draws = range(2000).map((slot) => drawAugment(3, slot, 1));
    assert.ok(draws.some((d) => d.rotation < -9) && draws.some((d) => d.rotation > 9));
    assert.ok(draws.some((d) => d.scale < 0.75) && draws.some((d) => d.scale > 1.45));
  });

  it('noise p applies each augmentation with probability about p', () => {
    const draws = range(10_000).map((slot) => drawAugment(11, slot, 0.3));
    const rotated = draws.filter((d) => d.rotation !== 0).length / draws.length;
    const scaled = draws.filter((d) => d.scale !== 1).length / draws.length;
    assert.ok(Math.abs(rotated - 0.3) < 0.03, `rotated ${rotated}`);
    assert.ok(Math.abs(scaled - 0.3) < 0.03, `scaled ${scaled}`);
  });

  it('is deterministic per (seed, slot), whatever else was drawn before', () => {
    const forward = range(50).map((slot) => drawAugment(42, slot, 0.7));
    const backward = range(50).reverse().map((slot) => drawAugment(42, slot, 0.7)).reverse();
    assert.deepEqual(backward, forward);
  });

  it('slots are independent: different slots and seeds draw different values', () => {
    const rotations = new Set(range(1000).map((slot) => drawAugment(42, slot, 1).rotation));
    assert.equal(rotations.size, 1000);
    assert.notDeepEqual(drawAugment(42, 0, 1), drawAugment(43, 0, 1));
    // Adjacent slots are not correlated.
    const xs = range(5000).map((slot) => drawAugment(5, slot, 1).rotation);
    let num = 0;
    let den = 0;
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    for (let i = 0; i < xs.length - 1; i++) num += (xs[i] - mean) * (xs[i + 1] - mean);
    for (const x of xs) den += (x - mean) ** 2;
    assert.ok(Math.abs(num / den) < 0.06, `lag-1 correlation ${num / den}`);
  });

  it('the rotation value does not depend on the noise level, only whether it applies', () => {
    for (const slot of range(200)) {
      const full = drawAugment(8, slot, 1);
      const half = drawAugment(8, slot, 0.5);
      if (half.rotation !== 0) assert.equal(half.rotation, full.rotation);
      if (half.scale !== 1) assert.equal(half.scale, full.scale);
    }
  });
});

describe('warpInto', () => {
  function patterned(shape: DatasetShape): Uint8Array {
    const out = new Uint8Array(shape.width * shape.height * shape.channels);
    for (let i = 0; i < out.length; i++) out[i] = (i * 37 + 11) & 255;
    return out;
  }

  it('the identity copies exactly, at the offset asked for', () => {
    const shape: DatasetShape = { width: 7, height: 5, channels: 3 };
    const source = patterned(shape);
    const out = new Uint8Array(source.length * 3).fill(9);
    warpInto(source, shape, IDENTITY, out, source.length);
    assert.deepEqual(out.subarray(source.length, 2 * source.length), source);
    assert.ok(out.subarray(0, source.length).every((v) => v === 9));
    assert.ok(out.subarray(2 * source.length).every((v) => v === 9));
  });

  it('a near-identity warp (scale 1, rotation 0 by value) is the identity', () => {
    const shape: DatasetShape = { width: 6, height: 4, channels: 1 };
    const source = patterned(shape);
    const out = new Uint8Array(source.length);
    warpInto(source, shape, { rotation: 0, scale: 1 }, out, 0);
    assert.deepEqual(out, source);
  });

  it('growing a constant image keeps it constant everywhere', () => {
    const shape: DatasetShape = { width: 16, height: 12, channels: 3 };
    const source = new Uint8Array(16 * 12 * 3).fill(137);
    const out = new Uint8Array(source.length);
    warpInto(source, shape, { rotation: 0, scale: 2 }, out, 0);
    assert.ok(out.every((v) => v === 137), 'scale 2 of a constant image changed it');
  });

  it('shrinking a constant image keeps the middle and pads the border with black', () => {
    const shape: DatasetShape = { width: 20, height: 20, channels: 1 };
    const source = new Uint8Array(400).fill(200);
    const out = new Uint8Array(400);
    warpInto(source, shape, { rotation: 0, scale: 0.7 }, out, 0);
    assert.equal(out[10 * 20 + 10], 200);
    assert.equal(out[0], 0);
    assert.equal(out[399], 0);
  });

  it('rotating a constant image keeps its middle constant and blackens corners that leave the frame', () => {
    const shape: DatasetShape = { width: 21, height: 21, channels: 3 };
    const source = new Uint8Array(21 * 21 * 3).fill(90);
    const out = new Uint8Array(source.length);
    warpInto(source, shape, { rotation: 10, scale: 1 }, out, 0);
    for (let y = 5; y < 16; y++) {
      for (let x = 5; x < 16; x++) for (let c = 0; c < 3; c++) assert.equal(out[(y * 21 + x) * 3 + c], 90);
    }
    assert.ok(out[0] < 90, 'a corner should have rotated in from outside the frame');
  });

  it('rotating a centred symmetric pattern keeps the centre pixel', () => {
    // An odd-sized image whose centre pixel is bright, on a dark, centred ring pattern.
    const size = 15;
    const shape: DatasetShape = { width: size, height: size, channels: 1 };
    const source = new Uint8Array(size * size);
    const c = (size - 1) / 2;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) source[y * size + x] = Math.round(Math.hypot(x - c, y - c)) % 2 === 0 ? 40 : 160;
    source[c * size + c] = 255;
    for (const rotation of [-10, -4.5, 3, 10]) {
      for (const scale of [1, 0.8, 1.3]) {
        const out = new Uint8Array(size * size);
        warpInto(source, shape, { rotation, scale }, out, 0);
        assert.equal(out[c * size + c], 255, `rotation ${rotation}, scale ${scale}`);
      }
    }
  });

  it('rotates counter-clockwise on screen for a positive angle', () => {
    // A bright dot right of the centre moves up (to a smaller y) under a positive rotation.
    const size = 41;
    const shape: DatasetShape = { width: size, height: size, channels: 1 };
    const source = new Uint8Array(size * size);
    const c = 20;
    for (let y = c - 1; y <= c + 1; y++) for (let x = 36; x <= 38; x++) source[y * size + x] = 255;
    const out = new Uint8Array(size * size);
    warpInto(source, shape, { rotation: 10, scale: 1 }, out, 0);
    let sumY = 0;
    let weight = 0;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      sumY += out[y * size + x] * y;
      weight += out[y * size + x];
    }
    assert.ok(weight > 0);
    const centroidY = sumY / weight;
    // Distance 17 from the centre, 10°: about 3 pixels up.
    assert.ok(centroidY < c - 2 && centroidY > c - 4, `centroid y ${centroidY}`);
  });

  it('is deterministic and writes only its own record', () => {
    const shape: DatasetShape = { width: 9, height: 7, channels: 3 };
    const source = patterned(shape);
    const a = new Uint8Array(source.length * 2).fill(3);
    const b = new Uint8Array(source.length * 2).fill(3);
    warpInto(source, shape, { rotation: 7.3, scale: 1.21 }, a, 0);
    warpInto(source, shape, { rotation: 7.3, scale: 1.21 }, b, 0);
    assert.deepEqual(a, b);
    assert.ok(a.subarray(source.length).every((v) => v === 3));
    assert.notDeepEqual(a.subarray(0, source.length), source);
  });
});

describe('safetensors', () => {
  const tensors: TensorSpec[] = [
    { name: 'data', dtype: 'U8', shape: [3, 2, 2, 1] },
    { name: 'labels', dtype: 'I32', shape: [3] },
    { name: 'weights', dtype: 'F32', shape: [2, 2] },
  ];

  it('tensorBytes multiplies the shape by the element size', () => {
    assert.equal(tensorBytes(tensors[0]), 12);
    assert.equal(tensorBytes(tensors[1]), 12);
    assert.equal(tensorBytes(tensors[2]), 16);
    assert.equal(tensorBytes({ name: 'empty', dtype: 'F32', shape: [0, 5] }), 0);
  });

  it('pads the header to 8 bytes and lays tensors out in order with contiguous offsets', () => {
    const metadatas: Record<string, string>[] = [{}, { a: '1' }, { ids: '[1,2,3]', revision: '7', dataset: 'x'.repeat(13) }];
    for (const metadata of metadatas) {
      const layout = safetensorsLayout(tensors, metadata);
      const headerLength = Number(layout.head.readBigUInt64LE(0));
      assert.equal(headerLength % 8, 0);
      assert.equal(layout.head.length, 8 + headerLength);
      assert.equal(layout.totalBytes, layout.head.length + 12 + 12 + 16);
      const text = layout.head.subarray(8).toString('utf8');
      assert.match(text, /^\{.*\} *$/s);
      const header = JSON.parse(text);
      assert.deepEqual(header.__metadata__, metadata);
      assert.deepEqual(header.data, { dtype: 'U8', shape: [3, 2, 2, 1], data_offsets: [0, 12] });
      assert.deepEqual(header.labels, { dtype: 'I32', shape: [3], data_offsets: [12, 24] });
      assert.deepEqual(header.weights, { dtype: 'F32', shape: [2, 2], data_offsets: [24, 40] });
    }
  });

  it('pads with spaces for every header length modulo 8', () => {
    for (let extra = 0; extra < 16; extra++) {
      const layout = safetensorsLayout([{ name: 't', dtype: 'U8', shape: [1] }], { k: 'v'.repeat(extra) });
      const headerLength = Number(layout.head.readBigUInt64LE(0));
      assert.equal(headerLength % 8, 0);
      const text = layout.head.subarray(8).toString('utf8');
      assert.equal(text.trimEnd().length + (text.length - text.trimEnd().length), headerLength);
      assert.doesNotThrow(() => JSON.parse(text));
    }
  });

  it('round-trips through parseSafetensors', () => {
    const data = Buffer.from(range(12).map((i) => i * 20));
    const labels = Buffer.from(Int32Array.from([0, 5, -1]).buffer);
    const weights = Buffer.from(Float32Array.from([0.5, -1.25, 3, 1 / 255]).buffer);
    const metadata = { ids: '[4,5,6]', note: 'ünïcödé' };
    const layout = safetensorsLayout(tensors, metadata);
    const file = Buffer.concat([layout.head, data, labels, weights]);
    assert.equal(file.length, layout.totalBytes);
    const parsed = parseSafetensors(file);
    assert.deepEqual(parsed.metadata, metadata);
    assert.deepEqual(Object.keys(parsed.tensors).sort(), ['data', 'labels', 'weights']);
    assert.equal(parsed.tensors.data.dtype, 'U8');
    assert.deepEqual(parsed.tensors.data.shape, [3, 2, 2, 1]);
    assert.ok(parsed.tensors.data.data.equals(data));
    assert.deepEqual([...new Int32Array(Uint8Array.from(parsed.tensors.labels.data).buffer)], [0, 5, -1]);
    assert.deepEqual([...new Float32Array(Uint8Array.from(parsed.tensors.weights.data).buffer)], [0.5, -1.25, 3, Math.fround(1 / 255)]);
  });
});
