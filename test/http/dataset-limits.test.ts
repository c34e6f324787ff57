/**
 * The dataset-side bounds: bytes per record (width × height × channels), pixel bytes per dataset,
 * and the size of a small batch's answer. Each refusal names its setting and stores nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addSample, assertError, createDataset, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

describe('dataset limits', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp({
      SENSORY_MAX_RECORD_BYTES: String(512 * 512 * 3),
      SENSORY_MAX_DATASET_PIXEL_BYTES: String(1024 * 1024),
      SENSORY_MAX_BATCH_BYTES: String(64 * 1024),
    });
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  it('a shape above SENSORY_MAX_RECORD_BYTES is 413 SENSORY_ERR_RECORD_TOO_LARGE and creates nothing', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/datasets/huge', headers: t.auth(), payload: { width: 4096, height: 4096, channels: 3 } });
    const body = assertError(res, 413, 'SENSORY_ERR_RECORD_TOO_LARGE');
    assert.match(body.error.message, /SENSORY_MAX_RECORD_BYTES/);
    assert.match(body.error.message, /50331648/);
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/datasets/huge', headers: t.auth() })).statusCode, 404);
    await createDataset(t, 'at-the-limit', { width: 512, height: 512, channels: 3 });
  });

  it('a sample that would take the pixel file above SENSORY_MAX_DATASET_PIXEL_BYTES is 413 SENSORY_ERR_DATASET_TOO_LARGE, stored nothing', async () => {
    // 196,608 bytes a record: slots 0–4 fit in 1 MiB, slot 5 does not.
    await createDataset(t, 'filling', { width: 256, height: 256, channels: 3 });
    for (let seed = 0; seed < 5; seed++) await addSample(t, 'filling', 'a', await makePng(32, 32, 3, seed));
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/datasets/filling/samples?category=a',
      headers: { ...t.auth(), 'content-type': 'image/png' },
      payload: await makePng(32, 32, 3, 99),
    });
    const body = assertError(res, 413, 'SENSORY_ERR_DATASET_TOO_LARGE');
    assert.match(body.error.message, /SENSORY_MAX_DATASET_PIXEL_BYTES/);
    const view = await t.app.inject({ method: 'GET', url: '/v1/datasets/filling', headers: t.auth() });
    assert.equal(view.json().sampleCount, 5);
  });

  it('a small batch whose answer would pass SENSORY_MAX_BATCH_BYTES is 413 SENSORY_ERR_BATCH_TOO_LARGE; safetensors, 6× smaller, is served', async () => {
    // 32×32×3 = 3,072 values: as JSON up to 18,432 bytes a sample, 4 of them pass 64 KiB; as safetensors 12,288.
    await createDataset(t, 'batchy', { width: 32, height: 32, channels: 3 });
    for (let seed = 0; seed < 4; seed++) await addSample(t, 'batchy', 'a', await makePng(32, 32, 3, seed));
    const json = await t.app.inject({ method: 'POST', url: '/v1/datasets/batchy/batches', headers: t.auth(), payload: { size: 4 } });
    const body = assertError(json, 413, 'SENSORY_ERR_BATCH_TOO_LARGE');
    assert.match(body.error.message, /SENSORY_MAX_BATCH_BYTES/);
    const tensors = await t.app.inject({
      method: 'POST',
      url: '/v1/datasets/batchy/batches',
      headers: { ...t.auth(), accept: 'application/x-safetensors' },
      payload: { size: 4 },
    });
    assert.equal(tensors.statusCode, 200, tensors.body.slice(0, 200));
    assert.ok(tensors.rawPayload.length < 64 * 1024);
    const small = await t.app.inject({ method: 'POST', url: '/v1/datasets/batchy/batches', headers: t.auth(), payload: { size: 3 } });
    assert.equal(small.statusCode, 200);
    assert.ok(small.rawPayload.length < 64 * 1024, `${small.rawPayload.length} bytes`);
  });
});
