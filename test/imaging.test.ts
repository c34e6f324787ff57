import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { SharpImaging } from '../src/adapters/imaging/sharp.imaging.js';
import type { Channels, DatasetShape } from '../src/domain/dataset-shape.js';
import { isSensoryError, type SensoryError } from '../src/domain/errors.js';

const imaging = new SharpImaging();

function pattern(width: number, height: number, channels: number, seed = 1): Buffer {
  const raw = Buffer.alloc(width * height * channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * i * 7 + i * 13 + seed * 101) & 255;
  return raw;
}

function encoder(raw: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4): Sharp {
  return sharp(raw, { raw: { width, height, channels } });
}

function shape(width: number, height: number, channels: Channels): DatasetShape {
  return { width, height, channels };
}

async function rejectsAsNotAnImage(bytes: Buffer): Promise<void> {
  await assert.rejects(imaging.toDatasetPixels(bytes, shape(20, 20, 3)), (error: unknown) => {
    assert.ok(isSensoryError(error), `expected a SensoryError, got ${String(error)}`);
    assert.equal(error.code, 'SENSORY_ERR_NOT_AN_IMAGE');
    return true;
  });
}

describe('SharpImaging', () => {
  it('keeps the exact pixels of a 3-channel PNG at the dataset size', async () => {
    const raw = pattern(37, 23, 3);
    const png = await encoder(raw, 37, 23, 3).png().toBuffer();
    const out = await imaging.toDatasetPixels(png, shape(37, 23, 3));
    assert.equal(out.mediaType, 'image/png');
    assert.ok(Buffer.from(out.pixels).equals(raw));
  });

  it('keeps the exact pixels of a 1-channel PNG at the dataset size', async () => {
    const raw = pattern(31, 17, 1, 2);
    const png = await encoder(raw, 31, 17, 1).png().toBuffer();
    const out = await imaging.toDatasetPixels(png, shape(31, 17, 1));
    assert.ok(Buffer.from(out.pixels).equals(raw));
  });

  it('reduces a 16-bit PNG to 8 bits per channel', async () => {
    const raw = pattern(12, 9, 3, 3);
    const png = await encoder(raw, 12, 9, 3).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(png).metadata()).depth, 'ushort');
    const out = await imaging.toDatasetPixels(png, shape(12, 9, 3));
    assert.ok(Buffer.from(out.pixels).equals(raw));
  });

  it('stretches a 40×30 PNG to 20×20 as sharp does', async () => {
    const png = await encoder(pattern(40, 30, 3), 40, 30, 3).png().toBuffer();
    const reference = await sharp(png).resize(20, 20, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    const out = await imaging.toDatasetPixels(png, shape(20, 20, 3));
    assert.equal(out.pixels.length, 20 * 20 * 3);
    assert.ok(Buffer.from(out.pixels).equals(reference));
  });

  it('flattens RGBA onto black for 3 channels', async () => {
    const rgba = pattern(16, 8, 4, 4);
    const expected = Buffer.alloc(16 * 8 * 3);
    for (let p = 0; p < 16 * 8; p++) {
      const opaque = p % 3 !== 0;
      rgba[p * 4 + 3] = opaque ? 255 : 0;
      for (let c = 0; c < 3; c++) expected[p * 3 + c] = opaque ? rgba[p * 4 + c] : 0;
    }
    const png = await encoder(rgba, 16, 8, 4).png().toBuffer();
    const out = await imaging.toDatasetPixels(png, shape(16, 8, 3));
    assert.ok(Buffer.from(out.pixels).equals(expected));
  });

  it('converts RGB to 1 channel as sharp greyscale does, with or without a resize', async () => {
    const png = await encoder(pattern(24, 18, 3, 5), 24, 18, 3).png().toBuffer();
    const same = await imaging.toDatasetPixels(png, shape(24, 18, 1));
    assert.ok(Buffer.from(same.pixels).equals(await sharp(png).greyscale().raw().toBuffer()));
    const resized = await imaging.toDatasetPixels(png, shape(10, 10, 1));
    const reference = await sharp(png).resize(10, 10, { fit: 'fill' }).greyscale().raw().toBuffer();
    assert.ok(Buffer.from(resized.pixels).equals(reference));
  });

  it('converts greyscale to 3 channels and grey+alpha to 1 channel', async () => {
    const grey = pattern(10, 10, 1, 6);
    const png = await encoder(grey, 10, 10, 1).png().toBuffer();
    const rgb = (await imaging.toDatasetPixels(png, shape(10, 10, 3))).pixels;
    for (let p = 0; p < 100; p++) assert.deepEqual([...rgb.subarray(p * 3, p * 3 + 3)], [grey[p], grey[p], grey[p]]);
    const greyAlpha = Buffer.alloc(200);
    for (let p = 0; p < 100; p++) [greyAlpha[p * 2], greyAlpha[p * 2 + 1]] = [grey[p], p % 2 ? 255 : 0];
    const gaPng = await encoder(greyAlpha, 10, 10, 2).png().toBuffer();
    const out = (await imaging.toDatasetPixels(gaPng, shape(10, 10, 1))).pixels;
    assert.deepEqual([...out], [...grey].map((v, p) => (p % 2 ? v : 0)));
  });

  for (const [format, mediaType] of [
    ['jpeg', 'image/jpeg'],
    ['webp', 'image/webp'],
    ['gif', 'image/gif'],
    ['tiff', 'image/tiff'],
  ] as const) {
    it(`accepts ${format} as ${mediaType}`, async () => {
      const bytes = await encoder(pattern(30, 20, 3), 30, 20, 3).toFormat(format).toBuffer();
      for (const channels of [1, 3] as const) {
        const out = await imaging.toDatasetPixels(bytes, shape(15, 25, channels));
        assert.equal(out.mediaType, mediaType);
        assert.equal(out.pixels.length, 15 * 25 * channels);
      }
    });
  }

  it('takes the first frame of an animated GIF', async () => {
    const frames = Buffer.alloc(8 * 8 * 3 * 2);
    for (let p = 0; p < 128; p++) frames.set(p < 64 ? [255, 0, 0] : [0, 0, 255], p * 3);
    const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } }).gif().toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const out = await imaging.toDatasetPixels(gif, shape(8, 8, 3));
    for (let p = 0; p < 64; p++) assert.deepEqual([...out.pixels.subarray(p * 3, p * 3 + 3)], [255, 0, 0]);
  });

  describe('rejects what is not a decodable image', () => {
    it('empty bytes', () => rejectsAsNotAnImage(Buffer.alloc(0)));
    it('random bytes', () => rejectsAsNotAnImage(pattern(50, 50, 1, 7)));
    it('text', () => rejectsAsNotAnImage(Buffer.from('hello, this is not an image\n')));
    it('an SVG, which sharp would decode', () =>
      rejectsAsNotAnImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')));

    it('a truncated PNG: a plain sentence for the client, the decoder\'s reason only in the details (logged)', async () => {
      const png = await encoder(pattern(40, 30, 3), 40, 30, 3).png().toBuffer();
      await rejectsAsNotAnImage(png.subarray(0, png.length >> 1));
      await assert.rejects(imaging.toDatasetPixels(png.subarray(0, png.length >> 1), shape(20, 20, 3)), (error: SensoryError) => {
        assert.match(error.message, /^The image\/png image cannot be decoded: it is damaged, truncated/);
        assert.doesNotMatch(error.message, /vips|libpng|png_|read error|VipsJpeg|premature/i);
        assert.match(String(error.details?.decoder), /\S/);
        return true;
      });
    });

    it('a PNG signature followed by garbage', async () => {
      const png = await encoder(pattern(40, 30, 3), 40, 30, 3).png().toBuffer();
      await rejectsAsNotAnImage(Buffer.concat([png.subarray(0, 8), pattern(100, 1, 1, 8)]));
    });

    it('a truncated JPEG', async () => {
      const jpeg = await encoder(pattern(40, 30, 3), 40, 30, 3).jpeg().toBuffer();
      await rejectsAsNotAnImage(jpeg.subarray(0, jpeg.length >> 1));
    });
  });
});
