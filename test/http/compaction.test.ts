/**
 * The admin purge and compaction over HTTP (POST /v1/admin/compaction): tombstones older than the
 * retention go, revisions below them are refused, live orders that still need them are failed
 * and no other, the disk space of the segments comes back, and uploads and batches carry on
 * while it runs.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { assertError, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/** A 32×32 PNG of noise (about 3 KB: it does not compress). */
function noisePng(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(32 * 32 * 3);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < pixels.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    pixels[i] = s >>> 24;
  }
  return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
}

function segmentBytes(dataDir: string): number {
  const dir = join(dataDir, 'blobs', 'segments');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.seg'))
    .reduce((total, name) => total + statSync(join(dir, name)).size, 0);
}

/** As if the closed segments had been closed long ago (compaction leaves freshly closed ones). */
function ageSegments(dataDir: string): void {
  const dir = join(dataDir, 'blobs', 'segments');
  const old = new Date(Date.now() - 3600_000);
  for (const name of readdirSync(dir)) if (name.endsWith('.seg')) utimesSync(join(dir, name), old, old);
}

describe('admin purge and compaction', () => {
  let t: TestApp;
  const api = () => ({
    put: (name: string) => t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth('admin'), payload: { width: 32, height: 32, channels: 3 } }),
    upload: (name: string, png: Buffer, category = 'c') =>
      t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/samples?category=${category}`, headers: { ...t.auth('write'), 'content-type': 'image/png' }, payload: png }),
    remove: (name: string, id: number) => t.app.inject({ method: 'DELETE', url: `/v1/datasets/${name}/samples/${id}`, headers: t.auth('admin') }),
    batch: (name: string, body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/batches`, headers: t.auth('read'), payload: body }),
    compact: (body: Record<string, unknown> = {}, kind: 'admin' | 'write' | 'read' = 'admin') =>
      t.app.inject({ method: 'POST', url: '/v1/admin/compaction', headers: t.auth(kind), payload: body }),
    content: (name: string, id: number) => t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples/${id}/content`, headers: t.auth('read') }),
    dataset: async (name: string) => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth('read') })).json(),
  });

  /** A dataset of `count` samples; returns their ids and bytes in upload order. */
  async function fill(name: string, count: number, seed: number): Promise<{ id: number; png: Buffer }[]> {
    assert.equal((await api().put(name)).statusCode, 201);
    const out: { id: number; png: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const png = await noisePng(seed + i);
      const res = await api().upload(name, png, `c${i % 3}`);
      assert.equal(res.statusCode, 201, res.body);
      out.push({ id: res.json().id, png });
    }
    return out;
  }

  before(async () => {
    t = await startTestApp({ SENSORY_SEGMENT_BYTES: String(1024 * 1024) });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  test('a retention the tombstones have not reached purges nothing', async () => {
    const samples = await fill('keep', 6, 100);
    assert.equal((await api().remove('keep', samples[0].id)).statusCode, 200);
    const res = await api().compact({ retentionSeconds: 3600 });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().purged.filter((p: { dataset: string }) => p.dataset === 'keep'), []);
    assert.equal((await api().batch('keep', { size: 6, revision: 6 })).statusCode, 200, 'revision 6 still holds the deleted sample');
  });

  test('purges tombstones past the retention: revisions before them are refused, later ones served, live samples kept', async () => {
    const samples = await fill('purge', 10, 200);
    for (const s of samples.slice(0, 4)) assert.equal((await api().remove('purge', s.id)).statusCode, 200);
    // Revisions: 1–10 added the samples, 11–14 deleted four of them.
    const res = await api().compact({ retentionSeconds: 0 });
    assert.equal(res.statusCode, 200, res.body);
    const purged = res.json().purged.find((p: { dataset: string }) => p.dataset === 'purge');
    assert.deepEqual(purged, { dataset: 'purge', samples: 4, purgedRevision: 14 });
    assertError(await api().batch('purge', { size: 1, revision: 10 }), 422, 'SENSORY_ERR_REVISION_PURGED');
    assert.equal((await api().batch('purge', { size: 6, revision: 14 })).statusCode, 200);
    assert.equal((await api().batch('purge', { size: 6 })).statusCode, 200);
    assertError(await api().batch('purge', { size: 7 }), 422, 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
    const dataset = await api().dataset('purge');
    assert.equal(dataset.sampleCount, 6);
    assert.deepEqual(dataset.categories.map((c: { name: string }) => c.name), ['c0', 'c1', 'c2'], 'category indices stay');
    for (const s of samples.slice(4)) assert.ok((await api().content('purge', s.id)).rawPayload.equals(s.png));
  });

  test('fails the live orders whose revision still needs a purged sample, and only those', async () => {
    const samples = await fill('orders', 8, 300);
    const place = async (revision?: number) => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/datasets/orders/orders', headers: t.auth('read'), payload: { size: 50, seed: 1, ...(revision ? { revision } : {}) } });
      assert.equal(res.statusCode, 202, res.body);
      return res.json().id as string;
    };
    const old = await place(8);
    const before = await place(3); // samples 1–3 only: none of them is deleted below
    assert.equal((await api().remove('orders', samples[6].id)).statusCode, 200);
    const after = await place(); // revision 9: sample 7 already gone
    const res = await api().compact({ retentionSeconds: 0 });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().ordersFailed.map((o: { id: string }) => o.id), [old]);
    const status = async (id: string) => (await t.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: t.auth('read') })).json();
    const failed = await status(old);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error, /revision 8 of dataset orders held samples deleted before .* which the admin purge removed/);
    for (const id of [before, after]) assert.ok(['queued', 'running'].includes((await status(id)).status), id);
    assertError(
      await t.app.inject({ method: 'POST', url: '/v1/datasets/orders/orders', headers: t.auth('read'), payload: { size: 5, revision: 8 } }),
      422,
      'SENSORY_ERR_REVISION_PURGED',
    );
  });

  test('gives the disk space back, online: uploads and batches carry on while it runs', async () => {
    const samples = await fill('space', 700, 1000);
    const deleted = samples.filter((_, i) => i % 5 !== 0);
    for (const s of deleted) assert.equal((await api().remove('space', s.id)).statusCode, 200);
    // Closed segments only are rewritten, and only once they have been closed a while.
    await t.close();
    t = await startTestApp({ SENSORY_SEGMENT_BYTES: String(1024 * 1024) }, t.dataDir);
    ageSegments(t.dataDir);
    const bytesBefore = segmentBytes(t.dataDir);

    const running = api().compact({ retentionSeconds: 0, minGarbageShare: 0.5 });
    const during = [];
    for (let i = 0; i < 20; i++) during.push(api().upload('space', await noisePng(5000 + i)), api().batch('space', { size: 10 }));
    const res = await running;
    for (const reply of await Promise.all(during)) assert.ok([200, 201].includes(reply.statusCode), reply.body);
    assert.equal(res.statusCode, 200, res.body);
    const result = res.json();
    assert.equal(result.purged.find((p: { dataset: string }) => p.dataset === 'space').samples, deleted.length);
    assert.ok(result.blobsDropped >= deleted.length, JSON.stringify(result));
    assert.ok(result.segments.blobsMoved > 0, JSON.stringify(result.segments));
    const bytesAfter = segmentBytes(t.dataDir);
    assert.ok(bytesAfter < bytesBefore * 0.5, `segments took ${bytesBefore} bytes, now ${bytesAfter}`);
    for (const s of samples.filter((_, i) => i % 5 === 0)) assert.ok((await api().content('space', s.id)).rawPayload.equals(s.png));
  });

  test('wrong requests: 400 naming the field, 403 without the admin role, 409 while one runs', async () => {
    assertError(await api().compact({ minGarbageShare: 2 }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await api().compact({ retentionSeconds: -1 }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await api().compact({ retentionSeconds: 'soon' }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await api().compact({ other: 1 }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await api().compact({}, 'write'), 403, 'SENSORY_ERR_FORBIDDEN');
    const [first, second] = await Promise.all([api().compact({}), api().compact({})]);
    assert.deepEqual([first.statusCode, second.statusCode].sort(), [200, 409]);
    assert.equal((await t.app.inject({ method: 'POST', url: '/v1/admin/compaction', headers: t.auth('admin') })).statusCode, 200, 'no body: the defaults');
  });
});
