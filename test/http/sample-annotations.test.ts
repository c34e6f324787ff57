import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';
import { tarOf } from '../support/tar.js';

/** A multipart/form-data body, built by hand. */
function multipart(parts: readonly { name: string; value: string | Buffer; filename?: string }[]) {
  const boundary = `----annotations-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"\r\nContent-Type: image/png`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`, 'utf8'), Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value, 'utf8'), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('samples carry a filename, tags and metadata', () => {
  let t: TestApp;
  const NAME = 'annotated';
  before(async () => {
    t = await startTestApp({ SENSORY_MAX_SAMPLE_METADATA_BYTES: '64' });
    const put = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${NAME}`, headers: t.auth(), payload: { width: 3, height: 3, channels: 1 } });
    assert.equal(put.statusCode, 201);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const png = (seed: number) => makePng(3, 3, 1, seed);
  const list = async (query: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples?${query}`, headers: t.auth('read') });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().samples as { id: number; filename?: string; tags: string[]; metadata: Record<string, unknown> }[];
  };
  const state = async () => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}`, headers: t.auth() })).json();

  it('JSON, raw, multipart and tar uploads keep what they say', async () => {
    const json = await t.app.inject({
      method: 'POST',
      url: `/v1/datasets/${NAME}/samples`,
      headers: t.auth('write'),
      payload: { category: 'cat', data: (await png(1)).toString('base64'), filename: 'C:\\photos\\IMG_1.png', tags: ['blurry', 'blurry', 'night'], metadata: { iso: 800 } },
    });
    assert.equal(json.statusCode, 201, json.body);
    assert.deepEqual([json.json().filename, json.json().tags, json.json().metadata], ['IMG_1.png', ['blurry', 'night'], { iso: 800 }]);

    const raw = await t.app.inject({
      method: 'POST',
      url: `/v1/datasets/${NAME}/samples?category=cat&filename=raw.png&tag=day&tag=${encodeURIComponent('my tag')}`,
      headers: { ...t.auth('write'), 'content-type': 'image/png' },
      payload: await png(2),
    });
    assert.equal(raw.statusCode, 201, raw.body);
    assert.deepEqual([raw.json().filename, raw.json().tags, raw.json().metadata], ['raw.png', ['day', 'my tag'], {}]);

    const form = multipart([
      { name: 'category', value: 'dog' },
      { name: 'tag', value: 'form' },
      { name: 'metadata', value: '{"by":"form"}' },
      { name: 'file', value: await png(3), filename: 'a.png' },
      { name: 'file', value: await png(4), filename: 'b.png' },
    ]);
    const several = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples`, headers: { ...t.auth('write'), ...form.headers }, payload: form.payload });
    assert.equal(several.statusCode, 201, several.body);
    assert.deepEqual(
      several.json().samples.map((s: { sample: { filename: string; tags: string[]; metadata: unknown } }) => [s.sample.filename, s.sample.tags, s.sample.metadata]),
      [['a.png', ['form'], { by: 'form' }], ['b.png', ['form'], { by: 'form' }]],
    );

    const bulk = await t.app.inject({
      method: 'POST',
      url: `/v1/datasets/${NAME}/samples/bulk`,
      headers: { ...t.auth('write'), 'content-type': 'application/x-tar' },
      payload: await tarOf([{ name: 'dog/from-tar.png', data: await png(5) }]),
    });
    assert.equal(bulk.statusCode, 201, bulk.body);
    const fromTar = await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/${bulk.json().receipts[0].sampleId}`, headers: t.auth('read') });
    assert.equal(fromTar.json().filename, 'from-tar.png');
  });

  it('lists by filename part, tag and search', async () => {
    assert.deepEqual((await list('filename=IMG')).map((s) => s.filename), ['IMG_1.png']);
    assert.deepEqual((await list('tag=form')).map((s) => s.filename).sort(), ['a.png', 'b.png'], 'the files of one form are stored in parallel: their ids come in any order');
    assert.deepEqual((await list(`tag=${encodeURIComponent('my tag')}`)).map((s) => s.filename), ['raw.png']);
    assert.deepEqual((await list('q=night')).map((s) => s.filename), ['IMG_1.png']);
    assert.deepEqual((await list('q=FROM-TAR')).map((s) => s.filename), ['from-tar.png']);
    const [first] = await list('filename=raw');
    assert.deepEqual((await list(`q=${first.id}`)).map((s) => s.id), [first.id]);
    const sha = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/${first.id}`, headers: t.auth('read') })).json().sha256;
    assert.deepEqual((await list(`q=${sha.slice(0, 10)}`)).map((s) => s.id), [first.id]);
    assert.deepEqual(await list('tag=form&category=cat'), []);
  });

  it('PATCH changes tags, metadata and filename without raising the revision, and relabels with them', async () => {
    const [one] = await list('filename=raw');
    const revision = (await state()).revision;
    const patched = await t.app.inject({ method: 'PATCH', url: `/v1/datasets/${NAME}/samples/${one.id}`, headers: t.auth('write'), payload: { tags: ['checked'], metadata: { ok: true } } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual([patched.json().tags, patched.json().metadata, patched.json().category], [['checked'], { ok: true }, 'cat']);
    assert.equal((await state()).revision, revision);
    const both = await t.app.inject({ method: 'PATCH', url: `/v1/datasets/${NAME}/samples/${one.id}`, headers: t.auth('write'), payload: { category: 'dog', filename: 'renamed.png' } });
    assert.deepEqual([both.json().category, both.json().filename, both.json().tags], ['dog', 'renamed.png', ['checked']]);
    assert.equal((await state()).revision, revision + 1);
  });

  const wrong: [string, string, unknown, string, RegExp][] = [
    ['metadata over SENSORY_MAX_SAMPLE_METADATA_BYTES', 'POST', { category: 'cat', metadata: { text: 'x'.repeat(80) } }, 'metadata', /more than 64 \(SENSORY_MAX_SAMPLE_METADATA_BYTES\)/],
    ['metadata an array', 'POST', { category: 'cat', metadata: [1] }, 'metadata', /must be an object; got \[1\]/],
    ['tags not an array', 'POST', { category: 'cat', tags: 'a' }, 'tags', /must be an array; got "a"/],
    ['a tag with a slash', 'POST', { category: 'cat', tags: ['ok', 'a/b'] }, 'tags[1]', /"\/"/],
    ['33 tags', 'POST', { category: 'cat', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 'tags', /from 0 to 32 items|at most 32/],
    ['a filename with a control character', 'POST', { category: 'cat', filename: 'a\u0001b.png' }, 'filename', /control/],
    ['an empty patch', 'PATCH', {}, 'body', /at least 1 keys|at least one/],
    ['a patch of an unknown field', 'PATCH', { colour: 'red' }, 'colour', /unknown field "colour"/],
  ];
  for (const [name, method, body, field, says] of wrong) {
    it(`${name} → 400 naming ${field}, nothing changed`, async () => {
      const [one] = await list('filename=renamed');
      const before = { state: await state(), sample: one };
      const payload = method === 'POST' ? { data: (await png(90)).toString('base64'), ...(body as object) } : body;
      const url = method === 'POST' ? `/v1/datasets/${NAME}/samples` : `/v1/datasets/${NAME}/samples/${one.id}`;
      const res = await t.app.inject({ method: method as 'POST', url, headers: t.auth('write'), payload: payload as object });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.field, field, res.body);
      assert.match(res.json().error.message, says);
      assert.deepEqual(await state(), before.state);
      assert.deepEqual((await list('filename=renamed'))[0], before.sample);
    });
  }

  it('sort=newest lists by descending id, and its cursor pages in that order; sort=oldest is the default', async () => {
    const oldest = (await list('limit=1000')).map((s) => s.id);
    assert.ok(oldest.length >= 4);
    assert.deepEqual((await list('sort=oldest&limit=1000')).map((s) => s.id), oldest);
    const paged: number[] = [];
    let cursor: string | undefined;
    do {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples?sort=newest&limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 200, res.body);
      paged.push(...res.json().samples.map((s: { id: number }) => s.id));
      cursor = res.json().nextCursor;
    } while (cursor);
    assert.deepEqual(paged, [...oldest].reverse());
    assert.deepEqual((await list('sort=newest&category=cat')).map((s) => s.id), (await list('category=cat')).map((s) => s.id).reverse());
  });

  describe('sort=category and sort=filename', () => {
    const SORTED = 'annotated-sorted';
    // Byte order of the names: B < a < b < Ähre; of the filenames: Z.png < a.png < b.png < é.png, then none.
    const MADE: [string, string | undefined][] = [['b', 'b.png'], ['a', undefined], ['Ähre', 'a.png'], ['B', 'é.png'], ['a', 'a.png'], ['b', undefined], ['a', 'Z.png'], ['b', 'a.png']];
    const made: { id: number; category: string; filename?: string }[] = [];
    const page = async (query: string) => {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${SORTED}/samples?${query}`, headers: t.auth('read') });
      return res;
    };
    const pageAll = async (query: string, limit: number) => {
      const ids: number[] = [];
      let cursor: string | undefined;
      do {
        const res = await page(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.statusCode, 200, res.body);
        ids.push(...res.json().samples.map((s: { id: number }) => s.id));
        cursor = res.json().nextCursor;
      } while (cursor);
      return ids;
    };
    const cmp = (a: string | undefined, b: string | undefined) => (a === b ? 0 : a === undefined ? 1 : b === undefined ? -1 : Buffer.compare(Buffer.from(a), Buffer.from(b)));
    before(async () => {
      const put = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${SORTED}`, headers: t.auth(), payload: { width: 3, height: 3, channels: 1, testPercent: 0 } });
      assert.equal(put.statusCode, 201, put.body);
      for (const [i, [category, filename]] of MADE.entries()) {
        const res = await t.app.inject({
          method: 'POST',
          url: `/v1/datasets/${SORTED}/samples`,
          headers: t.auth('write'),
          payload: { category, data: (await png(100 + i)).toString('base64'), ...(filename ? { filename } : {}) },
        });
        assert.equal(res.statusCode, 201, res.body);
        made.push(res.json());
      }
    });

    it('pages by category name, then id, in pages of 1, 2 and 3, with a filter', async () => {
      const expected = [...made].sort((x, y) => cmp(x.category, y.category) || x.id - y.id).map((s) => s.id);
      for (const limit of [1, 2, 3]) assert.deepEqual(await pageAll('sort=category', limit), expected, `pages of ${limit}`);
      const withA = made.filter((s) => s.filename?.includes('a')).sort((x, y) => cmp(x.category, y.category) || x.id - y.id).map((s) => s.id);
      assert.deepEqual(await pageAll('sort=category&filename=a', 1), withA);
    });

    it('pages by filename, samples without one last, then id', async () => {
      const expected = [...made].sort((x, y) => cmp(x.filename, y.filename) || x.id - y.id).map((s) => s.id);
      for (const limit of [1, 2, 3]) assert.deepEqual(await pageAll('sort=filename', limit), expected, `pages of ${limit}`);
      assert.equal(made.find((s) => s.id === expected.at(-1))!.filename, undefined);
    });

    it('wrong sorts and a cursor of another sort → 400 naming the field', async () => {
      for (const [query, field] of [['sort=Category', 'sort'], ['sort=size', 'sort'], ['sort=FILENAME', 'sort']]) {
        const res = await page(query);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.field, field);
      }
      const cursorOf = async (sort: string) => (await page(`sort=${sort}&limit=1`)).json().nextCursor as string;
      const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const wrong: [string, string][] = [
        ['category', await cursorOf('filename')],
        ['filename', await cursorOf('category')],
        ['category', await cursorOf('oldest')],
        ['filename', await cursorOf('newest')],
        ['oldest', await cursorOf('category')],
        ['newest', await cursorOf('filename')],
        ['category', forged({ s: 'category', k: 1, id: 2 })],
        ['category', forged({ s: 'category', k: null, id: 2 })],
        ['filename', forged({ s: 'filename', k: 'a', id: -1 })],
        ['filename', forged(['filename'])],
        ['category', Buffer.from('{not json').toString('base64url')],
      ];
      for (const [sort, cursor] of wrong) {
        const res = await page(`sort=${sort}&cursor=${cursor}`);
        assert.equal(res.statusCode, 400, `${sort} ${Buffer.from(cursor, 'base64url').toString()}: ${res.body}`);
        assert.equal(res.json().error.field, 'cursor');
      }
      assert.equal((await page(`sort=category&cursor=${'x'.repeat(5000)}`)).json().error.field, 'cursor', 'too long');
    });

    it('the cursor of the longest filename kept (quotes, 4-byte characters) is accepted back', async () => {
      const long = `${'"𝒳'.repeat(125)}.png`; // 254 characters, 629 bytes of UTF-8
      const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${SORTED}/samples`, headers: t.auth('write'), payload: { category: 'a', data: (await png(200)).toString('base64'), filename: long } });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().filename, long);
      const all = [...made, res.json()].sort((x, y) => cmp(x.filename, y.filename) || x.id - y.id).map((s) => s.id);
      assert.deepEqual(await pageAll('sort=filename', 1), all);
    });
  });

  it('wrong list filters → 400 naming the field', async () => {
    for (const [query, field] of [['q=', 'q'], ['tag=', 'tag'], [`filename=${'x'.repeat(300)}`, 'filename'], ['sort=random', 'sort'], ['sort=', 'sort'], ['sort=NEWEST', 'sort']]) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples?${query}`, headers: t.auth('read') });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.field, field);
    }
  });
});
