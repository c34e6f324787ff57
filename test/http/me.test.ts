import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseApiKeys } from '../../src/config/api-keys-setting.js';
import { Problem } from '../../src/config/problem.js';
import { removeDir, startTestApp, type TestApp } from '../support/harness.js';

describe('GET /v1/me', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SENSORY_API_KEYS: 'chief@admin-key-0123456789:admin;labeller@rw-key-0123456789:read,write;viewer-key-0123456789:read;writer-key-0123456789:write' });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });
  const me = (key?: string) => t.app.inject({ method: 'GET', url: '/v1/me', headers: key ? { 'api-access-key': key } : {} });

  it('answers the name, roles and permissions of each key, never the key', async () => {
    const cases: [string, unknown][] = [
      ['admin-key-0123456789', { name: 'chief', roles: ['admin'], can: { read: true, write: true, admin: true } }],
      ['rw-key-0123456789', { name: 'labeller', roles: ['read', 'write'], can: { read: true, write: true, admin: false } }],
      ['viewer-key-0123456789', { name: 'key 3', roles: ['read'], can: { read: true, write: false, admin: false } }],
      ['writer-key-0123456789', { name: 'key 4', roles: ['write'], can: { read: false, write: true, admin: false } }],
    ];
    for (const [key, expected] of cases) {
      const res = await me(key);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), expected);
      assert.ok(!res.body.includes(key), 'the key is not echoed');
    }
  });

  it('is 401 without a key or with an unknown one', async () => {
    for (const res of [await me(), await me('nobody-key-0123456789')]) {
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().error.code, 'SENSORY_ERR_UNAUTHORIZED');
    }
  });

  it('a bearer token works as well', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: 'Bearer rw-key-0123456789' } });
    assert.equal(res.json().name, 'labeller');
  });
});

describe('key names in SENSORY_API_KEYS', () => {
  it('name@key:roles names a key; a bad name is a problem naming the entry, not the key', () => {
    assert.deepEqual(parseApiKeys('alice@abcdefgh12:read;abcdefgh34:write'), [
      { name: 'alice', key: 'abcdefgh12', roles: ['read'] },
      { key: 'abcdefgh34', roles: ['write'] },
    ]);
    const problem = parseApiKeys('al ice@abcdefgh12:read');
    assert.ok(problem instanceof Problem);
    assert.match(problem.text, /entry 1: a key's name/);
    assert.ok(!problem.text.includes('abcdefgh12'));
  });
});
