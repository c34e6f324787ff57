import assert from 'node:assert/strict';
import sharp from 'sharp';
import { after, before, describe, it } from 'node:test';
import { expectError, KEYS, makePng, patternPixels, removeDir, startTestApp, type TestApp } from '../support/harness.js';

const LEGACY_ENV = { SENSORY_LEGACY_DATASET: 'mnist_28x28', SENSORY_API_VERSION: '0.3.0' };

/** Legacy headers; `version` null leaves API-VERSION out. */
function legacyHeaders(key: string = KEYS.admin, version: string | null = '0.3.0'): Record<string, string> {
  return { 'api-access-key': key, ...(version === null ? {} : { 'api-version': version }) };
}

async function store(t: TestApp, body: Record<string, unknown>, headers = legacyHeaders()) {
  return t.app.inject({ method: 'POST', url: '/api/sensory/store', headers, payload: body });
}

function storeBody(category: string, png: Buffer, name = 'mnist', width = 28, height = 28) {
  return { name, width, height, category, data: png.toString('base64') };
}

/** The nested H×W×C arrays of `pixels`. */
function nested(pixels: Buffer, width: number, height: number, channels: number): number[][][] {
  return Array.from({ length: height }, (_, y) =>
    Array.from({ length: width }, (_, x) => Array.from({ length: channels }, (_, c) => pixels[(y * width + x) * channels + c])),
  );
}

describe('legacy dicebox API', () => {
  let t: TestApp;
  /** category → the nested pixels of the images stored in it */
  const stored: Array<{ category: string; data: number[][][] }> = [];

  before(async () => {
    t = await startTestApp(LEGACY_ENV);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  describe('POST /api/sensory/store', () => {
    it('stores a base64 PNG into <name>_<width>x<height>, created with 3 channels', async () => {
      const categories = ['zero', 'one', 'two', 'one', 'zero', 'two'];
      for (const [i, category] of categories.entries()) {
        const res = await store(t, storeBody(category, await makePng(28, 28, 3, i + 1)));
        assert.equal(res.statusCode, 200, res.body);
        assert.match(String(res.headers['content-type']), /application\/json/);
        assert.deepEqual(res.json(), { sensory_store: true });
        stored.push({ category, data: nested(patternPixels(28, 28, 3, i + 1), 28, 28, 3) });
      }
      const dataset = await t.app.inject({ method: 'GET', url: '/v1/datasets/mnist_28x28', headers: t.auth('read') });
      assert.equal(dataset.statusCode, 200, dataset.body);
      const view = dataset.json();
      assert.equal(view.width, 28);
      assert.equal(view.height, 28);
      assert.equal(view.channels, 3);
      assert.equal(view.sampleCount, 6);
    });

    it('accepts a PNG over 1 MiB: the body limit is the sample limit as base64, not the framework default', async () => {
      // Noise does not compress: about 2.2 MB of PNG, 2.9 MB as base64.
      const noise = Buffer.alloc(860 * 860 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const png = await sharp(noise, { raw: { width: 860, height: 860, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
      assert.ok(png.length > 2 * 1024 * 1024, `${png.length} bytes`);
      const res = await store(t, storeBody('big', png, 'large', 32, 32));
      assert.equal(res.statusCode, 200, res.body.slice(0, 300));
    });

    it('converts a greyscale PNG to 3 channels and stretches another size to the dataset size', async () => {
      const res = await store(t, storeBody('grey', await makePng(14, 10, 1, 9), 'other', 20, 16));
      assert.equal(res.statusCode, 200, res.body);
      const view = (await t.app.inject({ method: 'GET', url: '/v1/datasets/other_20x16', headers: t.auth('read') })).json();
      assert.deepEqual([view.width, view.height, view.channels, view.sampleCount], [20, 16, 3, 1]);
    });

    it('storing the same image again is still a success and stores it once', async () => {
      const png = await makePng(28, 28, 3, 1);
      const res = await store(t, storeBody('zero', png));
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { sensory_store: true });
      const view = (await t.app.inject({ method: 'GET', url: '/v1/datasets/mnist_28x28', headers: t.auth('read') })).json();
      assert.equal(view.sampleCount, 6);
    });

    it('the same image under another category is a 409', async () => {
      expectError(await store(t, storeBody('two', await makePng(28, 28, 3, 1))), 409, 'SENSORY_ERR_CATEGORY_CONFLICT');
    });

    it('bytes that are not an image are a 415 and store nothing', async () => {
      expectError(await store(t, { ...storeBody('zero', Buffer.from('hello, not a png')), name: 'junk' }), 415, 'SENSORY_ERR_NOT_AN_IMAGE');
      const junk = await t.app.inject({ method: 'GET', url: '/v1/datasets/junk_28x28', headers: t.auth('read') });
      assert.equal(junk.statusCode, 404, 'a failed store must not create its dataset');
    });

    it('data that is not base64 is a 400', async () => {
      expectError(await store(t, { ...storeBody('zero', Buffer.alloc(0)), data: '***' }), 400, 'SENSORY_ERR_BAD_REQUEST');
    });

    for (const [label, patch] of [
      ['a name with a slash', { name: '../etc' }],
      ['a name with a leading dot', { name: '.mnist' }],
      ['an empty name', { name: '' }],
      ['a category with a slash', { category: 'a/b' }],
      ['a category too long', { category: 'c'.repeat(65) }],
    ] as const) {
      it(`${label} is a 400`, async () => {
        const body = { ...storeBody('zero', await makePng(28, 28, 3, 77)), ...patch };
        expectError(await store(t, body), 400, 'SENSORY_ERR_INVALID_NAME');
      });
    }

    for (const [label, patch] of [
      ['a missing category', { category: undefined }],
      ['a width of 0', { width: 0 }],
      ['a width as text', { width: '28' }],
    ] as const) {
      it(`${label} is a 400`, async () => {
        const body: Record<string, unknown> = { ...storeBody('zero', await makePng(28, 28, 3, 78)), ...patch };
        if (body.category === undefined) delete body.category;
        expectError(await store(t, body), 400);
      });
    }

    it('a read-only key may not store (403)', async () => {
      expectError(await store(t, storeBody('zero', await makePng(28, 28, 3, 79)), legacyHeaders(KEYS.read)), 403, 'SENSORY_ERR_FORBIDDEN');
    });
  });

  describe('GET /api/sensory/category', () => {
    it('answers the category map of SENSORY_LEGACY_DATASET', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/sensory/category', headers: legacyHeaders() });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { category_map: { zero: 0, one: 1, two: 2 } });
    });
  });

  describe('POST /api/sensory/request', () => {
    it('answers 201 {labels: [[i]...], data: N×28×28×3} with exactly those keys', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(KEYS.read), payload: { batch_size: 4, noise: 0 } });
      assert.equal(res.statusCode, 201, res.body);
      assert.match(String(res.headers['content-type']), /application\/json/);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['data', 'labels']);
      assert.equal(body.labels.length, 4);
      for (const label of body.labels) {
        assert.ok(Array.isArray(label) && label.length === 1 && Number.isInteger(label[0]), JSON.stringify(label));
        assert.ok([0, 1, 2].includes(label[0]));
      }
      assert.equal(body.data.length, 4);
      for (const sample of body.data) {
        assert.equal(sample.length, 28);
        for (const row of sample) {
          assert.equal(row.length, 28);
          for (const pixel of row) {
            assert.equal(pixel.length, 3);
            for (const value of pixel) assert.ok(Number.isInteger(value) && value >= 0 && value <= 255);
          }
        }
      }
    });

    it('with noise 0 serves the stored pixels, each with its own label, each sample once', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload: { batch_size: 6, noise: 0 } });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { labels: number[][]; data: number[][][][] };
      const map: Record<string, number> = { zero: 0, one: 1, two: 2 };
      const seen = new Set<number>();
      body.data.forEach((sample, i) => {
        const source = stored.findIndex((entry) => JSON.stringify(entry.data) === JSON.stringify(sample));
        assert.ok(source >= 0, `sample ${i} is none of the stored images`);
        assert.deepEqual(body.labels[i], [map[stored[source].category]]);
        seen.add(source);
      });
      assert.equal(seen.size, 6);
    });

    it('noise is optional; noise 1 augments the pixels', async () => {
      const plain = await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload: { batch_size: 6 } });
      assert.equal(plain.statusCode, 201, plain.body);
      const noisy = await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload: { batch_size: 6, noise: 1 } });
      assert.equal(noisy.statusCode, 201, noisy.body);
      const data = noisy.json().data as number[][][][];
      const untouched = data.filter((sample) => stored.some((entry) => JSON.stringify(entry.data) === JSON.stringify(sample)));
      assert.equal(untouched.length, 0, 'noise 1 left samples unaugmented');
    });

    it('a batch_size above the dataset is a 422; a wrong batch_size or noise a 400', async () => {
      expectError(
        await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload: { batch_size: 7, noise: 0 } }),
        422,
        'SENSORY_ERR_NOT_ENOUGH_SAMPLES',
      );
      for (const payload of [{ batch_size: 0 }, { batch_size: '3' }, { batch_size: 2, noise: 2 }, { noise: 0 }]) {
        expectError(await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload }), 400);
      }
    });
  });

  describe('version and health', () => {
    it('GET /api/version answers the service version and the dicebox lib version', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/version' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['dicebox lib version', 'version']);
      assert.equal(body['dicebox lib version'], '0.3.0');
      assert.equal(typeof body.version, 'string');
      assert.ok(body.version.length > 0);
    });

    it('GET /health/plain answers true', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/health/plain' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.body, 'true');
      assert.equal(res.json(), true);
    });
  });

  describe('keys and versions', () => {
    const calls = [
      { method: 'POST', url: '/api/sensory/store', payload: { name: 'mnist', width: 28, height: 28, category: 'zero', data: 'AAAA' } },
      { method: 'GET', url: '/api/sensory/category' },
      { method: 'POST', url: '/api/sensory/request', payload: { batch_size: 1, noise: 0 } },
    ] as const;

    for (const call of calls) {
      it(`${call.method} ${call.url}: no key → 403, unknown key → 403`, async () => {
        const noKey = await t.app.inject({ ...call, headers: { 'api-version': '0.3.0' } });
        expectError(noKey, 403, 'SENSORY_ERR_FORBIDDEN');
        const unknown = await t.app.inject({ ...call, headers: legacyHeaders('unknown-key-0123456789') });
        expectError(unknown, 403, 'SENSORY_ERR_FORBIDDEN');
      });

      it(`${call.method} ${call.url}: missing or wrong API-VERSION → 400`, async () => {
        expectError(await t.app.inject({ ...call, headers: legacyHeaders(KEYS.admin, null) }), 400, 'SENSORY_ERR_LEGACY_VERSION');
        for (const version of ['0.2.0', '0.3', '0.3.0 ', 'v0.3.0']) {
          const message = expectError(await t.app.inject({ ...call, headers: legacyHeaders(KEYS.admin, version) }), 400, 'SENSORY_ERR_LEGACY_VERSION');
          assert.match(message, /0\.3\.0/);
        }
      });
    }
  });
});

describe('legacy API with another SENSORY_API_VERSION', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SENSORY_API_VERSION: '1.2.3' });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  it('requires that version in API-VERSION and reports it', async () => {
    const png = await makePng(8, 8, 3, 1);
    const body = storeBody('a', png, 'tiny', 8, 8);
    expectError(await store(t, body, legacyHeaders(KEYS.admin, '0.3.0')), 400, 'SENSORY_ERR_LEGACY_VERSION');
    const ok = await store(t, body, legacyHeaders(KEYS.admin, '1.2.3'));
    assert.equal(ok.statusCode, 200, ok.body);
    const version = (await t.app.inject({ method: 'GET', url: '/api/version' })).json();
    assert.equal(version['dicebox lib version'], '1.2.3');
  });
});

describe('legacy batch endpoints without a legacy dataset', () => {
  for (const [label, env] of [
    ['SENSORY_LEGACY_DATASET unset', {}],
    ['SENSORY_LEGACY_DATASET naming a missing dataset', { SENSORY_LEGACY_DATASET: 'absent_28x28' }],
  ] as const) {
    describe(label, () => {
      let t: TestApp;
      before(async () => {
        t = await startTestApp(env);
      });
      after(async () => {
        await t.close();
        removeDir(t.dataDir);
      });

      it('GET /api/sensory/category and POST /api/sensory/request are 404s naming SENSORY_LEGACY_DATASET', async () => {
        const category = await t.app.inject({ method: 'GET', url: '/api/sensory/category', headers: legacyHeaders() });
        assert.match(expectError(category, 404, 'SENSORY_ERR_LEGACY_DATASET_UNSET'), /SENSORY_LEGACY_DATASET/);
        const request = await t.app.inject({ method: 'POST', url: '/api/sensory/request', headers: legacyHeaders(), payload: { batch_size: 1, noise: 0 } });
        assert.match(expectError(request, 404, 'SENSORY_ERR_LEGACY_DATASET_UNSET'), /SENSORY_LEGACY_DATASET/);
      });

      it('storing still works', async () => {
        const res = await store(t, storeBody('a', await makePng(28, 28, 3, 5), 'absent'));
        assert.equal(res.statusCode, 200, res.body);
        if ('SENSORY_LEGACY_DATASET' in env) {
          // Now the dataset it names exists: the legacy batch endpoints serve it.
          const category = await t.app.inject({ method: 'GET', url: '/api/sensory/category', headers: legacyHeaders() });
          assert.equal(category.statusCode, 200, category.body);
          assert.deepEqual(category.json(), { category_map: { a: 0 } });
        }
      });
    });
  }
});
