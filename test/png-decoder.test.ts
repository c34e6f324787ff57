/**
 * The lean PNG path decodes the common PNGs in process; these tests hold it pixel-exact against
 * sharp's own pipeline (the one the service used for every image before), on every PNG type sharp
 * writes, and check that it hands everything else back to sharp.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { decodePng, decodePngOffThread, pngFrameCount, readPngHeader } from '../src/adapters/imaging/png.decoder.js';
import { SharpImaging } from '../src/adapters/imaging/sharp.imaging.js';
import type { Channels, DatasetShape } from '../src/domain/dataset-shape.js';
import { isSensoryError } from '../src/domain/errors.js';

const W = 37;
const H = 23;

function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 16;
  }
  return out;
}

/** A smooth picture with some noise: PNG's filters (sub, up, average, Paeth) all get used. */
function picture(channels: number, seed: number): Buffer {
  const out = Buffer.alloc(W * H * channels);
  const jitter = noise(out.length, seed);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < channels; c++) out[(y * W + x) * channels + c] = (x * (3 + c) + y * (5 - c) + (jitter[(y * W + x) * channels + c] & 7)) & 255;
    }
  }
  // Alpha covers every value from clear to opaque.
  if (channels === 2 || channels === 4) for (let p = 0; p < W * H; p++) out[p * channels + channels - 1] = (p * 7) & 255;
  return out;
}

const raw = (buffer: Buffer, channels: 1 | 2 | 3 | 4) => sharp(buffer, { raw: { width: W, height: H, channels } });

/** Every PNG type sharp writes, by name: [bytes, bit depth, colour type]. */
const PNG_TYPES: Record<string, () => Promise<Buffer>> = {
  'grey (type 0)': () => raw(picture(1, 1), 1).toColourspace('b-w').png().toBuffer(),
  'grey + alpha (type 4)': () => raw(picture(2, 2), 2).toColourspace('b-w').png().toBuffer(),
  'RGB (type 2)': () => raw(picture(3, 3), 3).png().toBuffer(),
  'RGBA (type 6)': () => raw(picture(4, 4), 4).png().toBuffer(),
  'palette, 8 bits (type 3)': () => raw(picture(3, 5), 3).png({ palette: true, colours: 256 }).toBuffer(),
  'palette with tRNS alpha': () => raw(picture(4, 6), 4).png({ palette: true }).toBuffer(),
  'palette, 4 bits': () => raw(picture(3, 7), 3).png({ palette: true, colours: 16 }).toBuffer(),
  'palette, 2 bits': () => raw(picture(3, 8), 3).png({ palette: true, colours: 4 }).toBuffer(),
  'palette, 1 bit': () => raw(picture(3, 9), 3).png({ palette: true, colours: 2 }).toBuffer(),
  'RGB, no filter, level 0': () => raw(picture(3, 10), 3).png({ compressionLevel: 0, adaptiveFiltering: false }).toBuffer(),
  'RGB, adaptive filters': () => raw(picture(3, 11), 3).png({ adaptiveFiltering: true, compressionLevel: 9 }).toBuffer(),
  'grey with a tRNS key': async () => withChunk(await raw(picture(1, 12), 1).toColourspace('b-w').png().toBuffer(), 'tRNS', Buffer.from([0, picture(1, 12)[5]])),
  'RGB with a tRNS key': async () => {
    const pixels = picture(3, 13);
    return withChunk(await raw(pixels, 3).png().toBuffer(), 'tRNS', Buffer.from([0, pixels[6], 0, pixels[7], 0, pixels[8]]));
  },
  'RGB with text and time chunks': async () => withChunk(await raw(picture(3, 14), 3).png().toBuffer(), 'tEXt', Buffer.from('Comment\0made by a test')),
};

/** The PNG with one more chunk right before its first IDAT. */
function withChunk(png: Buffer, type: string, data: Buffer): Buffer {
  let at = 8;
  while (png.toString('latin1', at + 4, at + 8) !== 'IDAT') at += 12 + png.readUInt32BE(at);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, at), chunk, png.subarray(at)]);
}

/** sharp's pipeline exactly as the service ran it for every image before the lean path. */
async function bySharp(png: Buffer, shape: DatasetShape): Promise<Buffer> {
  const image = sharp(png, { failOn: 'error', pages: 1 }).resize(shape.width, shape.height, { fit: 'fill' }).flatten({ background: { r: 0, g: 0, b: 0 } });
  if (shape.channels === 1) image.greyscale();
  else image.toColourspace('srgb');
  return image.raw({ depth: 'uchar' }).toBuffer();
}

const shape = (channels: Channels): DatasetShape => ({ width: W, height: H, channels });

describe('lean PNG decoding', () => {
  for (const [name, make] of Object.entries(PNG_TYPES)) {
    it(`${name}: pixel-exact with sharp, decoded in process`, async () => {
      const png = await make();
      const colour = ![0, 4].includes(readPngHeader(png)!.colorType);
      for (const channels of [1, 3] as const) {
        const lean = decodePng(png, shape(channels));
        if (channels === 1 && colour) {
          // Colour into one channel is sharp's luminance conversion: left to sharp on purpose.
          assert.equal(lean, undefined);
          continue;
        }
        assert.ok(lean, `${name} into ${channels} channel(s) was handed to sharp`);
        assert.ok(Buffer.from(lean).equals(await bySharp(png, shape(channels))), `${name} into ${channels} channel(s) differs from sharp`);
        const offThread = await decodePngOffThread(png, shape(channels));
        assert.ok(offThread && Buffer.from(offThread).equals(Buffer.from(lean)), `${name}: inflating on the thread pool gives the same pixels`);
      }
    });
  }

  it('every grey and alpha value: grey + alpha flattened exactly as sharp does', async () => {
    const pairs = Buffer.alloc(256 * 256 * 2);
    for (let i = 0; i < 256 * 256; i++) [pairs[i * 2], pairs[i * 2 + 1]] = [i & 255, i >> 8];
    const png = await sharp(pairs, { raw: { width: 256, height: 256, channels: 2 } }).toColourspace('b-w').png().toBuffer();
    for (const channels of [1, 3] as const) {
      const lean = decodePng(png, { width: 256, height: 256, channels });
      assert.ok(lean && Buffer.from(lean).equals(await bySharp(png, { width: 256, height: 256, channels })));
    }
  });

  it('hands sharp what it does not decode exactly: 16 bits, interlacing, another size, a bad CRC, a colour profile', async () => {
    const rgb = picture(3, 20);
    const cases: Record<string, Buffer> = {
      '16 bits': await raw(rgb, 3).toColourspace('rgb16').png().toBuffer(),
      interlaced: await raw(rgb, 3).png({ progressive: true }).toBuffer(),
      'gAMA chunk': withChunk(await raw(rgb, 3).png().toBuffer(), 'gAMA', Buffer.from([0, 1, 0x86, 0xa0])),
      'unknown chunk': withChunk(await raw(rgb, 3).png().toBuffer(), 'prVt', Buffer.from('x')),
    };
    const corrupt = Buffer.from(await raw(rgb, 3).png().toBuffer());
    corrupt[corrupt.length - 20] ^= 0xff; // inside the last IDAT: its CRC no longer matches
    cases['bad CRC'] = corrupt;
    for (const [name, png] of Object.entries(cases)) assert.equal(decodePng(png, shape(3)), undefined, name);
    assert.equal(decodePng(await raw(rgb, 3).png().toBuffer(), { width: W + 1, height: H, channels: 3 }), undefined, 'another size');
    // Through the imaging adapter these still decode (sharp) or are refused as sharp refuses them.
    const imaging = new SharpImaging();
    for (const name of ['16 bits', 'interlaced', 'gAMA chunk', 'unknown chunk']) {
      assert.ok(Buffer.from((await imaging.toDatasetPixels(cases[name], shape(3))).pixels).equals(await bySharp(cases[name], shape(3))), name);
    }
    await assert.rejects(imaging.toDatasetPixels(cases['bad CRC'], shape(3)), (error: unknown) => isSensoryError(error) && error.code === 'SENSORY_ERR_NOT_AN_IMAGE');
  });

  it('reads the frame count of an animated PNG from its acTL chunk', async () => {
    const png = await raw(picture(3, 21), 3).png().toBuffer();
    assert.equal(pngFrameCount(png), 1);
    const actl = Buffer.alloc(8);
    actl.writeUInt32BE(5000, 0);
    assert.equal(pngFrameCount(withChunk(png, 'acTL', actl)), 5000);
  });
});

describe('decompression bombs', () => {
  /** A real PNG of width × height grey pixels, all black: a few hundred KB that inflate to width × height bytes. */
  async function hugeBlackPng(width: number, height: number): Promise<Buffer> {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr.set([8, 0, 0, 0, 0], 8);
    const deflate = zlib.createDeflate({ level: 9 });
    const parts: Buffer[] = [];
    deflate.on('data', (part: Buffer) => parts.push(part));
    const done = new Promise((resolve) => deflate.on('end', resolve));
    const row = Buffer.alloc(width + 1);
    for (let y = 0; y < height; y++) if (!deflate.write(row)) await new Promise((resolve) => deflate.once('drain', resolve));
    deflate.end();
    await done;
    const chunk = (type: string, data: Buffer) => {
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      out.write(type, 4, 'latin1');
      data.copy(out, 8);
      out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
      return out;
    };
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
  }

  const tooLarge = (error: unknown) => isSensoryError(error) && error.code === 'SENSORY_ERR_IMAGE_TOO_LARGE' && error.status === 413;

  it('refuses a 16000×16000 PNG in milliseconds, from its header', async () => {
    const png = await hugeBlackPng(16000, 16000);
    const imaging = new SharpImaging();
    const started = performance.now();
    await assert.rejects(imaging.toDatasetPixels(png, { width: 100, height: 100, channels: 3 }), tooLarge);
    const ms = performance.now() - started;
    assert.ok(ms < 50, `took ${ms.toFixed(1)} ms`);
  });

  it('refuses a JPEG over the pixel limit before decoding it', async () => {
    const jpeg = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: { r: 9, g: 9, b: 9 } } }).jpeg().toBuffer();
    const imaging = new SharpImaging({ maxPixels: 5_000_000, maxFrames: 10 });
    const started = performance.now();
    await assert.rejects(imaging.toDatasetPixels(jpeg, { width: 100, height: 100, channels: 3 }), tooLarge);
    assert.ok(performance.now() - started < 200);
    await new SharpImaging({ maxPixels: 6_000_000, maxFrames: 10 }).toDatasetPixels(jpeg, { width: 100, height: 100, channels: 3 });
  });

  it('refuses an animated GIF or PNG with more frames than the limit', async () => {
    const frames = Buffer.alloc(8 * 8 * 3 * 5);
    for (let p = 0; p < 8 * 8 * 5; p++) frames.set([(p >> 6) * 50, 0, 255 - (p >> 6) * 50], p * 3);
    const gif = await sharp(frames, { raw: { width: 8, height: 40, channels: 3, pageHeight: 8 } }).gif().toBuffer();
    const strict = new SharpImaging({ maxPixels: 1_000_000, maxFrames: 4 });
    await assert.rejects(strict.toDatasetPixels(gif, { width: 8, height: 8, channels: 3 }), tooLarge);
    await new SharpImaging({ maxPixels: 1_000_000, maxFrames: 5 }).toDatasetPixels(gif, { width: 8, height: 8, channels: 3 });
    const actl = Buffer.alloc(8);
    actl.writeUInt32BE(5, 0);
    const apng = withChunk(await raw(picture(3, 30), 3).png().toBuffer(), 'acTL', actl);
    await assert.rejects(strict.toDatasetPixels(apng, shape(3)), tooLarge);
  });
});
