/**
 * The webhook outbox is durable: deliveries pending when `sensory serve` is SIGKILLed (their
 * receiver was down) are sent by the restarted process once the receiver is up, signed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { verifyWebhookSignature } from '@sensory/client';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, sleep, startServer, stop, tempDir } from '../support/process.js';

const KEY = 'webhook-outbox-key-0123456789';
const ENV = { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_WEBHOOK_RETRY_BASE_MS: '200', SENSORY_WEBHOOK_TIMEOUT_MS: '1000', SENSORY_WEBHOOK_DEBOUNCE_MS: '200' };

before(() => ensureBuilt());
after(async () => {
  await killAll();
  removeTempDirs();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('pending deliveries survive a SIGKILL and are sent by the restarted process', { timeout: 120_000 }, async () => {
  const dataDir = tempDir('sensory-webhook-outbox-');
  const port = await freePort();
  let server = await startServer(dataDir, ENV);
  const created = await call(server.url, KEY, 'POST', '/v1/webhooks', { json: { url: `http://127.0.0.1:${port}/in`, events: ['dataset.revision'] } });
  assert.equal(created.status, 201);
  const { id, secret } = created.json() as { id: string; secret: string };
  assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/outbox', { json: { width: 8, height: 8, channels: 3 } })).status, 201);
  for (let i = 0; i < 3; i++) assert.equal((await call(server.url, KEY, 'POST', '/v1/datasets/outbox/samples?category=a', { bytes: await makePng(8, 8, 3, i + 1) })).status, 201);
  // Killed once the event of the last revision (3) is in the outbox and was tried: no event is left to write.
  let log: { id: string; status: string; attempts: number; body: string }[] = [];
  const lastTried = () => log.some((d) => d.attempts >= 1 && JSON.parse(d.body).data.revision === 3);
  for (let i = 0; i < 200 && !lastTried(); i++) {
    await sleep(50);
    log = (await call(server.url, KEY, 'GET', `/v1/webhooks/${id}/deliveries`)).json().deliveries;
  }
  assert.ok(log.length >= 1 && log.every((d) => d.status === 'pending'), JSON.stringify(log));
  await stop(server, 'SIGKILL');

  const received: { body: string; signature: string }[] = [];
  const receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(request.headers['sensory-signature']) });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
  try {
    server = await startServer(dataDir, ENV);
    for (let i = 0; i < 400 && received.length < log.length; i++) await sleep(50);
    await sleep(500);
    assert.deepEqual(received.map((r) => JSON.parse(r.body).id).sort(), log.map((d) => d.id).sort(), 'every pending delivery sent, once');
    for (const delivery of received) {
      assert.equal(verifyWebhookSignature(secret, delivery.signature, delivery.body), true);
      assert.equal(JSON.parse(delivery.body).data.dataset, 'outbox');
    }
    const after = (await call(server.url, KEY, 'GET', `/v1/webhooks/${id}/deliveries`)).json().deliveries as { status: string; attempts: number }[];
    assert.ok(after.every((d) => d.status === 'delivered' && d.attempts >= 2), JSON.stringify(after));
    await stop(server);
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});
