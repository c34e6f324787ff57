import { SensoryError } from './errors.js';
import { Stream, uniformInt, uniformStream } from './random.js';

export interface Candidate {
  readonly id: number;
  readonly categoryIndex: number;
}

/**
 * Draws `size` of `items` without replacement by a partial Fisher–Yates shuffle. The input order
 * must be deterministic (the stores return candidates by id), so the same seed over the same
 * revision draws the same items in the same order.
 */
export function drawWithoutReplacement<T>(items: readonly T[], size: number, seed: number, stream = Stream.Selection, index = 0): T[] {
  if (size > items.length) throw new RangeError(`cannot draw ${size} of ${items.length}`);
  const pool = items.slice();
  const uniform = uniformStream(seed, stream, index);
  for (let i = 0; i < size; i++) {
    const j = i + uniformInt(uniform, pool.length - i);
    const picked = pool[j];
    pool[j] = pool[i];
    pool[i] = picked;
  }
  pool.length = size;
  return pool;
}

/** A full seeded permutation of 0..n-1 (an order's epoch). */
export function permutation(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const uniform = uniformStream(seed, Stream.Epoch, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(uniform, i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

export function drawBatch<T extends Candidate>(candidates: readonly T[], size: number, seed: number): T[] {
  if (size > candidates.length) {
    throw new SensoryError(
      'SENSORY_ERR_NOT_ENOUGH_SAMPLES',
      `size ${size} is above the ${candidates.length} eligible samples`,
      { size, eligible: candidates.length },
    );
  }
  return drawWithoutReplacement(candidates, size, seed);
}

/**
 * The same number of samples from every eligible category, then shuffled together so that a
 * batch is not sorted by category.
 */
export function drawBalancedBatch<T extends Candidate>(candidates: readonly T[], size: number, seed: number): T[] {
  const byCategory = new Map<number, T[]>();
  for (const candidate of candidates) {
    const group = byCategory.get(candidate.categoryIndex);
    if (group) group.push(candidate);
    else byCategory.set(candidate.categoryIndex, [candidate]);
  }
  const categoryIndexes = [...byCategory.keys()].sort((a, b) => a - b);
  const k = categoryIndexes.length;
  if (k === 0 || size % k !== 0) {
    throw new SensoryError(
      'SENSORY_ERR_UNBALANCEABLE',
      `a balanced batch of ${size} needs a multiple of the ${k} eligible categories`,
      { size, categories: k },
    );
  }
  const perCategory = size / k;
  const chosen: T[] = [];
  for (const index of categoryIndexes) {
    const group = byCategory.get(index)!;
    if (group.length < perCategory) {
      throw new SensoryError(
        'SENSORY_ERR_UNBALANCEABLE',
        `a balanced batch of ${size} needs ${perCategory} samples per category; category index ${index} has ${group.length}`,
        { size, perCategory, categoryIndex: index, eligible: group.length },
      );
    }
    chosen.push(...drawWithoutReplacement(group, perCategory, seed, Stream.Balance, index));
  }
  return drawWithoutReplacement(chosen, chosen.length, seed, Stream.Selection);
}
