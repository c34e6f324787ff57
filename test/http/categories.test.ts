import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { categoryName } from '../../src/domain/names.js';
import { makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';
import { tarOf } from '../support/tar.js';

describe('category names', () => {
  const good = ['my cat', 'Ähre', '猫', 'seven', '3', 'a.b_c-d', 'café au lait', 'x'.repeat(64), 'été (2024)', "o'clock"];
  for (const name of good) {
    it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)}`, () => assert.equal(categoryName('category', name), name));
  }
  const bad: [string, RegExp][] = [
    ['', /empty/],
    [' cat', /space/],
    ['cat ', /space/],
    ['a/b', /"\/"/],
    ['a\\b', /"\\\\"/],
    ['..', /letter or digit/],
    ['.hidden', /letter or digit/],
    ['a\tb', /control/],
    ['a\nb', /control/],
    ['a\u0000b', /control/],
    ['a\u200bb', /control or invisible/],
    ['a\u00a0b', /other than an ordinary one/],
    ['what?', /"\?"/],
    ['a:b', /":"/],
    ['x'.repeat(65), /65 characters, more than 64/],
    ['-dash', /letter or digit/],
  ];
  for (const [name, reason] of bad) {
    it(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)} saying why`, () => {
      assert.throws(() => categoryName('category', name), (error: Error & { code?: string; field?: string }) => {
        assert.equal(error.code, 'SENSORY_ERR_INVALID_NAME');
        assert.equal(error.field, 'category');
        assert.match(error.message, /^category /);
        assert.match(error.message, reason);
        assert.match(error.message, /got /);
        return true;
      });
    });
  }
  it('gives names in Unicode normal form C: a decomposed Ä is the composed one', () => {
    assert.equal(categoryName('category', 'A\u0308hre'), '\u00c4hre');
  });
  it('refuses values that are not strings', () => {
    for (const value of [undefined, null, 3, ['a']]) assert.throws(() => categoryName('category', value), /must be a string/);
  });
});

describe('categories over HTTP', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const put = (name: string, body: Record<string, unknown>) => t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth(), payload: body });
  const upload = async (name: string, category: string, seed: number) =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/${name}/samples`, headers: t.auth(), payload: { category, data: (await makePng(3, 3, 1, seed)).toString('base64') } });
  const revision = async (name: string) => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth() })).json().revision;

  it('stores categories with spaces and letters of any script, from JSON, a raw body, a form and a tar', async () => {
    assert.equal((await put('names', { width: 3, height: 3, channels: 1 })).statusCode, 201);
    assert.equal((await upload('names', 'my cat', 1)).json().category, 'my cat');
    const raw = await t.app.inject({
      method: 'POST',
      url: `/v1/datasets/names/samples?category=${encodeURIComponent('猫')}`,
      headers: { ...t.auth(), 'content-type': 'image/png' },
      payload: await makePng(3, 3, 1, 2),
    });
    assert.equal(raw.statusCode, 201, raw.body);
    assert.equal(raw.json().category, '猫');
    const bulk = await t.app.inject({
      method: 'POST',
      url: '/v1/datasets/names/samples/bulk',
      headers: { ...t.auth(), 'content-type': 'application/x-tar' },
      payload: await tarOf([{ name: 'A\u0308hre/one.png', data: await makePng(3, 3, 1, 3) }, { name: 'bad:name/two.png', data: await makePng(3, 3, 1, 4) }]),
    });
    assert.equal(bulk.statusCode, 201, bulk.body);
    const receipts = bulk.json().receipts;
    assert.equal(receipts[0].category, 'Ähre', 'folder names are taken in NFC');
    assert.equal(receipts[1].status, 'rejected');
    assert.equal(receipts[1].error.code, 'SENSORY_ERR_INVALID_NAME');
    const listed = await t.app.inject({ method: 'GET', url: `/v1/datasets/names/samples?category=${encodeURIComponent('my cat')}`, headers: t.auth() });
    assert.equal(listed.json().samples.length, 1);
    const map = (await t.app.inject({ method: 'GET', url: '/v1/datasets/names/categories', headers: t.auth() })).json().map;
    assert.deepEqual(map, { 'my cat': 0, 猫: 1, Ähre: 2 });
    const batch = await t.app.inject({ method: 'POST', url: '/v1/datasets/names/batches', headers: t.auth(), payload: { size: 1, categories: ['猫'] } });
    assert.equal(batch.statusCode, 200, batch.body);
  });

  it('refuses a category with a slash, naming the field, and stores nothing', async () => {
    const before = await revision('names');
    const res = await upload('names', 'a/b', 9);
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.field, 'category');
    assert.equal(await revision('names'), before);
  });

  it('a declared list fixes indices up front; uploads and relabels into other categories are 422', async () => {
    const created = await put('declared', { width: 3, height: 3, channels: 1, categories: ['zero', 'one', 'two'] });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().categoriesDeclared, true);
    const map = (await t.app.inject({ method: 'GET', url: '/v1/datasets/declared/categories', headers: t.auth() })).json().map;
    assert.deepEqual(map, { zero: 0, one: 1, two: 2 });
    const two = await upload('declared', 'two', 11);
    assert.equal(two.statusCode, 201);
    assert.equal(two.json().categoryIndex, 2);
    const refused = await upload('declared', 'three', 12);
    assert.equal(refused.statusCode, 422, refused.body);
    assert.equal(refused.json().error.code, 'SENSORY_ERR_UNDECLARED_CATEGORY');
    assert.equal(refused.json().error.field, 'category');
    assert.match(refused.json().error.message, /"three"/);
    const relabel = await t.app.inject({ method: 'PATCH', url: `/v1/datasets/declared/samples/${two.json().id}`, headers: t.auth(), payload: { category: 'three' } });
    assert.equal(relabel.statusCode, 422);
    assert.equal(await revision('declared'), 1);
    const appended = await put('declared', { width: 3, height: 3, channels: 1, categories: ['zero', 'one', 'two', 'three'] });
    assert.equal(appended.statusCode, 200, appended.body);
    assert.equal((await upload('declared', 'three', 12)).json().categoryIndex, 3);
  });

  it('a list that reorders the categories is 409; a repeated or bad name is 400 naming its position', async () => {
    const reordered = await put('declared', { width: 3, height: 3, channels: 1, categories: ['one', 'zero'] });
    assert.equal(reordered.statusCode, 409, reordered.body);
    assert.equal(reordered.json().error.code, 'SENSORY_ERR_CATEGORY_LIST_CONFLICT');
    assert.equal(reordered.json().error.field, 'categories[0]');
    const repeated = await put('fresh', { width: 3, height: 3, channels: 1, categories: ['a', 'b', 'a'] });
    assert.equal(repeated.statusCode, 400);
    assert.equal(repeated.json().error.field, 'categories[2]');
    const slash = await put('fresh', { width: 3, height: 3, channels: 1, categories: ['a', 'b/c'] });
    assert.equal(slash.statusCode, 400);
    assert.equal(slash.json().error.field, 'categories[1]');
    const empty = await put('fresh', { width: 3, height: 3, channels: 1, categories: [] });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error.field, 'categories');
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/datasets/fresh', headers: t.auth() })).statusCode, 404, 'nothing was created');
  });
});
