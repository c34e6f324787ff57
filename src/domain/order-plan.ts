import { drawAugment, type Augment } from './augmentation.js';
import { underlyingSlot, type OrderPlan } from './order-streams.js';
import { permutation } from './sampling.js';

/**
 * What each slot of an order holds. Slot s carries the sample of its underlying slot u (itself,
 * or the slot a repetition copies: see order-streams.ts): epoch ⌊u / eligible⌋, the candidate at
 * position u mod eligible of that epoch's seeded permutation, and the augmentation drawn from
 * (seed, u). Everything is a function of the order's parameters, so any worker or replica
 * computes the same.
 */

/** Samples per result message: about 1 MiB of pixels, between 1 and 64 samples. */
export function chunkSamplesFor(recordBytes: number): number {
  return Math.max(1, Math.min(64, Math.floor((1024 * 1024) / recordBytes)));
}

export interface SlotDraw {
  readonly slot: number;
  readonly epoch: number;
  /** Index into the order's candidates (sorted by id). */
  readonly candidate: number;
  readonly augment: Augment;
}

export interface DrawParameters {
  readonly eligibleCount: number;
  readonly seed: number;
  readonly noise: number;
}

/** Epoch permutations kept for the next messages of the same order (most recent last). */
const permutations = new Map<string, Uint32Array>();
const PERMUTATIONS_KEPT = 4;
/** Entries (4 bytes each) kept at most over all of them; the most recent one is always kept. */
const PERMUTATION_ENTRIES_KEPT = 16 * 1024 * 1024;
let permutationEntries = 0;

/**
 * An epoch's permutation, kept for the next calls: a result message holds a few dozen slots of
 * one epoch, and shuffling all the eligible samples again for each message cost more than the
 * message's other work (a dataset of 10^6 samples: milliseconds per message).
 */
function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const key = `${n}:${seed}:${epoch}`;
  let order = permutations.get(key);
  if (order) permutations.delete(key);
  else {
    order = permutation(n, seed, epoch);
    permutationEntries += n;
  }
  permutations.set(key, order);
  while (permutations.size > 1 && (permutations.size > PERMUTATIONS_KEPT || permutationEntries > PERMUTATION_ENTRIES_KEPT)) {
    const [oldest, dropped] = permutations.entries().next().value!;
    permutations.delete(oldest);
    permutationEntries -= dropped.length;
  }
  return order;
}

/** The candidates and augmentations of `slots`, computing only the epochs they touch. */
export function drawSlots(plan: OrderPlan, slots: readonly number[], { eligibleCount, seed, noise }: DrawParameters): SlotDraw[] {
  const epochs = new Map<number, Uint32Array>();
  return slots.map((slot) => {
    const underlying = underlyingSlot(plan, slot);
    const epoch = Math.floor(underlying / eligibleCount);
    let order = epochs.get(epoch);
    if (!order) {
      order = epochPermutation(eligibleCount, seed, epoch);
      epochs.set(epoch, order);
    }
    return { slot, epoch, candidate: order[underlying % eligibleCount], augment: drawAugment(seed, underlying, noise) };
  });
}
