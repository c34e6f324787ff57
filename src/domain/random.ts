/**
 * Seeded randomness without shared mutable state: every stream is derived from (seed, purpose,
 * index) by hashing, so a sample slot's draws are the same whoever computes them, in whatever
 * order, and two slots never share a stream.
 */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export const enum Stream {
  Selection = 1,
  Augment = 2,
  Balance = 3,
  Epoch = 4,
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixWords(words: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const word of words) {
    h = fmix32((h ^ fmix32(word >>> 0)) + 0x6d2b79f5);
  }
  return h;
}

/** A generator of uniform doubles in [0, 1) with 53 random bits (sfc32 underneath). */
export type Uniform = () => number;

export function uniformStream(seed: number, stream: Stream, index = 0): Uniform {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  let a = mixWords([lo, hi, stream, index, 1]);
  let b = mixWords([lo, hi, stream, index, 2]);
  let c = mixWords([lo, hi, stream, index, 3]);
  let d = 1;
  const next32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next32();
  return () => (next32() * 0x200000 + (next32() >>> 11)) / 0x20000000000000;
}

/** An unbiased integer in [0, n) for n well below 2^53. */
export function uniformInt(uniform: Uniform, n: number): number {
  return Math.floor(uniform() * n);
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 0x100000000) * 0x200000 + Math.floor(Math.random() * 0x200000);
}
