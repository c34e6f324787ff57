import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SensoryError } from '../../src/domain/errors.js';
import { drawSlots } from '../../src/domain/order-plan.js';
import {
  currentGeneration,
  entrySlot,
  epochOf,
  planOrder,
  positionSlot,
  positionSlots,
  reshapePlan,
  slotCount,
  streamLength,
  underlyingSlot,
  type OrderPlan,
  type Rounding,
} from '../../src/domain/order-streams.js';
import { normalizeRanges, type PositionRange } from '../../src/domain/position-ranges.js';
import { permutation } from '../../src/domain/sampling.js';
import { drawAugment } from '../../src/domain/augmentation.js';

/** A small seeded generator for the property tests. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function expectError(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SensoryError, String(error));
    assert.equal(error.code, code);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

/** Every generation spelled out: entry j → slot, and each padding slot's underlying slot. */
interface Materialized {
  readonly entries: number[][];
  readonly underlying: Map<number, number>;
}

/**
 * The model, written the slow obvious way: generation 0 is slots 0 … N' − 1; generation g + 1
 * is the undelivered entries of g in entry order, cut (drop) or padded with new slots (repeat).
 */
class Model {
  readonly entries: number[][] = [];
  readonly underlying = new Map<number, number>();
  next: number;

  constructor(
    readonly size: number,
    ranks: number,
    rounding: Rounding,
  ) {
    const length = rounding === 'drop' ? Math.floor(size / ranks) * ranks : rounding === 'repeat' ? Math.ceil(size / ranks) * ranks : size;
    const first = Array.from({ length }, (_, j) => j);
    for (let s = 0; s < size; s++) this.underlying.set(s, s);
    for (let s = size; s < length; s++) this.underlying.set(s, this.underlying.get(s - size)!);
    this.entries.push(first);
    this.next = Math.max(size, length);
    this.ranks.push(ranks);
  }

  readonly ranks: number[] = [];

  reshape(undeliveredEntries: number[], ranks: number, rounding: Rounding): void {
    const available = undeliveredEntries.length;
    const length = rounding === 'drop' ? Math.floor(available / ranks) * ranks : rounding === 'repeat' ? Math.ceil(available / ranks) * ranks : available;
    const previous = this.entries[this.entries.length - 1];
    const next = undeliveredEntries.slice(0, Math.min(available, length)).map((j) => previous[j]);
    for (let k = 0; next.length < length; k++) {
      const slot = this.next++;
      this.underlying.set(slot, this.underlying.get(next[k % available])!);
      next.push(slot);
    }
    this.entries.push(next);
    this.ranks.push(ranks);
  }
}

function assertSame(plan: OrderPlan, model: Model): void {
  assert.equal(plan.generations.length, model.entries.length);
  model.entries.forEach((entries, g) => {
    assert.equal(plan.generations[g].length, entries.length, `generation ${g} length`);
    entries.forEach((slot, j) => assert.equal(entrySlot(plan, g, j), slot, `generation ${g} entry ${j}`));
  });
  for (const [slot, underlying] of model.underlying) {
    if (model.entries.some((entries) => entries.includes(slot))) assert.equal(underlyingSlot(plan, slot), underlying, `slot ${slot}`);
  }
}

/** Undelivered entries of a generation given per-stream undelivered position ranges. */
function entriesOf(ranges: readonly (readonly PositionRange[])[], ranks: number): number[] {
  const entries: number[] = [];
  ranges.forEach((list, stream) => {
    for (const range of list) for (let p = range.from; p < range.to; p++) entries.push(p * ranks + stream);
  });
  return entries.sort((a, b) => a - b);
}

describe('order streams: generation 0', () => {
  it('deals slots interleaved: position p of stream q is slot p·W + q; every stream has N/W positions', () => {
    const plan = planOrder(12, 3, 'exact');
    assert.equal(streamLength(plan, 0), 4);
    assert.equal(slotCount(plan), 12);
    assert.deepEqual(positionSlots(plan, 0, 0, { from: 0, to: 4 }), [0, 3, 6, 9]);
    assert.deepEqual(positionSlots(plan, 0, 1, { from: 0, to: 4 }), [1, 4, 7, 10]);
    assert.deepEqual(positionSlots(plan, 0, 2, { from: 1, to: 3 }), [5, 8]);
    const all = [0, 1, 2].flatMap((q) => positionSlots(plan, 0, q, { from: 0, to: 4 })).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 12 }, (_, s) => s), 'disjoint, and together the order');
  });

  it('one rank is today\'s single stream: position p is slot p', () => {
    const plan = planOrder(50, 1, 'exact');
    assert.deepEqual(positionSlots(plan, 0, 0, { from: 0, to: 50 }), Array.from({ length: 50 }, (_, s) => s));
    assert.equal(currentGeneration(plan), 0);
  });

  it('exact refuses a size that is not a multiple of the ranks, naming both numbers and the alternatives', () => {
    expectError(() => planOrder(10, 3, 'exact'), 'SENSORY_ERR_UNEVEN_RANKS', /size 10 .*ranks 3.*drop.*9.*repeat.*12/);
  });

  it('drop delivers floor(N/W)·W slots: the last N mod W are never dealt', () => {
    const plan = planOrder(10, 3, 'drop');
    assert.equal(slotCount(plan), 9);
    assert.equal(streamLength(plan, 0), 3);
    const all = [0, 1, 2].flatMap((q) => positionSlots(plan, 0, q, { from: 0, to: 3 })).sort((a, b) => a - b);
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('repeat delivers ceil(N/W)·W slots: slot s ≥ N repeats slot s − N', () => {
    const plan = planOrder(10, 4, 'repeat');
    assert.equal(slotCount(plan), 12);
    assert.equal(streamLength(plan, 0), 3);
    assert.deepEqual(positionSlots(plan, 0, 2, { from: 0, to: 3 }), [2, 6, 10]);
    assert.deepEqual(positionSlots(plan, 0, 3, { from: 0, to: 3 }), [3, 7, 11]);
    assert.equal(underlyingSlot(plan, 10), 0);
    assert.equal(underlyingSlot(plan, 11), 1);
    assert.equal(underlyingSlot(plan, 9), 9);
    assert.throws(() => underlyingSlot(plan, 12), RangeError);
  });

  it('refuses ranks below 1 or above the size', () => {
    expectError(() => planOrder(5, 0, 'exact'), 'SENSORY_ERR_BAD_REQUEST');
    expectError(() => planOrder(5, 6, 'drop'), 'SENSORY_ERR_TOO_MANY_RANKS', /ranks 6 is above the size 5/);
    expectError(() => planOrder(5, 6, 'repeat'), 'SENSORY_ERR_TOO_MANY_RANKS');
    assert.equal(slotCount(planOrder(5, 5, 'exact')), 5);
  });

  it('lookups outside the generation are range errors', () => {
    const plan = planOrder(8, 2, 'exact');
    assert.throws(() => positionSlot(plan, 0, 2, 0), RangeError);
    assert.throws(() => positionSlot(plan, 0, 0, 4), RangeError);
    assert.throws(() => entrySlot(plan, 1, 0), RangeError);
  });

  it('the slots are a function of (size, W, rounding) alone: the seed only chooses the candidates', () => {
    assert.deepEqual(planOrder(100, 4, 'exact'), planOrder(100, 4, 'exact'));
  });
});

describe('order streams: epochs and draws', () => {
  it('slot s is in epoch ⌊s / eligible⌋; a repeated slot in its original\'s epoch', () => {
    const plan = planOrder(23, 4, 'repeat'); // 24 slots, slot 23 repeats slot 0
    assert.equal(epochOf(plan, 0, 7), 0);
    assert.equal(epochOf(plan, 6, 7), 0);
    assert.equal(epochOf(plan, 7, 7), 1);
    assert.equal(epochOf(plan, 22, 7), 3);
    assert.equal(epochOf(plan, 23, 7), 0);
  });

  it('draws candidates from each epoch\'s permutation and augmentations from (seed, underlying slot)', () => {
    const plan = planOrder(10, 3, 'repeat'); // 12 slots; 10 and 11 repeat 0 and 1
    const draws = drawSlots(plan, [0, 4, 5, 9, 10, 11], { eligibleCount: 5, seed: 42, noise: 1 });
    const first = permutation(5, 42, 0);
    const second = permutation(5, 42, 1);
    assert.deepEqual(
      draws.map((d) => [d.slot, d.epoch, d.candidate]),
      [
        [0, 0, first[0]],
        [4, 0, first[4]],
        [5, 1, second[0]],
        [9, 1, second[4]],
        [10, 0, first[0]],
        [11, 0, first[1]],
      ],
    );
    assert.deepEqual(draws[4].augment, drawAugment(42, 0, 1), 'a repetition carries its original\'s augmentation');
    assert.deepEqual(draws[1].augment, drawAugment(42, 4, 1));
  });

  it('draws the same candidates message after message, whatever other orders and epochs drew in between (kept permutations)', () => {
    const plan = planOrder(60, 1, 'exact');
    const params = { eligibleCount: 7, seed: 9, noise: 0 };
    const fresh = (slots: number[]) => slots.map((slot) => permutation(7, 9, Math.floor(slot / 7))[slot % 7]);
    const slots = Array.from({ length: 60 }, (_, i) => i);
    // Several messages of the order, with other orders' (seeds, sizes) drawn between them: more
    // permutations than are kept, so some are dropped and made again.
    for (let from = 0; from < 60; from += 6) {
      const message = slots.slice(from, from + 6);
      assert.deepEqual(drawSlots(plan, message, params).map((d) => d.candidate), fresh(message), `slots ${from}…`);
      for (let other = 0; other < 3; other++) drawSlots(planOrder(20, 1, 'exact'), [from % 20], { eligibleCount: 5 + other, seed: 100 + from, noise: 0 });
    }
    // The same message twice gives the same draws (a kept permutation is never changed).
    assert.deepEqual(drawSlots(plan, [3, 4, 5], params), drawSlots(plan, [3, 4, 5], params));
  });

  it('streams cross an epoch boundary within one position of each other', () => {
    const eligible = 10;
    const plan = planOrder(40, 4, 'exact');
    for (let q = 0; q < 4; q++) {
      const epochs = positionSlots(plan, 0, q, { from: 0, to: 10 }).map((slot) => epochOf(plan, slot, eligible));
      // Position p holds slots 4p … 4p + 3, epoch ⌊4p/10⌋ or one more.
      epochs.forEach((epoch, p) => assert.ok(Math.abs(epoch - Math.floor((4 * p) / eligible)) <= 1, `rank ${q} position ${p}`));
    }
  });
});

describe('order streams: reshape', () => {
  it('2 → 1 with the ranks at different positions: the undelivered slots, in slot order, to one stream', () => {
    const plan = planOrder(20, 2, 'exact'); // stream 0: 0 2 4 …, stream 1: 1 3 5 …
    // Stream 0 delivered positions 0 … 5 (slots 0 … 10), stream 1 positions 0 … 2 (slots 1, 3, 5).
    const next = reshapePlan(plan, [[{ from: 6, to: 10 }], [{ from: 3, to: 10 }]], 1, 'exact');
    assert.equal(currentGeneration(next), 1);
    assert.equal(streamLength(next, 1), 11);
    assert.deepEqual(positionSlots(next, 1, 0, { from: 0, to: 11 }), [7, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.equal(next.generations[1].deliveredBefore, 9);
    assert.equal(slotCount(next), 20);
  });

  it('1 → 3 deals the rest interleaved; exact needs a multiple of 3, drop and repeat round', () => {
    const plan = planOrder(20, 1, 'exact');
    const undelivered = [[{ from: 8, to: 20 }]];
    const exact = reshapePlan(plan, undelivered, 3, 'exact');
    assert.deepEqual(positionSlots(exact, 1, 0, { from: 0, to: 4 }), [8, 11, 14, 17]);
    assert.deepEqual(positionSlots(exact, 1, 1, { from: 0, to: 4 }), [9, 12, 15, 18]);
    assert.deepEqual(positionSlots(exact, 1, 2, { from: 0, to: 4 }), [10, 13, 16, 19]);

    const odd = [[{ from: 7, to: 20 }]];
    expectError(() => reshapePlan(plan, odd, 3, 'exact'), 'SENSORY_ERR_UNEVEN_RANKS', /13 .*ranks 3/);
    const dropped = reshapePlan(plan, odd, 3, 'drop');
    assert.equal(slotCount(dropped), 7 + 12, 'the last undelivered slot is dropped');
    assert.deepEqual([0, 1, 2].flatMap((q) => positionSlots(dropped, 1, q, { from: 0, to: 4 })).sort((a, b) => a - b), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
    const repeated = reshapePlan(plan, odd, 3, 'repeat');
    assert.equal(slotCount(repeated), 7 + 15);
    // Entries 13 and 14 are new slots 20 and 21, repeating the first undelivered slots 7 and 8.
    assert.equal(entrySlot(repeated, 1, 13), 20);
    assert.equal(entrySlot(repeated, 1, 14), 21);
    assert.equal(underlyingSlot(repeated, 20), 7);
    assert.equal(underlyingSlot(repeated, 21), 8);
  });

  it('refuses more ranks than undelivered samples, and a reshape of nothing', () => {
    const plan = planOrder(10, 1, 'exact');
    expectError(() => reshapePlan(plan, [[{ from: 8, to: 10 }]], 3, 'repeat'), 'SENSORY_ERR_TOO_MANY_RANKS', /ranks 3 is above the undelivered samples 2/);
    expectError(() => reshapePlan(plan, [[]], 1, 'exact'), 'SENSORY_ERR_ORDER_FINISHED');
    assert.throws(() => reshapePlan(plan, [[], []], 1, 'exact'), RangeError);
    assert.throws(() => reshapePlan(plan, [[{ from: 5, to: 11 }]], 1, 'exact'), RangeError);
  });

  it('8 → 4 with uneven progress and holes matches the model entry by entry', () => {
    const plan = planOrder(800, 8, 'exact'); // 100 positions per stream
    const model = new Model(800, 8, 'exact');
    const undelivered: PositionRange[][] = [
      [{ from: 40, to: 100 }],
      [{ from: 37, to: 100 }],
      [{ from: 10, to: 12 }, { from: 45, to: 100 }],
      [{ from: 44, to: 100 }],
      [{ from: 0, to: 1 }, { from: 30, to: 31 }, { from: 40, to: 100 }],
      [{ from: 41, to: 100 }],
      [{ from: 100, to: 100 }],
      [{ from: 39, to: 100 }],
    ];
    const next = reshapePlan(plan, undelivered, 4, 'drop');
    model.reshape(entriesOf(undelivered.map(normalizeRanges), 8), 4, 'drop');
    assertSame(next, model);
    assert.ok(next.generations[1].groups.length <= 16, `${next.generations[1].groups.length} row groups for 8 streams`);
  });

  it('many generations, every rounding, random progress: the same as the model, and every slot delivered once', () => {
    const random = prng(7);
    for (let trial = 0; trial < 40; trial++) {
      const size = 20 + random(200);
      const rounding = (['exact', 'drop', 'repeat'] as const)[random(3)];
      let ranks = 1 + random(Math.min(8, size));
      if (rounding === 'exact') while (size % ranks !== 0) ranks--;
      let plan = planOrder(size, ranks, rounding);
      const model = new Model(size, ranks, rounding);
      const delivered: number[] = [];
      let finished = false;
      for (let g = 0; g < 6; g++) {
        const gen = plan.generations[g];
        const perStream = gen.length / gen.ranks;
        // Each stream delivers a prefix and maybe a few positions further on.
        const undelivered = Array.from({ length: gen.ranks }, () => {
          const done = random(perStream + 1);
          const ranges: PositionRange[] = [{ from: done, to: perStream }];
          if (done > 2 && random(2) === 0) ranges.push({ from: random(done - 1), to: done - 1 });
          return normalizeRanges(ranges);
        });
        for (let q = 0; q < gen.ranks; q++) {
          for (let p = 0; p < perStream; p++) {
            if (!undelivered[q].some((r) => p >= r.from && p < r.to)) delivered.push(positionSlot(plan, g, q, p));
          }
        }
        const left = undelivered.reduce((sum, list) => sum + list.reduce((s, r) => s + r.to - r.from, 0), 0);
        if (left === 0) {
          finished = true;
          break;
        }
        let nextRanks = 1 + random(Math.min(8, left));
        const nextRounding = (['exact', 'drop', 'repeat'] as const)[random(3)];
        if (nextRounding === 'exact') while (left % nextRanks !== 0) nextRanks--;
        plan = reshapePlan(plan, undelivered, nextRanks, nextRounding);
        model.reshape(entriesOf(undelivered, gen.ranks), nextRanks, nextRounding);
        assertSame(plan, model);
      }
      // Deliver the last generation whole: no slot twice, and the count the plan announced.
      const last = plan.generations[plan.generations.length - 1];
      for (let q = 0; q < last.ranks && !finished; q++) delivered.push(...positionSlots(plan, plan.generations.length - 1, q, { from: 0, to: last.length / last.ranks }));
      assert.equal(new Set(delivered).size, delivered.length, `trial ${trial}: a slot delivered twice`);
      assert.equal(delivered.length, slotCount(plan), `trial ${trial}: slot count`);
    }
  });

  it('an order of 10^8 slots plans and reshapes in O(1): small plans, instant lookups', () => {
    const started = process.hrtime.bigint();
    const plan = planOrder(100_000_000, 8, 'exact');
    assert.equal(positionSlot(plan, 0, 7, 12_499_999), 99_999_999);
    const undelivered = Array.from({ length: 8 }, (_, q) => [{ from: 6_000_000 + q * 1000, to: 12_500_000 }]);
    const next = reshapePlan(plan, undelivered, 3, 'repeat');
    const last = streamLength(next, 1) - 1;
    assert.ok(next.generations[1].groups.length <= 9);
    assert.ok(JSON.stringify(next).length < 2000, 'the plan stays small');
    for (let q = 0; q < 3; q++) assert.ok(Number.isInteger(positionSlot(next, 1, q, last)));
    assert.equal(entrySlot(next, 1, 0), 48_000_000, 'the first undelivered entry: stream 0 at position 6,000,000');
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(ms < 200, `${ms} ms`);
  });
});
