/**
 * Orders of large records that nobody polls, against a real embedded `sensory serve` (in-process
 * queue and worker): what production holds unpolled is bounded in bytes — per order
 * (SENSORY_ORDER_BUFFER_BYTES, over all its ranks) and over every order (
 * SENSORY_ORDER_BUFFER_TOTAL_BYTES) — so the process's resident memory stays flat however many
 * samples the orders ask for. Production parks at the bound and goes on when polled: every order
 * is then delivered whole, one after the other, each while the others still hold their buffers.
 *
 * In the production shape (RabbitMQ, a `sensory worker`), each rank's result queue is declared
 * with its share of the order's buffer as x-max-length-bytes and reject-publish: the worker parks
 * at it, and polled, every sample comes exactly once (none lost to the overflow).
 *
 * Measured without the bounds (each rank's queue held up to 256 MiB): 720 MiB produced unpolled,
 * RSS +740 MiB; with them (32 MiB an order, 24 MiB in all): 21 MiB produced, RSS +14 MiB.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { AMQP_URL, cleanBroker, describeWithBroker, uniqueAmqpNames } from '../support/broker.js';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, sleep, startServer, startWorker, tempDir, type Server } from '../support/process.js';

const KEY = 'buffer-admin-key-0123456789';
const SIDE = 1024;
const RECORD = SIDE * SIDE * 3;
const MiB = 1024 * 1024;
/** Two records per rank's queue; the total (below one order's buffer) is what binds. */
const ORDER_BUFFER = 32 * MiB;
const TOTAL_BUFFER = 24 * MiB;
const ORDERS = 3;
const RANKS = 4;
/** Per rank: 20 records of 3 MiB = 60 MiB; 720 MiB in all if nothing bounded production. */
const PER_RANK = 20;

const log = (line: string) => process.stderr.write(`# order-buffer: ${line}\n`);

/** Resident memory of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

describe('unpolled orders of large records hold a bounded number of bytes', () => {
  let server: Server;
  const orderIds: string[] = [];

  before(async () => {
    ensureBuilt();
    server = await startServer(tempDir('sensory-buffer-'), {
      SENSORY_API_KEYS: `${KEY}:admin`,
      SENSORY_ORDER_BUFFER_BYTES: String(ORDER_BUFFER),
      SENSORY_ORDER_BUFFER_TOTAL_BYTES: String(TOTAL_BUFFER),
      SENSORY_LOG_LEVEL: 'warn',
    });
    assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/big', { json: { width: SIDE, height: SIDE, channels: 3 } })).status, 201);
    for (let seed = 0; seed < 4; seed++) {
      const reply = await call(server.url, KEY, 'POST', '/v1/datasets/big/samples?category=a', { bytes: await makePng(SIDE, SIDE, 3, seed), timeoutMs: 60_000 });
      assert.equal(reply.status, 201, reply.body.toString());
    }
  });

  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test(`${ORDERS} orders × ${RANKS} ranks × ${PER_RANK} records of ${SIDE}×${SIDE}×3, unpolled: memory stays within the buffers; polled, each is delivered whole`, { timeout: 240_000 }, async () => {
    const pid = server.child.pid!;
    await sleep(1000);
    const baseline = rssOf(pid);
    for (let i = 0; i < ORDERS; i++) {
      const reply = await call(server.url, KEY, 'POST', '/v1/datasets/big/orders', { json: { size: RANKS * PER_RANK, ranks: RANKS, seed: i } });
      assert.equal(reply.status, 202, reply.body.toString());
      orderIds.push(reply.json().id);
    }
    // Production runs until it parks: watch the produced counts settle, and the memory meanwhile.
    let peak = baseline;
    let last = '';
    let stableSince = performance.now();
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline && performance.now() - stableSince < 3000) {
      await sleep(250);
      peak = Math.max(peak, rssOf(pid));
      // Safety: an unbounded run is stopped well before it troubles the machine.
      if (peak - baseline > 1024 * MiB) break;
      const produced = (await Promise.all(orderIds.map(async (id) => (await call(server.url, KEY, 'GET', `/v1/orders/${id}`)).json().samples.produced))).join(',');
      if (produced !== last) {
        last = produced;
        stableSince = performance.now();
      }
    }
    const producedRecords = last.split(',').map(Number);
    const heldBytes = producedRecords.reduce((sum, n) => sum + n, 0) * RECORD;
    log(`unpolled: produced ${last} records (${mib(heldBytes)}); RSS ${mib(baseline)} → peak ${mib(peak)} (+${mib(peak - baseline)})`);
    assert.ok(heldBytes <= TOTAL_BUFFER + ORDERS * RANKS * RECORD, `${mib(heldBytes)} of results were produced and held unpolled`);
    assert.ok(peak - baseline < 256 * MiB, `RSS grew by ${mib(peak - baseline)} while the orders went unpolled`);

    // Polled one order after another, the last placed first: production resumes, each order is
    // delivered whole while the orders not polled yet keep their buffers (a polled stream always
    // gets its next message, even when the others hold the whole total).
    for (const id of [...orderIds].reverse()) {
      const received = new Set<number>();
      for (let rank = 0; rank < RANKS; rank++) {
        for (let polls = 0; ; polls++) {
          assert.ok(polls < 200, `rank ${rank} of order ${id} was not delivered`);
          const reply = await call(server.url, KEY, 'POST', `/v1/orders/${id}/poll`, { json: { rank, max: 8, waitMs: 5000 }, accept: 'application/x-safetensors', timeoutMs: 60_000 });
          assert.equal(reply.status, 200, reply.body.toString().slice(0, 300));
          const file = parseSafetensors(reply.body);
          for (const slot of JSON.parse(file.metadata.slots) as number[]) received.add(slot);
          peak = Math.max(peak, rssOf(pid));
          if (file.metadata.done === 'true') break;
        }
      }
      assert.equal(received.size, RANKS * PER_RANK, `order ${id}: every slot once`);
      assert.equal((await call(server.url, KEY, 'GET', `/v1/orders/${id}`)).json().status, 'complete');
    }
    log(`all ${ORDERS} orders delivered; RSS peak while polling +${mib(peak - baseline)}`);
    assert.ok(peak - baseline < 384 * MiB, `RSS grew by ${mib(peak - baseline)} while the orders were polled`);
  });
});

/** Polls every rank of the order until done; returns the slots received, each once. */
async function pollWhole(url: string, id: string, ranks: number): Promise<Set<number>> {
  const received = new Set<number>();
  for (let rank = 0; rank < ranks; rank++) {
    for (let polls = 0; ; polls++) {
      assert.ok(polls < 200, `rank ${rank} of order ${id} was not delivered`);
      const reply = await call(url, KEY, 'POST', `/v1/orders/${id}/poll`, { json: { rank, max: 8, waitMs: 5000 }, accept: 'application/x-safetensors', timeoutMs: 60_000 });
      assert.equal(reply.status, 200, reply.body.toString().slice(0, 300));
      const file = parseSafetensors(reply.body);
      for (const slot of JSON.parse(file.metadata.slots) as number[]) {
        assert.ok(!received.has(slot), `slot ${slot} came twice`);
        received.add(slot);
      }
      if (file.metadata.done === 'true') break;
    }
  }
  return received;
}

const amqpNames = uniqueAmqpNames('buffer');
const brokerOrders: string[] = [];

await describeWithBroker('unpolled orders of large records on RabbitMQ: each result queue holds its share of the order buffer', () => {
  const BROKER_ORDER_BUFFER = 16 * MiB;
  const BROKER_ORDERS = 2;
  const BROKER_PER_RANK = 10;
  let server: Server;

  before(async () => {
    ensureBuilt();
    const env = {
      SENSORY_DATA_DIR: tempDir('sensory-buffer-amqp-'),
      SENSORY_AMQP_URL: AMQP_URL,
      SENSORY_AMQP_EXCHANGE: amqpNames.exchange,
      SENSORY_AMQP_TASK_QUEUE: amqpNames.taskQueue,
      SENSORY_AMQP_TASK_ROUTING_KEY: amqpNames.taskRoutingKey,
      SENSORY_API_KEYS: `${KEY}:admin`,
      SENSORY_ORDER_BUFFER_BYTES: String(BROKER_ORDER_BUFFER),
      SENSORY_LOG_LEVEL: 'warn',
    };
    server = await startServer(env.SENSORY_DATA_DIR, env);
    await startWorker(env, 2);
    assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/big', { json: { width: SIDE, height: SIDE, channels: 3 } })).status, 201);
    for (let seed = 0; seed < 4; seed++) {
      const reply = await call(server.url, KEY, 'POST', '/v1/datasets/big/samples?category=a', { bytes: await makePng(SIDE, SIDE, 3, seed), timeoutMs: 60_000 });
      assert.equal(reply.status, 201, reply.body.toString());
    }
  });

  after(async () => {
    try {
      await killAll();
      const refs = brokerOrders.flatMap((orderId) => Array.from({ length: RANKS }, (_, stream) => ({ orderId, generation: 0, stream })));
      await cleanBroker({ exchanges: [amqpNames.exchange], taskQueues: [amqpNames.taskQueue], orderIds: refs });
    } finally {
      removeTempDirs();
    }
  });

  test(`${BROKER_ORDERS} orders × ${RANKS} ranks × ${BROKER_PER_RANK} records, unpolled: the worker parks at the queues' byte bound; polled, every sample once`, { timeout: 240_000 }, async () => {
    for (let i = 0; i < BROKER_ORDERS; i++) {
      const reply = await call(server.url, KEY, 'POST', '/v1/datasets/big/orders', { json: { size: RANKS * BROKER_PER_RANK, ranks: RANKS, seed: i } });
      assert.equal(reply.status, 202, reply.body.toString());
      brokerOrders.push(reply.json().id);
    }
    let last = '';
    let stableSince = performance.now();
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline && performance.now() - stableSince < 3000) {
      await sleep(250);
      const produced = (await Promise.all(brokerOrders.map(async (id) => (await call(server.url, KEY, 'GET', `/v1/orders/${id}`)).json().samples.produced))).join(',');
      if (produced !== last) {
        last = produced;
        stableSince = performance.now();
      }
    }
    log(`RabbitMQ, unpolled: produced ${last} records of ${mib(RECORD)} (order buffer ${mib(BROKER_ORDER_BUFFER)})`);
    // The broker takes a publish while a queue is below its bound: a share plus one message a rank.
    const most = Math.floor(BROKER_ORDER_BUFFER / RECORD) + RANKS;
    for (const produced of last.split(',').map(Number)) assert.ok(produced <= most, `${produced} records were produced and held unpolled (at most ${most})`);
    for (const id of brokerOrders) {
      const received = await pollWhole(server.url, id, RANKS);
      assert.equal(received.size, RANKS * BROKER_PER_RANK, `order ${id}: every slot once`);
    }
  });
});
