/**
 * The production shape with real processes (SPEC §1): two `sensory serve` replicas (A, B) and two
 * `sensory worker` processes sharing one PostgreSQL schema, one RabbitMQ exchange and task queue,
 * and ONE data dir. Any replica answers any request: uploads racing through both replicas,
 * dataset views, seeded batches, and orders created on one replica and polled on the other —
 * also when a replica is SIGKILLed in the middle of a poll response.
 *
 * PostgreSQL and RabbitMQ rule (test/support/postgres.ts, broker.ts): under CI=true this file
 * runs and fails when either server is down; elsewhere it is skipped with a message saying why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { AMQP_ADDRESS, AMQP_URL, amqpAvailable, brokerSkip, cleanBroker, inCi, uniqueAmqpNames } from '../support/broker.js';
import { makePng, patternPixels } from '../support/harness.js';
import { Ledger, SAFETENSORS, orderPolls, type OrderView } from '../support/order-polls.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, uniqueSchema, useSchema } from '../support/postgres.js';
import {
  call as callWithKey,
  ensureBuilt,
  killAll,
  removeTempDirs,
  sha256,
  startServer,
  startWorker,
  stop,
  tempDir,
  type CallOptions,
  type Reply,
  type Server,
} from '../support/process.js';

const KEY = 'replicas-admin-key-0123456789';
const DATASET = 'replicated';
const WIDTH = 16;
const HEIGHT = 16;
const CHANNELS = 3;
const RECORD = WIDTH * HEIGHT * CHANNELS;
/** How long a poll's slots stay leased (plus its waitMs) before another poll may send them. */
const LEASE_MS = 3000;

const log = (line: string) => process.stderr.write(`# replicas: ${line}\n`);

function call(url: string, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  return callWithKey(url, KEY, method, path, { timeoutMs: 30_000, ...options });
}

async function json(url: string, path: string): Promise<any> {
  const reply = await call(url, 'GET', path);
  assert.equal(reply.status, 200, `${url}${path}: ${reply.body.toString('utf8')}`);
  return reply.json();
}

/** Sample id → its pixels (every PNG is 16×16×3, the dataset's shape: served unchanged at noise 0). */
const pixelsById = new Map<number, Buffer>();
const { getOrder, waitForOrder, poll, pollUntilDone, assertCompleted, pollAndHangUp } = orderPolls(KEY, { width: WIDTH, height: HEIGHT, channels: CHANNELS }, pixelsById);

async function upload(url: string, category: string, png: Buffer, asJson: boolean): Promise<Reply> {
  return asJson
    ? call(url, 'POST', `/v1/datasets/${DATASET}/samples`, { json: { category, data: png.toString('base64') } })
    : call(url, 'POST', `/v1/datasets/${DATASET}/samples?category=${category}`, { bytes: png });
}

async function createOrder(url: string, size: number, shardSize: number, seed: number): Promise<string> {
  const reply = await call(url, 'POST', `/v1/datasets/${DATASET}/orders`, { json: { size, shardSize, seed } });
  assert.equal(reply.status, 202, reply.body.toString());
  const { id } = reply.json() as { id: string };
  orderIds.push(id);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Broker clean-up

const amqpNames = uniqueAmqpNames('replicas');
const orderIds: string[] = [];

// ---------------------------------------------------------------------------------------------

await requirePostgresInCi();
if (inCi() && !(await amqpAvailable())) {
  it(`RabbitMQ is reachable at ${AMQP_ADDRESS}`, () =>
    assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS} (guest/guest): the replica tests must run under CI`),
  );
}
const skipReasons = [await postgresSkip(), await brokerSkip()].filter((reason): reason is string => typeof reason === 'string');

describe('two API replicas and two workers sharing PostgreSQL, RabbitMQ and one data dir', { skip: skipReasons.length > 0 ? skipReasons.join('; ') : false }, () => {
  let A: Server;
  let B: Server;
  let env: Record<string, string>;
  /** Every sample id of the dataset (after the ingest test). */
  let sampleIds: number[] = [];
  const started = Date.now();

  before(async () => {
    ensureBuilt();
    const schema = uniqueSchema('replicas');
    env = {
      SENSORY_DATA_DIR: tempDir('sensory-replicas-'),
      SENSORY_DATABASE_URL: await useSchema(schema),
      SENSORY_AMQP_URL: AMQP_URL,
      SENSORY_AMQP_EXCHANGE: amqpNames.exchange,
      SENSORY_AMQP_TASK_QUEUE: amqpNames.taskQueue,
      SENSORY_AMQP_TASK_ROUTING_KEY: amqpNames.taskRoutingKey,
      SENSORY_API_KEYS: `${KEY}:admin`,
      SENSORY_ORDER_TTL_SECONDS: '3600',
      SENSORY_ORDER_LEASE_MS: String(LEASE_MS),
      SENSORY_LOG_LEVEL: 'warn',
    };
    // Both replicas start at once on a fresh schema: the migrations must not race.
    [A, B] = await Promise.all([startServer(env.SENSORY_DATA_DIR, env), startServer(env.SENSORY_DATA_DIR, env)]);
    assert.notEqual(A.url, B.url);
    await Promise.all([startWorker(env, 2), startWorker(env, 2)]);
    log(`A ${A.url}, B ${B.url}, 2 workers, schema ${schema}; up after ${Date.now() - started} ms`);
  });

  after(async () => {
    try {
      await killAll();
      await cleanBroker({ exchanges: [amqpNames.exchange], taskQueues: [amqpNames.taskQueue], orderIds }, log);
      await dropSchemas();
    } finally {
      removeTempDirs();
      log(`total ${Date.now() - started} ms`);
    }
  });

  test('uploads through both replicas at once: one dataset, one sample per bytes, one index per category; both replicas see the same', { timeout: 60_000 }, async () => {
    const t0 = Date.now();
    // The same dataset created through both at the same moment: one creates it, the other finds it.
    const puts = await Promise.all([A, B].map((server) => call(server.url, 'PUT', `/v1/datasets/${DATASET}`, { json: { width: WIDTH, height: HEIGHT, channels: CHANNELS } })));
    assert.deepEqual(puts.map((reply) => reply.status).sort(), [200, 201], puts.map((reply) => reply.body.toString()).join(' | '));

    // 30 PNGs in 3 categories, all at once: most through A, every fifth through B, raw and JSON.
    const uploads = await Promise.all(
      Array.from({ length: 30 }, async (_, seed) => {
        const png = await makePng(WIDTH, HEIGHT, CHANNELS, seed);
        const reply = await upload(seed % 5 === 0 ? B.url : A.url, `c${seed % 3}`, png, seed % 2 === 1);
        assert.equal(reply.status, 201, reply.body.toString());
        const sample = reply.json() as { id: number; sha256: string; category: string };
        assert.equal(sample.sha256, sha256(png));
        assert.equal(sample.category, `c${seed % 3}`);
        pixelsById.set(sample.id, patternPixels(WIDTH, HEIGHT, CHANNELS, seed));
        return sample.id;
      }),
    );
    assert.equal(new Set(uploads).size, 30);

    // The same bytes through A and B at the same moment: one sample, the other a duplicate of it.
    for (const seed of [100, 101, 102]) {
      const png = await makePng(WIDTH, HEIGHT, CHANNELS, seed);
      const pair = await Promise.all([upload(A.url, 'c0', png, false), upload(B.url, 'c0', png, true)]);
      assert.deepEqual(pair.map((reply) => reply.status).sort(), [200, 201], pair.map((reply) => reply.body.toString()).join(' | '));
      const [first, second] = pair.map((reply) => reply.json() as { id: number; duplicate?: boolean });
      assert.equal(first.id, second.id, 'both answers name the same sample');
      const duplicate = pair.find((reply) => reply.status === 200)!.json();
      assert.equal(duplicate.duplicate, true);
      pixelsById.set(first.id, patternPixels(WIDTH, HEIGHT, CHANNELS, seed));
    }

    // The same new categories through A and B at the same moment (other bytes): one index each.
    const fresh = ['fresh1', 'fresh2', 'fresh3'];
    const pairs = await Promise.all(
      fresh.map(async (category, c) => {
        const seeds = [200 + 2 * c, 201 + 2 * c];
        const replies = await Promise.all([
          upload(A.url, category, await makePng(WIDTH, HEIGHT, CHANNELS, seeds[0]), false),
          upload(B.url, category, await makePng(WIDTH, HEIGHT, CHANNELS, seeds[1]), false),
        ]);
        return replies.map((reply, i) => {
          assert.equal(reply.status, 201, reply.body.toString());
          const sample = reply.json() as { id: number; categoryIndex: number };
          pixelsById.set(sample.id, patternPixels(WIDTH, HEIGHT, CHANNELS, seeds[i]));
          return sample.categoryIndex;
        });
      }),
    );
    for (const [c, indexes] of pairs.entries()) assert.equal(indexes[0], indexes[1], `${fresh[c]} got two indices: ${indexes}`);
    assert.deepEqual(pairs.map((indexes) => indexes[0]).sort(), [3, 4, 5]);

    // Both replicas show the same dataset, categories, revision and samples.
    const total = 30 + 3 + 6;
    const [viewA, viewB] = await Promise.all([A, B].map((server) => json(server.url, `/v1/datasets/${DATASET}`)));
    assert.deepEqual(viewB, viewA);
    assert.equal(viewA.sampleCount, total);
    assert.equal(viewA.revision, total, 'one revision per stored sample; duplicates change nothing');
    assert.deepEqual({ width: viewA.width, height: viewA.height, channels: viewA.channels }, { width: WIDTH, height: HEIGHT, channels: CHANNELS });
    const [catsA, catsB] = await Promise.all([A, B].map((server) => json(server.url, `/v1/datasets/${DATASET}/categories`)));
    assert.deepEqual(catsB, catsA);
    const counts = Object.fromEntries(catsA.categories.map((category: { name: string; count: number }) => [category.name, category.count]));
    assert.deepEqual(counts, { c0: 13, c1: 10, c2: 10, fresh1: 2, fresh2: 2, fresh3: 2 });
    assert.deepEqual(
      Object.values(catsA.map as Record<string, number>).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
      'indices 0..5, each once',
    );
    const [samplesA, samplesB] = await Promise.all([A, B].map((server) => json(server.url, `/v1/datasets/${DATASET}/samples?limit=1000`)));
    assert.deepEqual(samplesB, samplesA);
    assert.equal(samplesA.samples.length, total);
    sampleIds = samplesA.samples.map((sample: { id: number }) => sample.id);
    assert.deepEqual([...sampleIds].sort((a, b) => a - b), [...pixelsById.keys()].sort((a, b) => a - b));

    // The files are shared: B serves the original bytes of a sample uploaded through A, and back.
    for (const [from, to, seed] of [[A, B, 1], [B, A, 0]] as const) {
      const png = await makePng(WIDTH, HEIGHT, CHANNELS, seed);
      const sample = samplesA.samples.find((s: { sha256: string }) => s.sha256 === sha256(png));
      assert.ok(sample, `sample of seed ${seed} (uploaded through ${from === A ? 'A' : 'B'})`);
      const content = await call(to.url, 'GET', `/v1/datasets/${DATASET}/samples/${sample.id}/content`);
      assert.equal(content.status, 200);
      assert.ok(content.body.equals(png), 'the original bytes');
    }
    log(`ingest through both replicas: ${Date.now() - t0} ms`);
  });

  test('a seeded small batch through B is byte-identical to the same batch through A', { timeout: 30_000 }, async () => {
    const request = { size: 12, seed: 4242, noise: 0.7 };
    const [fromA, fromB] = await Promise.all([A, B].map((server) => call(server.url, 'POST', `/v1/datasets/${DATASET}/batches`, { json: request, accept: SAFETENSORS })));
    assert.equal(fromA.status, 200, fromA.body.toString());
    assert.equal(fromB.status, 200, fromB.body.toString());
    assert.match(fromB.type, /safetensors/);
    assert.ok(fromB.body.equals(fromA.body), 'byte for byte');
    const file = parseSafetensors(fromA.body);
    assert.deepEqual(file.tensors.data.shape, [12, HEIGHT, WIDTH, CHANNELS]);
    assert.equal(Number(file.metadata.revision), 39);

    // At noise 0, the pixels are exactly the uploaded ones, whichever replica stored them.
    const plain = await call(B.url, 'POST', `/v1/datasets/${DATASET}/batches`, { json: { size: 39, seed: 1 }, accept: SAFETENSORS });
    assert.equal(plain.status, 200);
    const all = parseSafetensors(plain.body);
    const ids = JSON.parse(all.metadata.ids) as number[];
    assert.deepEqual([...ids].sort((a, b) => a - b), [...sampleIds].sort((a, b) => a - b));
    ids.forEach((id, i) => assert.ok(all.tensors.data.data.subarray(i * RECORD, (i + 1) * RECORD).equals(pixelsById.get(id)!), `sample ${id}`));
  });

  test('an order created on A is reported by B and polled alternately on A and B: exactly size samples, each slot once', { timeout: 60_000 }, async () => {
    const t0 = Date.now();
    const size = 2000;
    const id = await createOrder(A.url, size, 250, 77);
    const onB = await getOrder(B.url, id);
    assert.equal(onB.id, id);
    assert.equal(onB.dataset, DATASET);
    assert.equal(onB.size, size);
    assert.equal(onB.shards.total, 8);
    assert.ok(['queued', 'running', 'complete'].includes(onB.status), onB.status);

    const ledger = new Ledger();
    const servers = [A, B];
    const deadline = performance.now() + 45_000;
    for (let turn = 0; ; turn++) {
      assert.ok(performance.now() < deadline, `the order was not done in time (${ledger.bySlot.size} slots received)`);
      const polled = await poll(servers[turn % 2].url, id, 300, 2000);
      ledger.add(polled);
      if (polled.done) break;
    }
    ledger.assertExact(size, sampleIds);
    // The last poll's samples count as delivered once its response was fully sent: the replica
    // that sent it records that just after the client has read it, so the status follows shortly.
    const settled = (order: OrderView) => order.status !== 'running' && order.shards.done === order.shards.total;
    const [doneA, doneB] = await Promise.all([waitForOrder(A.url, id, settled, 'the order to settle on A', 5000), waitForOrder(B.url, id, settled, 'the order to settle on B', 5000)]);
    for (const done of [doneA, doneB]) {
      assert.equal(done.status, 'complete');
      assert.equal(done.samples.delivered, size);
      assert.equal(done.shards.done, done.shards.total);
    }
    log(`order polled alternately on A and B: ${size} samples in ${ledger.polls} polls, ${Date.now() - t0} ms`);
  });

  test('replica B SIGKILLed while streaming a large poll response: polling on A alone still delivers exactly size, each slot once', { timeout: 60_000 }, async () => {
    const t0 = Date.now();
    // 4608 samples of 16×16×3 fit the result queue (72 messages of 64): all produced up front.
    const size = 4608;
    const id = await createOrder(B.url, size, 500, 99);
    await waitForOrder(A.url, id, (order) => order.samples.produced === size, 'every sample to be produced');
    const ledger = new Ledger();
    // Polls hand out whole result messages of 64 samples: 512 is eight of them.
    ledger.add(await poll(B.url, id, 512, 0));
    await waitForOrder(A.url, id, (order) => order.samples.delivered === 512, 'the first poll to be counted as delivered', 5000);

    // JSON of 4096 samples of 16×16×3 is ~10 MB: B is still writing it when it is killed.
    const killed = B;
    const aborted = await pollAndHangUp(B.url, id, { max: 4096, waitMs: 0 }, 'application/json', 4096, () => stop(killed, 'SIGKILL'));
    const killedAt = Date.now();
    assert.equal(aborted.status, 200);
    assert.equal(aborted.complete, false, `the response arrived whole (${aborted.received} bytes) before B was killed`);
    assert.equal((await killed.exit).signal, 'SIGKILL');

    const afterKill = await getOrder(A.url, id);
    assert.equal(afterKill.samples.delivered, 512, 'the response cut by the kill was counted as delivered');
    await pollUntilDone(() => A.url, id, ledger, { deadlineMs: 40_000 });
    const tookMs = Date.now() - killedAt;
    ledger.assertExact(size, sampleIds);
    await assertCompleted(A.url, id, size);
    assert.ok(tookMs >= LEASE_MS - 500, `the killed poll's samples came back after ${tookMs} ms, before their ${LEASE_MS} ms lease ended`);
    log(`B killed after ${aborted.received} bytes of the poll; A delivered the rest ${tookMs} ms later in ${ledger.polls - 1} polls; test ${Date.now() - t0} ms`);
  });
});
