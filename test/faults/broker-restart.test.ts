/**
 * A RabbitMQ restart during order traffic, in the production shape with real processes: one
 * `sensory serve` and one `sensory worker` on a private PostgreSQL and a private RabbitMQ node
 * (test/support/private-servers.ts; the machine's shared servers are never touched). The rules:
 * no process exits; while the broker is away a new order is 503 SENSORY_ERR_UNAVAILABLE and
 * uploads still work; afterwards the order placed before the restart is delivered completely,
 * every slot exactly once, and new orders work — without restarting anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { inCi } from '../support/broker.js';
import { Ledger, PollError, orderPolls } from '../support/order-polls.js';
import { privateServersSkip, startPrivatePostgres, startPrivateRabbit, type PrivatePostgres, type PrivateRabbit } from '../support/private-servers.js';
import { call as callWithKey, ensureBuilt, killAll, removeTempDirs, sleep, startServer, startWorker, tempDir, type Reply, type Run, type Server } from '../support/process.js';

const KEY = 'faults-broker-admin-key-0123456789';
const DATASET = 'brokered';
const SIDE = 8;
const SAMPLES = 20;
const log = (line: string) => process.stderr.write(`# faults/broker-restart: ${line}\n`);
const call = (url: string, method: string, path: string, options = {}): Promise<Reply> => callWithKey(url, KEY, method, path, { timeoutMs: 30_000, ...options });
const skip = inCi() ? false : (privateServersSkip() ?? false);

const pixelsById = new Map<number, Buffer>();
const { poll } = orderPolls(KEY, { width: SIDE, height: SIDE, channels: 1 }, pixelsById);

async function upload(url: string, seed: number): Promise<Reply> {
  const pixels = Buffer.alloc(SIDE * SIDE, seed % 251);
  pixels.writeUInt32BE(seed, 0);
  const png = await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toBuffer();
  const reply = await call(url, 'POST', `/v1/datasets/${DATASET}/samples?category=c${seed % 2}`, { bytes: png });
  if (reply.status === 201) pixelsById.set(reply.json().id, pixels);
  return reply;
}

/** Polls until done; a 503 (the broker away) is waited out, as a client would. */
async function pollToTheEnd(url: string, id: string, ledger: Ledger, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (performance.now() >= deadline) {
      const status = await call(url, 'GET', `/v1/orders/${id}`);
      assert.fail(`order ${id} not done after ${ms} ms (${ledger.bySlot.size} slots): ${status.body.toString()}`);
    }
    try {
      const polled = await poll(url, id, 40, 1000);
      ledger.add(polled);
      if (polled.done) return;
    } catch (error) {
      if (!(error instanceof PollError) || error.status !== 503) throw error;
      await sleep(200);
    }
  }
}

describe('RabbitMQ restarted during order traffic', { skip }, () => {
  let db: PrivatePostgres;
  let broker: PrivateRabbit;
  let server: Server;
  let worker: Run;
  const started = Date.now();

  before(async () => {
    ensureBuilt();
    [db, broker] = await Promise.all([startPrivatePostgres(), startPrivateRabbit()]);
    const env = {
      SENSORY_DATA_DIR: tempDir('sensory-faults-broker-'),
      SENSORY_DATABASE_URL: db.url,
      SENSORY_AMQP_URL: broker.url,
      SENSORY_API_KEYS: `${KEY}:admin`,
      SENSORY_ORDER_LEASE_MS: '2000',
      SENSORY_LOG_LEVEL: 'warn',
    };
    server = await startServer(env.SENSORY_DATA_DIR, env);
    worker = await startWorker(env, 2);
    const put = await call(server.url, 'PUT', `/v1/datasets/${DATASET}`, { json: { width: SIDE, height: SIDE, channels: 1 } });
    assert.equal(put.status, 201, put.body.toString());
    for (let seed = 0; seed < SAMPLES; seed++) assert.equal((await upload(server.url, seed)).status, 201);
    log(`private PostgreSQL ${db.port}, RabbitMQ ${broker.port}; up after ${Date.now() - started} ms`);
  });

  after(async () => {
    await killAll();
    await Promise.all([db?.destroy(), broker?.destroy()]);
    removeTempDirs();
    log(`total ${Date.now() - started} ms`);
  });

  test('no exit, 503 for new orders while down, uploads kept, the earlier order delivered exactly once, new orders work', { timeout: 120_000 }, async () => {
    const size = SAMPLES * 10;
    const placed = await call(server.url, 'POST', `/v1/datasets/${DATASET}/orders`, { json: { size, shardSize: 20, seed: 7 } });
    assert.equal(placed.status, 202, placed.body.toString());
    const orderId = placed.json().id as string;
    const ledger = new Ledger();
    ledger.add(await poll(server.url, orderId, 30, 5000));

    const t0 = Date.now();
    await broker.stop();
    const refused = await call(server.url, 'POST', `/v1/datasets/${DATASET}/orders`, { json: { size: 10, seed: 1 } });
    assert.equal(refused.status, 503, refused.body.toString());
    assert.equal(refused.json().error.code, 'SENSORY_ERR_UNAVAILABLE');
    assert.doesNotMatch(refused.body.toString(), /127\.0\.0\.1|localhost|:\d{4,5}\b/, 'no broker address in the answer');
    assert.equal((await upload(server.url, 1000)).status, 201, 'uploads do not need the broker');
    await sleep(1000);
    await broker.start();
    log(`broker away for ${Date.now() - t0} ms`);

    await pollToTheEnd(server.url, orderId, ledger, 60_000);
    ledger.assertExact(size, [...pixelsById.keys()].slice(0, SAMPLES));
    log(`order ${orderId}: ${ledger.bySlot.size} slots in ${ledger.polls} polls, ${ledger.doubled.length} twice`);

    // A new order after the restart, without restarting the service or the worker.
    let again: Reply | undefined;
    const deadline = performance.now() + 20_000;
    while (performance.now() < deadline) {
      again = await call(server.url, 'POST', `/v1/datasets/${DATASET}/orders`, { json: { size: 40, shardSize: 10, seed: 9 } });
      if (again.status === 202) break;
      await sleep(250);
    }
    assert.equal(again?.status, 202, again?.body.toString());
    const second = new Ledger();
    await pollToTheEnd(server.url, again!.json().id, second, 30_000);
    assert.equal(second.bySlot.size, 40);
    assert.deepEqual(second.doubled, []);
    for (const run of [server, worker]) assert.equal(run.child.exitCode ?? run.child.signalCode, null, `a process exited:\n${run.stderr().slice(-1500)}`);
  });
});
