import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/**
 * The rule every 4xx for a wrong input follows, checked on a table of the main wrong forms of
 * every endpoint: the answer names the field (in `field` and in the message), says what was sent
 * and what is allowed, and carries none of the schema validator's own text.
 */
interface Case {
  readonly name: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly payload?: unknown;
  readonly headers?: Record<string, string>;
  /** The field the answer must name. */
  readonly field: string;
  /** Text the message must contain: what was sent, what is allowed. */
  readonly says: readonly (string | RegExp)[];
  readonly status?: number;
  readonly code?: string;
}

const SCHEMA_TEXT = /anyOf|must match pattern|must match a schema|must NOT have|must be equal to (one of the allowed values|constant)|must have required property|\^\[|\$$/;

const UPLOAD = '/v1/datasets/digits/samples';
const LEGACY = { 'api-version': '0.3.0' };

const CASES: readonly Case[] = [
  // Datasets
  { name: 'dataset width not a number', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 'wide', height: 2, channels: 1 }, field: 'width', says: ['a whole number', 'got "wide"'] },
  { name: 'dataset channels outside its values', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 2, height: 2, channels: 2 }, field: 'channels', says: ['one of 1, 3', 'got 2'] },
  { name: 'dataset width below its range', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 0, height: 2, channels: 1 }, field: 'width', says: ['from 1 to', 'got 0'] },
  { name: 'dataset height missing', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 2, channels: 1 }, field: 'height', says: ['height is required in the body'] },
  { name: 'dataset unknown field', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 2, height: 2, channels: 1, colour: true }, field: 'colour', says: ['unknown field "colour" in the body', 'width'] },
  { name: 'dataset testPercent above 50', method: 'PUT', url: '/v1/datasets/fresh', payload: { width: 2, height: 2, channels: 1, testPercent: 80 }, field: 'testPercent', says: ['from 0 to 50', 'got 80'] },
  { name: 'dataset name with a space', method: 'PUT', url: '/v1/datasets/my%20set', payload: { width: 2, height: 2, channels: 1 }, field: 'dataset', says: ['got "my set"', 'A–Z a–z 0–9'], code: 'SENSORY_ERR_INVALID_NAME' },
  { name: 'dataset body not JSON', method: 'PUT', url: '/v1/datasets/fresh', payload: '{"width": ', headers: { 'content-type': 'application/json' }, field: 'body', says: ['not valid JSON'] },
  // Samples listed
  { name: 'list split outside its values', method: 'GET', url: `${UPLOAD}?split=validation`, field: 'split', says: ['split must be one of train, test, all; got "validation"'] },
  { name: 'list limit not a number', method: 'GET', url: `${UPLOAD}?limit=many`, field: 'limit', says: ['a whole number', 'got "many"'] },
  { name: 'list limit 0', method: 'GET', url: `${UPLOAD}?limit=0`, field: 'limit', says: ['from 1 to 1000', 'got 0'] },
  { name: 'list unknown parameter', method: 'GET', url: `${UPLOAD}?colour=red`, field: 'colour', says: ['unknown field "colour" in the query string'] },
  { name: 'list cursor not one of ours', method: 'GET', url: `${UPLOAD}?cursor=zzz`, field: 'cursor', says: ['cursor'] },
  // Samples uploaded
  { name: 'upload JSON without data', method: 'POST', url: UPLOAD, payload: { category: 'seven' }, field: 'data', says: ['data is required in the body'] },
  { name: 'upload JSON data not base64', method: 'POST', url: UPLOAD, payload: { category: 'seven', data: '@@@' }, field: 'data', says: ['base64'] },
  { name: 'upload JSON unknown field', method: 'POST', url: UPLOAD, payload: { category: 'seven', data: 'AAAA', label: 3 }, field: 'label', says: ['unknown field "label" in the body'] },
  { name: 'upload category with a slash', method: 'POST', url: UPLOAD, payload: { category: 'a/b', data: 'AAAA' }, field: 'category', says: ['got "a/b"'], code: 'SENSORY_ERR_INVALID_NAME' },
  { name: 'upload raw body without category', method: 'POST', url: UPLOAD, payload: Buffer.from('x'), headers: { 'content-type': 'image/png' }, field: 'category', says: ['category is required'] },
  // One sample
  { name: 'sample id not a number', method: 'GET', url: `${UPLOAD}/first`, field: 'id', says: ['a whole number', 'got "first"'] },
  { name: 'patch without a field', method: 'PATCH', url: `${UPLOAD}/1`, payload: {}, field: 'body', says: ['the body must have at least one of category, filename, tags, metadata'] },
  { name: 'relabel category not a string', method: 'PATCH', url: `${UPLOAD}/1`, payload: { category: 7 }, field: 'category', says: ['a string', 'got 7'] },
  // Batches
  { name: 'batch split outside its values', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, split: 'validation' }, field: 'split', says: ['split must be one of train, test, all; got "validation"'] },
  { name: 'batch dtype outside its values', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, dtype: 'float16' }, field: 'dtype', says: ['one of uint8, float32', 'got "float16"'] },
  { name: 'batch size 0', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 0 }, field: 'size', says: ['at least 1', 'got 0'] },
  { name: 'batch noise above 1', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, noise: 2 }, field: 'noise', says: ['from 0 to 1', 'got 2'] },
  { name: 'batch categories empty', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, categories: [] }, field: 'categories', says: ['from 1 to 10000 items', 'got 0'] },
  { name: 'batch category not a string', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, categories: ['seven', 3] }, field: 'categories[1]', says: ['a string', 'got 3'] },
  { name: 'batch unknown category', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, categories: ['eight'] }, field: 'categories', says: ['"eight"'], status: 422, code: 'SENSORY_ERR_UNKNOWN_CATEGORY' },
  { name: 'batch unknown field', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, shuffle: true }, field: 'shuffle', says: ['unknown field "shuffle" in the body'] },
  { name: 'batch labelDtype with onehot', method: 'POST', url: '/v1/datasets/digits/batches', payload: { size: 1, labels: 'onehot', labelDtype: 'int64' }, field: 'labelDtype', says: ['labelDtype'] },
  // Orders
  { name: 'order rounding outside its values', method: 'POST', url: '/v1/datasets/digits/orders', payload: { size: 2, rounding: 'up' }, field: 'rounding', says: ['one of exact, drop, repeat', 'got "up"'] },
  { name: 'order key with a space', method: 'POST', url: '/v1/datasets/digits/orders', payload: { size: 2, key: 'run 7' }, field: 'key', says: ['A-Z a-z 0-9', 'got "run 7"'] },
  { name: 'order balance', method: 'POST', url: '/v1/datasets/digits/orders', payload: { size: 2, balance: true }, field: 'balance', says: ['balance'] },
  { name: 'order list active not a boolean', method: 'GET', url: '/v1/orders?active=maybe', field: 'active', says: ['true or false', 'got "maybe"'] },
  { name: 'poll max negative', method: 'POST', url: '/v1/orders/abc/poll', payload: { max: -1 }, field: 'max', says: ['from 0 to 4096', 'got -1'] },
  { name: 'poll waitMs too long', method: 'POST', url: '/v1/orders/abc/poll', payload: { waitMs: 60_000 }, field: 'waitMs', says: ['from 0 to 20000', 'got 60000'] },
  { name: 'reshape ranks 0', method: 'POST', url: '/v1/orders/abc/reshape', payload: { ranks: 0 }, field: 'ranks', says: ['from 1 to', 'got 0'] },
  { name: 'order ttl 0', method: 'PATCH', url: '/v1/orders/abc', payload: { ttlSeconds: 0 }, field: 'ttlSeconds', says: ['from 1 to', 'got 0'] },
  // Admin and legacy
  { name: 'compaction share above 1', method: 'POST', url: '/v1/admin/compaction', payload: { minGarbageShare: 2 }, field: 'minGarbageShare', says: ['from 0 to 1', 'got 2'] },
  { name: 'legacy store without width', method: 'POST', url: '/api/sensory/store', payload: { name: 'x', height: 2, category: 'a', data: 'AAAA' }, headers: LEGACY, field: 'width', says: ['width is required in the body'] },
  { name: 'legacy request batch_size 0', method: 'POST', url: '/api/sensory/request', payload: { batch_size: 0 }, headers: LEGACY, field: 'batch_size', says: ['at least 1', 'got 0'] },
];

describe('error messages people can read', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    const put = await t.app.inject({ method: 'PUT', url: '/v1/datasets/digits', headers: t.auth(), payload: { width: 4, height: 4, channels: 1 } });
    assert.equal(put.statusCode, 201, put.body);
    const png = await makePng(4, 4, 1, 1);
    const up = await t.app.inject({ method: 'POST', url: `${UPLOAD}?category=seven`, headers: { ...t.auth(), 'content-type': 'image/png' }, payload: png });
    assert.equal(up.statusCode, 201, up.body);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  for (const c of CASES) {
    it(`${c.name}: ${c.status ?? 400} naming ${c.field}`, async () => {
      const before = await t.app.inject({ method: 'GET', url: '/v1/datasets/digits', headers: t.auth() });
      const res = await t.app.inject({
        method: c.method,
        url: c.url,
        headers: { ...t.auth(), ...(c.headers ?? {}) },
        ...(c.payload === undefined ? {} : { payload: c.payload as string }),
      });
      assert.equal(res.statusCode, c.status ?? 400, res.body);
      const { error } = res.json();
      assert.equal(error.code, c.code ?? (c.status === undefined ? 'SENSORY_ERR_BAD_REQUEST' : error.code), res.body);
      assert.equal(error.field, c.field, res.body);
      assert.ok(error.message.includes(c.field.replace(/\[\d+\]$/, '')), `the message names ${c.field}: ${error.message}`);
      for (const text of c.says) {
        if (typeof text === 'string') assert.ok(error.message.includes(text), `${JSON.stringify(error.message)} says ${JSON.stringify(text)}`);
        else assert.match(error.message, text);
      }
      assert.doesNotMatch(error.message, SCHEMA_TEXT, 'no schema validator text');
      const afterwards = await t.app.inject({ method: 'GET', url: '/v1/datasets/digits', headers: t.auth() });
      assert.equal(afterwards.json().revision, before.json().revision, 'nothing changed');
    });
  }

  it('the OpenAPI document lists every set of values as an enum, never as an anyOf of constants', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const found: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (!node || typeof node !== 'object') return;
      const schema = node as Record<string, unknown>;
      if (Array.isArray(schema.anyOf) && schema.anyOf.every((branch) => branch && typeof branch === 'object' && 'const' in branch)) found.push(path);
      for (const [key, value] of Object.entries(schema)) walk(value, `${path}/${key}`);
    };
    walk(doc, '');
    assert.deepEqual(found, []);
    const batch = doc.paths['/v1/datasets/{name}/batches'].post.requestBody.content['application/json'].schema.properties;
    assert.deepEqual(batch.split.enum, ['train', 'test', 'all']);
    assert.deepEqual(doc.components.schemas.ErrorBody.properties.error.properties.field.type, 'string');
  });
});
