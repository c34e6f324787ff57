/**
 * OrderService without HTTP, on real in-process adapters and a fake clock: placement, limits,
 * keys and owners, the lifecycle, expiry and the TTL, and the worker's production (continuation,
 * parking, fairness, the producer lease).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SensoryError } from '../../src/domain/errors.js';
import { lowestUndelivered } from '../../src/domain/stream-state.js';
import { produceTask } from '../../src/services/stream-queues.js';
import { setTimeout as realSleep } from 'node:timers/promises';
import {
  ADMIN,
  OWNER,
  STRANGER,
  assertExactlyOnce,
  drainShared,
  openWorld,
  pollOnce,
  pollSome,
  until,
  type ServiceWorld,
} from '../support/order-service.js';

async function rejects(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SensoryError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('orders (service): placement, owners, lifecycle, expiry', () => {
  let w: ServiceWorld;
  let ids: number[];

  before(async () => {
    w = await openWorld();
    ids = await w.seed('digits', 7);
    await w.datasets.put('empty', { width: 4, height: 4, channels: 3 });
  });
  after(() => w.close());

  it('placing is O(ranks): one task per rank, and a status with every rank at zero', async () => {
    const before = w.tasks.length;
    const { order, created } = await w.orders.place('digits', { size: 12, ranks: 3, seed: 1 }, OWNER);
    assert.equal(created, true);
    assert.equal(w.tasks.length - before, 3);
    assert.deepEqual(w.tasks.slice(before).map((task) => (task.kind === 'produce' ? task.data.stream : -1)), [0, 1, 2]);
    assert.deepEqual([order.status, order.slots, order.ranks, order.generation, order.rounding], ['queued', 12, 3, 0, 'exact']);
    assert.deepEqual(order.streams.map((s) => [s.rank, s.mode, s.length, s.delivered]), [[0, 'none', 4, 0], [1, 'none', 4, 0], [2, 'none', 4, 0]]);
    assert.deepEqual(order.shards, { total: 3, done: 0 });
    await w.orders.cancel(order.spec.id, OWNER);
  });

  it('an order of 10^8 samples with shardSize 1 is refused before anything is stored; with the default shard size it is answered at once', async () => {
    const before = (await w.orders.list(ADMIN, false)).length;
    const tasks = w.tasks.length;
    await rejects(w.orders.place('digits', { size: 100_000_000, shardSize: 1 }, OWNER), 'SENSORY_ERR_ORDER_TOO_LARGE', /SENSORY_MAX_ORDER_SHARDS.*100000000.*shardSize of at least 1000/);
    assert.equal((await w.orders.list(ADMIN, false)).length, before, 'nothing stored');
    assert.equal(w.tasks.length, tasks, 'nothing queued');
    const { order } = await w.orders.place('digits', { size: 100_000_000, seed: 2 }, OWNER);
    assert.equal(w.tasks.length, tasks + 1, 'one task, not one per shard');
    assert.deepEqual([order.slots, order.shards.total], [100_000_000, 20_000]);
    await w.orders.cancel(order.spec.id, OWNER);
  });

  it('limits and bad shapes: samples, ranks, rounding, balance, an empty dataset: clear errors, nothing stored', async () => {
    const small = await openWorld({ maxSamples: 50, maxRanks: 4 });
    try {
      await small.seed('tiny', 3);
      await rejects(small.orders.place('tiny', { size: 51 }, OWNER), 'SENSORY_ERR_ORDER_TOO_LARGE', /at most 50 samples \(SENSORY_MAX_ORDER_SAMPLES\)/);
      await rejects(small.orders.place('tiny', { size: 40, ranks: 5 }, OWNER), 'SENSORY_ERR_TOO_MANY_RANKS', /SENSORY_MAX_ORDER_RANKS/);
      await rejects(small.orders.place('tiny', { size: 3, ranks: 4 }, OWNER), 'SENSORY_ERR_TOO_MANY_RANKS', /ranks 4 is above the size 3/);
      await rejects(small.orders.place('tiny', { size: 10, ranks: 3 }, OWNER), 'SENSORY_ERR_UNEVEN_RANKS', /size 10 .*ranks 3/);
      await rejects(small.orders.place('tiny', { size: 10, balance: true }, OWNER), 'SENSORY_ERR_BAD_REQUEST');
      assert.deepEqual(await small.orders.list(ADMIN, false), []);
      assert.deepEqual(small.tasks, []);
    } finally {
      await small.close();
    }
    await rejects(w.orders.place('empty', { size: 5 }, OWNER), 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
  });

  it('a key returns the same order for the same request, 409 for another, and is the owner\'s own', async () => {
    const first = await w.orders.place('digits', { size: 14, key: 'run-7', seed: 3 }, OWNER);
    const again = await w.orders.place('digits', { size: 14, key: 'run-7', seed: 3, noise: 0 }, OWNER);
    assert.deepEqual([again.created, again.order.spec.id], [false, first.order.spec.id], 'defaults written out are the same request');
    await rejects(w.orders.place('digits', { size: 15, key: 'run-7', seed: 3 }, OWNER), 'SENSORY_ERR_ORDER_KEY_CONFLICT', new RegExp(first.order.spec.id));
    const others = await w.orders.place('digits', { size: 14, key: 'run-7', seed: 3 }, STRANGER);
    assert.notEqual(others.order.spec.id, first.order.spec.id);
    // Several workers placing at once: one order.
    const racing = await Promise.all([0, 1, 2, 3].map(() => w.orders.place('digits', { size: 21, key: 'race', ranks: 3 }, OWNER)));
    assert.equal(new Set(racing.map((r) => r.order.spec.id)).size, 1);
    assert.equal(racing.filter((r) => r.created).length, 1);
    for (const id of [first.order.spec.id, racing[0].order.spec.id]) await w.orders.cancel(id, OWNER);
    await w.orders.cancel(others.order.spec.id, STRANGER);
  });

  it('owners: only the placing key or an admin key polls, cancels, reshapes or extends; lists show the caller\'s orders', async () => {
    const { order } = await w.orders.place('digits', { size: 6, ranks: 2, seed: 4 }, OWNER);
    const id = order.spec.id;
    await rejects(w.orders.poll(id, STRANGER, {}), 'SENSORY_ERR_NOT_ORDER_OWNER');
    await rejects(w.orders.cancel(id, STRANGER), 'SENSORY_ERR_NOT_ORDER_OWNER');
    await rejects(w.orders.reshape(id, STRANGER, { ranks: 1 }), 'SENSORY_ERR_NOT_ORDER_OWNER');
    await rejects(w.orders.extend(id, STRANGER, 60), 'SENSORY_ERR_NOT_ORDER_OWNER');
    const untouched = await w.orders.get(id);
    assert.deepEqual([untouched.status, untouched.ranks, untouched.ttlSeconds, untouched.streams.map((s) => s.mode)], ['queued', 2, 600, ['none', 'none']]);
    assert.ok((await w.orders.list(OWNER, false)).some((o) => o.spec.id === id));
    assert.ok(!(await w.orders.list(STRANGER, false)).some((o) => o.spec.id === id));
    assert.ok((await w.orders.list(ADMIN, false)).some((o) => o.spec.id === id));
    await pollOnce(w.orders, id, ADMIN, { max: 1 });
    assert.equal((await w.orders.cancel(id, ADMIN)).status, 'cancelled');
  });

  it('queued → running → complete, from the facts; a complete order stays complete', async () => {
    const { order } = await w.orders.place('digits', { size: 30, shardSize: 7, seed: 5 }, OWNER);
    const id = order.spec.id;
    assert.equal((await w.orders.get(id)).status, 'queued');
    const consumer = await w.startWorker(1);
    await until(async () => (await w.orders.get(id)).status === 'running', 'the order to run');
    const got = await drainShared(w.orders, id, OWNER, { max: 8 });
    assertExactlyOnce(got.slots, 30);
    const done = await w.orders.get(id);
    assert.deepEqual([done.status, done.samples, done.shards], ['complete', { produced: 30, delivered: 30 }, { total: 5, done: 5 }]);
    assert.deepEqual(got.epochs, got.slots.map((slot) => Math.floor(slot / ids.length)), 'each sample\'s epoch');
    assert.equal((await w.orders.cancel(id, OWNER)).status, 'complete');
    await consumer.close();
  });

  it('expiry: an order nobody delivers from for its TTL expires; a delivery and PATCH ttl move the expiry', async () => {
    const consumer = await w.startWorker(1);
    const { order } = await w.orders.place('digits', { size: 20, seed: 6 }, OWNER);
    const id = order.spec.id;
    w.clock.advance(300_000);
    await pollSome(w.orders, id, OWNER, { max: 2 });
    const moved = Date.parse((await w.orders.get(id)).expiresAt);
    assert.equal(moved, w.clock.now() + 600_000, 'a delivery after half the TTL moves the expiry');
    await rejects(w.orders.extend(id, OWNER, 0), 'SENSORY_ERR_BAD_REQUEST', /ttlSeconds .*1 to 604800/);
    await rejects(w.orders.extend(id, OWNER, 604_801), 'SENSORY_ERR_BAD_REQUEST');
    const extended = await w.orders.extend(id, OWNER, 7200);
    assert.deepEqual([extended.ttlSeconds, Date.parse(extended.expiresAt)], [7200, w.clock.now() + 7_200_000]);
    w.clock.advance(7_200_000);
    assert.equal((await w.orders.get(id)).status, 'running', 'at its expiry it still runs');
    w.clock.advance(1);
    const expired = await w.orders.get(id);
    assert.equal(expired.status, 'expired');
    assert.match(expired.error ?? '', /no sample was delivered for 7200 s/);
    const poll = await pollOnce(w.orders, id, OWNER, { max: 5 });
    assert.deepEqual([poll.count, poll.done, poll.status], [0, true, 'expired']);
    await rejects(w.orders.extend(id, OWNER, 60), 'SENSORY_ERR_ORDER_FINISHED');
    await rejects(w.orders.reshape(id, OWNER, { ranks: 1 }), 'SENSORY_ERR_ORDER_FINISHED');
    await consumer.close();
  });

  it('a dataset deleted under an order fails it when it is next read', async () => {
    await w.seed('doomed', 3);
    const { order } = await w.orders.place('doomed', { size: 9 }, OWNER);
    await w.datasets.delete('doomed');
    const failed = await w.orders.get(order.spec.id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /dataset doomed was deleted/);
  });
});

describe('orders (service): production', () => {
  let w: ServiceWorld;

  before(async () => {
    w = await openWorld();
    await w.seed('digits', 7);
  });
  after(() => w.close());

  it('a stream is produced a shard at a time, each shard a task of its own (continuation)', async () => {
    const consumer = await w.startWorker(1);
    const before = w.tasks.length;
    const { order } = await w.orders.place('digits', { size: 40, shardSize: 10, seed: 1 }, OWNER);
    await until(async () => (await w.orders.get(order.spec.id)).samples.produced === 40, 'every sample produced');
    const tasks = w.tasks.slice(before).filter((t) => t.kind !== 'export' && t.data.orderId === order.spec.id);
    assert.equal(tasks.length, 4, 'the first task and three continuations');
    assert.equal(new Set(tasks.map((t) => (t.kind === 'produce' ? t.data.taskId : ''))).size, 4);
    assertExactlyOnce((await drainShared(w.orders, order.spec.id, OWNER)).slots, 40);
    await consumer.close();
  });

  it('a full result queue parks the stream without holding a worker; a poll wakes it', async () => {
    const consumer = await w.startWorker(1);
    // 4×4×3 records: 64 samples a message, at most 72 messages queued (a full poll and 8 more): 4608 samples.
    const { order } = await w.orders.place('digits', { size: 5000, shardSize: 1000, seed: 2 }, OWNER);
    const id = order.spec.id;
    await until(async () => (await w.orderStore.stream({ orderId: id, generation: 0, stream: 0 }))?.parked === true, 'the stream to park');
    const parked = (await w.orderStore.stream({ orderId: id, generation: 0, stream: 0 }))!;
    assert.equal(parked.producer, null, 'a parked stream holds no producer');
    assert.equal(parked.produced, 4608);
    const got = await pollSome(w.orders, id, OWNER, { max: 1024 });
    assert.equal(got.count, 1024);
    // The poll made room for 16 messages: enough for the last 392 samples.
    await until(async () => (await w.orders.get(id)).samples.produced === 5000, 'the woken stream to finish');
    await w.orders.cancel(id, OWNER);
    await consumer.close();
  });

  it('fairness: a small order placed after an unpolled large one gets all its samples while the large one waits parked', async () => {
    const consumer = await w.startWorker(1);
    const large = (await w.orders.place('digits', { size: 50_000, shardSize: 1000, seed: 3 }, OWNER)).order.spec.id;
    const small = (await w.orders.place('digits', { size: 100, shardSize: 1000, seed: 4 }, OWNER)).order.spec.id;
    const got = await drainShared(w.orders, small, OWNER, { max: 100, waitMs: 50 });
    assertExactlyOnce(got.slots, 100, 'the small order');
    const big = await w.orders.get(large);
    assert.ok(big.samples.produced <= 4608 + 1000, `the large order is held by its bound (${big.samples.produced} produced)`);
    assert.equal((await w.orders.get(small)).status, 'complete');
    await until(async () => (await w.orderStore.stream({ orderId: large, generation: 0, stream: 0 }))?.parked === true, 'the large order to park');
    await w.orders.cancel(large, OWNER);
    await consumer.close();
  });

  it('the producer lease: a task finds the stream held and leaves it; when the holder vanished the lease lapses and a poll restarts production', async () => {
    const { order } = await w.orders.place('digits', { size: 50, seed: 5 }, OWNER);
    const ref = { orderId: order.spec.id, generation: 0, stream: 0 };
    // A worker that took the stream and died, its task lost with it.
    await w.orderStore.updateStream(ref, (state) => ({ state: { ...state, producer: { holder: 'dead-task', until: w.clock.now() + 30_000 } }, result: undefined }));
    const consumer = await w.startWorker(1);
    await until(() => w.tasks.length > 0 && w.queue !== undefined, 'the worker');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await w.orders.get(ref.orderId)).samples.produced, 0, 'the placement task found the stream held and left it');
    const empty = await pollOnce(w.orders, ref.orderId, OWNER, { max: 10 });
    assert.equal(empty.count, 0);
    w.clock.advance(30_000);
    const got = await drainShared(w.orders, ref.orderId, OWNER, { max: 10 });
    assertExactlyOnce(got.slots, 50);
    await consumer.close();
  });

  it('a task of an earlier release (v1 shard) produces stream 0; one of an unknown order is dropped', async () => {
    const { order } = await w.orders.place('digits', { size: 20, seed: 6 }, OWNER);
    const id = order.spec.id;
    // Drop the placement's task: only the v1 task below produces.
    await w.orderStore.updateStream({ orderId: id, generation: 0, stream: 0 }, (state) => ({ state: { ...state, producer: { holder: 'x', until: w.clock.now() + 1000 } }, result: undefined }));
    const consumer = await w.startWorker(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    w.clock.advance(1000);
    await w.queue.publishTasks([{ kind: 'shard', version: 1, data: { orderId: id, shard: 0 } }, { kind: 'shard', version: 1, data: { orderId: 'no-such-order', shard: 0 } }]);
    await until(async () => (await w.orders.get(id)).samples.produced === 20, 'the v1 task to produce');
    assertExactlyOnce((await drainShared(w.orders, id, OWNER)).slots, 20);
    await consumer.close();
  });

  it('recovery: a result queue lost mid-order (shared mode) is made again and the rest produced, each slot once', async () => {
    const consumer = await w.startWorker(1);
    const { order } = await w.orders.place('digits', { size: 300, seed: 7 }, OWNER);
    const id = order.spec.id;
    const ref = { orderId: id, generation: 0, stream: 0 };
    const first = await pollSome(w.orders, id, OWNER, { max: 100 });
    const cut = await pollSome(w.orders, id, OWNER, { max: 30 }, false);
    assert.equal(cut.count, 30);
    await until(async () => (await w.orders.get(id)).samples.produced === 300, 'every sample produced');
    await w.queue.deleteResultQueue(ref);
    const stateBefore = (await w.orderStore.stream(ref))!;
    assert.equal(lowestUndelivered(stateBefore), first.count, 'the cut answer\'s samples are owed');
    const rest = await drainShared(w.orders, id, OWNER, { max: 64 });
    assertExactlyOnce([...first.slots, ...rest.slots], 300);
    assert.equal((await w.orderStore.stream(ref))!.run, 1, 'one new production run');
    await consumer.close();
  });

  it('recovery: a task already queued that takes the stream as production restarts loses nothing to the purge of the lost queue', async () => {
    const consumer = await w.startWorker(1);
    const { order } = await w.orders.place('digits', { size: 300, shardSize: 20, seed: 8 }, OWNER);
    const id = order.spec.id;
    const ref = { orderId: id, generation: 0, stream: 0 };
    const first = await pollSome(w.orders, id, OWNER, { max: 40 });
    await until(async () => (await w.orders.get(id)).samples.produced === 300, 'every sample produced');
    await w.queue.deleteResultQueue(ref);
    // A continuation task published before the queue was lost runs while the poll starts
    // production over: it must not publish anything that the restart then purges.
    const purge = w.queue.purgeResults.bind(w.queue);
    w.queue.purgeResults = async (purged) => {
      w.queue.purgeResults = purge;
      await w.queue.publishTasks([produceTask(ref)]);
      await realSleep(300);
      return purge(purged);
    };
    const rest = await drainShared(w.orders, id, OWNER, { max: 64 });
    assertExactlyOnce([...first.slots, ...rest.slots], 300);
    await consumer.close();
  });
});
