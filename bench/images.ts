import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { runPool } from './pool.js';

export const SIDE = 100;
export const CHANNELS = 3;
export const RECORD_BYTES = SIDE * SIDE * CHANNELS;

/**
 * `count` distinct 100×100 RGB PNGs of random-ish pixels: a random colour gradient plus noise,
 * so they compress about like small photos (≈ 20 KB) rather than like pure noise. Image i of a
 * set is a function of (set, i) only.
 */
export async function makePngs(set: number, count: number): Promise<Buffer[]> {
  const out = new Array<Buffer>(count);
  await runPool(
    Array.from({ length: count }, (_, i) => i),
    4,
    async (i) => {
      out[i] = await sharp(randomPixels(set * 1_000_003 + i + 1), { raw: { width: SIDE, height: SIDE, channels: CHANNELS } })
        .png()
        .toBuffer();
    },
  );
  const distinct = new Set(out.map((png) => createHash('sha256').update(png).digest('hex')));
  if (distinct.size !== count) throw new Error(`PNG set ${set}: only ${distinct.size} of ${count} distinct`);
  return out;
}

/**
 * `count` distinct side×side RGB JPEGs at `quality`, made like makePngs' images (a gradient plus
 * noise), for the 224×224 comparison of figure 11.
 */
export async function makeJpegs(set: number, count: number, side: number, quality: number): Promise<Buffer[]> {
  const out = new Array<Buffer>(count);
  await runPool(
    Array.from({ length: count }, (_, i) => i),
    4,
    async (i) => {
      out[i] = await sharp(randomPixels(set * 1_000_003 + i + 1, side), { raw: { width: side, height: side, channels: CHANNELS } })
        .jpeg({ quality })
        .toBuffer();
    },
  );
  return out;
}

function randomPixels(seed: number, side = SIDE): Buffer {
  let state = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const base = [next() & 0xff, next() & 0xff, next() & 0xff];
  const dx = [(next() % 5) - 2, (next() % 5) - 2, (next() % 5) - 2];
  const dy = [(next() % 5) - 2, (next() % 5) - 2, (next() % 5) - 2];
  const pixels = Buffer.allocUnsafe(side * side * CHANNELS);
  let p = 0;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      for (let c = 0; c < CHANNELS; c++) {
        const value = base[c] + dx[c] * x + dy[c] * y + ((next() & 31) - 16);
        pixels[p++] = Math.max(0, Math.min(255, value));
      }
    }
  }
  return pixels;
}
