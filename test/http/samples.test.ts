import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SampleView as SampleJson } from '@sensory/client';
import sharp from 'sharp';
import { assertError, KEYS, makePng, removeDir, startTestApp, type InjectReply as Reply, type TestApp } from '../support/harness.js';

/** HTTP tests of the modern samples endpoints (SPEC §3, §4). A sample's JSON is the API's SampleView. */

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A PNG that does not compress: `width × height × 3` bytes of seeded noise. */
async function noisePng(width: number, height: number, seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < pixels.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    pixels[i] = state & 0xff;
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

interface Part {
  readonly name: string;
  readonly value: string | Buffer;
  readonly filename?: string;
  readonly contentType?: string;
}

/** A multipart/form-data body, built by hand. */
function multipart(parts: readonly Part[], boundary = `----sensory-test-${Math.random().toString(16).slice(2)}`) {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.filename !== undefined) head += `Content-Type: ${part.contentType ?? 'application/octet-stream'}\r\n`;
    head += '\r\n';
    chunks.push(Buffer.from(head, 'utf8'), Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value, 'utf8'), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The files of the blob store (original bytes), to check that a failed request wrote none. */
function blobFiles(t: TestApp): string[] {
  const root = join(t.dataDir, 'blobs');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.parentPath.includes(`${join('blobs', 'tmp')}`))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

function client(t: TestApp) {
  const api = {
    async createDataset(name: string, shape: { width?: number; height?: number; channels?: 1 | 3; testPercent?: number } = {}) {
      const res = await t.app.inject({
        method: 'PUT',
        url: `/v1/datasets/${name}`,
        headers: t.auth('admin'),
        payload: { width: shape.width ?? 8, height: shape.height ?? 8, channels: shape.channels ?? 3, ...(shape.testPercent !== undefined ? { testPercent: shape.testPercent } : {}) },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json();
    },
    async dataset(name: string) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { revision: number; sampleCount: number; categories: { name: string; index: number; count: number }[] };
    },
    async state(name: string) {
      const { revision, sampleCount } = await api.dataset(name);
      return { revision, sampleCount, blobs: blobFiles(t) };
    },
    async assertUnchanged(name: string, before: { revision: number; sampleCount: number; blobs: string[] }) {
      assert.deepEqual(await api.state(name), before, 'a failed request stores nothing');
    },
    postJson(name: string, payload: unknown, kind: keyof typeof KEYS = 'write') {
      return t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/samples`, headers: t.auth(kind), payload: payload as object });
    },
    postRaw(name: string, bytes: Buffer | string, contentType: string, category?: string, kind: keyof typeof KEYS = 'write') {
      const query = category === undefined ? '' : `?category=${encodeURIComponent(category)}`;
      return t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/samples${query}`,
        headers: { ...t.auth(kind), 'content-type': contentType },
        payload: bytes,
      });
    },
    postForm(name: string, parts: readonly Part[], kind: keyof typeof KEYS = 'write') {
      const form = multipart(parts);
      return t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/samples`,
        headers: { ...t.auth(kind), 'content-type': form.contentType },
        payload: form.payload,
      });
    },
    async add(name: string, category: string, bytes: Buffer): Promise<SampleJson> {
      const res = await api.postJson(name, { category, data: bytes.toString('base64') });
      assert.equal(res.statusCode, 201, res.body);
      return res.json();
    },
    async list(name: string, query = ''): Promise<{ samples: SampleJson[]; nextCursor?: string }> {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples${query}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    },
    async listAll(name: string, query = ''): Promise<SampleJson[]> {
      const out: SampleJson[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const sep = query ? '&' : '?';
        const res = await api.list(name, `${query}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`);
        out.push(...res.samples);
        if (!res.nextCursor) return out;
        cursor = res.nextCursor;
      }
      throw new Error('paging never ended');
    },
    getSample(name: string, id: number | string, kind: keyof typeof KEYS = 'read') {
      return t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples/${id}`, headers: t.auth(kind) });
    },
    content(name: string, id: number | string) {
      return t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples/${id}/content`, headers: t.auth('read') });
    },
    patch(name: string, id: number | string, payload: unknown, kind: keyof typeof KEYS = 'write') {
      return t.app.inject({ method: 'PATCH', url: `/v1/datasets/${name}/samples/${id}`, headers: t.auth(kind), payload: payload as object });
    },
    remove(name: string, id: number | string, kind: keyof typeof KEYS = 'admin') {
      return t.app.inject({ method: 'DELETE', url: `/v1/datasets/${name}/samples/${id}`, headers: t.auth(kind) });
    },
  };
  return api;
}

function assertSampleShape(sample: SampleJson, expected: { dataset: string; category: string; bytes: Buffer; mediaType?: string }) {
  assert.equal(typeof sample.id, 'number');
  assert.ok(Number.isInteger(sample.id) && sample.id > 0);
  assert.equal(sample.dataset, expected.dataset);
  assert.equal(sample.category, expected.category);
  assert.ok(Number.isInteger(sample.categoryIndex) && sample.categoryIndex >= 0);
  assert.equal(sample.sha256, sha256(expected.bytes));
  assert.ok(Number.isInteger(sample.revision) && sample.revision >= 1);
  assert.ok(!Number.isNaN(Date.parse(sample.createdAt)));
  assert.equal(sample.mediaType, expected.mediaType ?? 'image/png');
  assert.equal(sample.bytes, expected.bytes.length);
  assert.ok(sample.split === 'train' || sample.split === 'test');
}

describe('samples', () => {
  let t: TestApp;
  let api: ReturnType<typeof client>;

  before(async () => {
    t = await startTestApp();
    api = client(t);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  describe('adding', () => {
    test('JSON {category, data: base64} → 201 with the sample', async () => {
      await api.createDataset('add-json');
      const png = await makePng(8, 8, 3, 1);
      const res = await api.postJson('add-json', { category: 'cat', data: png.toString('base64') });
      assert.equal(res.statusCode, 201, res.body);
      const sample = res.json() as SampleJson;
      assertSampleShape(sample, { dataset: 'add-json', category: 'cat', bytes: png });
      assert.equal(sample.categoryIndex, 0);
      assert.equal(sample.revision, 1);
      assert.equal(sample.split, 'train', 'testPercent 0 → every sample trains');
      assert.equal(sample.duplicate, undefined);
      const dataset = await api.dataset('add-json');
      assert.equal(dataset.revision, 1);
      assert.equal(dataset.sampleCount, 1);
      assert.deepEqual(dataset.categories, [{ name: 'cat', index: 0, count: 1 }]);
    });

    test('JSON with base64url and with line breaks in the base64 is accepted', async () => {
      await api.createDataset('add-json-b64');
      const png = await makePng(8, 8, 3, 2);
      const url = await api.postJson('add-json-b64', { category: 'a', data: png.toString('base64url') });
      assert.equal(url.statusCode, 201, url.body);
      assert.equal(url.json().sha256, sha256(png));
      const png2 = await makePng(8, 8, 3, 3);
      const wrapped = png2.toString('base64').replace(/(.{60})/g, '$1\n');
      const res = await api.postJson('add-json-b64', { category: 'a', data: wrapped });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().sha256, sha256(png2));
    });

    test('a raw image/png body with ?category= → 201', async () => {
      await api.createDataset('add-raw');
      const png = await makePng(8, 8, 3, 4);
      const res = await api.postRaw('add-raw', png, 'image/png', 'dog');
      assert.equal(res.statusCode, 201, res.body);
      const sample = res.json() as SampleJson;
      assertSampleShape(sample, { dataset: 'add-raw', category: 'dog', bytes: png });
      assert.equal(sample.revision, 1);
    });

    test('a raw JPEG, a grey PNG and a PNG of another size are accepted; mediaType comes from the bytes', async () => {
      await api.createDataset('add-types', { width: 8, height: 8, channels: 3 });
      const jpeg = await sharp(await makePng(16, 12, 3, 5)).jpeg().toBuffer();
      const res = await api.postRaw('add-types', jpeg, 'image/jpeg', 'j');
      assert.equal(res.statusCode, 201, res.body);
      assertSampleShape(res.json(), { dataset: 'add-types', category: 'j', bytes: jpeg, mediaType: 'image/jpeg' });
      const grey = await makePng(3, 5, 1, 6);
      const greyRes = await api.postRaw('add-types', grey, 'image/png', 'g');
      assert.equal(greyRes.statusCode, 201, greyRes.body);
      // A JPEG sent with the wrong image/* type is still a JPEG.
      const jpeg2 = await sharp(await makePng(8, 8, 3, 7)).jpeg().toBuffer();
      const mislabelled = await api.postRaw('add-types', jpeg2, 'image/png', 'j');
      assert.equal(mislabelled.statusCode, 201, mislabelled.body);
      assert.equal(mislabelled.json().mediaType, 'image/jpeg');
      const content = await api.content('add-types', mislabelled.json().id);
      assert.match(String(content.headers['content-type']), /^image\/jpeg/);
    });

    test('a multipart form with a category field and one file part → 201 with the sample', async () => {
      await api.createDataset('add-form');
      const png = await makePng(8, 8, 3, 8);
      const res = await api.postForm('add-form', [
        { name: 'category', value: 'bird' },
        { name: 'file', value: png, filename: 'bird.png', contentType: 'image/png' },
      ]);
      assert.equal(res.statusCode, 201, res.body);
      const sample = res.json() as SampleJson;
      assertSampleShape(sample, { dataset: 'add-form', category: 'bird', bytes: png });
      assert.equal((await api.dataset('add-form')).sampleCount, 1);
    });

    test('a multipart form whose category field comes after the file part works too', async () => {
      await api.createDataset('add-form-late');
      const png = await makePng(8, 8, 3, 9);
      const res = await api.postForm('add-form-late', [
        { name: 'file', value: png, filename: 'x.png', contentType: 'image/png' },
        { name: 'category', value: 'late' },
      ]);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().category, 'late');
    });

    test('a multipart form with three file parts → 201 {samples: [...]} with one result per file', async () => {
      await api.createDataset('add-form-3');
      const pngs = await Promise.all([10, 11, 12].map((seed) => makePng(8, 8, 3, seed)));
      const res = await api.postForm('add-form-3', [
        { name: 'category', value: 'many' },
        ...pngs.map((png, i) => ({ name: 'file', value: png, filename: `f${i}.png`, contentType: 'image/png' })),
      ]);
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { samples: { filename: string; status: number; sample?: SampleJson }[] };
      assert.equal(body.samples.length, 3);
      assert.deepEqual(
        body.samples.map((r) => r.filename),
        ['f0.png', 'f1.png', 'f2.png'],
      );
      body.samples.forEach((result, i) => {
        assert.equal(result.status, 201);
        assert.ok(result.sample);
        assertSampleShape(result.sample, { dataset: 'add-form-3', category: 'many', bytes: pngs[i] });
      });
      assert.equal(new Set(body.samples.map((r) => r.sample!.id)).size, 3);
      const dataset = await api.dataset('add-form-3');
      assert.equal(dataset.sampleCount, 3);
      assert.equal(dataset.revision, 3);
      assert.deepEqual(
        body.samples.map((r) => r.sample!.revision).sort(),
        [1, 2, 3],
      );
    });

    test('a form with one good file and one not-an-image → per-file statuses 201 and 415; only the good one is stored', async () => {
      await api.createDataset('add-form-mixed');
      const png = await makePng(8, 8, 3, 13);
      const res = await api.postForm('add-form-mixed', [
        { name: 'category', value: 'mixed' },
        { name: 'file', value: png, filename: 'good.png', contentType: 'image/png' },
        { name: 'file', value: 'hello, I am text', filename: 'bad.txt', contentType: 'text/plain' },
      ]);
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { samples: { filename: string; status: number; sample?: SampleJson; error?: { code: string; message: string } }[] };
      assert.equal(body.samples.length, 2);
      const good = body.samples.find((r) => r.filename === 'good.png');
      const bad = body.samples.find((r) => r.filename === 'bad.txt');
      assert.ok(good && bad);
      assert.equal(good.status, 201);
      assert.equal(good.sample?.sha256, sha256(png));
      assert.equal(bad.status, 415);
      assert.equal(bad.sample, undefined);
      assert.equal(bad.error?.code, 'SENSORY_ERR_NOT_AN_IMAGE');
      const dataset = await api.dataset('add-form-mixed');
      assert.equal(dataset.sampleCount, 1);
      assert.equal(dataset.revision, 1);
    });

    test('a form with a duplicate among its files: the repeat is 200 duplicate, stored once', async () => {
      await api.createDataset('add-form-dup');
      const png = await makePng(8, 8, 3, 14);
      const res = await api.postForm('add-form-dup', [
        { name: 'category', value: 'd' },
        { name: 'file', value: png, filename: 'one.png', contentType: 'image/png' },
        { name: 'file', value: png, filename: 'two.png', contentType: 'image/png' },
      ]);
      assert.equal(res.statusCode, 201, res.body);
      const results = res.json().samples as { filename: string; status: number; sample: SampleJson }[];
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 201]);
      assert.equal(results[0].sample.id, results[1].sample.id);
      assert.equal(results.find((r) => r.status === 200)!.sample.duplicate, true);
      const dataset = await api.dataset('add-form-dup');
      assert.equal(dataset.sampleCount, 1);
      assert.equal(dataset.revision, 1);
    });

    test('a form of files that are all already stored → 200, every file a duplicate', async () => {
      await api.createDataset('add-form-alldup');
      const pngs = await Promise.all([15, 16].map((seed) => makePng(8, 8, 3, seed)));
      for (const png of pngs) await api.add('add-form-alldup', 'x', png);
      const res = await api.postForm('add-form-alldup', [
        { name: 'category', value: 'x' },
        ...pngs.map((png, i) => ({ name: 'file', value: png, filename: `p${i}.png`, contentType: 'image/png' })),
      ]);
      assert.equal(res.statusCode, 200, res.body);
      for (const result of res.json().samples) {
        assert.equal(result.status, 200);
        assert.equal(result.sample.duplicate, true);
      }
      assert.equal((await api.dataset('add-form-alldup')).revision, 2);
    });

    test('the same bytes again in the same category → 200 with the existing sample, duplicate: true, revision unchanged', async () => {
      await api.createDataset('dup');
      const png = await makePng(8, 8, 3, 17);
      const first = await api.add('dup', 'cat', png);
      const before = await api.state('dup');
      // By every upload form.
      const again = [
        await api.postJson('dup', { category: 'cat', data: png.toString('base64') }),
        await api.postRaw('dup', png, 'image/png', 'cat'),
        await api.postForm('dup', [
          { name: 'category', value: 'cat' },
          { name: 'file', value: png, filename: 'again.png', contentType: 'image/png' },
        ]),
      ];
      for (const res of again) {
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as SampleJson;
        assert.equal(body.duplicate, true);
        assert.equal(body.id, first.id);
        assert.equal(body.revision, first.revision);
        assert.equal(body.sha256, first.sha256);
        assert.equal(body.category, 'cat');
      }
      await api.assertUnchanged('dup', before);
    });

    test('the same bytes with another category → 409 SENSORY_ERR_CATEGORY_CONFLICT, nothing changes', async () => {
      await api.createDataset('conflict');
      const png = await makePng(8, 8, 3, 18);
      const first = await api.add('conflict', 'cat', png);
      const before = await api.state('conflict');
      const body = assertError(await api.postJson('conflict', { category: 'dog', data: png.toString('base64') }), 409, 'SENSORY_ERR_CATEGORY_CONFLICT');
      assert.match(body.error.message, /cat/);
      assertError(await api.postRaw('conflict', png, 'image/png', 'dog'), 409, 'SENSORY_ERR_CATEGORY_CONFLICT');
      assertError(
        await api.postForm('conflict', [
          { name: 'category', value: 'dog' },
          { name: 'file', value: png, filename: 'x.png', contentType: 'image/png' },
        ]),
        409,
        'SENSORY_ERR_CATEGORY_CONFLICT',
      );
      await api.assertUnchanged('conflict', before);
      const categories = (await api.dataset('conflict')).categories;
      assert.deepEqual(categories, [{ name: 'cat', index: 0, count: 1 }], 'the refused category is not created');
      const still = (await api.getSample('conflict', first.id)).json();
      assert.equal(still.category, 'cat');
    });

    test('the same bytes in two datasets are two independent samples', async () => {
      await api.createDataset('twin-a');
      await api.createDataset('twin-b');
      const png = await makePng(8, 8, 3, 19);
      const a = await api.add('twin-a', 'one', png);
      const b = await api.add('twin-b', 'two', png);
      assert.equal(a.sha256, b.sha256);
      assert.equal(a.dataset, 'twin-a');
      assert.equal(b.dataset, 'twin-b');
      assert.equal(b.category, 'two');
    });

    test('re-adding the bytes of a deleted sample makes a new sample', async () => {
      await api.createDataset('readd');
      const png = await makePng(8, 8, 3, 20);
      const first = await api.add('readd', 'cat', png);
      assert.equal((await api.remove('readd', first.id)).statusCode, 200);
      const res = await api.postJson('readd', { category: 'dog', data: png.toString('base64') });
      assert.equal(res.statusCode, 201, res.body);
      assert.notEqual(res.json().id, first.id);
      assert.equal(res.json().category, 'dog');
      const dataset = await api.dataset('readd');
      assert.equal(dataset.sampleCount, 1);
      assert.equal(dataset.revision, 3);
    });

    test('concurrent uploads of different samples all land, with distinct ids and revisions', async () => {
      await api.createDataset('concurrent');
      const pngs = await Promise.all(Array.from({ length: 12 }, (_, i) => makePng(8, 8, 3, 100 + i)));
      const replies = await Promise.all(pngs.map((png, i) => api.postJson('concurrent', { category: `c${i % 3}`, data: png.toString('base64') })));
      for (const res of replies) assert.equal(res.statusCode, 201, res.body);
      const samples = replies.map((res) => res.json() as SampleJson);
      assert.equal(new Set(samples.map((s) => s.id)).size, 12);
      assert.deepEqual(
        samples.map((s) => s.revision).sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      const dataset = await api.dataset('concurrent');
      assert.equal(dataset.sampleCount, 12);
      assert.equal(dataset.revision, 12);
    });

    test('concurrent uploads of the same bytes store one sample', async () => {
      await api.createDataset('concurrent-dup');
      const png = await makePng(8, 8, 3, 21);
      const replies = await Promise.all(Array.from({ length: 6 }, () => api.postJson('concurrent-dup', { category: 'same', data: png.toString('base64') })));
      const statuses = replies.map((res) => res.statusCode).sort();
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 201]);
      assert.equal(new Set(replies.map((res) => res.json().id)).size, 1);
      const dataset = await api.dataset('concurrent-dup');
      assert.equal(dataset.sampleCount, 1);
      assert.equal(dataset.revision, 1);
    });
  });

  describe('listing', () => {
    const all: SampleJson[] = [];

    before(async () => {
      await api.createDataset('paged');
      for (let i = 0; i < 23; i++) all.push(await api.add('paged', ['red', 'green', 'blue'][i % 3], await makePng(8, 8, 3, 200 + i)));
    });

    test('without paging parameters: every sample, in id order, no nextCursor', async () => {
      const page = await api.list('paged');
      assert.deepEqual(
        page.samples.map((s) => s.id),
        all.map((s) => s.id),
      );
      assert.equal(page.nextCursor, undefined);
      assert.deepEqual(page.samples[0], all[0]);
    });

    for (const limit of [1, 5, 7, 22, 23, 24, 1000]) {
      test(`limit ${limit} with the cursor pages through every sample exactly once`, async () => {
        const seen: number[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await api.list('paged', `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          pages++;
          assert.ok(page.samples.length <= limit);
          if (page.nextCursor) assert.equal(page.samples.length, limit, 'only the last page is short');
          seen.push(...page.samples.map((s) => s.id));
          cursor = page.nextCursor;
          assert.ok(pages <= 30, 'paging ends');
        } while (cursor);
        assert.deepEqual(
          seen,
          all.map((s) => s.id),
        );
        assert.equal(pages, Math.max(1, Math.ceil(all.length / limit)));
      });
    }

    test('a cursor keeps working after the samples before it are deleted and others are added', async () => {
      await api.createDataset('paged-live');
      const samples: SampleJson[] = [];
      for (let i = 0; i < 6; i++) samples.push(await api.add('paged-live', 'x', await makePng(8, 8, 3, 300 + i)));
      const first = await api.list('paged-live', '?limit=3');
      assert.ok(first.nextCursor);
      assert.equal((await api.remove('paged-live', samples[0].id)).statusCode, 200);
      assert.equal((await api.remove('paged-live', samples[2].id)).statusCode, 200);
      const added = await api.add('paged-live', 'x', await makePng(8, 8, 3, 306));
      const rest = await api.list('paged-live', `?limit=10&cursor=${encodeURIComponent(first.nextCursor)}`);
      assert.deepEqual(
        rest.samples.map((s) => s.id),
        [samples[3].id, samples[4].id, samples[5].id, added.id],
      );
    });

    test('filter by category', async () => {
      for (const category of ['red', 'green', 'blue']) {
        const listed = await api.listAll('paged', `?category=${category}&limit=2`);
        assert.deepEqual(
          listed.map((s) => s.id),
          all.filter((s) => s.category === category).map((s) => s.id),
        );
        assert.ok(listed.every((s) => s.category === category));
      }
    });

    test('filter by an unknown (valid) category → an empty page', async () => {
      assert.deepEqual(await api.list('paged', '?category=purple'), { samples: [] });
    });

    test('filter by an invalid category name → 400 SENSORY_ERR_INVALID_NAME', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/paged/samples?category=-x', headers: t.auth('read') });
      assertError(res, 400, 'SENSORY_ERR_INVALID_NAME');
    });

    test('filter by split with testPercent 50: every listed sample is in the split asked for', async () => {
      await api.createDataset('split50', { testPercent: 50 });
      const added: SampleJson[] = [];
      for (let i = 0; i < 30; i++) added.push(await api.add('split50', i % 2 ? 'odd' : 'even', await makePng(8, 8, 3, 400 + i)));
      const train = await api.listAll('split50', '?split=train&limit=4');
      const test_ = await api.listAll('split50', '?split=test&limit=4');
      const everything = await api.listAll('split50', '?split=all&limit=4');
      assert.ok(train.length > 0 && test_.length > 0, `both splits have samples (${train.length} train, ${test_.length} test)`);
      assert.ok(train.every((s) => s.split === 'train'));
      assert.ok(test_.every((s) => s.split === 'test'));
      assert.equal(train.length + test_.length, 30);
      assert.deepEqual(
        [...train, ...test_].map((s) => s.id).sort((a, b) => a - b),
        added.map((s) => s.id),
      );
      assert.deepEqual(
        everything.map((s) => s.id),
        added.map((s) => s.id),
      );
      // The split of each sample is the one it was given when added, and the one its GET reports.
      const byId = new Map(added.map((s) => [s.id, s.split]));
      for (const s of everything) assert.equal(s.split, byId.get(s.id));
      for (const s of test_.slice(0, 3)) assert.equal((await api.getSample('split50', s.id)).json().split, 'test');
      // Category and split filters combine.
      const oddTest = await api.listAll('split50', '?split=test&category=odd');
      assert.deepEqual(
        oddTest.map((s) => s.id),
        test_.filter((s) => s.category === 'odd').map((s) => s.id),
      );
    });

    test('with testPercent 0, split=test is empty and split=train is everything', async () => {
      assert.deepEqual(await api.list('paged', '?split=test'), { samples: [] });
      assert.equal((await api.listAll('paged', '?split=train')).length, all.length);
    });

    test('an empty dataset lists no samples', async () => {
      await api.createDataset('list-empty');
      assert.deepEqual(await api.list('list-empty'), { samples: [] });
    });

    const badQueries: [string, string][] = [
      ['a cursor this service never gave out', '?cursor=not-a-cursor'],
      ['a cursor of base64 garbage', `?cursor=${Buffer.from('x12').toString('base64url')}`],
      ['a cursor with characters outside base64url', '?cursor=%21%21%21'],
      ['an over-long cursor', `?cursor=${'A'.repeat(201)}`],
      ['limit 0', '?limit=0'],
      ['limit 1001', '?limit=1001'],
      ['limit -1', '?limit=-1'],
      ['limit 2.5', '?limit=2.5'],
      ['limit abc', '?limit=abc'],
      ['split sideways', '?split=sideways'],
      ['an unknown query parameter', '?colour=red'],
    ];
    for (const [label, query] of badQueries) {
      test(`${label} → 400`, async () => {
        const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/paged/samples${query}`, headers: t.auth('read') });
        assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
      });
    }

    test('an unknown dataset → 404 SENSORY_ERR_DATASET_NOT_FOUND', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/nowhere/samples', headers: t.auth('read') });
      assertError(res, 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });
  });

  describe('one sample and its content', () => {
    test('GET one returns the sample as it was added', async () => {
      await api.createDataset('one');
      const png = await makePng(8, 8, 3, 500);
      const added = await api.add('one', 'cat', png);
      const res = await api.getSample('one', added.id);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), added);
    });

    test('GET content returns the exact original bytes with their Content-Type', async () => {
      await api.createDataset('content', { width: 4, height: 4, channels: 1 });
      const png = await makePng(20, 10, 3, 501);
      const jpeg = await sharp(await makePng(9, 9, 3, 502)).jpeg({ quality: 80 }).toBuffer();
      const webp = await sharp(await makePng(9, 9, 3, 503)).webp().toBuffer();
      const gif = await sharp(await makePng(9, 9, 3, 504)).gif().toBuffer();
      const tiff = await sharp(await makePng(9, 9, 3, 505)).tiff().toBuffer();
      for (const [bytes, type] of [
        [png, 'image/png'],
        [jpeg, 'image/jpeg'],
        [webp, 'image/webp'],
        [gif, 'image/gif'],
        [tiff, 'image/tiff'],
      ] as const) {
        const added = await api.add('content', 'any', bytes);
        assert.equal(added.mediaType, type);
        const res = await api.content('content', added.id);
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(String(res.headers['content-type']).split(';')[0], type);
        assert.ok(res.rawPayload.equals(bytes), `${type}: the original bytes, not the resized pixels`);
        assert.equal(Number(res.headers['content-length']), bytes.length);
      }
    });

    test('a sample id of another dataset → 404 SENSORY_ERR_SAMPLE_NOT_FOUND', async () => {
      await api.createDataset('mine');
      await api.createDataset('theirs');
      const theirs = await api.add('theirs', 'x', await makePng(8, 8, 3, 506));
      assertError(await api.getSample('mine', theirs.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.content('mine', theirs.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.patch('mine', theirs.id, { category: 'y' }), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.remove('mine', theirs.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assert.equal((await api.getSample('theirs', theirs.id)).json().category, 'x');
    });

    test('an unknown sample id → 404 SENSORY_ERR_SAMPLE_NOT_FOUND on GET, content, PATCH and DELETE', async () => {
      await api.createDataset('unknown-id');
      const before = await api.state('unknown-id');
      assertError(await api.getSample('unknown-id', 999999), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.content('unknown-id', 999999), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.patch('unknown-id', 999999, { category: 'y' }), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.remove('unknown-id', 999999), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      await api.assertUnchanged('unknown-id', before);
      assert.deepEqual((await api.dataset('unknown-id')).categories, [], 'a PATCH of no sample creates no category');
    });

    test('an unknown dataset → 404 SENSORY_ERR_DATASET_NOT_FOUND on every sample route', async () => {
      const png = await makePng(8, 8, 3, 507);
      assertError(await api.getSample('ghost', 1), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(await api.content('ghost', 1), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(await api.patch('ghost', 1, { category: 'y' }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(await api.remove('ghost', 1), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(await api.postJson('ghost', { category: 'a', data: png.toString('base64') }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(await api.postRaw('ghost', png, 'image/png', 'a'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      assertError(
        await api.postForm('ghost', [
          { name: 'category', value: 'a' },
          { name: 'file', value: png, filename: 'a.png', contentType: 'image/png' },
        ]),
        404,
        'SENSORY_ERR_DATASET_NOT_FOUND',
      );
      assertError(
        await api.postForm('ghost', [
          { name: 'category', value: 'a' },
          { name: 'file', value: png, filename: 'a.png', contentType: 'image/png' },
          { name: 'file', value: await makePng(8, 8, 3, 508), filename: 'b.png', contentType: 'image/png' },
        ]),
        404,
        'SENSORY_ERR_DATASET_NOT_FOUND',
      );
      assert.deepEqual(blobFiles(t).filter((f) => f.endsWith(sha256(png))), [], 'no bytes stored for a missing dataset');
    });

    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      test(`sample id ${id} → 400 SENSORY_ERR_BAD_REQUEST`, async () => {
        const name = 'paged';
        assertError(await api.getSample(name, id), 400, 'SENSORY_ERR_BAD_REQUEST');
        assertError(await api.content(name, id), 400, 'SENSORY_ERR_BAD_REQUEST');
        assertError(await api.patch(name, id, { category: 'x' }), 400, 'SENSORY_ERR_BAD_REQUEST');
        assertError(await api.remove(name, id), 400, 'SENSORY_ERR_BAD_REQUEST');
      });
    }
  });

  describe('relabel', () => {
    test('PATCH to a new category: revision +1, the new category gets the next index', async () => {
      await api.createDataset('relabel');
      const a = await api.add('relabel', 'cat', await makePng(8, 8, 3, 600));
      const b = await api.add('relabel', 'dog', await makePng(8, 8, 3, 601));
      assert.equal(a.categoryIndex, 0);
      assert.equal(b.categoryIndex, 1);
      const before = await api.dataset('relabel');
      assert.equal(before.revision, 2);
      const res = await api.patch('relabel', a.id, { category: 'fox' });
      assert.equal(res.statusCode, 200, res.body);
      const relabelled = res.json() as SampleJson;
      assert.equal(relabelled.id, a.id);
      assert.equal(relabelled.category, 'fox');
      assert.equal(relabelled.categoryIndex, 2);
      assert.equal(relabelled.sha256, a.sha256);
      const after = await api.dataset('relabel');
      assert.equal(after.revision, 3);
      assert.equal(after.sampleCount, 2);
      assert.deepEqual(after.categories, [
        { name: 'cat', index: 0, count: 0 },
        { name: 'dog', index: 1, count: 1 },
        { name: 'fox', index: 2, count: 1 },
      ]);
      const got = (await api.getSample('relabel', a.id)).json();
      assert.equal(got.category, 'fox');
      assert.equal(got.categoryIndex, 2);
      assert.deepEqual(
        (await api.listAll('relabel', '?category=fox')).map((s) => s.id),
        [a.id],
      );
      assert.deepEqual(await api.list('relabel', '?category=cat'), { samples: [] });
    });

    test('PATCH to an existing category reuses its index', async () => {
      await api.createDataset('relabel-existing');
      const a = await api.add('relabel-existing', 'cat', await makePng(8, 8, 3, 610));
      await api.add('relabel-existing', 'dog', await makePng(8, 8, 3, 611));
      const res = await api.patch('relabel-existing', a.id, { category: 'dog' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().categoryIndex, 1);
      assert.equal((await api.dataset('relabel-existing')).revision, 3);
    });

    test('PATCH to the category it already has: 200, revision unchanged', async () => {
      await api.createDataset('relabel-same');
      const a = await api.add('relabel-same', 'cat', await makePng(8, 8, 3, 620));
      const before = await api.state('relabel-same');
      const res = await api.patch('relabel-same', a.id, { category: 'cat' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().category, 'cat');
      assert.equal(res.json().categoryIndex, 0);
      await api.assertUnchanged('relabel-same', before);
    });

    test('after a relabel, the same bytes are a duplicate in the new category and a conflict in the old one', async () => {
      await api.createDataset('relabel-dup');
      const png = await makePng(8, 8, 3, 630);
      const a = await api.add('relabel-dup', 'cat', png);
      assert.equal((await api.patch('relabel-dup', a.id, { category: 'dog' })).statusCode, 200);
      const dup = await api.postJson('relabel-dup', { category: 'dog', data: png.toString('base64') });
      assert.equal(dup.statusCode, 200, dup.body);
      assert.equal(dup.json().id, a.id);
      assert.equal(dup.json().duplicate, true);
      assertError(await api.postJson('relabel-dup', { category: 'cat', data: png.toString('base64') }), 409, 'SENSORY_ERR_CATEGORY_CONFLICT');
    });

    const badBodies: [string, unknown, string][] = [
      ['an invalid category name', { category: '-bad' }, 'SENSORY_ERR_INVALID_NAME'],
      ['a category with a slash', { category: 'a/b' }, 'SENSORY_ERR_INVALID_NAME'],
      ['a category of 65 characters', { category: 'c'.repeat(65) }, 'SENSORY_ERR_INVALID_NAME'],
      ['an empty category', { category: '' }, 'SENSORY_ERR_INVALID_NAME'],
      ['no category', {}, 'SENSORY_ERR_BAD_REQUEST'],
      ['a numeric category', { category: 3 }, 'SENSORY_ERR_BAD_REQUEST'],
      ['an unknown field', { category: 'ok', colour: 'red' }, 'SENSORY_ERR_BAD_REQUEST'],
    ];
    for (const [label, payload, code] of badBodies) {
      test(`PATCH with ${label} → 400, nothing changes`, async () => {
        const name = `relabel-bad-${badBodies.findIndex((b) => b[0] === label)}`;
        await api.createDataset(name);
        const a = await api.add(name, 'cat', await makePng(8, 8, 3, 640));
        const before = await api.state(name);
        assertError(await api.patch(name, a.id, payload), 400, code);
        await api.assertUnchanged(name, before);
        assert.equal((await api.getSample(name, a.id)).json().category, 'cat');
        assert.equal((await api.dataset(name)).categories.length, 1);
      });
    }

    test('PATCH with a body that is not JSON → 400', async () => {
      await api.createDataset('relabel-notjson');
      const a = await api.add('relabel-notjson', 'cat', await makePng(8, 8, 3, 650));
      const res = await t.app.inject({
        method: 'PATCH',
        url: `/v1/datasets/relabel-notjson/samples/${a.id}`,
        headers: { ...t.auth('write'), 'content-type': 'application/json' },
        payload: '{category:',
      });
      assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    test('a deleted sample cannot be relabelled', async () => {
      await api.createDataset('relabel-deleted');
      const a = await api.add('relabel-deleted', 'cat', await makePng(8, 8, 3, 660));
      assert.equal((await api.remove('relabel-deleted', a.id)).statusCode, 200);
      const before = await api.state('relabel-deleted');
      assertError(await api.patch('relabel-deleted', a.id, { category: 'dog' }), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      await api.assertUnchanged('relabel-deleted', before);
    });
  });

  describe('delete', () => {
    test('an admin deletes a sample: 200, then 404 on GET and content, revision +1, sampleCount -1', async () => {
      await api.createDataset('del');
      const a = await api.add('del', 'cat', await makePng(8, 8, 3, 700));
      const b = await api.add('del', 'cat', await makePng(8, 8, 3, 701));
      const before = await api.dataset('del');
      assert.deepEqual([before.revision, before.sampleCount], [2, 2]);
      const res = await api.remove('del', a.id);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().id, a.id);
      assertError(await api.getSample('del', a.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assertError(await api.content('del', a.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      const after = await api.dataset('del');
      assert.equal(after.revision, 3);
      assert.equal(after.sampleCount, 1);
      assert.deepEqual(after.categories, [{ name: 'cat', index: 0, count: 1 }]);
      assert.deepEqual(
        (await api.listAll('del')).map((s) => s.id),
        [b.id],
      );
      // Twice → 404, and nothing changes.
      assertError(await api.remove('del', a.id), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
      assert.equal((await api.dataset('del')).revision, 3);
    });

    test('category indices stay stable across relabels and deletes, and are never reused', async () => {
      await api.createDataset('stable');
      const cats = [await api.add('stable', 'zero', await makePng(8, 8, 3, 710)), await api.add('stable', 'zero', await makePng(8, 8, 3, 711))];
      const one = await api.add('stable', 'one', await makePng(8, 8, 3, 712));
      const relabelled = await api.add('stable', 'two', await makePng(8, 8, 3, 713));
      assert.deepEqual(
        [cats[0].categoryIndex, cats[1].categoryIndex, one.categoryIndex, relabelled.categoryIndex],
        [0, 0, 1, 2],
      );
      // Empty category 0: delete one sample, relabel the other away.
      assert.equal((await api.remove('stable', cats[0].id)).statusCode, 200);
      assert.equal((await api.patch('stable', cats[1].id, { category: 'one' })).json().categoryIndex, 1);
      // Empty category 2 by deleting its only sample.
      assert.equal((await api.remove('stable', relabelled.id)).statusCode, 200);
      const newcomer = await api.add('stable', 'three', await makePng(8, 8, 3, 714));
      assert.equal(newcomer.categoryIndex, 3, 'a new category gets a new index, never 0 or 2');
      const viaPatch = await api.patch('stable', one.id, { category: 'four' });
      assert.equal(viaPatch.json().categoryIndex, 4);
      // The emptied categories keep their indices when they come back.
      assert.equal((await api.add('stable', 'zero', await makePng(8, 8, 3, 715))).categoryIndex, 0);
      assert.equal((await api.add('stable', 'two', await makePng(8, 8, 3, 716))).categoryIndex, 2);
      const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/stable/categories', headers: t.auth('read') });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json().map, { zero: 0, one: 1, two: 2, three: 3, four: 4 });
      const counts = Object.fromEntries((res.json().categories as { name: string; count: number }[]).map((c) => [c.name, c.count]));
      assert.deepEqual(counts, { zero: 1, one: 1, two: 1, three: 1, four: 1 });
    });
  });

  describe('wrong forms (each leaves revision, sampleCount and stored bytes unchanged)', () => {
    const NAME = 'wrong';
    let baseline: Awaited<ReturnType<ReturnType<typeof client>['state']>>;
    let png: Buffer;

    before(async () => {
      await api.createDataset(NAME);
      await api.add(NAME, 'cat', await makePng(8, 8, 3, 800));
      png = await makePng(8, 8, 3, 801);
    });

    async function expectRefused(res: Reply, status: number, code: string | readonly string[]) {
      assertError(res, status, code);
      await api.assertUnchanged(NAME, baseline);
    }

    before(async () => {
      baseline = await api.state(NAME);
    });

    const text = Buffer.from('this is plainly not an image, just some text that is long enough');
    const fakePng = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>');

    test('not-an-image bytes by JSON → 415 SENSORY_ERR_NOT_AN_IMAGE', async () => {
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: text.toString('base64') }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: fakePng.toString('base64') }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: svg.toString('base64') }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
    });

    test('a truncated PNG → 415 SENSORY_ERR_NOT_AN_IMAGE', async () => {
      const truncated = png.subarray(0, Math.floor(png.length / 2));
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: truncated.toString('base64') }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
    });

    test('not-an-image bytes raw → 415 SENSORY_ERR_NOT_AN_IMAGE', async () => {
      await expectRefused(await api.postRaw(NAME, text, 'image/png', 'cat'), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
      await expectRefused(await api.postRaw(NAME, fakePng, 'image/png', 'cat'), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
      await expectRefused(await api.postRaw(NAME, svg, 'image/svg+xml', 'cat'), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
    });

    test('not-an-image bytes in a one-file form → 415 SENSORY_ERR_NOT_AN_IMAGE', async () => {
      await expectRefused(
        await api.postForm(NAME, [
          { name: 'category', value: 'cat' },
          { name: 'file', value: text, filename: 'notes.txt', contentType: 'text/plain' },
        ]),
        415,
        'SENSORY_ERR_NOT_AN_IMAGE',
      );
    });

    test('a form of several files that are all not images stores nothing', async () => {
      const res = await api.postForm(NAME, [
        { name: 'category', value: 'cat' },
        { name: 'file', value: text, filename: 'a.txt', contentType: 'text/plain' },
        { name: 'file', value: svg, filename: 'b.svg', contentType: 'image/svg+xml' },
      ]);
      assert.notEqual(res.statusCode, 201, res.body);
      assert.ok(res.statusCode === 415 || res.statusCode === 200, res.body);
      if (res.statusCode === 200) {
        for (const result of res.json().samples) {
          assert.equal(result.status, 415);
          assert.equal(result.error.code, 'SENSORY_ERR_NOT_AN_IMAGE');
        }
      }
      await api.assertUnchanged(NAME, baseline);
    });

    for (const type of ['text/plain', 'application/octet-stream', 'application/xml', 'video/mp4']) {
      test(`a ${type} body → 415`, async () => {
        await expectRefused(await api.postRaw(NAME, png, type, 'cat'), 415, ['SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', 'SENSORY_ERR_NOT_AN_IMAGE']);
        await expectRefused(await api.postRaw(NAME, 'just text', type, 'cat'), 415, ['SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', 'SENSORY_ERR_NOT_AN_IMAGE']);
      });
    }

    test('a JSON body that is not valid JSON → 400', async () => {
      await expectRefused(await api.postRaw(NAME, '{"category": "cat", "data": ', 'application/json'), 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    test('bad base64 → 400 SENSORY_ERR_BAD_REQUEST', async () => {
      for (const data of ['not base64 at all!', '@@@@', 'abc$def', `${png.toString('base64')}===`]) {
        const body = await api.postJson(NAME, { category: 'cat', data });
        await expectRefused(body, 400, 'SENSORY_ERR_BAD_REQUEST');
      }
    });

    test('empty data in JSON → 415 or 400', async () => {
      const res = await api.postJson(NAME, { category: 'cat', data: '' });
      assert.ok(res.statusCode === 415 || res.statusCode === 400, res.body);
      await expectRefused(res, res.statusCode, ['SENSORY_ERR_NOT_AN_IMAGE', 'SENSORY_ERR_BAD_REQUEST']);
    });

    test('missing category → 400 (JSON, raw, form)', async () => {
      const codes = ['SENSORY_ERR_BAD_REQUEST', 'SENSORY_ERR_INVALID_NAME'];
      await expectRefused(await api.postJson(NAME, { data: png.toString('base64') }), 400, codes);
      await expectRefused(await api.postRaw(NAME, png, 'image/png'), 400, codes);
      await expectRefused(await api.postForm(NAME, [{ name: 'file', value: png, filename: 'x.png', contentType: 'image/png' }]), 400, codes);
    });

    test('missing data in JSON → 400', async () => {
      await expectRefused(await api.postJson(NAME, { category: 'cat' }), 400, 'SENSORY_ERR_BAD_REQUEST');
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: 42 }), 400, 'SENSORY_ERR_BAD_REQUEST');
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: png.toString('base64'), extra: 1 }), 400, 'SENSORY_ERR_BAD_REQUEST');
      await expectRefused(await api.postRaw(NAME, 'null', 'application/json'), 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    for (const category of ['-bad', ' a', 'a/b', '..', '.', 'x'.repeat(65), 'a\tb', 'what?', '']) {
      test(`invalid category ${JSON.stringify(category.length > 20 ? `${category.slice(0, 8)}…(${category.length})` : category)} → 400 (JSON, raw, form)`, async () => {
        const codes = category === '' ? ['SENSORY_ERR_INVALID_NAME', 'SENSORY_ERR_BAD_REQUEST'] : ['SENSORY_ERR_INVALID_NAME'];
        const json = await api.postJson(NAME, { category, data: png.toString('base64') });
        await expectRefused(json, 400, codes);
        if (category !== '') assert.match(json.json().error.message, /category/);
        await expectRefused(await api.postRaw(NAME, png, 'image/png', category), 400, codes);
        await expectRefused(
          await api.postForm(NAME, [
            { name: 'category', value: category },
            { name: 'file', value: png, filename: 'x.png', contentType: 'image/png' },
          ]),
          400,
          codes,
        );
      });
    }

    test('an invalid category in a several-file form → 400, nothing stored', async () => {
      const other = await makePng(8, 8, 3, 802);
      await expectRefused(
        await api.postForm(NAME, [
          { name: 'category', value: '../etc' },
          { name: 'file', value: png, filename: 'a.png', contentType: 'image/png' },
          { name: 'file', value: other, filename: 'b.png', contentType: 'image/png' },
        ]),
        400,
        'SENSORY_ERR_INVALID_NAME',
      );
    });

    test('an empty raw body → 415 or 400', async () => {
      const res = await api.postRaw(NAME, Buffer.alloc(0), 'image/png', 'cat');
      assert.ok(res.statusCode === 415 || res.statusCode === 400, res.body);
      await expectRefused(res, res.statusCode, ['SENSORY_ERR_NOT_AN_IMAGE', 'SENSORY_ERR_BAD_REQUEST']);
    });

    test('an empty file part → 415 or 400', async () => {
      const res = await api.postForm(NAME, [
        { name: 'category', value: 'cat' },
        { name: 'file', value: Buffer.alloc(0), filename: 'empty.png', contentType: 'image/png' },
      ]);
      assert.ok(res.statusCode === 415 || res.statusCode === 400, res.body);
      await expectRefused(res, res.statusCode, ['SENSORY_ERR_NOT_AN_IMAGE', 'SENSORY_ERR_BAD_REQUEST']);
    });

    test('a form without a file part → 400', async () => {
      await expectRefused(await api.postForm(NAME, [{ name: 'category', value: 'cat' }]), 400, 'SENSORY_ERR_BAD_REQUEST');
      await expectRefused(
        await api.postForm(NAME, [
          { name: 'category', value: 'cat' },
          { name: 'image', value: png, filename: 'x.png', contentType: 'image/png' },
        ]),
        400,
        'SENSORY_ERR_BAD_REQUEST',
      );
    });

    test('a malformed multipart body → 400', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${NAME}/samples`,
        headers: { ...t.auth('write'), 'content-type': 'multipart/form-data; boundary=xyz' },
        payload: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
      });
      await expectRefused(res, 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    test('a multipart body cut off in the middle of a second file → 400, nothing stored', async () => {
      const form = multipart([
        { name: 'category', value: 'cat' },
        { name: 'file', value: png, filename: 'a.png', contentType: 'image/png' },
        { name: 'file', value: await makePng(8, 8, 3, 803), filename: 'b.png', contentType: 'image/png' },
      ]);
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${NAME}/samples`,
        headers: { ...t.auth('write'), 'content-type': form.contentType },
        payload: form.payload.subarray(0, form.payload.length - 100),
      });
      await expectRefused(res, 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    test('the read key uploading → 403 SENSORY_ERR_FORBIDDEN (JSON, raw, form)', async () => {
      await expectRefused(await api.postJson(NAME, { category: 'cat', data: png.toString('base64') }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await api.postRaw(NAME, png, 'image/png', 'cat', 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(
        await api.postForm(
          NAME,
          [
            { name: 'category', value: 'cat' },
            { name: 'file', value: png, filename: 'x.png', contentType: 'image/png' },
          ],
          'read',
        ),
        403,
        'SENSORY_ERR_FORBIDDEN',
      );
    });

    test('no key or an unknown key uploading → 401 SENSORY_ERR_UNAUTHORIZED', async () => {
      await expectRefused(
        await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples`, payload: { category: 'cat', data: png.toString('base64') } }),
        401,
        'SENSORY_ERR_UNAUTHORIZED',
      );
      await expectRefused(
        await t.app.inject({
          method: 'POST',
          url: `/v1/datasets/${NAME}/samples?category=cat`,
          headers: { 'content-type': 'image/png', 'api-access-key': 'wrong' },
          payload: png,
        }),
        401,
        'SENSORY_ERR_UNAUTHORIZED',
      );
    });

    test('the write key uploads with Authorization: Bearer', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/bearer-up/samples?category=cat`,
        headers: { 'content-type': 'image/png', authorization: `Bearer ${KEYS.write}` },
        payload: png,
      });
      // bearer-up does not exist: the key is accepted, the dataset is not found.
      assertError(res, 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });

    test('the read key relabelling → 403; the write key (or read+write) deleting → 403; read routes need read', async () => {
      const [sample] = (await api.list(NAME)).samples;
      await expectRefused(await api.patch(NAME, sample.id, { category: 'dog' }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await api.remove(NAME, sample.id, 'write'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await api.remove(NAME, sample.id, 'readWrite'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await api.remove(NAME, sample.id, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await api.getSample(NAME, sample.id, 'write'), 403, 'SENSORY_ERR_FORBIDDEN');
      await expectRefused(await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples` }), 401, 'SENSORY_ERR_UNAUTHORIZED');
      await expectRefused(await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/${sample.id}/content` }), 401, 'SENSORY_ERR_UNAUTHORIZED');
      assert.equal((await api.getSample(NAME, sample.id)).json().category, 'cat');
    });

    test('the sample added before the wrong forms is still intact', async () => {
      const { samples } = await api.list(NAME);
      assert.equal(samples.length, 1);
      const content = await api.content(NAME, samples[0].id);
      assert.ok(content.rawPayload.equals(await makePng(8, 8, 3, 800)));
    });
  });
});

describe('samples over SENSORY_MAX_SAMPLE_BYTES', () => {
  let t: TestApp;
  let api: ReturnType<typeof client>;
  let big: Buffer;
  let small: Buffer;
  const NAME = 'limited';

  before(async () => {
    t = await startTestApp({ SENSORY_MAX_SAMPLE_BYTES: '2000' });
    api = client(t);
    await api.createDataset(NAME, { width: 8, height: 8 });
    big = await noisePng(64, 64, 42);
    small = await makePng(8, 8, 3, 1);
    assert.ok(big.length > 2000, `the big PNG has ${big.length} bytes`);
    assert.ok(small.length <= 2000, `the small PNG has ${small.length} bytes`);
    await api.add(NAME, 'ok', small);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const TOO_LARGE = ['SENSORY_ERR_SAMPLE_TOO_LARGE', 'SENSORY_ERR_BODY_TOO_LARGE'];

  test('raw → 413, nothing stored', async () => {
    const before = await api.state(NAME);
    assertError(await api.postRaw(NAME, big, 'image/png', 'big'), 413, TOO_LARGE);
    await api.assertUnchanged(NAME, before);
  });

  test('JSON → 413 SENSORY_ERR_SAMPLE_TOO_LARGE, nothing stored', async () => {
    const before = await api.state(NAME);
    assertError(await api.postJson(NAME, { category: 'big', data: big.toString('base64') }), 413, 'SENSORY_ERR_SAMPLE_TOO_LARGE');
    await api.assertUnchanged(NAME, before);
  });

  test('a JSON body far over the limit → 413, nothing stored', async () => {
    const before = await api.state(NAME);
    const huge = await noisePng(256, 256, 7);
    assertError(await api.postJson(NAME, { category: 'big', data: huge.toString('base64') }), 413, TOO_LARGE);
    await api.assertUnchanged(NAME, before);
  });

  test('multipart → 413, nothing stored', async () => {
    const before = await api.state(NAME);
    const res = await api.postForm(NAME, [
      { name: 'category', value: 'big' },
      { name: 'file', value: big, filename: 'big.png', contentType: 'image/png' },
    ]);
    assertError(res, 413, TOO_LARGE);
    await api.assertUnchanged(NAME, before);
  });

  test('multipart with one small and one big file → per-file 201 and 413', async () => {
    const before = await api.state(NAME);
    const other = await makePng(8, 8, 3, 2);
    const res = await api.postForm(NAME, [
      { name: 'category', value: 'mixed' },
      { name: 'file', value: other, filename: 'small.png', contentType: 'image/png' },
      { name: 'file', value: big, filename: 'big.png', contentType: 'image/png' },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const results = res.json().samples as { filename: string; status: number; error?: { code: string } }[];
    assert.equal(results.find((r) => r.filename === 'small.png')?.status, 201);
    const bigResult = results.find((r) => r.filename === 'big.png');
    assert.equal(bigResult?.status, 413);
    assert.equal(bigResult?.error?.code, 'SENSORY_ERR_SAMPLE_TOO_LARGE');
    const after = await api.dataset(NAME);
    assert.equal(after.revision, before.revision + 1);
    assert.equal(after.sampleCount, before.sampleCount + 1);
  });

  test('a sample under the limit is still accepted', async () => {
    assert.equal((await api.postRaw(NAME, await makePng(8, 8, 3, 3), 'image/png', 'ok')).statusCode, 201);
  });
});
