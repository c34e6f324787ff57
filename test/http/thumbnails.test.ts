import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { addSample, assertError, createDataset, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/** GET /v1/datasets/{name}/samples/{id}/thumbnail: small WebP previews, cached on the data volume, with ETag and 304. */

/** A camera-sized JPEG (4000 × 3000) with enough detail that it is megabytes, like a photo. */
async function cameraJpeg(seed: number): Promise<Buffer> {
  const width = 4000;
  const height = 3000;
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="rgb(${seed * 40 % 255},120,200)"/><stop offset="1" stop-color="rgb(250,${seed * 70 % 255},40)"/></linearGradient></defs>` +
      `<rect width="100%" height="100%" fill="url(#g)"/>` +
      Array.from({ length: 60 }, (_, i) => `<circle cx="${(i * 677 + seed * 91) % width}" cy="${(i * 419) % height}" r="${60 + (i % 7) * 30}" fill="rgb(${(i * 37) % 255},${(i * 91) % 255},${(i * 13) % 255})"/>`).join('') +
      `</svg>`,
  );
  // Grain, so that the JPEG does not compress to nothing.
  const noise = await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian', mean: 0, sigma: 12 } } }).png().toBuffer();
  return sharp(svg).composite([{ input: noise, blend: 'overlay' }]).jpeg({ quality: 90 }).toBuffer();
}

function cacheFiles(t: TestApp): string[] {
  try {
    return readdirSync(join(t.dataDir, 'thumbnails'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

describe('sample thumbnails', () => {
  let t: TestApp;
  let photo: { id: number; sha256: string };
  let photoBytes: Buffer;
  let tiny: { id: number; sha256: string };

  before(async () => {
    t = await startTestApp();
    await createDataset(t, 'photos', { width: 32, height: 24, channels: 3 });
    photoBytes = await cameraJpeg(3);
    photo = await addSample(t, 'photos', 'street', photoBytes);
    tiny = await addSample(t, 'photos', 'icons', await makePng(20, 10, 3, 1));
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const get = (url: string, headers: Record<string, string> = {}, kind: 'read' | 'admin' | 'write' = 'read') =>
    t.app.inject({ method: 'GET', url, headers: { ...t.auth(kind), ...headers } });

  test('a 4000 × 3000 JPEG of megabytes becomes a WebP of a few KiB, fitted inside the size', async (ctx) => {
    assert.ok(photoBytes.length > 1_000_000, `the original is ${photoBytes.length} bytes`);
    const started = performance.now();
    const res = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=128`);
    const firstMs = performance.now() - started;
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/webp');
    const bytes = res.rawPayload;
    assert.ok(bytes.length < 12 * 1024, `a 128 px preview is ${bytes.length} bytes`);
    ctx.diagnostic(`a ${photoBytes.length}-byte 4000 × 3000 JPEG: a ${bytes.length}-byte 128 px WebP, made in ${Math.round(firstMs)} ms`);
    const meta = await sharp(bytes).metadata();
    assert.equal(meta.format, 'webp');
    assert.deepEqual([meta.width, meta.height], [128, 96]);
    // Made once, then read from the cache: the same bytes, faster.
    assert.deepEqual(cacheFiles(t), [`${photo.sha256}-w2-128.webp`]);
    const again = performance.now();
    const second = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=128`);
    assert.deepEqual(second.rawPayload, bytes);
    assert.ok(performance.now() - again < firstMs, 'the cached preview is not made again');

    // The default size is 128; 512 is larger but still far below the original.
    assert.deepEqual((await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail`)).rawPayload, bytes);
    const large = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=512`);
    assert.equal(large.statusCode, 200);
    assert.deepEqual([(await sharp(large.rawPayload).metadata()).width, (await sharp(large.rawPayload).metadata()).height], [512, 384]);
    assert.ok(large.rawPayload.length < 80 * 1024, `a 512 px preview is ${large.rawPayload.length} bytes`);
  });

  test('a small image is never enlarged, and keeps its exact pixels', async () => {
    const res = await get(`/v1/datasets/photos/samples/${tiny.id}/thumbnail?size=256`);
    assert.equal(res.statusCode, 200, res.body);
    const meta = await sharp(res.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [20, 10]);
    const preview = await sharp(res.rawPayload).removeAlpha().raw().toBuffer();
    const original = await sharp(await makePng(20, 10, 3, 1)).removeAlpha().raw().toBuffer();
    assert.deepEqual(preview, original);
  });

  test('a strong ETag and Cache-Control; If-None-Match answers 304 with no body', async () => {
    const res = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=64`);
    assert.equal(res.statusCode, 200);
    const etag = String(res.headers.etag);
    assert.match(etag, /^"[^"]+"$/, 'a strong validator (no W/)');
    assert.ok(etag.includes(photo.sha256));
    assert.equal(res.headers['cache-control'], 'private, max-age=604800');
    const notModified = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=64`, { 'if-none-match': etag });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.body, '');
    assert.equal(notModified.headers.etag, etag);
    // Another size has another validator; a list of validators matches any of them.
    const other = await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=128`, { 'if-none-match': etag });
    assert.equal(other.statusCode, 200);
    assert.notEqual(other.headers.etag, etag);
    assert.equal((await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=64`, { 'if-none-match': `"x", ${etag}` })).statusCode, 304);
  });

  test('another dataset holding the same bytes shares the preview', async () => {
    const before = cacheFiles(t);
    await createDataset(t, 'photos-copy', { width: 8, height: 8, channels: 1 });
    const copy = await addSample(t, 'photos-copy', 'street', photoBytes);
    const res = await get(`/v1/datasets/photos-copy/samples/${copy.id}/thumbnail?size=128`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(cacheFiles(t), before);
  });

  test('a replica on the same data volume serves the cached preview', async () => {
    const replica = await startTestApp({}, t.dataDir);
    try {
      const before = cacheFiles(t);
      const res = await replica.app.inject({ method: 'GET', url: `/v1/datasets/photos/samples/${photo.id}/thumbnail?size=128`, headers: replica.auth('read') });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.rawPayload, (await get(`/v1/datasets/photos/samples/${photo.id}/thumbnail?size=128`)).rawPayload);
      assert.deepEqual(cacheFiles(t), before);
    } finally {
      await replica.app.close();
      await replica.runtime.close();
    }
  });

  test('wrong inputs are clear 4xx that name what is wrong, and make nothing', async () => {
    const before = cacheFiles(t);
    const url = (query: string, id: number | string = photo.id, dataset = 'photos') => `/v1/datasets/${dataset}/samples/${id}/thumbnail${query}`;
    const badSize = assertError(await get(url('?size=100')), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.equal(badSize.error.message, 'size must be one of 64, 128, 256, 512; got 100');
    for (const query of ['?size=abc', '?size=0', '?size=1.5', '?size=99999', '?width=128']) {
      const body = assertError(await get(url(query)), 400, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(body.error.message, /size|width/, `${query}: ${body.error.message}`);
    }
    assertError(await get(url('', 999_999)), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
    assertError(await get(url('', 'seven')), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await get(url('', photo.id, 'no-such-dataset')), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    assertError(await t.app.inject({ method: 'GET', url: url('') }), 401, 'SENSORY_ERR_UNAUTHORIZED');
    assertError(await get(url(''), {}, 'write'), 403, 'SENSORY_ERR_FORBIDDEN');
    assert.deepEqual(cacheFiles(t), before);
  });

  test('a deleted sample has no preview; the admin purge removes the previews of the originals it drops', async () => {
    const gone = await addSample(t, 'photos', 'icons', await makePng(12, 12, 3, 9));
    assert.equal((await get(`/v1/datasets/photos/samples/${gone.id}/thumbnail?size=64`)).statusCode, 200);
    assert.ok(cacheFiles(t).includes(`${gone.sha256}-w2-64.webp`));
    const deleted = await t.app.inject({ method: 'DELETE', url: `/v1/datasets/photos/samples/${gone.id}`, headers: t.auth('admin') });
    assert.equal(deleted.statusCode, 200);
    assertError(await get(`/v1/datasets/photos/samples/${gone.id}/thumbnail`), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
    // Still on disk until the purge: a batch pinned to an older revision may still use the original.
    assert.ok(cacheFiles(t).includes(`${gone.sha256}-w2-64.webp`));
    const kept = cacheFiles(t).filter((name) => !name.startsWith(gone.sha256));
    const purge = await t.app.inject({ method: 'POST', url: '/v1/admin/compaction', headers: t.auth('admin'), payload: { retentionSeconds: 0 } });
    assert.equal(purge.statusCode, 200, purge.body);
    assert.ok(purge.json().blobsDropped >= 1);
    assert.deepEqual(cacheFiles(t), kept, 'only the dropped original\'s previews go');
  });
});
