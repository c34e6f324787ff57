import { drawAugment, type Augment } from './augmentation.js';
import { permutation } from './sampling.js';

/**
 * An order of `size` samples over `eligibleCount` candidates is a sequence of slots 0..size-1.
 * Slot s belongs to epoch floor(s / eligibleCount) and takes the candidate at its position in
 * that epoch's seeded permutation; the order is cut into shards of consecutive slots, and each
 * shard into chunks (one broker message each). Everything here is a function of the order's
 * parameters, so any worker or replica computes the same slots.
 */
export interface SlotRange {
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
}

export interface ShardRange extends SlotRange {
  readonly shard: number;
}

export function shardCount(size: number, shardSize: number): number {
  return Math.floor((size + shardSize - 1) / shardSize);
}

export function shardRange(shard: number, size: number, shardSize: number): ShardRange {
  const from = shard * shardSize;
  if (shard < 0 || from >= size) throw new RangeError(`shard ${shard} is outside an order of ${size}`);
  return { shard, from, to: Math.min(size, from + shardSize) };
}

export function chunkRanges(range: SlotRange, chunkSamples: number): SlotRange[] {
  const chunks: SlotRange[] = [];
  for (let from = range.from; from < range.to; from += chunkSamples) {
    chunks.push({ from, to: Math.min(range.to, from + chunkSamples) });
  }
  return chunks;
}

/** Samples per broker message: about 1 MiB of pixels, between 1 and 64 samples. */
export function chunkSamplesFor(recordBytes: number): number {
  return Math.max(1, Math.min(64, Math.floor((1024 * 1024) / recordBytes)));
}

export interface SlotDraw {
  readonly slot: number;
  /** Index into the order's candidates (sorted by id). */
  readonly candidate: number;
  readonly augment: Augment;
}

/** The candidates and augmentations of slots [from, to), computing only the epochs they touch. */
export function drawSlots(range: SlotRange, eligibleCount: number, seed: number, noise: number): SlotDraw[] {
  const epochs = new Map<number, Uint32Array>();
  const draws: SlotDraw[] = [];
  for (let slot = range.from; slot < range.to; slot++) {
    const epoch = Math.floor(slot / eligibleCount);
    let order = epochs.get(epoch);
    if (!order) {
      order = permutation(eligibleCount, seed, epoch);
      epochs.set(epoch, order);
    }
    draws.push({ slot, candidate: order[slot % eligibleCount], augment: drawAugment(seed, slot, noise) });
  }
  return draws;
}

/** A set of slots as a bitmap: what an order has produced or delivered. */
export class SlotSet {
  readonly bits: Uint8Array;

  constructor(
    readonly size: number,
    bits?: Uint8Array,
  ) {
    this.bits = bits ?? new Uint8Array(Math.ceil(size / 8));
  }

  has(slot: number): boolean {
    return (this.bits[slot >> 3] & (1 << (slot & 7))) !== 0;
  }

  /** Adds the slots; returns how many were new. */
  add(slots: Iterable<number>): number {
    let added = 0;
    for (const slot of slots) {
      if (slot < 0 || slot >= this.size) throw new RangeError(`slot ${slot} is outside 0..${this.size - 1}`);
      if (!this.has(slot)) {
        this.bits[slot >> 3] |= 1 << (slot & 7);
        added++;
      }
    }
    return added;
  }

  missing(range: SlotRange): number[] {
    const slots: number[] = [];
    for (let slot = range.from; slot < range.to; slot++) if (!this.has(slot)) slots.push(slot);
    return slots;
  }

  count(): number {
    let total = 0;
    for (const byte of this.bits) {
      let b = byte;
      while (b) {
        b &= b - 1;
        total++;
      }
    }
    return total;
  }
}

export function rangeOf(from: number, to: number): SlotRange {
  return { from, to };
}

export function* slotsOf(range: SlotRange): Generator<number> {
  for (let slot = range.from; slot < range.to; slot++) yield slot;
}
