/**
 * DecodeThreads: the SHA-256, pixels and perceptual hash of an upload worked out on worker
 * threads must be exactly what the event loop works out itself (SharpImaging, perceptualHash),
 * for uploads in the shared arena and for those too large for it; what the threads leave
 * undecoded comes back with its SHA-256 only; a thread that dies fails its jobs clearly and is
 * replaced.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { after, describe, it } from 'node:test';
import sharp, { type PngOptions } from 'sharp';
import { DecodeThreads } from '../src/adapters/imaging/decode-threads.js';
import { SharpImaging } from '../src/adapters/imaging/sharp.imaging.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import { perceptualHash } from '../src/domain/perceptual-hash.js';

function picture(width: number, height: number, channels: 1 | 3 | 4, seed: number): Buffer {
  const out = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const p = Math.floor(i / channels);
    out[i] = ((p % width) * 3 + Math.floor(p / width) * 5 + (s >>> 29)) & 255;
  }
  return out;
}

function png(width: number, height: number, channels: 1 | 3 | 4, seed: number, options: PngOptions = {}): Promise<Buffer> {
  const image = sharp(picture(width, height, channels, seed), { raw: { width, height, channels } });
  return (channels === 1 ? image.toColourspace('b-w') : image).png(options).toBuffer();
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The worker threads of a pool, to end one from outside as a crash would. */
function threadsOf(pool: DecodeThreads): Worker[] {
  return (pool as unknown as { workers: Worker[] }).workers;
}

describe('DecodeThreads', () => {
  const pool = new DecodeThreads(2);
  const imaging = new SharpImaging();
  after(() => pool.close());

  const cases: Array<[string, DatasetShape, () => Promise<Buffer>]> = [
    ['RGB PNG at the dataset size (arena)', { width: 100, height: 100, channels: 3 }, () => png(100, 100, 3, 1)],
    ['grey PNG into an RGB dataset (arena)', { width: 40, height: 30, channels: 3 }, () => png(40, 30, 1, 2)],
    ['RGBA PNG (arena)', { width: 33, height: 17, channels: 3 }, () => png(33, 17, 4, 3)],
    ['palette PNG (arena)', { width: 50, height: 50, channels: 3 }, () => png(50, 50, 3, 4, { palette: true, colours: 16 })],
    ['grey PNG into a grey dataset, a record smaller than half a buffer pool', { width: 8, height: 8, channels: 1 }, () => png(8, 8, 1, 5)],
    ['a PNG and record too large for an arena slot (copied instead)', { width: 200, height: 200, channels: 3 }, () => png(200, 200, 3, 6, { compressionLevel: 0 })],
  ];
  for (const [name, shape, make] of cases) {
    it(`${name}: the SHA-256, pixels and perceptual hash the event loop works out`, async () => {
      const bytes = await make();
      const digest = await pool.digest(bytes, shape);
      const expected = await imaging.toDatasetPixels(bytes, shape);
      assert.equal(digest.sha256, sha(bytes));
      assert.ok(digest.decoded, 'decoded on the thread');
      assert.equal(digest.decoded.mediaType, 'image/png');
      assert.deepEqual(Buffer.from(digest.decoded.pixels), Buffer.from(expected.pixels));
      assert.equal(digest.decoded.perceptualHash, perceptualHash(expected.pixels, shape));
      digest.release?.();
    });
  }

  it('leaves to the caller what the lean path does not decode: a JPEG, another size, bytes that are no image, a PNG over the pixel limit', async () => {
    const shape: DatasetShape = { width: 20, height: 20, channels: 3 };
    const jpeg = await sharp(picture(20, 20, 3, 7), { raw: { width: 20, height: 20, channels: 3 } }).jpeg().toBuffer();
    const otherSize = await png(21, 20, 3, 8);
    const garbage = Buffer.from('not an image at all');
    for (const bytes of [jpeg, otherSize, garbage]) {
      const digest = await pool.digest(bytes, shape);
      assert.deepEqual(digest, { sha256: sha(bytes) });
    }
    const strict = new DecodeThreads(1, { maxPixels: 399, maxFrames: 10 });
    try {
      const bytes = await png(20, 20, 3, 9);
      assert.deepEqual(await strict.digest(bytes, shape), { sha256: sha(bytes) });
    } finally {
      await strict.close();
    }
  });

  it('keeps hundreds of uploads at once apart, and every arena slot is free again once each digest is released', async () => {
    const shape: DatasetShape = { width: 30, height: 30, channels: 3 };
    const pngs = await Promise.all(Array.from({ length: 200 }, (_, i) => png(30, 30, 3, 100 + i)));
    // More than the arena's slots at once: those past them wait for the slots released here.
    await Promise.all(
      pngs.map(async (bytes, i) => {
        const digest = await pool.digest(bytes, shape);
        assert.equal(digest.sha256, sha(bytes));
        assert.deepEqual(Buffer.from(digest.decoded!.pixels), picture(30, 30, 3, 100 + i));
        digest.release?.();
        digest.release?.(); // twice is once
      }),
    );
    const full = pool.freeArenaSlots;
    const more = await pool.digest(pngs[0], shape);
    assert.equal(pool.freeArenaSlots, full - 1);
    more.release?.();
    assert.equal(pool.freeArenaSlots, full);
  });

  it('bounds the uploads handed to the threads by the arena: past its slots an upload waits for one, first come first served, and is never copied', async () => {
    const bounded = new DecodeThreads(1);
    try {
      const shape: DatasetShape = { width: 30, height: 30, channels: 3 };
      const slots = bounded.freeArenaSlots;
      const pngs = await Promise.all(Array.from({ length: slots + 8 }, (_, i) => png(30, 30, 3, 900 + i)));
      const order: number[] = [];
      const jobs = pngs.map((bytes, i) => bounded.digest(bytes, shape).then((digest) => (order.push(i), digest)));
      assert.equal(bounded.waitingForSlots, 8);
      const first = await Promise.all(jobs.slice(0, slots));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(order.length, slots, 'no slot is free: the last 8 are not posted');
      assert.equal(bounded.waitingForSlots, 8);
      for (const digest of first.slice(0, 8)) digest.release?.();
      const rest = await Promise.all(jobs.slice(slots));
      assert.deepEqual(order.slice(slots), [0, 1, 2, 3, 4, 5, 6, 7].map((k) => slots + k));
      for (const [k, digest] of rest.entries()) {
        assert.equal(digest.sha256, sha(pngs[slots + k]));
        assert.ok(digest.release, 'decoded in an arena slot, not into a copy');
        assert.deepEqual(Buffer.from(digest.decoded!.pixels), picture(30, 30, 3, 900 + slots + k));
      }
      for (const digest of [...first.slice(8), ...rest]) digest.release?.();
      assert.equal(bounded.freeArenaSlots, slots);
      assert.equal(bounded.waitingForSlots, 0);

      // Closing fails the uploads still waiting for a slot.
      const held = await Promise.all(pngs.slice(0, slots).map((bytes) => bounded.digest(bytes, shape)));
      const waiting = assert.rejects(bounded.digest(pngs[0], shape), /closed/);
      await bounded.close();
      await waiting;
      for (const digest of held) digest.release?.();
    } finally {
      await bounded.close();
    }
  });

  it('fails the jobs of a thread that dies, naming it, frees their slots, and carries on with a new thread', async () => {
    const one = new DecodeThreads(1);
    try {
      const shape: DatasetShape = { width: 100, height: 100, channels: 3 };
      const pngs = await Promise.all(Array.from({ length: 64 }, (_, i) => png(100, 100, 3, 500 + i)));
      (await one.digest(pngs[0], shape)).release?.();
      const free = one.freeArenaSlots;
      const jobs = pngs.map((bytes) => one.digest(bytes, shape));
      await threadsOf(one)[0].terminate();
      const settled = await Promise.allSettled(jobs);
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      assert.ok(failed.length > 0, 'the jobs of the ended thread fail');
      for (const { reason } of failed) assert.match((reason as Error).message, /decode thread exited/);
      for (const s of settled) if (s.status === 'fulfilled') s.value.release?.();
      assert.equal(one.freeArenaSlots, free);
      const again = await one.digest(pngs[1], shape);
      assert.equal(again.sha256, sha(pngs[1]));
      assert.ok(again.decoded);
      again.release?.();
    } finally {
      await one.close();
    }
  });

  it('refuses work once closed', async () => {
    const closed = new DecodeThreads(1);
    await closed.close();
    await assert.rejects(closed.digest(Buffer.from('x'), { width: 1, height: 1, channels: 1 }), /closed/);
    assert.throws(() => new DecodeThreads(0), /above 0/);
  });
});
