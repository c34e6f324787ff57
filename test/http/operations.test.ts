import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addSample, makePng, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

/** One sample of a Prometheus text exposition: its value, or undefined when absent. */
function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('operations: health, metrics, OpenAPI', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp({ SENSORY_LEGACY_DATASET: 'ops_4x4' });
    await t.runtime.startWorker(1);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const scrape = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    return res.body;
  };

  it('/health/live answers ok without a key, with a request id', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/live' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
    assert.ok(res.headers['x-request-id']);
    const echoed = await t.app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'trace-0123' } });
    assert.equal(echoed.headers['x-request-id'], 'trace-0123');
  });

  it('/health/ready names its checks: database, data dir and queue', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.down, []);
    assert.ok(Object.keys(body.checks).length >= 3, res.body);
    for (const state of Object.values(body.checks)) assert.equal(state, 'ok');
  });

  it('/metrics counts samples stored (/v1 and legacy), small-batch samples and order samples delivered', async () => {
    const before = await scrape();
    assert.ok(metric(before, 'process_cpu_user_seconds_total') !== undefined, 'the Node process metrics are there');
    const stored0 = metric(before, 'sensory_samples_stored_total') ?? 0;

    await seedDataset(t, 'ops_4x4', { width: 4, height: 4, channels: 3 }, 6, ['a', 'b']);
    // A duplicate is not a new sample: not counted.
    const again = await t.app.inject({ method: 'POST', url: '/v1/datasets/ops_4x4/samples?category=a', headers: { ...t.auth('write'), 'content-type': 'image/png' }, payload: await makePng(4, 4, 3, 1) });
    assert.equal(again.statusCode, 200, again.body);
    const legacy = await t.app.inject({
      method: 'POST',
      url: '/api/sensory/store',
      headers: { ...t.auth('admin'), 'api-version': '0.3.0', 'content-type': 'application/json' },
      payload: { name: 'ops', width: 4, height: 4, category: 'c', data: (await makePng(4, 4, 3, 99)).toString('base64') },
    });
    assert.equal(legacy.statusCode, 200, legacy.body);

    const batch = await t.app.inject({ method: 'POST', url: '/v1/datasets/ops_4x4/batches', headers: t.auth('read'), payload: { size: 5, seed: 1 } });
    assert.equal(batch.statusCode, 200, batch.body);

    const order = await t.app.inject({ method: 'POST', url: '/v1/datasets/ops_4x4/orders', headers: t.auth('read'), payload: { size: 9, seed: 2 } });
    assert.equal(order.statusCode, 202, order.body);
    let delivered = 0;
    for (let i = 0; i < 50 && delivered < 9; i++) {
      const poll = await t.app.inject({ method: 'POST', url: `/v1/orders/${order.json().id}/poll`, headers: { ...t.auth('read'), accept: 'application/x-safetensors' }, payload: { max: 4, waitMs: 1000 } });
      assert.equal(poll.statusCode, 200, poll.body);
      delivered = 9 - Number(poll.headers['sensory-remaining']);
    }
    assert.equal(delivered, 9);
    // Counted once each response is fully sent, which inject reports right after its reply.
    await sleep(50);

    const now = await scrape();
    assert.equal(metric(now, 'sensory_samples_stored_total'), stored0 + 7, '6 through /v1 and 1 through the legacy store; the duplicate not counted');
    assert.equal(metric(now, 'sensory_batch_samples_served_total', '{format="json"}'), 5);
    assert.equal(metric(now, 'sensory_order_samples_delivered_total', '{format="safetensors"}'), 9);
    assert.ok((metric(now, 'sensory_http_request_duration_seconds_count', '{method="POST",route="/v1/datasets/:name/batches",status="200"}') ?? 0) >= 1, 'request durations by method, route and status');
  });

  it('/metrics counts the samples of a legacy batch under format="legacy"', async () => {
    const before = metric(await scrape(), 'sensory_batch_samples_served_total', '{format="legacy"}') ?? 0;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/sensory/request',
      headers: { ...t.auth('read'), 'api-version': '0.3.0', 'content-type': 'application/json' },
      payload: { batch_size: 3 },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(metric(await scrape(), 'sensory_batch_samples_served_total', '{format="legacy"}'), before + 3);
  });

  it('/openapi.json describes every API route, and /docs serves a page of it', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const spec = res.json();
    assert.match(spec.openapi, /^3\./);
    for (const path of ['/v1/datasets/{name}', '/v1/datasets/{name}/samples', '/v1/datasets/{name}/batches', '/v1/datasets/{name}/orders', '/v1/orders', '/v1/orders/{id}', '/v1/orders/{id}/poll', '/api/sensory/store', '/api/sensory/poll']) {
      assert.ok(spec.paths[path], `${path} is described`);
    }
    assert.ok(spec.paths['/v1/orders/{id}/poll'].post.requestBody, 'the poll body schema is there');
    const docs = await t.app.inject({ method: 'GET', url: '/docs' });
    assert.ok([200, 302].includes(docs.statusCode), `/docs answered ${docs.statusCode}`);
  });

  it('/health/ready answers 503 naming the data dir when it cannot be written, then ok again', async () => {
    // The segment files' folder gone (moved away and back: the open segment keeps its place).
    const segments = join(t.dataDir, 'blobs', 'segments');
    renameSync(segments, `${segments}.away`);
    try {
      const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json().status, 'unavailable');
      assert.equal(res.json().down.length, 1, res.body);
      assert.match(res.json().down[0], /data|blob|files|dir/i);
      // Unauthenticated: only "down", never the path or the system's message.
      assert.equal(res.json().checks[res.json().down[0]], 'down', res.body);
      assert.ok(!res.body.includes(t.dataDir) && !/ENOENT|EACCES/.test(res.body), res.body);
    } finally {
      renameSync(`${segments}.away`, segments);
    }
    const back = await t.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(back.statusCode, 200, back.body);
    // And an upload works again.
    await addSample(t, 'ops_4x4', 'a', await makePng(4, 4, 3, 500));
  });
});
