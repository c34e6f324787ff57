import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { addSample, assertError, makePng, removeDir, seedDataset, startTestApp, type SampleView, type TestApp } from '../support/harness.js';
import { LIST_TAR, READ_SAFETENSORS, READ_WEBDATASET, python } from '../support/python.js';

/**
 * HTTP tests of export jobs: created, run in the background by the in-process runner, their
 * files downloaded (Range included) and read back by real readers (Python's tarfile with the
 * WebDataset naming rules, numpy for safetensors).
 */

interface ExportView {
  id: string;
  status: string;
  format: string;
  revision: number;
  samples: { total: number; done: number };
  progress: number;
  files: { n: number; name: string; bytes: number; samples: number; url: string }[];
  error?: string;
}

const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const SHAPE = { width: 12, height: 10, channels: 3 as const, testPercent: 40 };
const CATEGORIES = ['cat', 'dog', 'bird'];

let t: TestApp;
let samples: SampleView[];
let pixels: Map<number, Buffer>;
let jpeg: SampleView;
let revisionBeforeChanges: number;
const downloads = mkdtempSync(join(tmpdir(), 'sensory-export-dl-'));

async function startExport(dataset: string, body: Record<string, unknown>): Promise<ExportView> {
  const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/exports`, headers: t.auth('read'), payload: body });
  assert.equal(res.statusCode, 202, res.body);
  return res.json() as ExportView;
}

async function waitFor(id: string): Promise<ExportView> {
  for (let i = 0; i < 600; i++) {
    const view = (await t.app.inject({ method: 'GET', url: `/v1/exports/${id}`, headers: t.auth('read') })).json() as ExportView;
    if (view.status === 'complete' || view.status === 'failed') return view;
    await sleep(50);
  }
  throw new Error(`export ${id} did not end`);
}

async function download(view: ExportView): Promise<string[]> {
  const paths: string[] = [];
  for (const file of view.files) {
    const res = await t.app.inject({ method: 'GET', url: file.url, headers: t.auth('read') });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.rawPayload.length, file.bytes);
    const path = join(downloads, `${view.id}-${file.name}`);
    writeFileSync(path, res.rawPayload);
    paths.push(path);
  }
  return paths;
}

async function listExports(): Promise<number> {
  return ((await t.app.inject({ method: 'GET', url: '/v1/exports', headers: t.auth('read') })).json() as { exports: unknown[] }).exports.length;
}

before(async () => {
  t = await startTestApp();
  await t.runtime.startWorker(1);
  ({ samples, pixels } = await seedDataset(t, 'pets', SHAPE, 23, CATEGORIES));
  // A JPEG original: exported with its own extension.
  const jpegBytes = await sharp(await makePng(SHAPE.width, SHAPE.height, 3, 99)).jpeg({ quality: 90 }).toBuffer();
  jpeg = await addSample(t, 'pets', 'bird', jpegBytes);
  revisionBeforeChanges = ((await t.app.inject({ method: 'GET', url: '/v1/datasets/pets', headers: t.auth() })).json() as { revision: number }).revision;
  // After that revision: a relabel and a delete.
  await t.app.inject({ method: 'PATCH', url: `/v1/datasets/pets/samples/${samples[0].id}`, headers: t.auth(), payload: { category: 'dog' } });
  await t.app.inject({ method: 'DELETE', url: `/v1/datasets/pets/samples/${samples[1].id}`, headers: t.auth() });
});
after(async () => {
  await t.close();
  removeDir(t.dataDir);
  removeDir(downloads);
});

describe('webdataset', () => {
  test('tar shards of shardSize samples, read by tarfile with the WebDataset rules: every sample, its label and metadata', async () => {
    const created = await startExport('pets', { format: 'webdataset', shardSize: 7 });
    assert.equal(created.status, 'queued');
    assert.equal(created.samples.total, 23);
    const view = await waitFor(created.id);
    assert.equal(view.status, 'complete', view.error);
    assert.equal(view.progress, 1);
    assert.deepEqual(view.files.map((f) => f.samples), [7, 7, 7, 2]);
    assert.match(view.files[0].name, /^pets-webdataset-000000\.tar$/);
    const read = await python<Record<string, Record<string, string>>>(READ_WEBDATASET, ...(await download(view)));
    const live = [...samples.slice(2), jpeg];
    live.push({ ...samples[0], category: 'dog', categoryIndex: 1 });
    assert.equal(Object.keys(read).length, live.length);
    const dogIndex = CATEGORIES.indexOf('dog');
    for (const sample of live) {
      const key = String(sample.id).padStart(12, '0');
      const entry = read[key];
      assert.ok(entry, `sample ${sample.id} is in the shards`);
      const imageExt = sample.id === jpeg.id ? 'jpg' : 'png';
      assert.deepEqual(Object.keys(entry).sort(), [imageExt, 'cls', 'json'].sort());
      assert.equal(entry[imageExt], sample.sha256, 'the original bytes');
      const index = sample.id === samples[0].id ? dogIndex : sample.categoryIndex;
      assert.equal(Number(entry.cls), index);
      const meta = JSON.parse(entry.json) as { id: number; category: string; categoryIndex: number; split: string; sha256: string };
      assert.equal(meta.id, sample.id);
      assert.equal(meta.category, CATEGORIES[index]);
      assert.equal(meta.sha256, sample.sha256);
      assert.ok(meta.split === 'train' || meta.split === 'test');
    }
  });

  test('pinned to a revision: the labels and samples as they were then', async () => {
    const view = await waitFor((await startExport('pets', { format: 'webdataset', revision: revisionBeforeChanges })).id);
    assert.equal(view.status, 'complete', view.error);
    const read = await python<Record<string, Record<string, string>>>(READ_WEBDATASET, ...(await download(view)));
    assert.equal(Object.keys(read).length, 24, 'the deleted sample is still there');
    assert.equal(Number(read[String(samples[0].id).padStart(12, '0')].cls), samples[0].categoryIndex, 'the label before the relabel');
  });

  test('split and categories filter what is written', async () => {
    const view = await waitFor((await startExport('pets', { format: 'webdataset', split: 'test', categories: ['cat'] })).id);
    assert.equal(view.status, 'complete', view.error);
    const read = await python<Record<string, Record<string, string>>>(READ_WEBDATASET, ...(await download(view)));
    assert.ok(view.samples.total > 0 && view.samples.total < 10, `${view.samples.total} test samples of cat`);
    assert.equal(Object.keys(read).length, view.samples.total);
    for (const entry of Object.values(read)) {
      const meta = JSON.parse(entry.json) as { category: string; split: string };
      assert.equal(meta.category, 'cat');
      assert.equal(meta.split, 'test');
    }
  });
});

describe('safetensors', () => {
  test('shards of the stored pixels with int64 labels and ids, read by numpy', async () => {
    const view = await waitFor((await startExport('pets', { format: 'safetensors', shardSize: 10 })).id);
    assert.equal(view.status, 'complete', view.error);
    const shards = await python<{ ids: number[]; labels: number[]; shape: number[]; pixelsSha256: string[]; metadata: Record<string, string> }[]>(
      READ_SAFETENSORS,
      ...(await download(view)),
    );
    assert.deepEqual(shards.map((s) => s.shape), [[10, 10, 12, 3], [10, 10, 12, 3], [3, 10, 12, 3]]);
    const ids = shards.flatMap((s) => s.ids);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'by ascending id');
    const byId = new Map(samples.map((s) => [s.id, s]));
    for (const shard of shards) {
      assert.deepEqual(JSON.parse(shard.metadata.categories), { cat: 0, dog: 1, bird: 2 });
      shard.ids.forEach((id, i) => {
        if (id === jpeg.id) return;
        assert.equal(shard.pixelsSha256[i], sha256(pixels.get(id)!), `pixels of sample ${id}`);
        assert.equal(shard.labels[i], id === samples[0].id ? 1 : byId.get(id)!.categoryIndex);
      });
    }
  });
});

describe('imagefolder', () => {
  test('one tar of <split>/<category>/<sha256>.<ext>', async () => {
    const view = await waitFor((await startExport('pets', { format: 'imagefolder' })).id);
    assert.equal(view.status, 'complete', view.error);
    assert.equal(view.files.length, 1);
    const [path] = await download(view);
    const members = await python<{ name: string; sha256: string }[]>(LIST_TAR, path);
    assert.equal(members.length, 23);
    for (const member of members) {
      const match = /^(train|test)\/(cat|dog|bird)\/([0-9a-f]{64})\.(png|jpg)$/.exec(member.name);
      assert.ok(match, member.name);
      assert.equal(match[3], member.sha256);
    }
    assert.ok(members.some((m) => m.name.startsWith('test/')) && members.some((m) => m.name.startsWith('train/')));
  });
});

describe('downloads with Range', () => {
  let view: ExportView;
  let whole: Buffer;
  before(async () => {
    view = await waitFor((await startExport('pets', { format: 'imagefolder' })).id);
    whole = (await t.app.inject({ method: 'GET', url: view.files[0].url, headers: t.auth('read') })).rawPayload;
  });

  test('a range gives 206 with Content-Range and those bytes; an open range resumes to the end', async () => {
    const res = await t.app.inject({ method: 'GET', url: view.files[0].url, headers: { ...t.auth('read'), range: 'bytes=100-1123' } });
    assert.equal(res.statusCode, 206);
    assert.equal(res.headers['content-range'], `bytes 100-1123/${whole.length}`);
    assert.deepEqual(res.rawPayload, whole.subarray(100, 1124));
    const rest = await t.app.inject({ method: 'GET', url: view.files[0].url, headers: { ...t.auth('read'), range: 'bytes=1124-', 'if-range': String(res.headers.etag) } });
    assert.equal(rest.statusCode, 206);
    assert.deepEqual(Buffer.concat([whole.subarray(0, 1124), rest.rawPayload]), whole, 'resumed download is the whole file');
    const suffix = await t.app.inject({ method: 'GET', url: view.files[0].url, headers: { ...t.auth('read'), range: 'bytes=-512' } });
    assert.equal(suffix.statusCode, 206);
    assert.deepEqual(suffix.rawPayload, whole.subarray(whole.length - 512));
  });

  test('past the end: 416 with the size; a stale If-Range: the whole file', async () => {
    const res = await t.app.inject({ method: 'GET', url: view.files[0].url, headers: { ...t.auth('read'), range: `bytes=${whole.length}-` } });
    assertError(res, 416, 'SENSORY_ERR_RANGE_NOT_SATISFIABLE');
    assert.equal(res.headers['content-range'], `bytes */${whole.length}`);
    const stale = await t.app.inject({ method: 'GET', url: view.files[0].url, headers: { ...t.auth('read'), range: 'bytes=0-9', 'if-range': '"other"' } });
    assert.equal(stale.statusCode, 200);
    assert.equal(stale.rawPayload.length, whole.length);
  });

  test('a file that does not exist, a job that does not exist', async () => {
    assertError(await t.app.inject({ method: 'GET', url: `/v1/exports/${view.id}/files/1`, headers: t.auth('read') }), 404, 'SENSORY_ERR_EXPORT_FILE_NOT_FOUND');
    assertError(await t.app.inject({ method: 'GET', url: '/v1/exports/no-such-job/files/0', headers: t.auth('read') }), 404, 'SENSORY_ERR_EXPORT_NOT_FOUND');
    assertError(await t.app.inject({ method: 'GET', url: '/v1/exports/no-such-job', headers: t.auth('read') }), 404, 'SENSORY_ERR_EXPORT_NOT_FOUND');
    const bad = assertError(await t.app.inject({ method: 'GET', url: `/v1/exports/${view.id}/files/x`, headers: t.auth('read') }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.match(bad.error.message, /n/);
  });

  test('removing a job (admin only) removes its files', async () => {
    assertError(await t.app.inject({ method: 'DELETE', url: `/v1/exports/${view.id}`, headers: t.auth('read') }), 403, 'SENSORY_ERR_FORBIDDEN');
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/exports/${view.id}`, headers: t.auth('admin') })).statusCode, 200);
    assertError(await t.app.inject({ method: 'GET', url: `/v1/exports/${view.id}`, headers: t.auth('read') }), 404, 'SENSORY_ERR_EXPORT_NOT_FOUND');
  });
});

describe('wrong inputs: a clear 4xx naming the field, and no job', () => {
  const cases: [string, string, Record<string, unknown>, number, string, RegExp][] = [
    ['no format', 'pets', {}, 400, 'SENSORY_ERR_BAD_REQUEST', /format/],
    ['an unknown format', 'pets', { format: 'zip' }, 400, 'SENSORY_ERR_BAD_REQUEST', /format/],
    ['shardSize 0', 'pets', { format: 'webdataset', shardSize: 0 }, 400, 'SENSORY_ERR_BAD_REQUEST', /shardSize/],
    ['shardSize as text', 'pets', { format: 'webdataset', shardSize: '7' }, 400, 'SENSORY_ERR_BAD_REQUEST', /shardSize/],
    ['a negative revision', 'pets', { format: 'webdataset', revision: -1 }, 400, 'SENSORY_ERR_BAD_REQUEST', /revision/],
    ['a revision above the current one', 'pets', { format: 'webdataset', revision: 10_000 }, 422, 'SENSORY_ERR_UNKNOWN_REVISION', /revision/],
    ['an unknown split', 'pets', { format: 'webdataset', split: 'validation' }, 400, 'SENSORY_ERR_BAD_REQUEST', /split/],
    ['an unknown category', 'pets', { format: 'webdataset', categories: ['fish'] }, 422, 'SENSORY_ERR_UNKNOWN_CATEGORY', /fish/],
    ['an invalid category name', 'pets', { format: 'webdataset', categories: ['../x'] }, 400, 'SENSORY_ERR_INVALID_NAME', /categories/],
    ['no categories', 'pets', { format: 'webdataset', categories: [] }, 400, 'SENSORY_ERR_BAD_REQUEST', /categories/],
    ['an unknown field', 'pets', { format: 'webdataset', compress: true }, 400, 'SENSORY_ERR_BAD_REQUEST', /compress/],
    ['an unknown dataset', 'nothing-here', { format: 'webdataset' }, 404, 'SENSORY_ERR_DATASET_NOT_FOUND', /nothing-here/],
  ];
  for (const [what, dataset, body, status, code, field] of cases) {
    test(what, async () => {
      const before = await listExports();
      const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/exports`, headers: t.auth('read'), payload: body });
      const error = assertError(res, status, code);
      assert.match(error.error.message, field);
      assert.equal(await listExports(), before, 'no job was created');
    });
  }

  test('without a key: 401', async () => {
    assertError(await t.app.inject({ method: 'POST', url: '/v1/datasets/pets/exports', payload: { format: 'webdataset' } }), 401, 'SENSORY_ERR_UNAUTHORIZED');
  });
});

describe('a job no runner has taken yet', () => {
  let idle: TestApp;
  before(async () => {
    // No worker started: the job stays queued.
    idle = await startTestApp();
    await seedDataset(idle, 'waiting', { width: 4, height: 4, channels: 3 }, 3, ['a']);
  });
  after(async () => {
    await idle.close();
    removeDir(idle.dataDir);
  });

  test('is listed queued; its first file is not ready (409); other reads are refused clearly', async () => {
    const res = await idle.app.inject({ method: 'POST', url: '/v1/datasets/waiting/exports', headers: idle.auth('read'), payload: { format: 'safetensors', shardSize: 2 } });
    assert.equal(res.statusCode, 202);
    const job = res.json() as ExportView;
    const listed = (await idle.app.inject({ method: 'GET', url: '/v1/exports?dataset=waiting', headers: idle.auth('read') })).json() as { exports: ExportView[] };
    assert.deepEqual(listed.exports.map((e) => [e.id, e.status]), [[job.id, 'queued']]);
    assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${job.id}/files/0`, headers: idle.auth('read') }), 409, 'SENSORY_ERR_EXPORT_FILE_NOT_READY');
    assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${job.id}/files/1`, headers: idle.auth('read') }), 409, 'SENSORY_ERR_EXPORT_FILE_NOT_READY');
    assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${job.id}/files/2`, headers: idle.auth('read') }), 404, 'SENSORY_ERR_EXPORT_FILE_NOT_FOUND');
    const negative = assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${job.id}/files/-1`, headers: idle.auth('read') }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.match(negative.error.message, /n/);
    const unknown = assertError(await idle.app.inject({ method: 'GET', url: '/v1/exports?status=queued', headers: idle.auth('read') }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.match(unknown.error.message, /status/);
    assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${'x'.repeat(65)}`, headers: idle.auth('read') }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await idle.app.inject({ method: 'GET', url: `/v1/exports/${job.id}` }), 401, 'SENSORY_ERR_UNAUTHORIZED');
    // Held by a runner (another process, here by hand): it cannot be removed, and stays.
    const held = (await idle.app.inject({ method: 'POST', url: '/v1/datasets/waiting/exports', headers: idle.auth('read'), payload: { format: 'webdataset' } })).json() as ExportView;
    assert.ok(await idle.runtime.exportJobs.claim(held.id, { runner: 'elsewhere', now: Date.now(), leaseMs: 60_000 }));
    assertError(await idle.app.inject({ method: 'DELETE', url: `/v1/exports/${held.id}`, headers: idle.auth('admin') }), 409, 'SENSORY_ERR_EXPORT_RUNNING');
    assert.equal(((await idle.app.inject({ method: 'GET', url: `/v1/exports/${held.id}`, headers: idle.auth('read') })).json() as ExportView).status, 'running');
    await idle.runtime.exportJobs.release(held.id, 'elsewhere');
    assert.equal((await idle.app.inject({ method: 'DELETE', url: `/v1/exports/${held.id}`, headers: idle.auth('admin') })).statusCode, 200);
    // A queued job can be removed; the runner that comes later finds nothing to take.
    assert.equal((await idle.app.inject({ method: 'DELETE', url: `/v1/exports/${job.id}`, headers: idle.auth('admin') })).statusCode, 200);
    assert.equal(((await idle.app.inject({ method: 'GET', url: '/v1/exports', headers: idle.auth('read') })).json() as { exports: unknown[] }).exports.length, 0);
  });
});
