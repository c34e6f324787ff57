import { SensoryError } from './errors.js';
import { normalizeRanges, type PositionRange } from './position-ranges.js';

/**
 * Where each slot of an order goes: ranks, streams, positions and generations. Pure arithmetic
 * over small values, O(1) in the order's size.
 *
 * An order of `size` N has slots 0 … N' − 1. Generation 0 deals them to W ranks (streams): its
 * entry j is slot j, and position p of stream q is entry p·W + q (interleaved, as torch's
 * DistributedSampler). `rounding` makes N' a multiple of W: `exact` (N must be one), `drop`
 * (floor(N/W)·W slots) or `repeat` (ceil(N/W)·W slots; the extra slots repeat the first ones).
 *
 * A reshape starts generation g + 1: the entries of generation g not yet delivered, in entry
 * order, are dealt again over W2 streams the same way, rounded to a multiple of W2. They are
 * described by row groups over generation g's rows (row p = position p of every stream): a few
 * groups for the band where streams had progressed unevenly, and one for the common tail, so a
 * lookup is a binary search per generation, whatever the order's size.
 */

export const ROUNDINGS = ['exact', 'drop', 'repeat'] as const;
export type Rounding = (typeof ROUNDINGS)[number];


/** Rows [fromRow, toRow) of the previous generation, in each of which exactly `streams` were undelivered. */
export interface RowGroup {
  readonly fromRow: number;
  readonly toRow: number;
  /** Ascending. */
  readonly streams: readonly number[];
  /** Entries of this generation before the group. */
  readonly before: number;
}

export interface Generation {
  readonly ranks: number;
  readonly rounding: Rounding;
  /** Entries in this generation: ranks × positions per rank. */
  readonly length: number;
  /** Slots delivered in earlier generations. */
  readonly deliveredBefore: number;
  /** Entries [0, taken) come from the previous generation (generation 0: slots 0 … taken − 1). */
  readonly taken: number;
  /** Entries [taken, length) are new slots padFrom + (j − taken), repeating entry (j − taken) mod taken. */
  readonly padFrom: number;
  /** Generation ≥ 1: where entries [0, taken) are in the previous generation. */
  readonly groups: readonly RowGroup[];
}

export interface OrderPlan {
  /** The size asked for. */
  readonly size: number;
  readonly generations: readonly Generation[];
  /** The slot number the next repeated slot takes. */
  readonly nextSlot: number;
}

/** The entry count for `available` entries over `ranks` streams. */
function roundedLength(available: number, ranks: number, rounding: Rounding): number {
  if (rounding === 'drop') return Math.floor(available / ranks) * ranks;
  if (rounding === 'repeat') return Math.ceil(available / ranks) * ranks;
  return available;
}

function assertRanks(ranks: number, available: number, what: string, rounding: Rounding): void {
  if (!Number.isInteger(ranks) || ranks < 1) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `ranks must be a whole number of at least 1; got ${ranks}`, { field: 'ranks' });
  if (ranks > available) {
    throw new SensoryError('SENSORY_ERR_TOO_MANY_RANKS', `ranks ${ranks} is above the ${what} ${available}: every rank needs at least one sample`, { ranks, available });
  }
  if (rounding === 'exact' && available % ranks !== 0) {
    throw new SensoryError(
      'SENSORY_ERR_UNEVEN_RANKS',
      `the ${what} ${available} is not a multiple of ranks ${ranks}: every rank must get as many samples; ask rounding "drop" (${roundedLength(available, ranks, 'drop')} samples) or "repeat" (${roundedLength(available, ranks, 'repeat')})`,
      { ranks, available },
    );
  }
}

/** Generation 0 of an order of `size` over `ranks` streams. */
export function planOrder(size: number, ranks: number, rounding: Rounding): OrderPlan {
  if (!Number.isInteger(size) || size < 1) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `size must be a whole number of at least 1; got ${size}`, { field: 'size' });
  assertRanks(ranks, size, 'size', rounding);
  const length = roundedLength(size, ranks, rounding);
  const taken = Math.min(size, length);
  return {
    size,
    generations: [{ ranks, rounding, length, deliveredBefore: 0, taken, padFrom: size, groups: [] }],
    nextSlot: size + (length - taken),
  };
}

export function currentGeneration(plan: OrderPlan): number {
  return plan.generations.length - 1;
}

export function generationOf(plan: OrderPlan, generation: number): Generation {
  const found = plan.generations[generation];
  if (!found) throw new RangeError(`generation ${generation} does not exist (the order has ${plan.generations.length})`);
  return found;
}

/** Positions each stream of the generation has. */
export function streamLength(plan: OrderPlan, generation: number): number {
  const gen = generationOf(plan, generation);
  return gen.length / gen.ranks;
}

/** Slots the order delivers in all: those delivered in earlier generations and the current one's. */
export function slotCount(plan: OrderPlan): number {
  const gen = plan.generations[plan.generations.length - 1];
  return gen.deliveredBefore + gen.length;
}

/** The entry of the previous generation that entry j (< taken) of `gen` is. */
function previousEntry(gen: Generation, previousRanks: number, j: number): number {
  const groups = gen.groups;
  let lo = 0;
  let hi = groups.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (groups[mid].before <= j) lo = mid;
    else hi = mid - 1;
  }
  const group = groups[lo];
  const k = j - group.before;
  const row = group.fromRow + Math.floor(k / group.streams.length);
  return row * previousRanks + group.streams[k % group.streams.length];
}

/** The slot at entry j of a generation. */
export function entrySlot(plan: OrderPlan, generation: number, entry: number): number {
  let g = generation;
  let j = entry;
  for (;;) {
    const gen = generationOf(plan, g);
    if (j < 0 || j >= gen.length) throw new RangeError(`entry ${j} is outside generation ${g} (0 … ${gen.length - 1})`);
    if (j >= gen.taken) return gen.padFrom + (j - gen.taken);
    if (g === 0) return j;
    j = previousEntry(gen, plan.generations[g - 1].ranks, j);
    g--;
  }
}

/** The slot at a stream's position. */
export function positionSlot(plan: OrderPlan, generation: number, stream: number, position: number): number {
  const gen = generationOf(plan, generation);
  if (stream < 0 || stream >= gen.ranks) throw new RangeError(`stream ${stream} is outside generation ${generation} (${gen.ranks} ranks)`);
  return entrySlot(plan, generation, position * gen.ranks + stream);
}

/** The slots at a stream's positions [from, to). */
export function positionSlots(plan: OrderPlan, generation: number, stream: number, range: PositionRange): number[] {
  const slots: number[] = [];
  for (let p = range.from; p < range.to; p++) slots.push(positionSlot(plan, generation, stream, p));
  return slots;
}

/**
 * The slot of the first N whose sample a slot carries: itself below `size`, else the slot its
 * repetition copies. The sample, its epoch and its augmentation come from this slot.
 */
export function underlyingSlot(plan: OrderPlan, slot: number): number {
  let s = slot;
  while (s >= plan.size) {
    const g = plan.generations.findIndex((gen) => s >= gen.padFrom && s < gen.padFrom + (gen.length - gen.taken));
    if (g < 0) throw new RangeError(`slot ${s} is not a slot of the order`);
    const gen = plan.generations[g];
    s = entrySlot(plan, g, (s - gen.padFrom) % gen.taken);
  }
  if (s < 0) throw new RangeError(`slot ${s} is not a slot of the order`);
  return s;
}

/** The epoch of a slot: its underlying slot's pass over the eligible samples. */
export function epochOf(plan: OrderPlan, slot: number, eligibleCount: number): number {
  return Math.floor(underlyingSlot(plan, slot) / eligibleCount);
}

/** Row groups of the rows where each stream's undelivered ranges lie. */
function rowGroups(undelivered: readonly (readonly PositionRange[])[]): RowGroup[] {
  const boundaries = [...new Set(undelivered.flatMap((ranges) => ranges.flatMap((r) => [r.from, r.to])))].sort((a, b) => a - b);
  const cursor = undelivered.map(() => 0);
  const groups: RowGroup[] = [];
  let before = 0;
  for (let b = 0; b + 1 < boundaries.length; b++) {
    const fromRow = boundaries[b];
    const toRow = boundaries[b + 1];
    const streams: number[] = [];
    undelivered.forEach((ranges, stream) => {
      while (cursor[stream] < ranges.length && ranges[cursor[stream]].to <= fromRow) cursor[stream]++;
      const range = ranges[cursor[stream]];
      if (range && range.from <= fromRow && range.to >= toRow) streams.push(stream);
    });
    if (streams.length === 0) continue;
    const last = groups[groups.length - 1];
    if (last && last.toRow === fromRow && last.streams.length === streams.length && last.streams.every((s, i) => s === streams[i])) {
      groups[groups.length - 1] = { ...last, toRow };
    } else {
      groups.push({ fromRow, toRow, streams, before });
    }
    before += (toRow - fromRow) * streams.length;
  }
  return groups;
}

/**
 * Generation g + 1: the undelivered positions of every stream of the current generation (one
 * list of ranges per stream) dealt again over `ranks` streams, rounded by `rounding`.
 */
export function reshapePlan(plan: OrderPlan, undelivered: readonly (readonly PositionRange[])[], ranks: number, rounding: Rounding): OrderPlan {
  const g = currentGeneration(plan);
  const gen = plan.generations[g];
  if (undelivered.length !== gen.ranks) throw new RangeError(`generation ${g} has ${gen.ranks} streams, not ${undelivered.length}`);
  const perStream = gen.length / gen.ranks;
  const ranges = undelivered.map((list) => normalizeRanges(list));
  for (const list of ranges) {
    if (list.some((r) => r.from < 0 || r.to > perStream)) throw new RangeError(`an undelivered range is outside 0 … ${perStream}`);
  }
  const available = ranges.reduce((sum, list) => sum + list.reduce((s, r) => s + r.to - r.from, 0), 0);
  if (available === 0) throw new SensoryError('SENSORY_ERR_ORDER_FINISHED', 'every sample of the order was delivered: there is nothing left to reshape');
  assertRanks(ranks, available, 'undelivered samples', rounding);
  const length = roundedLength(available, ranks, rounding);
  const taken = Math.min(available, length);
  const next: Generation = {
    ranks,
    rounding,
    length,
    deliveredBefore: gen.deliveredBefore + (gen.length - available),
    taken,
    padFrom: plan.nextSlot,
    groups: rowGroups(ranges),
  };
  return { size: plan.size, generations: [...plan.generations, next], nextSlot: plan.nextSlot + (length - taken) };
}
