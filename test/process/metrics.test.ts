/**
 * /metrics of a real `sensory serve` process after real traffic over HTTP: samples and datasets
 * by dataset (capped), ingest and batch latency histograms, orders in flight by status, samples
 * waiting on result queues, pixel bytes served and upload rejects by reason. And the Grafana
 * dashboard in deploy/ queries only metrics that the service exports.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, ROOT, sleep, startServer, stop, tempDir, type Server } from '../support/process.js';
import { tarOf } from '../support/tar.js';

const KEY = 'metrics-admin-key-0123456789';

/** One sample of a Prometheus text exposition: its value, or undefined when absent. */
function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Every series name of the exposition (histograms also under _bucket, _sum and _count). */
function seriesNames(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
  );
}

describe('/metrics after real traffic', () => {
  let server: Server;
  const scrape = async () => {
    const reply = await call(server.url, undefined, 'GET', '/metrics');
    assert.equal(reply.status, 200);
    return reply.body.toString('utf8');
  };
  const api = (method: string, path: string, options = {}) => call(server.url, KEY, method, path, options);

  before(async () => {
    ensureBuilt();
    server = await startServer(join(tempDir('sensory-metrics-'), 'data'), { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_LOG_LEVEL: 'warn' });
  });

  after(async () => {
    if (server) await stop(server).catch(() => undefined);
    await killAll();
    removeTempDirs();
  });

  test('uploads, rejects, batches and orders move the counters, histograms and gauges where the work happens', async () => {
    const before = await scrape();
    assert.equal(metric(before, 'sensory_datasets'), 0);
    assert.equal(metric(before, 'sensory_orders_in_flight', '{status="running"}'), 0);

    assert.equal((await api('PUT', '/v1/datasets/m1', { json: { width: 8, height: 8, channels: 3 } })).status, 201);
    assert.equal((await api('PUT', '/v1/datasets/m2', { json: { width: 4, height: 4, channels: 1 } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await api('POST', '/v1/datasets/m1/samples?category=a', { bytes: await makePng(8, 8, 3, i) })).status, 201);
    assert.equal((await api('POST', '/v1/datasets/m1/samples?category=a', { bytes: await makePng(8, 8, 3, 0) })).status, 200, 'a duplicate');
    assert.equal((await api('POST', '/v1/datasets/m1/samples?category=a', { bytes: Buffer.from('not an image at all') })).status, 415);
    assert.equal((await api('POST', '/v1/datasets/m1/samples?category=b', { bytes: await makePng(8, 8, 3, 0) })).status, 409, 'the same bytes under another category');
    const tar = await tarOf([
      { name: 'b/1.png', data: await makePng(8, 8, 3, 10) },
      { name: 'b/2.png', data: await makePng(8, 8, 3, 11) },
      { name: 'b/notes.txt', data: Buffer.from('text') },
    ]);
    const bulk = await api('POST', '/v1/datasets/m1/samples/bulk', { bytes: tar, type: 'application/x-tar' });
    assert.equal(bulk.status, 201, bulk.body.toString());
    assert.equal((await api('POST', '/v1/datasets/m2/samples?category=x', { bytes: await makePng(4, 4, 1, 1) })).status, 201);

    const json = await api('POST', '/v1/datasets/m1/batches', { json: { size: 4, seed: 1 } });
    assert.equal(json.status, 200);
    const tensors = await api('POST', '/v1/datasets/m1/batches', { json: { size: 5, seed: 2 }, accept: 'application/x-safetensors' });
    assert.equal(tensors.status, 200);

    // One order polled to its end, one left in flight with samples produced and not taken.
    const done = (await api('POST', '/v1/datasets/m1/orders', { json: { size: 6, seed: 3 } })).json();
    let remaining = 6;
    for (let i = 0; i < 50 && remaining > 0; i++) {
      const poll = await api('POST', `/v1/orders/${done.id}/poll`, { json: { max: 4, waitMs: 1000 }, accept: 'application/x-safetensors' });
      assert.equal(poll.status, 200);
      remaining = Number(poll.headers.get('sensory-remaining'));
    }
    assert.equal(remaining, 0);
    const waiting = await api('POST', '/v1/datasets/m1/orders', { json: { size: 50, seed: 4, shardSize: 10 } });
    assert.equal(waiting.status, 202);

    let now = await scrape();
    for (let i = 0; i < 50 && !(metric(now, 'sensory_result_queue_samples')! > 0); i++) {
      await sleep(100);
      now = await scrape();
    }
    const record = 8 * 8 * 3;
    assert.equal(metric(now, 'sensory_datasets'), 2);
    assert.equal(metric(now, 'sensory_dataset_samples', '{dataset="m1"}'), 5);
    assert.equal(metric(now, 'sensory_dataset_samples', '{dataset="m2"}'), 1);
    assert.equal(metric(now, 'sensory_ingest_duration_seconds_count', '{outcome="stored"}'), 6);
    assert.equal(metric(now, 'sensory_ingest_duration_seconds_count', '{outcome="duplicate"}'), 1);
    assert.equal(metric(now, 'sensory_ingest_duration_seconds_count', '{outcome="rejected"}'), 3, 'the 415 and the 409 of single uploads, the text member of the bulk upload');
    assert.ok(metric(now, 'sensory_ingest_duration_seconds_sum', '{outcome="stored"}')! > 0);
    assert.equal(metric(now, 'sensory_upload_rejects_total', '{reason="SENSORY_ERR_NOT_AN_IMAGE"}'), 2, 'the raw body and the bulk member');
    assert.equal(metric(now, 'sensory_upload_rejects_total', '{reason="SENSORY_ERR_CATEGORY_CONFLICT"}'), 1);
    assert.equal(metric(now, 'sensory_batch_duration_seconds_count', '{format="json"}'), 1);
    assert.equal(metric(now, 'sensory_batch_duration_seconds_count', '{format="safetensors"}'), 1);
    assert.equal(metric(now, 'sensory_pixel_bytes_served_total', '{route="batch"}'), 9 * record);
    assert.equal(metric(now, 'sensory_pixel_bytes_served_total', '{route="order"}'), 6 * record);
    const inFlight = (metric(now, 'sensory_orders_in_flight', '{status="queued"}') ?? 0) + (metric(now, 'sensory_orders_in_flight', '{status="running"}') ?? 0);
    assert.equal(inFlight, 1, 'the order left waiting; the finished one is not in flight');
    assert.ok(metric(now, 'sensory_result_queue_samples')! > 0, 'samples produced for the waiting order and not taken');

    // Cancelled: no longer in flight, nothing waiting.
    assert.equal((await api('DELETE', `/v1/orders/${waiting.json().id}`)).status, 200);
    await sleep(1100);
    const cancelled = await scrape();
    assert.equal(metric(cancelled, 'sensory_orders_in_flight', '{status="running"}'), 0);
    assert.equal(metric(cancelled, 'sensory_orders_in_flight', '{status="queued"}'), 0);
    assert.equal(metric(cancelled, 'sensory_result_queue_samples'), 0);
  });

  test('export jobs and webhook deliveries by status', async () => {
    const before = await scrape();
    for (const status of ['queued', 'running', 'complete', 'failed']) assert.equal(metric(before, 'sensory_export_jobs', `{status="${status}"}`), 0, `export jobs ${status}`);
    for (const status of ['pending', 'delivered', 'failed']) assert.equal(metric(before, 'sensory_webhook_deliveries', `{status="${status}"}`), 0, `deliveries ${status}`);
    // A hook to a port where nothing listens: its deliveries stay pending (retried with backoff).
    const hook = await api('POST', '/v1/webhooks', { json: { url: 'http://127.0.0.1:9/hook', events: ['export.completed'] } });
    assert.equal(hook.status, 201, hook.body.toString());
    assert.equal((await api('PUT', '/v1/datasets/mx', { json: { width: 8, height: 8, channels: 3 } })).status, 201);
    assert.equal((await api('POST', '/v1/datasets/mx/samples?category=a', { bytes: await makePng(8, 8, 3, 90) })).status, 201);
    const job = await api('POST', '/v1/datasets/mx/exports', { json: { format: 'webdataset' } });
    assert.equal(job.status, 202, job.body.toString());
    let text = '';
    for (let i = 0; i < 100; i++) {
      await sleep(200);
      text = await scrape();
      if (metric(text, 'sensory_export_jobs', '{status="complete"}') === 1 && metric(text, 'sensory_webhook_deliveries', '{status="pending"}') === 1) break;
    }
    assert.equal(metric(text, 'sensory_export_jobs', '{status="complete"}'), 1);
    assert.equal(metric(text, 'sensory_export_jobs', '{status="queued"}'), 0);
    assert.equal(metric(text, 'sensory_webhook_deliveries', '{status="pending"}'), 1, 'export.completed waits for its receiver');
    assert.equal((await api('DELETE', `/v1/webhooks/${hook.json().id}`)).status, 200);
    assert.equal((await api('DELETE', '/v1/datasets/mx')).status, 200);
    await sleep(1100);
    assert.equal(metric(await scrape(), 'sensory_webhook_deliveries', '{status="pending"}'), 0, 'a hook removed takes its deliveries with it');
  });

  test(`samples by dataset name at most the 50 largest datasets and sum the rest as dataset="_other"`, async () => {
    for (let i = 0; i < 55; i++) assert.equal((await api('PUT', `/v1/datasets/cap-${String(i).padStart(2, '0')}`, { json: { width: 4, height: 4, channels: 1 } })).status, 201);
    await sleep(1100);
    const text = await scrape();
    const series = text.split('\n').filter((line) => line.startsWith('sensory_dataset_samples{'));
    assert.equal(series.length, 51, '50 datasets and _other');
    assert.equal(metric(text, 'sensory_datasets'), 57);
    // The two datasets with samples are among the named ones.
    assert.equal(metric(text, 'sensory_dataset_samples', '{dataset="m1"}'), 5);
    assert.equal(metric(text, 'sensory_dataset_samples', '{dataset="_other"}'), 0);
  });

  test('every metric the Grafana dashboard queries is exported', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'sensory-dashboard.json'), 'utf8'));
    const exprs: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'expr' && typeof value === 'string') exprs.push(value);
          else walk(value);
        }
      }
    };
    walk(dashboard);
    assert.ok(exprs.length >= 10, `the dashboard has its queries (${exprs.length})`);
    const exported = seriesNames(await scrape());
    const functions = new Set(['sum', 'rate', 'irate', 'increase', 'histogram_quantile', 'by', 'without', 'le', 'max', 'min', 'avg', 'topk', 'count', 'clamp_min', 'on', 'ignoring', 'group_left', 'offset', 'or', 'and', 'unless', 'vector', 'time', 'label_replace', 'sort_desc']);
    for (const expr of exprs) {
      // Metric names: identifiers outside label matchers and range selectors.
      const names = expr
        .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
        .replace(/\{[^}]*\}/g, '')
        .replace(/\[[^\]]*\]/g, '')
        .replace(/"[^"]*"/g, '')
        .match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)!
        .filter((word) => !functions.has(word) && !/^\d/.test(word) && word !== 'e');
      assert.ok(names.length > 0, `a query names a metric: ${expr}`);
      for (const name of names) assert.ok(exported.has(name), `${name} (in ${expr}) is exported`);
    }
  });
});
