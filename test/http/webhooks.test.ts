import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { verifyWebhookSignature } from '@sensory/client';
import { verifySignature } from '../../src/domain/webhook.js';
import { addSample, assertError, createDataset, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

/**
 * Webhooks end to end: a real receiver (node:http) gets signed deliveries of each event; a
 * receiver that is down gets the delivery once it is up again (retried with backoff); a hook
 * pointing at a black hole (connections accepted, never answered) does not slow uploads.
 */

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly json: { id: string; type: string; createdAt: string; data: Record<string, any> };
}

class Receiver {
  readonly received: Received[] = [];
  private server: http.Server | undefined;
  answer = 204;

  async listen(port = 0): Promise<number> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.received.push({ headers: request.headers, body, json: JSON.parse(body) });
        response.writeHead(this.answer).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  of(type: string): Received[] {
    return this.received.filter((r) => r.json.type === type);
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }
}

async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let t: TestApp;
const receiver = new Receiver();
let receiverUrl: string;
let seed = 1000;

async function createHook(url: string, events: string[]): Promise<{ id: string; secret: string }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: t.auth('admin'), payload: { url, events } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

async function deliveries(id: string): Promise<{ id: string; event: string; status: string; attempts: number; lastStatus: number | null; lastError: string | null; body: string }[]> {
  const res = await t.app.inject({ method: 'GET', url: `/v1/webhooks/${id}/deliveries`, headers: t.auth('admin') });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().deliveries;
}

async function hookCount(): Promise<number> {
  return (await t.app.inject({ method: 'GET', url: '/v1/webhooks', headers: t.auth('admin') })).json().webhooks.length;
}

before(async () => {
  t = await startTestApp({ SENSORY_WEBHOOK_RETRY_BASE_MS: '200', SENSORY_WEBHOOK_DEBOUNCE_MS: '200', SENSORY_WEBHOOK_TIMEOUT_MS: '1000' });
  await t.runtime.startWorker(1);
  t.runtime.dispatcher.start();
  receiverUrl = `http://127.0.0.1:${await receiver.listen()}/hooks/sensory`;
});
after(async () => {
  await receiver.close();
  await t.close();
  removeDir(t.dataDir);
});

describe('a hook and its events, signed', () => {
  let hook: { id: string; secret: string };
  before(async () => {
    hook = await createHook(receiverUrl, ['dataset.revision', 'order.completed', 'order.failed', 'export.completed']);
  });

  test('created by an admin with a secret shown once; listed without it', async () => {
    assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{40,}$/);
    const listed = (await t.app.inject({ method: 'GET', url: '/v1/webhooks', headers: t.auth('admin') })).json().webhooks;
    assert.ok(listed.some((h: { id: string }) => h.id === hook.id));
    assert.ok(listed.every((h: Record<string, unknown>) => !('secret' in h)));
    const one = (await t.app.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}`, headers: t.auth('admin') })).json();
    assert.equal(one.secret, undefined);
    assertError(await t.app.inject({ method: 'GET', url: '/v1/webhooks', headers: t.auth('readWrite') }), 403, 'SENSORY_ERR_FORBIDDEN');
    assertError(await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: t.auth('readWrite'), payload: { url: receiverUrl, events: ['order.failed'] } }), 403, 'SENSORY_ERR_FORBIDDEN');
  });

  test('dataset.revision: a burst of uploads gives few events, the last with the newest revision; signature verified', async () => {
    await createDataset(t, 'hooked', { width: 8, height: 8, channels: 3 });
    for (let i = 0; i < 10; i++) await addSample(t, 'hooked', i % 2 ? 'a' : 'b', await makePng(8, 8, 3, seed++));
    const events = await until(() => {
      const got = receiver.of('dataset.revision').filter((r) => r.json.data.dataset === 'hooked');
      return got.at(-1)?.json.data.revision === 10 ? got : undefined;
    }, 'the dataset.revision event of revision 10');
    assert.ok(events.length < 10, `${events.length} events for 10 uploads: debounced`);
    const last = events.at(-1)!;
    assert.equal(last.headers['sensory-event'], 'dataset.revision');
    assert.equal(last.headers['sensory-webhook'], hook.id);
    assert.equal(last.headers['content-type'], 'application/json');
    const signature = String(last.headers['sensory-signature']);
    assert.match(signature, /^t=\d+,v1=[0-9a-f]{64}$/);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifySignature(hook.secret, signature, last.body, now), true, 'signed with the secret');
    assert.equal(verifySignature(hook.secret, signature, last.body.replace('hooked', 'hacked'), now), false, 'another body');
    assert.equal(verifySignature('whsec_other', signature, last.body, now), false, 'another secret');
    assert.equal(verifySignature(hook.secret, signature, last.body, now + 3600), false, 'a replay an hour later');
    assert.equal(last.json.id, last.headers['sensory-delivery']);
    assert.equal(verifyWebhookSignature(hook.secret, signature, last.body), true, 'the SDK verifies it too');
    assert.equal(verifyWebhookSignature(hook.secret, signature, Buffer.from(last.body)), true);
    assert.equal(verifyWebhookSignature(hook.secret, signature, `${last.body} `), false);
  });

  test('order.completed and order.failed', async () => {
    const placed = (await t.app.inject({ method: 'POST', url: '/v1/datasets/hooked/orders', headers: t.auth('read'), payload: { size: 4, seed: 1 } })).json();
    for (let i = 0; i < 50; i++) {
      const poll = (await t.app.inject({ method: 'POST', url: `/v1/orders/${placed.id}/poll`, headers: t.auth('read'), payload: { max: 100, waitMs: 500 } })).json();
      if (poll.done) break;
    }
    const completed = await until(() => receiver.of('order.completed').find((r) => r.json.data.order === placed.id), 'order.completed');
    assert.equal(completed.json.data.status, 'complete');
    assert.equal(completed.json.data.dataset, 'hooked');

    await createDataset(t, 'doomed', { width: 8, height: 8, channels: 3 });
    await addSample(t, 'doomed', 'a', await makePng(8, 8, 3, seed++));
    const doomed = (await t.app.inject({ method: 'POST', url: '/v1/datasets/doomed/orders', headers: t.auth('read'), payload: { size: 1000, seed: 1 } })).json();
    await t.app.inject({ method: 'DELETE', url: '/v1/datasets/doomed', headers: t.auth('admin') });
    await t.app.inject({ method: 'GET', url: `/v1/orders/${doomed.id}`, headers: t.auth('read') });
    const failed = await until(() => receiver.of('order.failed').find((r) => r.json.data.order === doomed.id), 'order.failed');
    assert.match(failed.json.data.error, /deleted/);
  });

  test('export.completed, with the files', async () => {
    const job = (await t.app.inject({ method: 'POST', url: '/v1/datasets/hooked/exports', headers: t.auth('read'), payload: { format: 'webdataset' } })).json();
    const event = await until(() => receiver.of('export.completed').find((r) => r.json.data.export === job.id), 'export.completed');
    assert.equal(event.json.data.status, 'complete');
    assert.equal(event.json.data.files.length, 1);
    assert.equal(event.json.data.files[0].url, `/v1/exports/${job.id}/files/0`);
  });

  test('the delivery log: each delivery, its attempts and answer', async () => {
    // Events of the tests above may still be in flight (a debounced dataset.revision of the
    // doomed dataset, say): the log is read once every delivery has had its attempt.
    const log = await until(async () => {
      const all = await deliveries(hook.id);
      return all.every((d) => d.attempts > 0) ? all : undefined;
    }, 'every delivery attempted');
    assert.ok(log.length >= 4);
    for (const entry of log) {
      assert.equal(entry.status, 'delivered');
      assert.equal(entry.attempts, 1);
      assert.equal(entry.lastStatus, 204);
    }
    assert.ok(new Set(log.map((d) => d.event)).size >= 4);
  });
});

describe('retries', () => {
  test('a receiver that is down gets the delivery once it is up, after retries with backoff', async () => {
    const port = await freePort();
    const late = new Receiver();
    const hook = await createHook(`http://127.0.0.1:${port}/late`, ['export.completed']);
    const job = (await t.app.inject({ method: 'POST', url: '/v1/datasets/hooked/exports', headers: t.auth('read'), payload: { format: 'safetensors' } })).json();
    const failing = await until(async () => (await deliveries(hook.id)).find((d) => d.attempts >= 2), 'two failed attempts');
    assert.equal(failing.status, 'pending');
    assert.equal(failing.lastStatus, null);
    assert.match(String(failing.lastError), /ECONNREFUSED/);
    await late.listen(port);
    try {
      const got = await until(() => late.of('export.completed')[0], 'the delivery after the receiver came up');
      assert.equal(got.json.data.export, job.id);
      assert.equal(verifySignature(hook.secret, String(got.headers['sensory-signature']), got.body, Math.floor(Date.now() / 1000)), true);
      const [done] = await until(async () => {
        const log = await deliveries(hook.id);
        return log[0]?.status === 'delivered' ? log : undefined;
      }, 'delivered in the log');
      assert.ok(done.attempts >= 3, `${done.attempts} attempts`);
      assert.equal(late.of('export.completed').length, 1, 'delivered once');
    } finally {
      await late.close();
    }
  });

  test('a receiver answering 500 is retried; a 2xx ends it', async () => {
    const flaky = new Receiver();
    flaky.answer = 500;
    const port = await flaky.listen();
    try {
      const hook = await createHook(`http://127.0.0.1:${port}/`, ['export.completed']);
      await t.app.inject({ method: 'POST', url: '/v1/datasets/hooked/exports', headers: t.auth('read'), payload: { format: 'imagefolder' } });
      await until(() => (flaky.received.length >= 2 ? true : undefined), 'two attempts');
      const [pending] = await deliveries(hook.id);
      assert.equal(pending.lastStatus, 500);
      assert.equal(pending.lastError, 'answered 500');
      flaky.answer = 200;
      await until(async () => ((await deliveries(hook.id))[0].status === 'delivered' ? true : undefined), 'delivered');
      const bodies = new Set(flaky.received.map((r) => r.body));
      assert.equal(bodies.size, 1, 'every attempt sends the same body');
    } finally {
      await flaky.close();
    }
  });
});

describe('a black hole does not slow uploads', () => {
  test('uploads take about as long with a hook whose URL never answers', { timeout: 120_000 }, async () => {
    const sockets = new Set<net.Socket>();
    const hole = net.createServer((socket) => sockets.add(socket)); // accepts, never answers
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    try {
      await createDataset(t, 'latency', { width: 8, height: 8, channels: 3 });
      const pngs = await Promise.all(Array.from({ length: 80 }, () => makePng(8, 8, 3, seed++)));
      const time = async (batch: Buffer[]) => {
        const ms: number[] = [];
        for (const png of batch) {
          const started = performance.now();
          await addSample(t, 'latency', 'x', png);
          ms.push(performance.now() - started);
          await sleep(5);
        }
        return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
      };
      const baseline = await time(pngs.slice(0, 40));
      const hook = await createHook(`http://127.0.0.1:${(hole.address() as AddressInfo).port}/`, ['dataset.revision', 'order.completed', 'order.failed', 'export.completed']);
      const withHook = await time(pngs.slice(40));
      const log = await until(async () => {
        const entries = await deliveries(hook.id);
        return entries.some((d) => d.lastError?.startsWith('no answer')) ? entries : undefined;
      }, 'an attempt that timed out');
      assert.ok(log.every((d) => d.status === 'pending'));
      assert.ok(withHook < baseline * 2 + 10, `median upload ${withHook.toFixed(1)} ms with the hook, ${baseline.toFixed(1)} ms without`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => hole.close(resolve));
    }
  });
});

describe('wrong inputs: a 4xx naming the field, and no hook', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['an ftp URL', { url: 'ftp://example.com/x', events: ['order.completed'] }, /url.*http/],
    ['a file URL', { url: 'file:///etc/passwd', events: ['order.completed'] }, /url/],
    ['not a URL', { url: 'example.com/hook', events: ['order.completed'] }, /url/],
    ['credentials in the URL', { url: 'http://user:pw@example.com/', events: ['order.completed'] }, /url.*credentials/],
    ['no URL', { events: ['order.completed'] }, /url/],
    ['an unknown event', { url: 'https://example.com/', events: ['order.started'] }, /events.*order\.started/],
    ['no events', { url: 'https://example.com/', events: [] }, /events/],
    ['events not a list', { url: 'https://example.com/', events: 'order.completed' }, /events/],
    ['an unknown field', { url: 'https://example.com/', events: ['order.completed'], secret: 'mine' }, /secret/],
  ];
  for (const [what, body, field] of cases) {
    test(what, async () => {
      const before = await hookCount();
      const error = assertError(await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: t.auth('admin'), payload: body }), 400, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(error.error.message, field);
      assert.equal(await hookCount(), before);
    });
  }

  test('an unknown hook: 404 on read, delete and deliveries; a bad limit: 400', async () => {
    for (const [method, url] of [['GET', '/v1/webhooks/nope'], ['DELETE', '/v1/webhooks/nope'], ['GET', '/v1/webhooks/nope/deliveries']] as const) {
      assertError(await t.app.inject({ method, url, headers: t.auth('admin') }), 404, 'SENSORY_ERR_WEBHOOK_NOT_FOUND');
    }
    const hook = await createHook('https://example.invalid/', ['export.failed']);
    const bad = assertError(await t.app.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}/deliveries?limit=0`, headers: t.auth('admin') }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assert.match(bad.error.message, /limit/);
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${hook.id}`, headers: t.auth('admin') })).statusCode, 200);
    assertError(await t.app.inject({ method: 'GET', url: `/v1/webhooks/${hook.id}`, headers: t.auth('admin') }), 404, 'SENSORY_ERR_WEBHOOK_NOT_FOUND');
  });
});
