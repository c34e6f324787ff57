/**
 * Single uploads with decode threads (SENSORY_INGEST_THREADS=1): once a dataset has been seen,
 * an upload into it is hashed and decoded on a thread at the dataset's shape, and stores exactly
 * what the event loop would; a dataset deleted and made again under its name with another shape
 * is decoded at its own shape; a thread that dies fails the upload as an internal error, and the
 * next upload goes through a new thread.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import type { DecodeThreads } from '../../src/adapters/imaging/decode-threads.js';
import { assertError, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('single uploads on decode threads', () => {
  let t: TestApp;
  let pool: DecodeThreads;
  let digests = 0;

  before(async () => {
    t = await startTestApp({ SENSORY_INGEST_THREADS: '1' });
    pool = (t.runtime.deps.bulk as unknown as { digests: DecodeThreads }).digests;
    const digest = pool.digest.bind(pool);
    pool.digest = (bytes, shape) => {
      digests++;
      return digest(bytes, shape);
    };
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const createDataset = async (name: string, side: number) => {
    const res = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth('admin'), payload: { width: side, height: side, channels: 3 } });
    assert.equal(res.statusCode, 201, res.body);
  };
  const upload = (name: string, bytes: Buffer) =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/samples?category=c`, headers: { ...t.auth('write'), 'content-type': 'image/png' }, payload: bytes });
  const pixelsOf = async (name: string, ids: number[]) => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/batches`, headers: { ...t.auth('read'), accept: 'application/json' }, payload: { size: ids.length, seed: 1 } });
    const body = res.json() as { ids: number[]; data: number[][][][] };
    return new Map(body.ids.map((id, i) => [id, Buffer.from(body.data[i].flat(2))]));
  };

  test('after the first upload into a dataset, the next ones are decoded on the thread and store the same SHA-256 and pixels', async () => {
    await createDataset('singles', 8);
    const pngs = await Promise.all(Array.from({ length: 10 }, (_, i) => makePng(8, 8, 3, 7000 + i)));
    const before = digests;
    const ids: number[] = [];
    for (const bytes of pngs) {
      const res = await upload('singles', bytes);
      assert.equal(res.statusCode, 201, res.body);
      const sample = res.json() as { id: number; sha256: string };
      assert.equal(sample.sha256, sha256(bytes));
      ids.push(sample.id);
    }
    assert.equal(digests - before, pngs.length - 1, 'all but the first (its shape unknown until looked up) went through the thread');
    const pixels = await pixelsOf('singles', ids);
    for (const [i, id] of ids.entries()) assert.ok(pixels.get(id)!.equals(await sharp(pngs[i]).removeAlpha().raw().toBuffer()), 'the pixels, exactly');
    const again = await upload('singles', pngs[3]);
    assert.equal(again.statusCode, 200, 'the same bytes again: a duplicate');
    assert.equal(pool.freeArenaSlots, 64, 'every arena slot is free again');
  });

  test('a dataset deleted and made again under its name with another shape is decoded at its own shape', async () => {
    await createDataset('reshaped', 8);
    const first = await makePng(8, 8, 3, 7100);
    assert.equal((await upload('reshaped', first)).statusCode, 201);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/datasets/reshaped', headers: t.auth('admin') })).statusCode, 200);
    await createDataset('reshaped', 16);
    const small = await makePng(8, 8, 3, 7101);
    const res = await upload('reshaped', small);
    assert.equal(res.statusCode, 201, res.body);
    const id = (res.json() as { id: number }).id;
    assert.equal((await pixelsOf('reshaped', [id])).get(id)!.length, 16 * 16 * 3, 'pixels at the new shape');
  });

  test('a thread that dies fails the upload as an internal error; the next upload is stored through a new thread', async () => {
    await createDataset('thread-death', 8);
    assert.equal((await upload('thread-death', await makePng(8, 8, 3, 7200))).statusCode, 201);
    const digest = pool.digest.bind(pool);
    pool.digest = (bytes, shape) => {
      const pending = digest(bytes, shape);
      for (const worker of (pool as unknown as { workers: Worker[] }).workers) void worker?.terminate();
      return pending;
    };
    const lost = await makePng(8, 8, 3, 7201);
    try {
      assertError(await upload('thread-death', lost), 500, 'SENSORY_ERR_INTERNAL');
    } finally {
      pool.digest = digest;
    }
    const state = (await t.app.inject({ method: 'GET', url: '/v1/datasets/thread-death', headers: t.auth('read') })).json() as { sampleCount: number };
    assert.equal(state.sampleCount, 1, 'nothing of the failed upload is visible');
    assert.equal((await upload('thread-death', lost)).statusCode, 201, 'sent again, it is stored');
  });
});
