/**
 * Decompression bombs over HTTP: a real 16000×16000 PNG (a few hundred KB of zeros, deflated) is
 * refused with 413 in milliseconds, from its header, and stores nothing; so is an animated GIF
 * with more frames than SENSORY_MAX_IMAGE_FRAMES; images within the limits still go in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { assertError, removeDir, startTestApp, type TestApp } from '../support/harness.js';

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A valid grey PNG of side × side black pixels, deflated a row at a time. */
async function blackPng(side: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8;
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (part: Buffer) => parts.push(part));
  const ended = new Promise((resolve) => deflate.on('end', resolve));
  const row = Buffer.alloc(side + 1);
  for (let y = 0; y < side; y++) if (!deflate.write(row)) await new Promise((resolve) => deflate.once('drain', resolve));
  deflate.end();
  await ended;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

describe('decompression bombs', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SENSORY_MAX_IMAGE_FRAMES: '4' });
    for (const [name, channels] of [['bombs', 1], ['frames', 3]] as const) {
      const res = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth('admin'), payload: { width: 8, height: 8, channels } });
      assert.equal(res.statusCode, 201);
    }
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });
  const upload = (dataset: string, bytes: Buffer) =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/samples?category=x`, headers: { ...t.auth('write'), 'content-type': 'image/png' }, payload: bytes });
  const count = async (dataset: string) => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${dataset}`, headers: t.auth('read') })).json().sampleCount;

  test('a 16000×16000 PNG: 413 SENSORY_ERR_IMAGE_TOO_LARGE in milliseconds, nothing stored', async () => {
    const bomb = await blackPng(16000);
    assert.ok(bomb.length < 2_000_000, `${bomb.length} bytes`);
    const started = performance.now();
    const res = await upload('bombs', bomb);
    const ms = performance.now() - started;
    const body = assertError(res, 413, 'SENSORY_ERR_IMAGE_TOO_LARGE');
    assert.match(body.error.message, /16000×16000.*SENSORY_MAX_IMAGE_PIXELS/);
    assert.ok(ms < 250, `answered in ${ms.toFixed(1)} ms`);
    assert.equal(await count('bombs'), 0);
    assert.equal((await upload('bombs', await blackPng(8))).statusCode, 201, 'an 8×8 one goes in');
  });

  test('an animated GIF with more frames than SENSORY_MAX_IMAGE_FRAMES: 413, nothing stored', async () => {
    const frames = (n: number) => {
      const raw = Buffer.alloc(8 * 8 * 3 * n);
      for (let p = 0; p < 64 * n; p++) raw.set([(p >> 6) * 40, 99, 255 - (p >> 6) * 40], p * 3);
      return sharp(raw, { raw: { width: 8, height: 8 * n, channels: 3, pageHeight: 8 } }).gif().toBuffer();
    };
    assertError(await upload('frames', await frames(5)), 413, 'SENSORY_ERR_IMAGE_TOO_LARGE');
    assert.equal(await count('frames'), 0);
    assert.equal((await upload('frames', await frames(4))).statusCode, 201);
  });
});
