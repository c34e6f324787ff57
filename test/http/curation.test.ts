import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';
import { tarOf } from '../support/tar.js';

const KEYS = { admin: 'chief@admin-key-0123456789:admin', rw: 'labeller@rw-key-0123456789:read,write', read: 'viewer@read-key-0123456789:read' };
const H = { admin: { 'api-access-key': 'admin-key-0123456789' }, rw: { 'api-access-key': 'rw-key-0123456789' }, read: { 'api-access-key': 'read-key-0123456789' } };
const NAME = 'curated';
const N = 200;

describe('bulk actions, undo and the audit log over HTTP', () => {
  let t: TestApp;
  let ids: number[] = [];
  before(async () => {
    t = await startTestApp({ SENSORY_API_KEYS: Object.values(KEYS).join(';') });
    assert.equal((await t.app.inject({ method: 'PUT', url: `/v1/datasets/${NAME}`, headers: H.rw, payload: { width: 2, height: 2, channels: 1 } })).statusCode, 201);
    const members = await Promise.all(Array.from({ length: N }, async (_, i) => ({ name: `${i % 2 ? 'odd' : 'even'}/img_${String(i).padStart(4, '0')}.png`, data: await makePng(4, 4, 3, 1000 + i) })));
    const bulk = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/bulk`, headers: { ...H.rw, 'content-type': 'application/x-tar' }, payload: await tarOf(members) });
    assert.equal(bulk.statusCode, 201, bulk.body);
    ids = bulk.json().receipts.map((r: { sampleId: number }) => r.sampleId);
    assert.equal(new Set(ids).size, N, 'the synthetic images are distinct');
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const act = (body: unknown, headers: Record<string, string> = H.rw) => t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions`, headers, payload: body as object });
  const state = async () => (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}`, headers: H.read })).json();

  it(`relabels ${N / 2} selected samples in one request and one revision, with a result each, naming the key in the audit log`, async () => {
    const before = await state();
    const evens = ids.filter((_, i) => i % 2 === 0);
    const res = await act({ action: 'relabel', ids: [...evens, ids[1], 999_999], category: 'my cat' });
    assert.equal(res.statusCode, 200, res.body);
    const { action, results } = res.json();
    assert.deepEqual([action.action, action.changed, action.revision, action.actor], ['relabel', N / 2 + 1, before.revision + 1, { name: 'labeller', roles: ['read', 'write'] }]);
    assert.equal(results.length, N / 2 + 2);
    assert.deepEqual(results.slice(-2), [
      { id: ids[1], status: 'changed' },
      { id: 999_999, status: 'not_found' },
    ]);
    assert.equal((await state()).revision, before.revision + 1);
    const audit = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/${evens[0]}/audit`, headers: H.read })).json();
    assert.deepEqual(
      audit.entries.map((e: { action: string; actor: { name: string }; detail: unknown }) => [e.action, e.actor.name, e.detail]),
      [
        ['relabel', 'labeller', { from: 'even', to: 'my cat' }],
        ['add', 'labeller', { category: 'even' }],
      ],
    );
    assert.equal(audit.entries[0].bulkId, action.id);
    assert.ok(!JSON.stringify(audit).includes('rw-key-0123456789'), 'never the key');
  });

  it('undoes the last action, once', async () => {
    const [last] = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/actions`, headers: H.read })).json().actions;
    const before = await state();
    const undo = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions/${last.id}/undo`, headers: H.rw });
    assert.equal(undo.statusCode, 200, undo.body);
    assert.equal(undo.json().action.action, 'undo');
    assert.equal(undo.json().action.undoes, last.id);
    assert.equal(undo.json().action.revision, before.revision + 1);
    const map = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/categories`, headers: H.read })).json();
    assert.deepEqual(
      map.categories.map((c: { name: string; count: number }) => [c.name, c.count]).sort(),
      [
        ['even', N / 2],
        ['my cat', 0],
        ['odd', N / 2],
      ],
    );
    const again = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions/${last.id}/undo`, headers: H.rw });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'SENSORY_ERR_UNDO_CONFLICT');
    const missing = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions/99999/undo`, headers: H.rw });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error.code, 'SENSORY_ERR_BULK_ACTION_NOT_FOUND');
  });

  it('tags a whole filter result, without raising the revision', async () => {
    const before = await state();
    const res = await act({ action: 'tag', filter: { category: 'odd', filename: 'img_00' }, tags: ['first hundred'] });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().action.changed, 50);
    assert.equal((await state()).revision, before.revision);
    const listed = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples?tag=${encodeURIComponent('first hundred')}&limit=1000`, headers: H.read })).json().samples;
    assert.equal(listed.length, 50);
  });

  it('a bulk delete needs admin; its undo brings the samples back as new ones', async () => {
    const target = ids.slice(0, 3);
    const refused = await act({ action: 'delete', ids: target });
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.field, 'action');
    const before = await state();
    const deleted = await act({ action: 'delete', ids: target }, H.admin);
    assert.equal(deleted.statusCode, 200, deleted.body);
    assert.equal((await state()).sampleCount, before.sampleCount - 3);
    const undoByWriter = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions/${deleted.json().action.id}/undo`, headers: H.rw });
    assert.equal(undoByWriter.statusCode, 403);
    const undo = await t.app.inject({ method: 'POST', url: `/v1/datasets/${NAME}/samples/actions/${deleted.json().action.id}/undo`, headers: H.admin });
    assert.equal(undo.statusCode, 200, undo.body);
    assert.ok(undo.json().results.every((r: { status: string; newId: number }) => r.status === 'restored' && r.newId > 0));
    assert.equal((await state()).sampleCount, before.sampleCount);
    const dataset = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/audit?limit=3`, headers: H.read })).json();
    assert.deepEqual(dataset.entries.map((e: { action: string; actor: { name: string } }) => [e.action, e.actor.name]), [
      ['restore', 'chief'],
      ['restore', 'chief'],
      ['restore', 'chief'],
    ]);
    const next = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/audit?limit=3&cursor=${dataset.nextCursor}`, headers: H.read })).json();
    assert.deepEqual(next.entries.map((e: { action: string }) => e.action), ['delete', 'delete', 'delete']);
  });

  const wrong: [string, unknown, string, RegExp, number?][] = [
    ['move to the test split', { action: 'split', ids: [1] }, 'action', /one of relabel, delete, tag, untag; got "split"/],
    ['relabel without a category', { action: 'relabel', ids: [1] }, 'category', /category is required with action relabel/],
    ['tag without tags', { action: 'tag', ids: [1] }, 'tags', /tags is required/],
    ['both ids and filter', { action: 'tag', ids: [1], filter: {}, tags: ['x'] }, 'ids', /either ids .* or filter/],
    ['neither ids nor filter', { action: 'tag', tags: ['x'] }, 'ids', /either ids/],
    ['an id that is not a number', { action: 'tag', ids: ['a'], tags: ['x'] }, 'ids[0]', /a whole number; got "a"/],
    ['a category with a slash', { action: 'relabel', ids: [1], category: 'a/b' }, 'category', /"\/"/],
    ['an unknown filter field', { action: 'tag', filter: { colour: 'red' }, tags: ['x'] }, 'filter.colour', /unknown field "filter.colour"/],
  ];
  for (const [name, body, field, says, status] of wrong) {
    it(`${name} → ${status ?? 400} naming ${field}, nothing changed`, async () => {
      const before = await state();
      const actions = (await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/actions`, headers: H.read })).json().actions.length;
      const res = await act(body);
      assert.equal(res.statusCode, status ?? 400, res.body);
      assert.equal(res.json().error.field, field, res.body);
      assert.match(res.json().error.message, says);
      assert.deepEqual(await state(), before);
      assert.equal((await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/samples/actions`, headers: H.read })).json().actions.length, actions);
    });
  }

  it('the read key may read the audit log but not act; a wrong audit cursor is 400', async () => {
    assert.equal((await act({ action: 'tag', ids: [ids[0]], tags: ['x'] }, H.read)).statusCode, 403);
    const bad = await t.app.inject({ method: 'GET', url: `/v1/datasets/${NAME}/audit?cursor=nope`, headers: H.read });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.field, 'cursor');
    const unknown = await t.app.inject({ method: 'GET', url: '/v1/datasets/nothing/audit', headers: H.read });
    assert.equal(unknown.statusCode, 404);
  });
});
