/**
 * Images for near-duplicate tests, drawn with sharp from SVG: smooth "scenes" (gradients, discs
 * and boxes placed by a seed) and MNIST-like digits (white strokes on black, several hands per
 * digit), with the transformations a collection picks up: resizing, re-encoding, small shifts.
 */
import sharp from 'sharp';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A 64×64-unit scene drawn at `size` pixels. */
export function sceneSvg(seed: number, size: number): Buffer {
  const r = random(seed);
  const colour = () => `rgb(${Math.floor(r() * 255)},${Math.floor(r() * 255)},${Math.floor(r() * 255)})`;
  let shapes = '';
  for (let i = 0; i < 6; i++) {
    shapes +=
      r() < 0.5
        ? `<circle cx="${r() * 64}" cy="${r() * 64}" r="${6 + r() * 14}" fill="${colour()}"/>`
        : `<rect x="${r() * 50}" y="${r() * 50}" width="${8 + r() * 24}" height="${8 + r() * 24}" fill="${colour()}"/>`;
  }
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 64 64">` +
      `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient></defs>` +
      `<rect width="64" height="64" fill="url(#g)"/>${shapes}</svg>`,
  );
}

export async function scenePng(seed: number, size = 64): Promise<Buffer> {
  return sharp(sceneSvg(seed, size)).png().toBuffer();
}

/** Strokes of a few hands of each digit, in a 64×64 box. */
export const DIGIT_HANDS: Record<string, readonly string[]> = {
  seven: ['<path d="M14 12 L50 12 L28 54"/>', '<path d="M18 16 L46 10 L34 56"/>', '<path d="M10 14 Q 32 8 52 16 L 22 52"/>'],
  three: ['<path d="M16 12 Q 48 8 40 30 Q 52 52 16 52"/><path d="M24 31 L40 30"/>', '<path d="M20 16 Q 44 12 36 32 Q 46 50 22 54"/>'],
  two: ['<path d="M14 20 Q 30 2 46 18 Q 50 30 14 54 L 52 54"/>', '<path d="M18 18 Q 40 8 42 24 L 16 50 L 48 52"/>'],
};

export async function digitPng(digit: string, hand: number, size = 28): Promise<Buffer> {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 64 64"><rect width="64" height="64" fill="black"/>` +
    `<g stroke="white" stroke-width="7" fill="none" stroke-linecap="round">${DIGIT_HANDS[digit][hand]}</g></svg>`;
  return sharp(Buffer.from(svg)).greyscale().png().toBuffer();
}

export async function resized(png: Buffer, width: number, height = width): Promise<Buffer> {
  return sharp(png).resize(width, height, { fit: 'fill' }).png().toBuffer();
}

export async function jpeg(png: Buffer, quality = 90): Promise<Buffer> {
  return sharp(png).jpeg({ quality }).toBuffer();
}

/** The picture moved right by dx and down by dy pixels, its edge repeated into the gap, same size. */
export async function shifted(png: Buffer, dx: number, dy: number): Promise<Buffer> {
  const { width, height } = await sharp(png).metadata();
  const grown = await sharp(png).extend({ top: dy, left: dx, extendWith: 'copy' }).toBuffer();
  return sharp(grown).extract({ left: 0, top: 0, width: width!, height: height! }).png().toBuffer();
}
