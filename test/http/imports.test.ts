import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { pack } from 'tar-stream';
import { assertError, KEYS, makePng, removeDir, startTestApp, type InjectReply as Reply, type TestApp } from '../support/harness.js';

/** HTTP tests of POST /v1/datasets/{name}/imports (SPEC §4): a tar laid out <category>/<file>. */

interface Summary {
  imported: number;
  duplicates: number;
  rejected: { path: string; error: { code: string; message: string } }[];
}

interface TarEntry {
  readonly name: string;
  readonly data?: Buffer;
  readonly type?: 'file' | 'directory' | 'symlink';
  readonly linkname?: string;
}

async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const archive = pack();
  for (const entry of entries) {
    if (entry.type === 'directory') archive.entry({ name: entry.name, type: 'directory', mode: 0o755 });
    else if (entry.type === 'symlink') archive.entry({ name: entry.name, type: 'symlink', linkname: entry.linkname ?? 'x' });
    else archive.entry({ name: entry.name, mode: 0o644 }, entry.data ?? Buffer.alloc(0));
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function client(t: TestApp) {
  const api = {
    async createDataset(name: string, shape: { width?: number; height?: number; channels?: 1 | 3 } = {}) {
      const res = await t.app.inject({
        method: 'PUT',
        url: `/v1/datasets/${name}`,
        headers: t.auth('admin'),
        payload: { width: shape.width ?? 8, height: shape.height ?? 8, channels: shape.channels ?? 3 },
      });
      assert.equal(res.statusCode, 201, res.body);
    },
    async state(name: string) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      return { revision: body.revision as number, sampleCount: body.sampleCount as number, categories: body.categories as { name: string; index: number; count: number }[] };
    },
    post(name: string, body: Buffer | string, contentType = 'application/x-tar', kind: keyof typeof KEYS = 'write') {
      return t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${name}/imports`,
        headers: { ...t.auth(kind), 'content-type': contentType },
        payload: body,
      });
    },
    async import(name: string, body: Buffer, contentType = 'application/x-tar'): Promise<Summary> {
      const res = await api.post(name, body, contentType);
      assert.equal(res.statusCode, 200, res.body);
      const summary = res.json() as Summary;
      assert.equal(typeof summary.imported, 'number');
      assert.equal(typeof summary.duplicates, 'number');
      assert.ok(Array.isArray(summary.rejected));
      return summary;
    },
    async samples(name: string) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}/samples?limit=1000`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().samples as { id: number; category: string; sha256: string; mediaType: string; bytes: number }[];
    },
  };
  return api;
}

function byPath(rejected: Summary['rejected']) {
  return Object.fromEntries(rejected.map((r) => [r.path, r.error.code]));
}

describe('imports', () => {
  let t: TestApp;
  let api: ReturnType<typeof client>;
  const images: Record<string, Buffer> = {};

  before(async () => {
    t = await startTestApp();
    api = client(t);
    for (let i = 0; i < 12; i++) images[`p${i}`] = await makePng(8, 8, 3, 1000 + i);
    images.jpeg = await sharp(await makePng(12, 10, 3, 1100)).jpeg().toBuffer();
    images.grey = await makePng(5, 5, 1, 1101);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const goodLayout = (): TarEntry[] => [
    { name: 'cat/', type: 'directory' },
    { name: 'cat/a.png', data: images.p0 },
    { name: 'cat/b.png', data: images.p1 },
    { name: 'dog/', type: 'directory' },
    { name: 'dog/c.png', data: images.p2 },
    { name: 'dog/d.jpg', data: images.jpeg },
    { name: 'bird/e.png', data: images.grey },
  ];

  test('a tar of <category>/<file> → every image imported, categories created, bytes kept', async () => {
    await api.createDataset('imp-basic');
    const summary = await api.import('imp-basic', await tarOf(goodLayout()));
    assert.deepEqual(summary, { imported: 5, duplicates: 0, rejected: [] });
    const state = await api.state('imp-basic');
    assert.equal(state.sampleCount, 5);
    assert.equal(state.revision, 5, 'each added sample raises the revision by one');
    const counts = Object.fromEntries(state.categories.map((c) => [c.name, c.count]));
    assert.deepEqual(counts, { cat: 2, dog: 2, bird: 1 });
    assert.deepEqual(
      state.categories.map((c) => c.index).sort(),
      [0, 1, 2],
    );
    const samples = await api.samples('imp-basic');
    const bySha = new Map(samples.map((s) => [s.sha256, s]));
    for (const [key, category] of [
      ['p0', 'cat'],
      ['p1', 'cat'],
      ['p2', 'dog'],
      ['jpeg', 'dog'],
      ['grey', 'bird'],
    ] as const) {
      const sample = bySha.get(sha256(images[key]));
      assert.ok(sample, `${key} was imported`);
      assert.equal(sample.category, category);
      assert.equal(sample.bytes, images[key].length);
    }
    const jpeg = bySha.get(sha256(images.jpeg))!;
    assert.equal(jpeg.mediaType, 'image/jpeg');
    const content = await t.app.inject({ method: 'GET', url: `/v1/datasets/imp-basic/samples/${jpeg.id}/content`, headers: t.auth('read') });
    assert.equal(content.statusCode, 200);
    assert.match(String(content.headers['content-type']), /^image\/jpeg/);
    assert.ok(content.rawPayload.equals(images.jpeg));
  });

  test('the same tar again → all duplicates, nothing imported, revision unchanged', async () => {
    await api.createDataset('imp-again');
    const tar = await tarOf(goodLayout());
    assert.equal((await api.import('imp-again', tar)).imported, 5);
    const before = await api.state('imp-again');
    const again = await api.import('imp-again', tar);
    assert.deepEqual(again, { imported: 0, duplicates: 5, rejected: [] });
    assert.deepEqual(await api.state('imp-again'), before);
  });

  test('gzipped as application/gzip (and x-gzip) works the same', async () => {
    await api.createDataset('imp-gzip');
    const gz = gzipSync(await tarOf(goodLayout()));
    assert.deepEqual(await api.import('imp-gzip', gz, 'application/gzip'), { imported: 5, duplicates: 0, rejected: [] });
    assert.deepEqual(await api.import('imp-gzip', gz, 'application/x-gzip'), { imported: 0, duplicates: 5, rejected: [] });
    assert.equal((await api.state('imp-gzip')).sampleCount, 5);
  });

  test('application/tar is accepted too; ./ prefixes are ignored', async () => {
    await api.createDataset('imp-dot');
    const tar = await tarOf([
      { name: './', type: 'directory' },
      { name: './cat/', type: 'directory' },
      { name: './cat/a.png', data: images.p3 },
    ]);
    assert.deepEqual(await api.import('imp-dot', tar, 'application/tar'), { imported: 1, duplicates: 0, rejected: [] });
    assert.deepEqual(
      (await api.samples('imp-dot')).map((s) => s.category),
      ['cat'],
    );
  });

  test('an import after single uploads: what is already there counts as a duplicate', async () => {
    await api.createDataset('imp-mixed');
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/datasets/imp-mixed/samples?category=cat',
      headers: { ...t.auth('write'), 'content-type': 'image/png' },
      payload: images.p0,
    });
    assert.equal(res.statusCode, 201, res.body);
    const summary = await api.import('imp-mixed', await tarOf(goodLayout()));
    assert.deepEqual(summary, { imported: 4, duplicates: 1, rejected: [] });
    const state = await api.state('imp-mixed');
    assert.equal(state.sampleCount, 5);
    assert.equal(state.revision, 5);
  });

  test('bad entries are rejected with their path and error code while the good ones are imported', async () => {
    await api.createDataset('imp-bad');
    const tar = await tarOf([
      { name: 'cat/good1.png', data: images.p4 },
      { name: 'a/b/c.png', data: images.p5 },
      { name: 'x.png', data: images.p6 },
      { name: '-bad/y.png', data: images.p7 },
      { name: 'has:colon/z.png', data: images.p8 },
      { name: 'cat/notes.txt', data: Buffer.from('not an image at all, just words') },
      { name: 'cat/empty.png', data: Buffer.alloc(0) },
      { name: 'cat/broken.png', data: images.p9.subarray(0, 40) },
      { name: 'dog/good2.png', data: images.p10 },
    ]);
    const summary = await api.import('imp-bad', tar);
    assert.equal(summary.imported, 2);
    assert.equal(summary.duplicates, 0);
    const rejected = byPath(summary.rejected);
    assert.equal(summary.rejected.length, 7, JSON.stringify(summary.rejected));
    assert.equal(rejected['a/b/c.png'], 'SENSORY_ERR_BAD_REQUEST');
    assert.equal(rejected['x.png'], 'SENSORY_ERR_BAD_REQUEST');
    assert.equal(rejected['-bad/y.png'], 'SENSORY_ERR_INVALID_NAME');
    assert.equal(rejected['has:colon/z.png'], 'SENSORY_ERR_INVALID_NAME');
    assert.equal(rejected['cat/notes.txt'], 'SENSORY_ERR_NOT_AN_IMAGE');
    assert.equal(rejected['cat/empty.png'], 'SENSORY_ERR_NOT_AN_IMAGE');
    assert.equal(rejected['cat/broken.png'], 'SENSORY_ERR_NOT_AN_IMAGE');
    for (const r of summary.rejected) assert.ok(r.error.message.length > 0, `${r.path} has a message`);
    const state = await api.state('imp-bad');
    assert.equal(state.sampleCount, 2);
    assert.equal(state.revision, 2);
    assert.deepEqual(
      state.categories.map((c) => c.name).sort(),
      ['cat', 'dog'],
      'no category is created for a rejected entry',
    );
    const shas = new Set((await api.samples('imp-bad')).map((s) => s.sha256));
    assert.deepEqual(shas, new Set([sha256(images.p4), sha256(images.p10)]));
  });

  test('a path that tries to escape (../) is rejected, never stored', async () => {
    await api.createDataset('imp-escape');
    const tar = await tarOf([
      { name: '../evil.png', data: images.p0 },
      { name: '../../x/evil.png', data: images.p1 },
      { name: '../cat/evil.png', data: images.p2 },
      { name: 'cat/ok.png', data: images.p3 },
    ]);
    const summary = await api.import('imp-escape', tar);
    assert.equal(summary.imported, 1);
    assert.equal(summary.rejected.length, 3, JSON.stringify(summary));
    for (const r of summary.rejected) assert.match(r.error.code, /^SENSORY_ERR_(BAD_REQUEST|INVALID_NAME)$/);
    assert.deepEqual(
      (await api.state('imp-escape')).categories.map((c) => c.name),
      ['cat'],
    );
  });

  test('directories are structure; a symlink is rejected with its own error, never followed', async () => {
    await api.createDataset('imp-links');
    const tar = await tarOf([
      { name: 'cat/', type: 'directory' },
      { name: 'cat/sub/', type: 'directory' },
      { name: 'cat/link.png', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'cat/real.png', data: images.p11 },
    ]);
    const summary = await api.import('imp-links', tar);
    assert.equal(summary.imported, 1);
    assert.equal(summary.duplicates, 0);
    assert.deepEqual(summary.rejected.map((r) => [r.path, r.error.code]), [['cat/link.png', 'SENSORY_ERR_BAD_REQUEST']]);
    assert.match(summary.rejected[0].error.message, /symlink, not a file/);
    assert.equal((await api.state('imp-links')).sampleCount, 1);
  });

  test('an absolute path is rejected, not stored under a category named after its first folder', async () => {
    await api.createDataset('imp-abs');
    const summary = await api.import('imp-abs', await tarOf([{ name: '/abs/x.png', data: images.p0 }, { name: 'cat/ok.png', data: images.p1 }]));
    assert.equal(summary.imported, 1);
    assert.deepEqual(summary.rejected.map((r) => [r.path, r.error.code]), [['/abs/x.png', 'SENSORY_ERR_BAD_REQUEST']]);
    assert.match(summary.rejected[0].error.message, /absolute/);
    assert.deepEqual((await api.state('imp-abs')).categories.map((c) => c.name), ['cat']);
  });

  test('the same bytes twice in one tar and category → one imported, one duplicate', async () => {
    await api.createDataset('imp-dup-inside');
    const tar = await tarOf([
      { name: 'cat/one.png', data: images.p0 },
      { name: 'cat/two.png', data: images.p0 },
    ]);
    assert.deepEqual(await api.import('imp-dup-inside', tar), { imported: 1, duplicates: 1, rejected: [] });
    const state = await api.state('imp-dup-inside');
    assert.equal(state.sampleCount, 1);
    assert.equal(state.revision, 1);
  });

  test('the same bytes under two categories in one tar → one imported, the other rejected as a category conflict', async () => {
    await api.createDataset('imp-conflict-inside');
    const tar = await tarOf([
      { name: 'cat/one.png', data: images.p1 },
      { name: 'dog/one.png', data: images.p1 },
    ]);
    const summary = await api.import('imp-conflict-inside', tar);
    assert.equal(summary.imported, 1);
    assert.equal(summary.duplicates, 0);
    assert.equal(summary.rejected.length, 1);
    assert.equal(summary.rejected[0].error.code, 'SENSORY_ERR_CATEGORY_CONFLICT');
    assert.ok(['cat/one.png', 'dog/one.png'].includes(summary.rejected[0].path));
    const samples = await api.samples('imp-conflict-inside');
    assert.equal(samples.length, 1);
    assert.equal(`${samples[0].category}/one.png` === summary.rejected[0].path, false, 'the stored one is not the rejected one');
  });

  test('bytes already stored under another category → rejected as a category conflict, the stored sample unchanged', async () => {
    await api.createDataset('imp-conflict');
    await api.import('imp-conflict', await tarOf([{ name: 'cat/a.png', data: images.p2 }]));
    const before = await api.state('imp-conflict');
    const summary = await api.import('imp-conflict', await tarOf([{ name: 'dog/a.png', data: images.p2 }]));
    assert.deepEqual(summary.imported, 0);
    assert.deepEqual(byPath(summary.rejected), { 'dog/a.png': 'SENSORY_ERR_CATEGORY_CONFLICT' });
    assert.deepEqual(await api.state('imp-conflict'), before);
  });

  test('an empty archive → nothing imported', async () => {
    await api.createDataset('imp-empty');
    assert.deepEqual(await api.import('imp-empty', await tarOf([])), { imported: 0, duplicates: 0, rejected: [] });
    assert.equal((await api.state('imp-empty')).revision, 0);
  });

  test('a larger import (40 files, 4 categories) lands completely', async () => {
    await api.createDataset('imp-many');
    const entries: TarEntry[] = [];
    const shas = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const png = await makePng(8, 8, 3, 2000 + i);
      shas.add(sha256(png));
      entries.push({ name: `c${i % 4}/img-${i}.png`, data: png });
    }
    assert.deepEqual(await api.import('imp-many', await tarOf(entries)), { imported: 40, duplicates: 0, rejected: [] });
    const state = await api.state('imp-many');
    assert.equal(state.sampleCount, 40);
    assert.equal(state.revision, 40);
    assert.deepEqual(new Set((await api.samples('imp-many')).map((s) => s.sha256)), shas);
    for (const c of state.categories) assert.equal(c.count, 10);
  });

  describe('a broken stream → 400 and nothing stored', () => {
    let seeded: Awaited<ReturnType<ReturnType<typeof client>['state']>>;
    const NAME = 'imp-broken';

    before(async () => {
      await api.createDataset(NAME);
      await api.import(NAME, await tarOf([{ name: 'keep/k.png', data: images.p11 }]));
      seeded = await api.state(NAME);
    });

    async function expectRefused(res: Reply, status = 400, code: string | readonly string[] = 'SENSORY_ERR_BAD_REQUEST') {
      assertError(res, status, code);
      assert.deepEqual(await api.state(NAME), seeded, 'revision, count and categories unchanged');
      assert.equal((await api.samples(NAME)).length, 1);
    }

    // Several good entries, so that some are fully read before the stream breaks.
    const many = (): TarEntry[] => Array.from({ length: 6 }, (_, i) => ({ name: `cut${i % 2}/f${i}.png`, data: images[`p${i}`] }));

    test('a tar cut off in the middle of an entry', async () => {
      const tar = await tarOf(many());
      // Each entry is a 512-byte header plus its data rounded up to 512: cut well inside the last entry's data.
      await expectRefused(await api.post(NAME, tar.subarray(0, tar.length - 1024 - 300)));
    });

    test('a tar cut off in the middle of a header', async () => {
      const tar = await tarOf(many());
      const firstEntry = 512 + Math.ceil(images.p0.length / 512) * 512;
      await expectRefused(await api.post(NAME, tar.subarray(0, firstEntry + 200)));
    });

    test('a tar whose header checksum is corrupt', async () => {
      const tar = Buffer.from(await tarOf(many()));
      const second = 512 + Math.ceil(images.p0.length / 512) * 512;
      tar[second + 10] ^= 0xff; // inside the second entry's name
      await expectRefused(await api.post(NAME, tar));
    });

    test('bytes that are not a tar at all', async () => {
      const garbage = Buffer.alloc(4096);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 17) % 251;
      await expectRefused(await api.post(NAME, garbage));
      await expectRefused(await api.post(NAME, images.p0));
    });

    test('a gzip stream cut off in the middle', async () => {
      const gz = gzipSync(await tarOf(many()));
      await expectRefused(await api.post(NAME, gz.subarray(0, Math.floor(gz.length * 0.7)), 'application/gzip'));
    });

    test('a corrupt gzip stream', async () => {
      const gz = Buffer.from(gzipSync(await tarOf(many())));
      for (let i = 20; i < 60; i++) gz[i] ^= 0x5a;
      await expectRefused(await api.post(NAME, gz, 'application/gzip'));
    });

    test('a plain tar sent as application/gzip', async () => {
      await expectRefused(await api.post(NAME, await tarOf(many()), 'application/gzip'));
    });

    test('after all that, the same entries in a good tar import normally', async () => {
      const summary = await api.import(NAME, await tarOf(many()));
      assert.deepEqual(summary, { imported: 6, duplicates: 0, rejected: [] });
      const state = await api.state(NAME);
      assert.equal(state.revision, seeded.revision + 6);
      assert.equal(state.sampleCount, seeded.sampleCount + 6);
    });
  });

  describe('refused requests', () => {
    const NAME = 'imp-refused';
    let tar: Buffer;

    before(async () => {
      await api.createDataset(NAME);
      tar = await tarOf([{ name: 'cat/a.png', data: images.p0 }]);
    });

    async function unchanged() {
      const state = await api.state(NAME);
      assert.equal(state.revision, 0);
      assert.equal(state.sampleCount, 0);
    }

    for (const type of ['application/json', 'image/png', 'text/plain', 'application/octet-stream', 'application/zip']) {
      test(`content type ${type} → 415 SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE`, async () => {
        assertError(await api.post(NAME, tar, type), 415, 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE');
        await unchanged();
      });
    }

    test('a JSON body → 415', async () => {
      assertError(await api.post(NAME, JSON.stringify({ category: 'cat', data: images.p0.toString('base64') }), 'application/json'), 415, 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE');
      await unchanged();
    });

    test('a multipart form → 415', async () => {
      const boundary = 'imp-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.tar"\r\nContent-Type: application/x-tar\r\n\r\n`),
        tar,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      assertError(await api.post(NAME, body, `multipart/form-data; boundary=${boundary}`), 415, 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE');
      await unchanged();
    });

    test('an unknown dataset → 404 SENSORY_ERR_DATASET_NOT_FOUND', async () => {
      assertError(await api.post('no-such-import-target', tar), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });

    test('an invalid dataset name → 400 SENSORY_ERR_INVALID_NAME', async () => {
      assertError(await api.post('-bad', tar), 400, 'SENSORY_ERR_INVALID_NAME');
    });

    test('no key → 401, unknown key → 401', async () => {
      assertError(
        await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/imports`, headers: { 'content-type': 'application/x-tar' }, payload: tar }),
        401,
        'SENSORY_ERR_UNAUTHORIZED',
      );
      assertError(
        await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/imports`, headers: { 'content-type': 'application/x-tar', 'api-access-key': 'nope-nope' }, payload: tar }),
        401,
        'SENSORY_ERR_UNAUTHORIZED',
      );
      await unchanged();
    });

    test('the read key → 403 SENSORY_ERR_FORBIDDEN', async () => {
      assertError(await api.post(NAME, tar, 'application/x-tar', 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await unchanged();
    });

    test('auth is checked before the content type', async () => {
      assertError(
        await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/imports`, headers: { 'content-type': 'application/json' }, payload: '{}' }),
        401,
        'SENSORY_ERR_UNAUTHORIZED',
      );
      assertError(await api.post(NAME, 'hello', 'text/plain', 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
      await unchanged();
    });

    test('Authorization: Bearer with a write key works', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets/${NAME}/imports`,
        headers: { 'content-type': 'application/x-tar', authorization: `Bearer ${KEYS.write}` },
        payload: tar,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { imported: 1, duplicates: 0, rejected: [] });
    });
  });
});

describe('imports over SENSORY_MAX_SAMPLE_BYTES', () => {
  let t: TestApp;
  let api: ReturnType<typeof client>;

  before(async () => {
    t = await startTestApp({ SENSORY_MAX_SAMPLE_BYTES: '2000' });
    api = client(t);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  test('an entry over the limit is rejected with SENSORY_ERR_SAMPLE_TOO_LARGE; the others are imported', async () => {
    await api.createDataset('imp-limit');
    const noise = Buffer.alloc(64 * 64 * 3);
    let state = 12345;
    for (let i = 0; i < noise.length; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      noise[i] = state >>> 24;
    }
    const big = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    assert.ok(big.length > 2000);
    const small = await makePng(8, 8, 3, 1);
    assert.ok(small.length <= 2000);
    const summary = await api.import(
      'imp-limit',
      await tarOf([
        { name: 'cat/big.png', data: big },
        { name: 'cat/small.png', data: small },
      ]),
    );
    assert.equal(summary.imported, 1);
    assert.deepEqual(byPath(summary.rejected), { 'cat/big.png': 'SENSORY_ERR_SAMPLE_TOO_LARGE' });
    const after = await api.state('imp-limit');
    assert.equal(after.sampleCount, 1);
    assert.equal(after.revision, 1);
  });
});
