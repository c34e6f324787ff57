import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { addSample, assertError, KEYS, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/** HTTP tests of the modern datasets endpoints (SPEC §3, §4). */

let t: TestApp;

before(async () => {
  t = await startTestApp();
});

after(async () => {
  await t.close();
  removeDir(t.dataDir);
});

function put(name: string, payload: unknown, kind: keyof typeof KEYS = 'admin') {
  return t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth(kind), payload: payload as object });
}

function getDataset(name: string) {
  return t.app.inject({ method: 'GET', url: `/v1/datasets/${name}`, headers: t.auth('read') });
}

async function addPng(dataset: string, category: string, seed: number) {
  return addSample(t, dataset, category, await makePng(8, 8, 3, seed), 'write');
}

describe('PUT /v1/datasets/{name}', () => {
  test('creates a dataset → 201 with its shape, revision 0 and no samples', async () => {
    const res = await put('create-one', { width: 32, height: 24, channels: 3 });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.equal(body.name, 'create-one');
    assert.equal(body.width, 32);
    assert.equal(body.height, 24);
    assert.equal(body.channels, 3);
    assert.equal(body.testPercent, 0);
    assert.equal(body.revision, 0);
    assert.equal(body.sampleCount, 0);
    assert.ok(!Number.isNaN(Date.parse(body.createdAt)), 'createdAt is a date');
  });

  test('accepts channels 1 and a testPercent', async () => {
    const res = await put('gray.set_1', { width: 4, height: 4, channels: 1, testPercent: 20 });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().channels, 1);
    assert.equal(res.json().testPercent, 20);
  });

  test('accepts the extreme legal values: side 1 and 4096, testPercent 0 and 50', async () => {
    assert.equal((await put('tiny', { width: 1, height: 1, channels: 1, testPercent: 0 })).statusCode, 201);
    // 4096 × 4096 × 1 is exactly SENSORY_MAX_RECORD_BYTES's default (16 MiB); × 3 is above it.
    assert.equal((await put('huge-side', { width: 4096, height: 4096, channels: 1, testPercent: 50 })).statusCode, 201);
    assert.equal((await put('huge-record', { width: 4096, height: 4096, channels: 3 })).statusCode, 413);
  });

  test('the same shape again → 200 with the existing dataset', async () => {
    const first = await put('same-shape', { width: 10, height: 10, channels: 3, testPercent: 10 });
    assert.equal(first.statusCode, 201);
    const again = await put('same-shape', { width: 10, height: 10, channels: 3, testPercent: 10 });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().createdAt, first.json().createdAt);
    assert.equal(again.json().revision, 0);
  });

  test('an existing dataset keeps its samples and revision when PUT again with the same shape', async () => {
    assert.equal((await put('same-shape-samples', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('same-shape-samples', 'cat', 1);
    const again = await put('same-shape-samples', { width: 8, height: 8, channels: 3 });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().sampleCount, 1);
    assert.equal(again.json().revision, 1);
  });

  test('omitted testPercent means 0, so PUT with testPercent 0 is the same shape', async () => {
    assert.equal((await put('default-test', { width: 5, height: 5, channels: 3 })).statusCode, 201);
    assert.equal((await put('default-test', { width: 5, height: 5, channels: 3, testPercent: 0 })).statusCode, 200);
  });

  for (const [label, shape] of [
    ['another width', { width: 11, height: 10, channels: 3 }],
    ['another height', { width: 10, height: 11, channels: 3 }],
    ['another channel count', { width: 10, height: 10, channels: 1 }],
    ['another testPercent', { width: 10, height: 10, channels: 3, testPercent: 20 }],
    ['testPercent omitted (0) where it was 10', { width: 10, height: 10, channels: 3 }],
  ] as const) {
    test(`${label} → 409 SENSORY_ERR_DATASET_SHAPE_CONFLICT, dataset unchanged`, async () => {
      const name = `conflict-${label.replace(/[^a-z0-9]+/g, '-')}`;
      assert.equal((await put(name, { width: 10, height: 10, channels: 3, testPercent: 10 })).statusCode, 201);
      assertError(await put(name, shape), 409, 'SENSORY_ERR_DATASET_SHAPE_CONFLICT');
      const now = (await getDataset(name)).json();
      assert.deepEqual(
        { width: now.width, height: now.height, channels: now.channels, testPercent: now.testPercent },
        { width: 10, height: 10, channels: 3, testPercent: 10 },
      );
    });
  }

  describe('invalid names → 400 SENSORY_ERR_INVALID_NAME, nothing created', () => {
    for (const [label, raw] of [
      ['leading dash', '-bad'],
      ['leading dot', '.hidden'],
      ['leading underscore', '_x'],
      ['a space (url-encoded)', 'a%20b'],
      ['a slash (url-encoded)', 'a%2Fb'],
      ['65 characters', 'a'.repeat(65)],
      ['non-ASCII', 'caf%C3%A9'],
      ['a percent sign', 'a%25b'],
      ['a colon', 'a:b'],
    ] as const) {
      test(label, async () => {
        const res = await t.app.inject({
          method: 'PUT',
          url: `/v1/datasets/${raw}`,
          headers: t.auth('admin'),
          payload: { width: 4, height: 4, channels: 3 },
        });
        // `..` may be normalized away by a client, but inject sends it as is: it must never be a dataset.
        const body = assertError(res, 400, 'SENSORY_ERR_INVALID_NAME');
        assert.match(body.error.message, /dataset/);
        const list = (await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('read') })).json();
        assert.ok(!list.datasets.some((d: { name: string }) => d.name === decodeURIComponent(raw)));
      });
    }

    test('a 64-character name is the longest allowed', async () => {
      const name = `b${'x'.repeat(63)}`;
      assert.equal((await put(name, { width: 4, height: 4, channels: 3 })).statusCode, 201);
      assert.equal((await getDataset(name)).statusCode, 200);
    });

    test('an empty name creates nothing (400 invalid name, or no route)', async () => {
      const res = await t.app.inject({ method: 'PUT', url: '/v1/datasets/', headers: t.auth('admin'), payload: { width: 4, height: 4, channels: 3 } });
      if (res.statusCode === 404) assertError(res, 404, 'SENSORY_ERR_NOT_FOUND');
      else assertError(res, 400, 'SENSORY_ERR_INVALID_NAME');
    });

    // inject() (like browsers) resolves `..` segments before sending; a raw HTTP request does not.
    test('`..` and `.` sent verbatim over real HTTP → 400, never a dataset', async () => {
      const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = new URL(address);
      const send = (path: string, method: string, body?: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path, method, headers: { 'api-access-key': KEYS.admin, ...(body ? { 'content-type': 'application/json' } : {}) } },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const shape = JSON.stringify({ width: 4, height: 4, channels: 3 });
      for (const path of ['/v1/datasets/..', '/v1/datasets/%2E%2E', '/v1/datasets/.', '/v1/datasets/..%2F..%2Fetc']) {
        const res = await send(path, 'PUT', shape);
        assert.equal(res.status, 400, `${path}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error.code, 'SENSORY_ERR_INVALID_NAME', `${path}: ${res.body}`);
      }
      const got = await send('/v1/datasets/..', 'GET');
      assert.equal(got.status, 400, got.body);
      assert.equal(JSON.parse(got.body).error.code, 'SENSORY_ERR_INVALID_NAME');
      const list = (await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('read') })).json();
      assert.ok(!list.datasets.some((d: { name: string }) => d.name.startsWith('.')));
    });

    test('GET and DELETE with an invalid name → 400 too', async () => {
      assertError(await getDataset('-bad'), 400, 'SENSORY_ERR_INVALID_NAME');
      assertError(await t.app.inject({ method: 'DELETE', url: '/v1/datasets/a%20b', headers: t.auth('admin') }), 400, 'SENSORY_ERR_INVALID_NAME');
      assertError(
        await t.app.inject({ method: 'GET', url: `/v1/datasets/${'c'.repeat(65)}/categories`, headers: t.auth('read') }),
        400,
        'SENSORY_ERR_INVALID_NAME',
      );
    });
  });

  describe('invalid bodies → 400 SENSORY_ERR_BAD_REQUEST, nothing created', () => {
    const cases: [string, unknown][] = [
      ['width 0', { width: 0, height: 4, channels: 3 }],
      ['width 4097', { width: 4097, height: 4, channels: 3 }],
      ['width 1.5', { width: 1.5, height: 4, channels: 3 }],
      ['width "10" (a string)', { width: '10', height: 4, channels: 3 }],
      ['width negative', { width: -4, height: 4, channels: 3 }],
      ['width null', { width: null, height: 4, channels: 3 }],
      ['height 0', { width: 4, height: 0, channels: 3 }],
      ['height 4097', { width: 4, height: 4097, channels: 3 }],
      ['channels 2', { width: 4, height: 4, channels: 2 }],
      ['channels 4', { width: 4, height: 4, channels: 4 }],
      ['channels "3"', { width: 4, height: 4, channels: '3' }],
      ['testPercent 51', { width: 4, height: 4, channels: 3, testPercent: 51 }],
      ['testPercent -1', { width: 4, height: 4, channels: 3, testPercent: -1 }],
      ['testPercent 2.5', { width: 4, height: 4, channels: 3, testPercent: 2.5 }],
      ['an unknown field', { width: 4, height: 4, channels: 3, depth: 2 }],
      ['width missing', { height: 4, channels: 3 }],
      ['height missing', { width: 4, channels: 3 }],
      ['channels missing', { width: 4, height: 4 }],
      ['an empty object', {}],
      ['an array', [4, 4, 3]],
    ];
    cases.forEach(([label, payload], i) => {
      test(label, async () => {
        const name = `badbody-${i}`;
        assertError(await put(name, payload), 400, 'SENSORY_ERR_BAD_REQUEST');
        assertError(await getDataset(name), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
      });
    });

    test('a body that is not JSON', async () => {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/v1/datasets/badbody-json',
        headers: { ...t.auth('admin'), 'content-type': 'application/json' },
        payload: '{"width": 4, "height": 4,',
      });
      assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
      assertError(await getDataset('badbody-json'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });

    test('no body at all', async () => {
      const res = await t.app.inject({ method: 'PUT', url: '/v1/datasets/badbody-none', headers: t.auth('admin') });
      assert.ok(res.statusCode === 400 || res.statusCode === 415, res.body);
      assert.match(JSON.parse(res.body).error.code, /^SENSORY_ERR_(BAD_REQUEST|UNSUPPORTED_MEDIA_TYPE)$/);
      assertError(await getDataset('badbody-none'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });

    test('a JSON null body', async () => {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/v1/datasets/badbody-null',
        headers: { ...t.auth('admin'), 'content-type': 'application/json' },
        payload: 'null',
      });
      assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    test('a body in another content type → 415 SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', async () => {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/v1/datasets/badbody-type',
        headers: { ...t.auth('admin'), 'content-type': 'application/xml' },
        payload: '<dataset width="4"/>',
      });
      assertError(res, 415, 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE');
      assertError(await getDataset('badbody-type'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    });

    test('the message names the field', async () => {
      const body = assertError(await put('badbody-msg', { width: 4, height: 4, channels: 3, testPercent: 51 }), 400, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(body.error.message, /testPercent/);
    });
  });
});

describe('GET /v1/datasets and /v1/datasets/{name}', () => {
  test('the list holds every dataset with shape, revision and sample count', async () => {
    assert.equal((await put('listed-a', { width: 6, height: 7, channels: 1, testPercent: 5 })).statusCode, 201);
    assert.equal((await put('listed-b', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('listed-b', 'x', 10);
    await addPng('listed-b', 'y', 11);
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('read') });
    assert.equal(res.statusCode, 200);
    const { datasets } = res.json() as { datasets: Record<string, unknown>[] };
    assert.ok(Array.isArray(datasets));
    const a = datasets.find((d) => d.name === 'listed-a');
    const b = datasets.find((d) => d.name === 'listed-b');
    assert.ok(a && b);
    assert.deepEqual(
      { width: a.width, height: a.height, channels: a.channels, testPercent: a.testPercent, revision: a.revision, sampleCount: a.sampleCount },
      { width: 6, height: 7, channels: 1, testPercent: 5, revision: 0, sampleCount: 0 },
    );
    assert.equal(b.sampleCount, 2);
    assert.equal(b.revision, 2);
    assert.equal(new Set(datasets.map((d) => d.name)).size, datasets.length, 'no dataset listed twice');
  });

  test('one dataset: shape, sampleCount, revision and categories with index and count', async () => {
    assert.equal((await put('detail', { width: 8, height: 8, channels: 3, testPercent: 25 })).statusCode, 201);
    await addPng('detail', 'cat', 20);
    await addPng('detail', 'dog', 21);
    await addPng('detail', 'cat', 22);
    const res = await getDataset('detail');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.name, 'detail');
    assert.equal(body.width, 8);
    assert.equal(body.height, 8);
    assert.equal(body.channels, 3);
    assert.equal(body.testPercent, 25);
    assert.equal(body.sampleCount, 3);
    assert.equal(body.revision, 3);
    assert.deepEqual(body.categories, [
      { name: 'cat', index: 0, count: 2 },
      { name: 'dog', index: 1, count: 1 },
    ]);
  });

  test('a dataset without samples has an empty category list', async () => {
    assert.equal((await put('detail-empty', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    assert.deepEqual((await getDataset('detail-empty')).json().categories, []);
  });

  test('an unknown dataset → 404 SENSORY_ERR_DATASET_NOT_FOUND', async () => {
    assertError(await getDataset('no-such-dataset'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });

  test('names are case-sensitive', async () => {
    assert.equal((await put('CaseSet', { width: 4, height: 4, channels: 3 })).statusCode, 201);
    assertError(await getDataset('caseset'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });
});

describe('GET /v1/datasets/{name}/categories', () => {
  test('{categories, map} with stable indices', async () => {
    assert.equal((await put('cats', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('cats', 'zebra', 30);
    await addPng('cats', 'apple', 31);
    await addPng('cats', 'zebra', 32);
    await addPng('cats', 'mango', 33);
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/cats/categories', headers: t.auth('read') });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(body.categories, [
      { name: 'zebra', index: 0, count: 2 },
      { name: 'apple', index: 1, count: 1 },
      { name: 'mango', index: 2, count: 1 },
    ]);
    assert.deepEqual(body.map, { zebra: 0, apple: 1, mango: 2 });
  });

  test('empty for a dataset without samples', async () => {
    assert.equal((await put('cats-empty', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/cats-empty/categories', headers: t.auth('read') });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { categories: [], map: {} });
  });

  test('an unknown dataset → 404', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets/nope/categories', headers: t.auth('read') });
    assertError(res, 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });
});

describe('DELETE /v1/datasets/{name}', () => {
  test('an admin deletes it; then GET, categories and samples are 404 and the list no longer holds it', async () => {
    assert.equal((await put('doomed', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('doomed', 'a', 40);
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed', headers: t.auth('admin') });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().name, 'doomed');
    assertError(await getDataset('doomed'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    assertError(
      await t.app.inject({ method: 'GET', url: '/v1/datasets/doomed/categories', headers: t.auth('read') }),
      404,
      'SENSORY_ERR_DATASET_NOT_FOUND',
    );
    assertError(
      await t.app.inject({ method: 'GET', url: '/v1/datasets/doomed/samples', headers: t.auth('read') }),
      404,
      'SENSORY_ERR_DATASET_NOT_FOUND',
    );
    const list = (await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('read') })).json();
    assert.ok(!list.datasets.some((d: { name: string }) => d.name === 'doomed'));
  });

  test('deleting twice → 404 the second time', async () => {
    assert.equal((await put('doomed-twice', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed-twice', headers: t.auth('admin') })).statusCode, 200);
    assertError(await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed-twice', headers: t.auth('admin') }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });

  test('a deleted name can be created again, fresh, with another shape', async () => {
    assert.equal((await put('reborn', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('reborn', 'old', 41);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/datasets/reborn', headers: t.auth('admin') })).statusCode, 200);
    const again = await put('reborn', { width: 16, height: 16, channels: 1 });
    assert.equal(again.statusCode, 201, again.body);
    const body = (await getDataset('reborn')).json();
    assert.equal(body.sampleCount, 0);
    assert.equal(body.revision, 0);
    assert.equal(body.width, 16);
    assert.deepEqual(body.categories, []);
    // A new sample in the reborn dataset starts the category map afresh.
    const png = await makePng(8, 8, 1, 42);
    const added = await t.app.inject({
      method: 'POST',
      url: '/v1/datasets/reborn/samples',
      headers: t.auth('write'),
      payload: { category: 'new', data: png.toString('base64') },
    });
    assert.equal(added.statusCode, 201, added.body);
    assert.equal(added.json().categoryIndex, 0);
  });

  test('deleting one dataset leaves the others alone', async () => {
    assert.equal((await put('keep-me', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    assert.equal((await put('drop-me', { width: 8, height: 8, channels: 3 })).statusCode, 201);
    await addPng('keep-me', 'k', 43);
    await addPng('drop-me', 'k', 43);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/datasets/drop-me', headers: t.auth('admin') })).statusCode, 200);
    const kept = (await getDataset('keep-me')).json();
    assert.equal(kept.sampleCount, 1);
    const samples = (await t.app.inject({ method: 'GET', url: '/v1/datasets/keep-me/samples', headers: t.auth('read') })).json().samples;
    assert.equal(samples.length, 1);
    const content = await t.app.inject({ method: 'GET', url: `/v1/datasets/keep-me/samples/${samples[0].id}/content`, headers: t.auth('read') });
    assert.equal(content.statusCode, 200);
    assert.deepEqual(content.rawPayload, await makePng(8, 8, 3, 43));
  });

  test('an unknown dataset → 404', async () => {
    assertError(await t.app.inject({ method: 'DELETE', url: '/v1/datasets/never-was', headers: t.auth('admin') }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });
});

describe('auth', () => {
  before(async () => {
    assert.equal((await put('authz', { width: 8, height: 8, channels: 3 })).statusCode, 201);
  });

  const routes: { method: 'GET' | 'PUT' | 'DELETE'; url: string; payload?: object }[] = [
    { method: 'GET', url: '/v1/datasets' },
    { method: 'GET', url: '/v1/datasets/authz' },
    { method: 'GET', url: '/v1/datasets/authz/categories' },
    { method: 'PUT', url: '/v1/datasets/authz-new', payload: { width: 8, height: 8, channels: 3 } },
    { method: 'DELETE', url: '/v1/datasets/authz' },
  ];

  for (const route of routes) {
    test(`${route.method} ${route.url} without a key → 401 SENSORY_ERR_UNAUTHORIZED`, async () => {
      const res = await t.app.inject({ method: route.method, url: route.url, payload: route.payload });
      assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
    });

    test(`${route.method} ${route.url} with an unknown key → 401 SENSORY_ERR_UNAUTHORIZED`, async () => {
      const res = await t.app.inject({ method: route.method, url: route.url, payload: route.payload, headers: { 'api-access-key': 'not-a-key' } });
      assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
    });

    test(`${route.method} ${route.url} with an unknown Bearer key → 401`, async () => {
      const res = await t.app.inject({ method: route.method, url: route.url, payload: route.payload, headers: { authorization: 'Bearer not-a-key' } });
      assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
    });
  }

  test('an empty key → 401', async () => {
    assertError(await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: { 'api-access-key': '' } }), 401, 'SENSORY_ERR_UNAUTHORIZED');
    assertError(await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: { authorization: 'Bearer ' } }), 401, 'SENSORY_ERR_UNAUTHORIZED');
  });

  test('a prefix of a real key → 401', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: { 'api-access-key': KEYS.read.slice(0, -1) } });
    assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
  });

  test('a key that is not a Bearer token in Authorization → 401', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: { authorization: `Basic ${KEYS.admin}` } });
    assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
  });

  test('the read key on PUT → 403 SENSORY_ERR_FORBIDDEN, nothing created', async () => {
    assertError(await put('authz-read-put', { width: 8, height: 8, channels: 3 }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
    assertError(await getDataset('authz-read-put'), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
  });

  test('the write key on DELETE → 403 SENSORY_ERR_FORBIDDEN, dataset kept', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/authz', headers: t.auth('write') });
    assertError(res, 403, 'SENSORY_ERR_FORBIDDEN');
    assert.equal((await getDataset('authz')).statusCode, 200);
  });

  test('the read and read+write keys on DELETE → 403', async () => {
    for (const kind of ['read', 'readWrite'] as const) {
      const res = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/authz', headers: t.auth(kind) });
      assertError(res, 403, 'SENSORY_ERR_FORBIDDEN');
    }
    assert.equal((await getDataset('authz')).statusCode, 200);
  });

  test('the write key may create but (without read) not list', async () => {
    assert.equal((await put('authz-write', { width: 8, height: 8, channels: 3 }, 'write')).statusCode, 201);
    const res = await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('write') });
    assertError(res, 403, 'SENSORY_ERR_FORBIDDEN');
  });

  test('the read+write key may create and list', async () => {
    assert.equal((await put('authz-rw', { width: 8, height: 8, channels: 3 }, 'readWrite')).statusCode, 201);
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('readWrite') })).statusCode, 200);
  });

  test('an unauthenticated request with an invalid name and body is still 401 (auth comes first)', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/datasets/-bad', payload: { width: 0 } });
    assertError(res, 401, 'SENSORY_ERR_UNAUTHORIZED');
  });

  test('the read key on PUT with a bad body is still 403', async () => {
    assertError(await put('authz-403-first', { width: 0 }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
  });

  test('Authorization: Bearer <key> works like API-ACCESS-KEY', async () => {
    const created = await t.app.inject({
      method: 'PUT',
      url: '/v1/datasets/bearer-made',
      headers: { authorization: `Bearer ${KEYS.write}` },
      payload: { width: 8, height: 8, channels: 3 },
    });
    assert.equal(created.statusCode, 201, created.body);
    const read = await t.app.inject({ method: 'GET', url: '/v1/datasets/bearer-made', headers: { authorization: `Bearer ${KEYS.read}` } });
    assert.equal(read.statusCode, 200);
    const forbidden = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/bearer-made', headers: { authorization: `Bearer ${KEYS.read}` } });
    assertError(forbidden, 403, 'SENSORY_ERR_FORBIDDEN');
    const deleted = await t.app.inject({ method: 'DELETE', url: '/v1/datasets/bearer-made', headers: { authorization: `Bearer ${KEYS.admin}` } });
    assert.equal(deleted.statusCode, 200);
  });

  test('the admin key may do everything', async () => {
    assert.equal((await put('authz-admin', { width: 8, height: 8, channels: 3 }, 'admin')).statusCode, 201);
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/datasets', headers: t.auth('admin') })).statusCode, 200);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/datasets/authz-admin', headers: t.auth('admin') })).statusCode, 200);
  });
});
