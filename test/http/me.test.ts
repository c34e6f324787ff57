import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, KEYS, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/** GET /v1/me: the presented key's name and roles, for clients that show only what a key may do. */
describe('GET /v1/me', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  test('every known key learns its name and roles, never the key', async () => {
    const expected = { admin: { name: 'key 1', roles: ['admin'] }, read: { name: 'key 2', roles: ['read'] }, write: { name: 'key 3', roles: ['write'] }, readWrite: { name: 'key 4', roles: ['read', 'write'] } };
    for (const kind of Object.keys(KEYS) as (keyof typeof KEYS)[]) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/me', headers: t.auth(kind) });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), expected[kind]);
      assert.ok(!res.body.includes(KEYS[kind]));
    }
    const bearer = await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${KEYS.read}` } });
    assert.deepEqual(bearer.json(), expected.read);
  });

  test('no key or an unknown key is a 401; only GET', async () => {
    assertError(await t.app.inject({ method: 'GET', url: '/v1/me' }), 401, 'SENSORY_ERR_UNAUTHORIZED');
    assertError(await t.app.inject({ method: 'GET', url: '/v1/me', headers: { 'api-access-key': 'not-a-key-0123456789' } }), 401, 'SENSORY_ERR_UNAUTHORIZED');
    assertError(await t.app.inject({ method: 'POST', url: '/v1/me', headers: t.auth('read') }), 404, 'SENSORY_ERR_NOT_FOUND');
  });
});
