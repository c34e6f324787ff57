/**
 * Exactly-once in the production shape, under kills: two `sensory serve` replicas behind a
 * round-robin balancer, PostgreSQL, RabbitMQ and a worker. A trainer iterates an order of 100,000
 * samples through the balancer with the SDK (cursor mode, acknowledging as it goes); right after a
 * replica has sent a poll answer, that replica is SIGKILLed, and the trainer carries on through
 * the other one. Six trials; every duplicate and every loss is counted, and one of either fails.
 *
 * PostgreSQL and RabbitMQ rule (test/support/postgres.ts, broker.ts): under CI=true this file
 * runs and fails when either server is down; elsewhere it is skipped with a message saying why.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SensoryClient } from '@sensory/client';
import { AMQP_URL, amqpAvailable, brokerSkip, cleanBroker, inCi, uniqueAmqpNames } from '../support/broker.js';
import { makePng } from '../support/harness.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, uniqueSchema, useSchema } from '../support/postgres.js';
import { call, ensureBuilt, killAll, removeTempDirs, startServer, startWorker, tempDir, type Server } from '../support/process.js';

const KEY = 'orders-kill-key-0123456789';
const DATASET = 'killed';
const SIZE = 100_000;
const TRIALS = 6;
const log = (line: string) => process.stderr.write(`# orders-kill: ${line}\n`);

/**
 * A round-robin HTTP balancer in front of the replicas, as nginx would be: each request goes to
 * the next replica; a replica that refuses the connection is skipped; a response cut by a dying
 * replica is cut for the client too. `onPollSent` runs once a replica has sent a poll answer whole.
 */
class Balancer {
  private readonly server: http.Server;
  private next = 0;
  onPollSent: ((upstream: string) => void) | undefined;

  constructor(public upstreams: string[]) {
    this.server = http.createServer((request, response) => this.forward(request, response, 0));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private forward(request: http.IncomingMessage, response: http.ServerResponse, attempt: number, body?: Buffer): void {
    if (body === undefined) {
      const parts: Buffer[] = [];
      request.on('data', (part: Buffer) => parts.push(part));
      request.on('end', () => this.forward(request, response, attempt, Buffer.concat(parts)));
      return;
    }
    const upstream = this.upstreams[this.next++ % this.upstreams.length];
    const target = new URL(request.url ?? '/', upstream);
    const proxied = http.request(target, { method: request.method, headers: request.headers, agent: false });
    proxied.on('response', (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
      answer.on('end', () => {
        if (request.url?.endsWith('/poll') && answer.statusCode === 200) this.onPollSent?.(upstream);
      });
      answer.on('error', () => response.destroy());
      answer.on('aborted', () => response.destroy());
    });
    proxied.on('error', (error: NodeJS.ErrnoException) => {
      if (response.headersSent) response.destroy();
      else if (error.code === 'ECONNREFUSED' && attempt < this.upstreams.length) this.forward(request, response, attempt + 1, body);
      else response.writeHead(502).end();
    });
    proxied.end(body);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

await requirePostgresInCi();
if (inCi() && !(await amqpAvailable())) {
  test('RabbitMQ is reachable', () => assert.fail('CI is set but RabbitMQ is unreachable: the kill test must run under CI'));
}
const skipReasons = [await postgresSkip(), await brokerSkip()].filter((reason): reason is string => typeof reason === 'string');

describe('an order of 100,000 through two replicas, one SIGKILLed right after it sent a poll: no duplicate, no loss', { skip: skipReasons.length > 0 ? skipReasons.join('; ') : false }, () => {
  const names = uniqueAmqpNames('kill');
  const orderIds: string[] = [];
  let env: Record<string, string>;
  let replicas: Server[];
  let balancer: Balancer;
  let url: string;

  before(async () => {
    ensureBuilt();
    env = {
      SENSORY_DATA_DIR: tempDir('sensory-kill-'),
      SENSORY_DATABASE_URL: await useSchema(uniqueSchema('kill')),
      SENSORY_AMQP_URL: AMQP_URL,
      SENSORY_AMQP_EXCHANGE: names.exchange,
      SENSORY_AMQP_TASK_QUEUE: names.taskQueue,
      SENSORY_AMQP_TASK_ROUTING_KEY: names.taskRoutingKey,
      SENSORY_API_KEYS: `${KEY}:admin`,
      SENSORY_ORDER_LEASE_MS: '3000',
      SENSORY_LOG_LEVEL: 'warn',
    };
    replicas = [await startServer(env.SENSORY_DATA_DIR, env), await startServer(env.SENSORY_DATA_DIR, env)];
    await startWorker(env, 2);
    balancer = new Balancer(replicas.map((replica) => replica.url));
    url = await balancer.listen();
    assert.equal((await call(url, KEY, 'PUT', `/v1/datasets/${DATASET}`, { json: { width: 8, height: 8, channels: 3 } })).status, 201);
    for (let i = 0; i < 16; i++) {
      const reply = await call(url, KEY, 'POST', `/v1/datasets/${DATASET}/samples?category=c${i % 4}`, { bytes: await makePng(8, 8, 3, 500 + i) });
      assert.equal(reply.status, 201, reply.body.toString());
    }
  });

  after(async () => {
    await balancer?.close();
    await killAll();
    await cleanBroker({ exchanges: [names.exchange], taskQueues: [names.taskQueue], orderIds }, log);
    await dropSchemas();
    removeTempDirs();
  });

  test(`${TRIALS} trials, each a fresh order and a replica killed after a different poll`, { timeout: 300_000 }, async () => {
    const started = Date.now();
    let duplicates = 0;
    let losses = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const t0 = Date.now();
      const client = new SensoryClient({ url, key: KEY, retryDelayMs: 50 });
      const { id } = await client.createOrder(DATASET, { size: SIZE, seed: 100 + trial });
      orderIds.push(id);
      const victim = trial % 2;
      const killAfter = 2 + ((trial * 3) % 7); // the victim's 2nd … 8th poll answer
      let victimPolls = 0;
      let killed = false;
      balancer.onPollSent = (upstream) => {
        if (killed || upstream !== replicas[victim].url || ++victimPolls < killAfter) return;
        killed = true;
        replicas[victim].child.kill('SIGKILL');
      };
      const seen = new Uint8Array(SIZE);
      let received = 0;
      for await (const batch of client.order(id, { max: 4096, waitMs: 2000 })) {
        for (const slot of batch.slots) {
          if (seen[slot]) duplicates++;
          seen[slot] = 1;
          received++;
        }
      }
      const missing = seen.reduce((sum, got) => sum + (got ? 0 : 1), 0);
      losses += missing;
      const order = await client.getOrder(id);
      client.close();
      log(`trial ${trial + 1}: replica ${victim} killed after its poll answer ${killAfter}: ${received} received, ${missing} missing; order ${order.status}, ${order.samples.delivered} delivered; ${Date.now() - t0} ms`);
      assert.equal(killed, true, `trial ${trial + 1}: the kill did not happen (the victim sent ${victimPolls} poll answers)`);
      assert.deepEqual([order.status, order.samples.delivered], ['complete', SIZE], `trial ${trial + 1}: the order is complete as soon as the trainer is done`);
      // The killed replica comes back for the next trial, on a new port.
      await replicas[victim].exit;
      replicas[victim] = await startServer(env.SENSORY_DATA_DIR, env);
      balancer.upstreams = replicas.map((replica) => replica.url);
    }
    log(`${TRIALS} trials: ${duplicates} duplicates, ${losses} losses, ${Date.now() - started} ms`);
    assert.equal(duplicates, 0, `${duplicates} sample(s) delivered twice`);
    assert.equal(losses, 0, `${losses} sample(s) never delivered`);
  });
});
