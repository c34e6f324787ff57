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

/** The candidates and augmentations of `slots`, computing only the epochs they touch. */
export function drawSlots(plan: OrderPlan, slots: readonly number[], { eligibleCount, seed, noise }: DrawParameters): SlotDraw[] {
  const epochs = new Map<number, Uint32Array>();
  return slots.map((slot) => {
    const underlying = underlyingSlot(plan, slot);
    const epoch = Math.floor(underlying / eligibleCount);
    let order = epochs.get(epoch);
    if (!order) {
      order = permutation(eligibleCount, seed, epoch);
      epochs.set(epoch, order);
    }
    return { slot, epoch, candidate: order[underlying % eligibleCount], augment: drawAugment(seed, underlying, noise) };
  });
}
