/**
 * Waiting order polls against a real `sensory serve` (production shape: RabbitMQ, no worker until
 * the end, so every poll waits). Hundreds of polls waiting at once must cost the process next to
 * nothing: its CPU time (user + system, from /proc/PID/stat) stays near idle while they wait, and
 * cheap GETs stay about as fast as without them (p99 against a baseline measured here). When a
 * worker starts, the waiting polls learn of its results through the broker and answer at once —
 * long before their safety re-check, set far away here. Waiting polls are bounded per key and in
 * total: past either bound a poll is 429 SENSORY_ERR_TOO_MANY_POLLS with Retry-After.
 *
 * RabbitMQ rule (test/support/broker.ts): under CI=true this runs and fails when the broker is
 * down; elsewhere it is skipped with a message saying why.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { AMQP_URL, cleanBroker, describeWithBroker, uniqueAmqpNames } from '../support/broker.js';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, sleep, startServer, startWorker, tempDir, type Server } from '../support/process.js';

const KEY = 'waits-admin-key-0123456789';
const OTHER = 'waits-other-key-0123456789';
const WAITING = 600;
const PER_KEY = 620;
const TOTAL = 640;
const ORDERS = 4;
const RANKS = 16;

const log = (line: string) => process.stderr.write(`# order-waits: ${line}\n`);

/** CPU time (user + system) of a process so far, in milliseconds. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, utime field 14, stime field 15 (1-based, as in proc(5)).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
  /** When the answer came, ms since the epoch. */
  readonly at: number;
}

/** One JSON request over its own connection (no pool limit, no keep-alive). */
function request(url: string, key: string, method: string, path: string, json?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
    const req = http.request(
      new URL(path, url),
      { method, agent: false, headers: { 'api-access-key': key, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: kept as text.
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, at: Date.now() });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The 99th percentile of `count` sequential GETs of the order, in ms. */
async function getP99(url: string, id: string, count: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const reply = await request(url, KEY, 'GET', `/v1/orders/${id}`);
    times.push(performance.now() - t0);
    assert.equal(reply.status, 200);
  }
  times.sort((a, b) => a - b);
  return times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)];
}

const amqpNames = uniqueAmqpNames('waits');
const orderIds: string[] = [];

await describeWithBroker('waiting order polls cost nothing until there is something to send', () => {
  let server: Server;
  let env: Record<string, string>;
  const polls: Promise<Answer>[] = [];
  let otherOrder = '';

  before(async () => {
    ensureBuilt();
    env = {
      SENSORY_DATA_DIR: tempDir('sensory-waits-'),
      SENSORY_AMQP_URL: AMQP_URL,
      SENSORY_AMQP_EXCHANGE: amqpNames.exchange,
      SENSORY_AMQP_TASK_QUEUE: amqpNames.taskQueue,
      SENSORY_AMQP_TASK_ROUTING_KEY: amqpNames.taskRoutingKey,
      SENSORY_API_KEYS: `${KEY}:admin;${OTHER}:read`,
      SENSORY_MAX_CONNECTIONS_PER_IP: '0',
      // Far away: a poll that answers promptly was woken by an event, not by this.
      SENSORY_POLL_RECHECK_MS: '60000',
      SENSORY_MAX_WAITING_POLLS: String(TOTAL),
      SENSORY_MAX_WAITING_POLLS_PER_KEY: String(PER_KEY),
      SENSORY_LOG_LEVEL: 'warn',
    };
    server = await startServer(env.SENSORY_DATA_DIR, env);
    assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/waits', { json: { width: 8, height: 8, channels: 1 } })).status, 201);
    for (let seed = 0; seed < 4; seed++) {
      const reply = await call(server.url, KEY, 'POST', '/v1/datasets/waits/samples?category=a', { bytes: await makePng(8, 8, 1, seed) });
      assert.equal(reply.status, 201, reply.body.toString());
    }
    for (let i = 0; i < ORDERS; i++) {
      const reply = await request(server.url, KEY, 'POST', '/v1/datasets/waits/orders', { size: 64 * RANKS, ranks: RANKS, seed: i });
      assert.equal(reply.status, 202, JSON.stringify(reply.body));
      orderIds.push(reply.body.id);
    }
    const theirs = await request(server.url, OTHER, 'POST', '/v1/datasets/waits/orders', { size: 64 * RANKS, ranks: RANKS, seed: 99 });
    assert.equal(theirs.status, 202, JSON.stringify(theirs.body));
    otherOrder = theirs.body.id;
    orderIds.push(otherOrder);
  });

  after(async () => {
    try {
      await killAll();
      const refs = orderIds.flatMap((orderId) => Array.from({ length: RANKS }, (_, stream) => ({ orderId, generation: 0, stream })));
      await cleanBroker({ exchanges: [amqpNames.exchange], taskQueues: [amqpNames.taskQueue], orderIds: refs }, log);
    } finally {
      removeTempDirs();
    }
  });

  test(`${WAITING} waiting polls: the process stays near idle and GETs stay fast; a worker's results wake them through the broker`, { timeout: 120_000 }, async () => {
    const pid = server.child.pid!;
    const baselineP99 = await getP99(server.url, orderIds[0], 100);
    const idle0 = cpuMs(pid);
    await sleep(2000);
    const idleMs = cpuMs(pid) - idle0;
    log(`idle: ${idleMs} ms CPU over 2 s; GET p99 ${baselineP99.toFixed(1)} ms`);

    const pollsStart = Date.now();
    for (let i = 0; i < WAITING; i++) {
      polls.push(request(server.url, KEY, 'POST', `/v1/orders/${orderIds[i % ORDERS]}/poll`, { rank: Math.floor(i / ORDERS) % RANKS, max: 64, waitMs: 20_000 }));
    }
    // Every poll has arrived, found nothing and waits (each costs one look when it comes).
    const waitingNow = async () => Number(/^sensory_order_polls_waiting (\d+)$/m.exec((await request(server.url, KEY, 'GET', '/metrics')).body)?.[1] ?? -1);
    for (let i = 0; i < 100 && (await waitingNow()) < WAITING; i++) await sleep(100);
    assert.equal(await waitingNow(), WAITING, 'every poll waits');
    await sleep(200);
    // The process's CPU while they only wait, then cheap GETs among them.
    const wait0 = cpuMs(pid);
    const waitStart = Date.now();
    await sleep(3000);
    const waitingMs = cpuMs(pid) - wait0;
    const share = waitingMs / (Date.now() - waitStart);
    const loadedP99 = await getP99(server.url, orderIds[0], 100);
    log(`${WAITING} polls waiting: ${waitingMs} ms CPU over ${Date.now() - waitStart} ms (${(share * 100).toFixed(1)}% of a core); GET p99 ${loadedP99.toFixed(1)} ms among them`);
    assert.ok(share < 0.1, `the process used ${(share * 100).toFixed(1)}% of a core while ${WAITING} polls waited`);
    assert.ok(loadedP99 <= Math.max(10 * baselineP99, baselineP99 + 50), `GET p99 ${loadedP99.toFixed(1)} ms with ${WAITING} waiting polls, ${baselineP99.toFixed(1)} ms without`);

    // Bounds: this key has PER_KEY − WAITING waiting places left, the process TOTAL − PER_KEY more.
    const mine = await Promise.all(
      Array.from({ length: PER_KEY - WAITING + 10 }, (_, i) =>
        Promise.race([request(server.url, KEY, 'POST', `/v1/orders/${orderIds[0]}/poll`, { rank: i % RANKS, max: 64, waitMs: 20_000 }), sleep(1500).then(() => undefined)]),
      ),
    );
    const refusedMine = mine.filter((answer): answer is Answer => answer !== undefined);
    assert.equal(refusedMine.length, 10, `past ${PER_KEY} waiting polls of one key, 10 are refused at once: ${JSON.stringify(refusedMine.map((a) => a.status))}`);
    for (const answer of refusedMine) {
      assert.equal(answer.status, 429);
      assert.equal(answer.body.error.code, 'SENSORY_ERR_TOO_MANY_POLLS');
      assert.match(answer.body.error.message, /SENSORY_MAX_WAITING_POLLS_PER_KEY/);
      assert.ok(Number(answer.headers['retry-after']) >= 1);
    }
    const others = await Promise.all(
      Array.from({ length: TOTAL - PER_KEY + 10 }, (_, i) =>
        Promise.race([request(server.url, OTHER, 'POST', `/v1/orders/${otherOrder}/poll`, { rank: i % RANKS, max: 64, waitMs: 20_000 }), sleep(1500).then(() => undefined)]),
      ),
    );
    const refusedOthers = others.filter((answer): answer is Answer => answer !== undefined);
    assert.equal(refusedOthers.length, 10, `past ${TOTAL} waiting polls in all, 10 are refused at once: ${JSON.stringify(refusedOthers.map((a) => a.status))}`);
    for (const answer of refusedOthers) {
      assert.equal(answer.status, 429);
      assert.equal(answer.body.error.code, 'SENSORY_ERR_TOO_MANY_POLLS');
      assert.match(answer.body.error.message, /SENSORY_MAX_WAITING_POLLS\b/);
    }

    // A worker starts: its results reach the waiting polls through the broker, not the re-check.
    const workerStart = Date.now();
    await startWorker(env, 2);
    const answers = await Promise.all(polls);
    const slowest = Math.max(...answers.map((answer) => answer.at)) - workerStart;
    const withSamples = answers.filter((answer) => answer.status === 200 && answer.body.ids?.length > 0).length;
    log(`worker started: all ${WAITING} polls answered within ${slowest} ms, ${withSamples} with samples`);
    const late = answers.filter((answer) => answer.at - workerStart > 6000);
    if (late.length > 0) {
      const summary = (list: Answer[]) => JSON.stringify(list.map((a) => [a.at - workerStart, a.body.ids?.length, a.body.done, a.body.remaining, a.body.status]).slice(0, 12));
      log(`late: ${late.length}: ${summary(late)}`);
      log(`early: ${summary(answers.filter((answer) => answer.at - workerStart <= 6000))}`);
      for (const id of orderIds) log(`order ${id}: ${(await request(server.url, KEY, 'GET', `/v1/orders/${id}`)).body.status}`);
    }
    assert.ok(answers.every((answer) => answer.status === 200), JSON.stringify(answers.find((answer) => answer.status !== 200)?.body));
    // Unwoken, they would have answered empty at pollsStart + 20 s.
    assert.ok(slowest < 6000, `the polls answered up to ${slowest} ms after the worker started`);
    assert.ok(Math.max(...answers.map((answer) => answer.at)) < pollsStart + 18_000, 'some polls waited out their waitMs');
    assert.ok(withSamples >= ORDERS * RANKS, `${withSamples} polls carried samples`);
  });
});
