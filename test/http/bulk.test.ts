import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { assertError, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';
import { tarOf, type TarMember } from '../support/tar.js';
import type { DecodeThreads } from '../../src/adapters/imaging/decode-threads.js';

/**
 * HTTP tests of POST /v1/datasets/{name}/samples/bulk: a streamed tar of <category>/<file>
 * members, a receipt per item in input order, committed as it streams.
 */

interface Receipt {
  path: string;
  status: 'stored' | 'duplicate' | 'rejected';
  sampleId?: number;
  category?: string;
  sha256?: string;
  error?: { code: string; message: string };
}
interface BulkResult {
  items: number;
  stored: number;
  duplicates: number;
  rejected: number;
  revision: number;
  receipts: Receipt[];
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('bulk uploads', () => {
  let t: TestApp;
  const png: Buffer[] = [];

  before(async () => {
    // Items hashed and decoded on a worker thread: every test here goes through it.
    t = await startTestApp({ SENSORY_MAX_SAMPLE_BYTES: '4096', SENSORY_MAX_BULK_ITEMS: '50', SENSORY_INGEST_THREADS: '1' });
    for (let i = 0; i < 40; i++) png.push(await makePng(8, 8, 3, 3000 + i));
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const createDataset = async (name: string) => {
    const res = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth('admin'), payload: { width: 8, height: 8, channels: 3 } });
    assert.equal(res.statusCode, 201, res.body);
  };
  const post = (name: string, body: Buffer | string, contentType = 'application/x-tar', kind: 'write' | 'read' | 'admin' = 'write') =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/samples/bulk`, headers: { ...t.auth(kind), 'content-type': contentType }, payload: body });
  const bulk = async (name: string, members: readonly TarMember[], status?: number): Promise<BulkResult> => {
    const res = await post(name, await tarOf(members));
    if (status !== undefined) assert.equal(res.statusCode, status, res.body);
    else assert.ok([200, 201].includes(res.statusCode), res.body);
    return res.json() as BulkResult;
  };
  const state = async (name: string) => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth('read') })).json() as { revision: number; sampleCount: number };
  const content = async (name: string, id: number) => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples/${id}/content`, headers: t.auth('read') })).rawPayload;
  const pixelsOf = async (name: string, ids: number[]) => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/batches`, headers: { ...t.auth('read'), accept: 'application/json' }, payload: { size: ids.length, seed: 1 } });
    const body = res.json() as { ids: number[]; data: number[][][][] };
    return new Map(body.ids.map((id, i) => [id, Buffer.from(body.data[i].flat(2))]));
  };

  test('stores every item and answers a receipt per item, in input order, with its sample id', async () => {
    await createDataset('bulk-basic');
    const members = png.slice(0, 12).map((data, i) => ({ name: `${['cat', 'dog', 'owl'][i % 3]}/${i}.png`, data }));
    const result = await bulk('bulk-basic', [{ name: 'cat/', type: 'directory' }, ...members], 201);
    assert.deepEqual([result.items, result.stored, result.duplicates, result.rejected], [12, 12, 0, 0]);
    assert.deepEqual(result.receipts.map((r) => r.path), members.map((m) => m.name));
    assert.equal(result.revision, 12);
    const pixels = await pixelsOf('bulk-basic', result.receipts.map((r) => r.sampleId!));
    for (const [i, receipt] of result.receipts.entries()) {
      assert.equal(receipt.status, 'stored');
      assert.equal(receipt.category, members[i].name.split('/')[0]);
      assert.equal(receipt.sha256, sha256(members[i].data));
      assert.ok((await content('bulk-basic', receipt.sampleId!)).equals(members[i].data), 'the original, byte for byte');
      assert.ok(pixels.get(receipt.sampleId!)!.equals(await sharp(members[i].data).removeAlpha().raw().toBuffer()), 'the pixels, exactly');
    }
    assert.equal((await state('bulk-basic')).sampleCount, 12);
  });

  test('the same body again stores nothing twice: every item comes back as a duplicate with its id', async () => {
    await createDataset('bulk-again');
    const members = png.slice(12, 20).map((data, i) => ({ name: `c${i % 2}/${i}.png`, data }));
    const first = await bulk('bulk-again', members, 201);
    const before = await state('bulk-again');
    const second = await bulk('bulk-again', members, 200);
    assert.deepEqual([second.stored, second.duplicates], [0, 8]);
    assert.deepEqual(second.receipts.map((r) => [r.status, r.sampleId]), first.receipts.map((r) => ['duplicate', r.sampleId]));
    assert.deepEqual(await state('bulk-again'), before);
  });

  test('rejects bad items one by one and stores the rest: paths outside <category>/<file>, links, over the size limit, not an image, a conflict', async () => {
    await createDataset('bulk-bad');
    const big = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png({ compressionLevel: 0 }).toBuffer();
    const oversized = Buffer.concat([big, Buffer.alloc(5000)]);
    const members: TarMember[] = [
      { name: 'ok/a.png', data: png[20] },
      { name: '/abs/x.png', data: png[21] },
      { name: '../evil.png', data: png[22] },
      { name: 'cat/../../evil.png', data: png[23] },
      { name: 'a/b/c.png', data: png[24] },
      { name: 'bad:name/x.png', data: png[25] },
      { name: 'ok/link.png', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'ok/hard.png', type: 'link', linkname: 'ok/a.png' },
      { name: 'ok/pipe', type: 'fifo' },
      { name: 'ok/huge.png', data: oversized },
      { name: 'ok/notes.txt', data: Buffer.from('not an image') },
      { name: 'ok/empty.png', data: Buffer.alloc(0) },
      { name: 'other/a-again.png', data: png[20] },
      { name: 'ok/b.png', data: png[26] },
    ];
    const result = await bulk('bulk-bad', members, 201);
    const codes = result.receipts.map((r) => [r.path, r.status === 'rejected' ? r.error!.code : r.status]);
    assert.deepEqual(codes, [
      ['ok/a.png', 'stored'],
      ['/abs/x.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['../evil.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['cat/../../evil.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['a/b/c.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['bad:name/x.png', 'SENSORY_ERR_INVALID_NAME'],
      ['ok/link.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['ok/hard.png', 'SENSORY_ERR_BAD_REQUEST'],
      ['ok/pipe', 'SENSORY_ERR_BAD_REQUEST'],
      ['ok/huge.png', 'SENSORY_ERR_SAMPLE_TOO_LARGE'],
      ['ok/notes.txt', 'SENSORY_ERR_NOT_AN_IMAGE'],
      ['ok/empty.png', 'SENSORY_ERR_NOT_AN_IMAGE'],
      ['other/a-again.png', 'SENSORY_ERR_CATEGORY_CONFLICT'],
      ['ok/b.png', 'stored'],
    ]);
    for (const receipt of result.receipts.filter((r) => r.status === 'rejected')) assert.ok(receipt.error!.message.length > 0);
    assert.deepEqual((await state('bulk-bad')).sampleCount, 2);
  });

  test('a decompression bomb in a bulk upload is one rejected item, refused from its header', async () => {
    await createDataset('bulk-bomb');
    const header = Buffer.from(png[27]);
    header.writeUInt32BE(16000, 16);
    header.writeUInt32BE(16000, 20); // IHDR now claims 16000×16000 (its CRC no longer matches: refused before that matters)
    const result = await bulk('bulk-bomb', [{ name: 'x/bomb.png', data: header }, { name: 'x/ok.png', data: png[28] }], 201);
    assert.deepEqual(result.receipts.map((r) => r.error?.code ?? r.status), ['SENSORY_ERR_IMAGE_TOO_LARGE', 'stored']);
  });

  test('a gzipped tar is read like a tar', async () => {
    await createDataset('bulk-gzip');
    const tar = await tarOf([{ name: 'g/a.png', data: png[29] }, { name: 'g/b.png', data: png[30] }]);
    const res = await post('bulk-gzip', gzipSync(tar), 'application/gzip');
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((res.json() as BulkResult).stored, 2);
  });

  test('a corrupt body or an empty one is a 400 and stores nothing', async () => {
    await createDataset('bulk-corrupt');
    assertError(await post('bulk-corrupt', Buffer.alloc(0)), 400, 'SENSORY_ERR_BAD_REQUEST');
    const garbage = Buffer.alloc(3000, 0x41);
    assertError(await post('bulk-corrupt', garbage), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await post('bulk-corrupt', Buffer.from('not gzip at all'), 'application/gzip'), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.equal((await state('bulk-corrupt')).sampleCount, 0);
  });

  test('a body cut in the middle of a member keeps exactly the items before it, and says so', async () => {
    await createDataset('bulk-cut');
    const members = png.slice(31, 36).map((data, i) => ({ name: `cut/${i}.png`, data }));
    const tar = await tarOf(members);
    // Cut inside the fourth member's data: 512-byte header + data padded to 512, per member.
    const cutAt = 3 * (512 + Math.ceil(png[31].length / 512) * 512) + 512 + 10;
    const res = await post('bulk-cut', tar.subarray(0, cutAt));
    const body = assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.match(body.error.message, /after 3 item/);
    const kept = (await state('bulk-cut')).sampleCount;
    assert.equal(kept, 3, 'the three whole items before the cut are stored');
    // Sending the whole body again stores the rest, and nothing twice.
    const again = await bulk('bulk-cut', members, 201);
    assert.deepEqual(again.receipts.map((r) => r.status), ['duplicate', 'duplicate', 'duplicate', 'stored', 'stored']);
    assert.equal((await state('bulk-cut')).sampleCount, 5);
  });

  test('more items than SENSORY_MAX_BULK_ITEMS: 413, and the items before the limit are kept', async () => {
    await createDataset('bulk-many');
    const members: TarMember[] = [];
    for (let i = 0; i < 60; i++) members.push({ name: `m/${i}.png`, data: png[i % 40] === undefined ? png[0] : Buffer.concat([png[i % 40], Buffer.from([i])]) });
    const res = await post('bulk-many', await tarOf(members));
    assertError(res, 413, 'SENSORY_ERR_BODY_TOO_LARGE');
    assert.ok((await state('bulk-many')).sampleCount <= 50);
  });

  test('a decode thread that dies mid-upload fails the request as an internal error and loses nothing: what was committed is whole, and the same body again stores the rest, once', async () => {
    await createDataset('bulk-thread-death');
    const pool = (t.runtime.deps.bulk as unknown as { digests?: DecodeThreads }).digests;
    assert.ok(pool, 'bulk items are decoded on a thread (SENSORY_INGEST_THREADS=1)');
    const members = png.slice(0, 40).map((data, i) => ({ name: `${['cat', 'dog'][i % 2]}/${i}.png`, data }));
    const body = await tarOf(members);
    const digest = pool.digest.bind(pool);
    let calls = 0;
    pool.digest = (bytes, shape) => {
      // The threads end as a crash would end them, while the items before are in flight.
      if (++calls === 20) for (const worker of (pool as unknown as { workers: Worker[] }).workers) void worker?.terminate();
      return digest(bytes, shape);
    };
    try {
      const res = await post('bulk-thread-death', body);
      assertError(res, 500, 'SENSORY_ERR_INTERNAL');
    } finally {
      pool.digest = digest;
    }
    const kept = await state('bulk-thread-death');
    assert.ok(kept.sampleCount < 40, `${kept.sampleCount} samples kept`);
    const again = (await post('bulk-thread-death', body)).json() as BulkResult;
    assert.deepEqual([again.items, again.stored + again.duplicates, again.duplicates, again.rejected], [40, 40, kept.sampleCount, 0]);
    assert.deepEqual(again.receipts.map((r) => r.path), members.map((m) => m.name));
    assert.equal((await state('bulk-thread-death')).sampleCount, 40);
    const pixels = await pixelsOf('bulk-thread-death', again.receipts.map((r) => r.sampleId!));
    for (const [i, receipt] of again.receipts.entries()) {
      assert.ok((await content('bulk-thread-death', receipt.sampleId!)).equals(members[i].data), 'the original, byte for byte');
      assert.ok(pixels.get(receipt.sampleId!)!.equals(await sharp(members[i].data).removeAlpha().raw().toBuffer()), 'the pixels, exactly');
    }
  });

  test('wrong requests: another content type → 415, an unknown dataset → 404, a read key → 403', async () => {
    await createDataset('bulk-wrong');
    const tar = await tarOf([{ name: 'a/b.png', data: png[0] }]);
    assertError(await post('bulk-wrong', JSON.stringify({ a: 1 }), 'application/json'), 415, 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE');
    assertError(await post('no-such-dataset', tar), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    assertError(await post('bulk-wrong', tar, 'application/x-tar', 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
    assertError(await post('bad name', tar), 400, ['SENSORY_ERR_INVALID_NAME', 'SENSORY_ERR_BAD_REQUEST']);
    assert.equal((await state('bulk-wrong')).sampleCount, 0);
  });
});
