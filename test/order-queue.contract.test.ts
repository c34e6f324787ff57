import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { AmqpOrderQueue } from '../src/adapters/queue/amqp.order-queue.js';
import { MemoryOrderQueue } from '../src/adapters/queue/memory.order-queue.js';
import type { OrderQueue, ShardTask, TaskConsumer, TaskOutcome } from '../src/ports/order-queue.js';
import { AMQP_ADDRESS, AMQP_URL, amqpAvailable, brokerSkip, inCi, uniqueAmqpNames } from './support/broker.js';

/**
 * The OrderQueue contract, run on both implementations: the in-process queue and RabbitMQ.
 * Every test gets a fresh queue (on RabbitMQ: its own exchange and task queue, deleted after).
 */

interface Backend {
  readonly name: 'memory' | 'amqp';
  readonly skip: false | string;
  open(): Promise<OrderQueue>;
  cleanup(): Promise<void>;
}

function task(orderId: string, shard: number): ShardTask {
  return { kind: 'shard', version: 1, data: { orderId, shard } };
}

const memory: Backend = {
  name: 'memory',
  skip: false,
  open: async () => new MemoryOrderQueue(),
  cleanup: async () => undefined,
};

const amqpTopologies: Array<{ exchange: string; taskQueue: string }> = [];
const amqpBackend: Backend = {
  name: 'amqp',
  skip: await brokerSkip(),
  open: async () => {
    const names = uniqueAmqpNames('contract');
    amqpTopologies.push(names);
    const queue = new AmqpOrderQueue({ url: AMQP_URL, ...names });
    await queue.start();
    // start() never throws: it keeps retrying in the background. The contract needs it connected.
    await queue.ping();
    return queue;
  },
  cleanup: async () => {
    // Best effort: the broker may be away (the tests that needed it have failed already).
    if (amqpTopologies.length === 0) return;
    const connection = await amqp.connect(AMQP_URL).catch(() => undefined);
    if (!connection) return;
    connection.on('error', () => undefined);
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      for (const { exchange, taskQueue } of amqpTopologies.splice(0)) {
        await channel.deleteQueue(taskQueue);
        await channel.deleteExchange(exchange);
      }
    } catch {
      // Left for a later run.
    } finally {
      await connection.close().catch(() => undefined);
    }
  },
};

if (inCi() && !(await amqpAvailable())) {
  describe('OrderQueue contract on RabbitMQ', () => {
    it(`needs RabbitMQ at ${AMQP_ADDRESS}`, () => assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS}: the broker tests must run under CI`));
  });
}

/** Waits until `check` holds, or fails after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A promise with its resolve function, to hold handlers until the test lets them go. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

for (const backend of [memory, amqpBackend]) {
  describe(`OrderQueue contract: ${backend.name}`, { skip: backend.skip }, () => {
    const queues: OrderQueue[] = [];
    const consumers: TaskConsumer[] = [];
    let orderCounter = 0;
    /** An order id unique to this run, so result queues never collide on the broker. */
    const newOrderId = () => `contract-${process.pid}-${Date.now().toString(36)}-${++orderCounter}`;

    async function openQueue(): Promise<OrderQueue> {
      const queue = await backend.open();
      queues.push(queue);
      return queue;
    }

    async function consume(queue: OrderQueue, prefetch: number, handle: (task: ShardTask) => Promise<TaskOutcome>): Promise<TaskConsumer> {
      const consumer = await queue.consumeTasks(prefetch, handle);
      consumers.push(consumer);
      return consumer;
    }

    afterEach(async () => {
      for (const consumer of consumers.splice(0)) await consumer.close();
      for (const queue of queues.splice(0)) await queue.close();
      await backend.cleanup();
    });
    after(async () => {
      await backend.cleanup();
    });

    it('has the right kind and answers ping', async () => {
      const queue = await openQueue();
      assert.equal(queue.kind, backend.name);
      await queue.ping();
    });

    describe('shard tasks', () => {
      it('delivers each published task once, never more than prefetch in flight', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const total = 20;
        await queue.publishTasks(Array.from({ length: total }, (_, shard) => task(orderId, shard)));
        const seen: number[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        await consume(queue, 3, async (t) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          assert.equal(t.kind, 'shard');
          assert.equal(t.version, 1);
          assert.equal(t.data.orderId, orderId);
          await sleep(15);
          seen.push(t.data.shard);
          inFlight--;
          return 'ack';
        });
        await until(() => seen.length >= total, `${total} tasks`);
        await sleep(200); // nothing is delivered twice
        assert.equal(seen.length, total);
        assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: total }, (_, shard) => shard));
        assert.ok(maxInFlight <= 3, `at most 3 in flight, saw ${maxInFlight}`);
        assert.ok(maxInFlight >= 2, `tasks run concurrently up to prefetch, saw ${maxInFlight}`);
      });

      it('delivers tasks published before and after the consumer started', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const seen: number[] = [];
        await queue.publishTasks([task(orderId, 0)]);
        await consume(queue, 1, async (t) => {
          seen.push(t.data.shard);
          return 'ack';
        });
        await queue.publishTasks([task(orderId, 1), task(orderId, 2)]);
        await until(() => seen.length >= 3, '3 tasks');
        assert.deepEqual([...seen].sort(), [0, 1, 2]);
      });

      it("redelivers on 'requeue', discards on 'drop', removes on 'ack'", async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const counts = new Map<number, number>();
        await queue.publishTasks([task(orderId, 0), task(orderId, 1), task(orderId, 2)]);
        await consume(queue, 2, async (t) => {
          const n = (counts.get(t.data.shard) ?? 0) + 1;
          counts.set(t.data.shard, n);
          if (t.data.shard === 0) return n < 3 ? 'requeue' : 'ack';
          if (t.data.shard === 1) return 'drop';
          return 'ack';
        });
        await until(() => counts.get(0) === 3 && counts.get(1) === 1 && counts.get(2) === 1, 'the three outcomes');
        await sleep(300);
        assert.deepEqual(Object.fromEntries(counts), { 0: 3, 1: 1, 2: 1 });
        // The queue is empty now: a fresh consumer gets nothing.
        await consumers.pop()!.close();
        const later: number[] = [];
        await consume(queue, 5, async (t) => {
          later.push(t.data.shard);
          return 'ack';
        });
        await sleep(300);
        assert.deepEqual(later, []);
      });

      it('requeues a task whose handler throws', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        let calls = 0;
        await queue.publishTasks([task(orderId, 7)]);
        await consume(queue, 1, async (t) => {
          calls++;
          assert.equal(t.data.shard, 7);
          if (calls === 1) throw new Error('the worker failed');
          return 'ack';
        });
        await until(() => calls >= 2, 'the redelivery');
        await sleep(200);
        assert.equal(calls, 2);
      });

      it('close() waits for tasks in flight, takes no new ones, and leaves the rest to another consumer', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const total = 6;
        await queue.publishTasks(Array.from({ length: total }, (_, shard) => task(orderId, shard)));
        const hold = gate();
        const startedA: number[] = [];
        const finishedA: number[] = [];
        const consumerA = await queue.consumeTasks(2, async (t) => {
          startedA.push(t.data.shard);
          await hold.promise;
          await sleep(20);
          finishedA.push(t.data.shard);
          return 'ack';
        });
        await until(() => startedA.length === 2, 'two tasks in flight');
        let closed = false;
        const closing = consumerA.close().then(() => {
          closed = true;
        });
        await sleep(100);
        assert.equal(closed, false, 'close() waits for the tasks in flight');
        hold.open();
        await closing;
        assert.deepEqual([...finishedA].sort(), [...startedA].sort(), 'close() resolved after both in-flight tasks finished');
        assert.equal(startedA.length, 2, 'a closing consumer takes no new tasks');
        await consumerA.close(); // safe twice

        // The tasks it never started are still there, for another consumer.
        const seenB: number[] = [];
        await consume(queue, 10, async (t) => {
          seenB.push(t.data.shard);
          return 'ack';
        });
        await until(() => seenB.length >= total - 2, 'the remaining tasks');
        await sleep(200);
        assert.equal(startedA.length, 2);
        assert.deepEqual([...startedA, ...seenB].sort((a, b) => a - b), Array.from({ length: total }, (_, shard) => shard));
      });
    });

    describe('result queues', () => {
      it('ensureResultQueue is true the first time and false after', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        assert.equal(await queue.ensureResultQueue(orderId, 8, 60), true);
        assert.equal(await queue.ensureResultQueue(orderId, 8, 60), false);
        assert.equal(await queue.ensureResultQueue(orderId, 8, 60), false);
        await queue.deleteResultQueue(orderId);
      });

      it('takeResults returns the published bodies in order, and ack removes them', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 16, 60);
        const bodies = Array.from({ length: 5 }, (_, i) => Buffer.from(`message ${i} ${'x'.repeat(i * 100)}`));
        for (const body of bodies) assert.equal(await queue.publishResult(orderId, body), 'published');
        const first = await queue.takeResults(orderId, 2);
        assert.deepEqual(first.map((m) => m.body.toString()), bodies.slice(0, 2).map(String));
        const rest = await queue.takeResults(orderId, 10);
        assert.deepEqual(rest.map((m) => m.body.toString()), bodies.slice(2).map(String));
        for (const message of [...first, ...rest]) message.ack();
        assert.deepEqual(await queue.takeResults(orderId, 10), []);
        await sleep(100);
        assert.deepEqual(await queue.takeResults(orderId, 10), [], 'acknowledged messages never come back');
        await queue.deleteResultQueue(orderId);
      });

      it('takeResults does not wait: an empty queue answers [] at once', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 8, 60);
        const started = Date.now();
        assert.deepEqual(await queue.takeResults(orderId, 5), []);
        assert.ok(Date.now() - started < 1000);
        await queue.deleteResultQueue(orderId);
      });

      it('requeue puts a message back, to be taken again', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 16, 60);
        for (const body of ['a', 'b', 'c']) await queue.publishResult(orderId, Buffer.from(body));
        const taken = await queue.takeResults(orderId, 3);
        assert.deepEqual(taken.map((m) => m.body.toString()), ['a', 'b', 'c']);
        taken[0].ack();
        taken[1].requeue();
        taken[2].ack();
        taken[1].ack(); // settling twice is a no-op: the message stays requeued
        const again = await queue.takeResults(orderId, 10);
        assert.deepEqual(again.map((m) => m.body.toString()), ['b']);
        again[0].ack();
        assert.deepEqual(await queue.takeResults(orderId, 10), []);
        await queue.deleteResultQueue(orderId);
      });

      it("is bounded: a publish beyond maxMessages is 'full' until one is taken and acknowledged", async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 3, 60);
        for (let i = 0; i < 3; i++) assert.equal(await queue.publishResult(orderId, Buffer.from(`m${i}`)), 'published');
        assert.equal(await queue.publishResult(orderId, Buffer.from('m3')), 'full');
        assert.equal(await queue.publishResult(orderId, Buffer.from('m3')), 'full');
        const [one] = await queue.takeResults(orderId, 1);
        assert.equal(one.body.toString(), 'm0');
        one.ack();
        assert.equal(await queue.publishResult(orderId, Buffer.from('m3')), 'published');
        assert.equal(await queue.publishResult(orderId, Buffer.from('m4')), 'full');
        const rest = await queue.takeResults(orderId, 10);
        assert.deepEqual(rest.map((m) => m.body.toString()), ['m1', 'm2', 'm3'], 'the refused publishes were not stored');
        for (const message of rest) message.ack();
        await queue.deleteResultQueue(orderId);
      });

      it('takeResults on a missing queue is [], and the queue object keeps working afterwards', async () => {
        const queue = await openQueue();
        assert.deepEqual(await queue.takeResults(newOrderId(), 5), []);
        assert.deepEqual(await queue.takeResults(newOrderId(), 1), []);
        const orderId = newOrderId();
        assert.equal(await queue.ensureResultQueue(orderId, 8, 60), true);
        assert.equal(await queue.publishResult(orderId, Buffer.from('after')), 'published');
        const taken = await queue.takeResults(orderId, 5);
        assert.deepEqual(taken.map((m) => m.body.toString()), ['after']);
        taken[0].ack();
        await queue.ping();
        // Tasks still flow too.
        const seen: number[] = [];
        await consume(queue, 1, async (t) => {
          seen.push(t.data.shard);
          return 'ack';
        });
        await queue.publishTasks([task(orderId, 3)]);
        await until(() => seen.length === 1, 'a task after the failed take');
        await queue.deleteResultQueue(orderId);
      });

      it('a message taken before a failing take on another queue can still be settled', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 8, 60);
        await queue.publishResult(orderId, Buffer.from('kept'));
        const [taken] = await queue.takeResults(orderId, 1);
        assert.deepEqual(await queue.takeResults(newOrderId(), 1), []);
        taken.requeue(); // must not throw, even when the channel it came on is gone
        await until(async () => {
          const again = await queue.takeResults(orderId, 1);
          for (const message of again) message.ack();
          return again.length === 1;
        }, 'the requeued message');
        await queue.deleteResultQueue(orderId);
      });

      it('deleteResultQueue removes the queue and its messages', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 8, 60);
        await queue.publishResult(orderId, Buffer.from('gone'));
        await queue.deleteResultQueue(orderId);
        assert.deepEqual(await queue.takeResults(orderId, 5), []);
        assert.equal(await queue.ensureResultQueue(orderId, 8, 60), true, 'the queue was gone');
        assert.deepEqual(await queue.takeResults(orderId, 5), [], 'a new queue starts empty');
        await queue.deleteResultQueue(orderId);
        await queue.deleteResultQueue(orderId); // deleting a missing queue is fine
      });

      it('a result queue unused for its TTL expires', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        assert.equal(await queue.ensureResultQueue(orderId, 8, 1), true);
        await queue.publishResult(orderId, Buffer.from('stale'));
        await sleep(1600);
        assert.deepEqual(await queue.takeResults(orderId, 5), [], 'its messages went with it');
        assert.equal(await queue.ensureResultQueue(orderId, 8, 1), true, 'the queue expired');
        await queue.deleteResultQueue(orderId);
      });

      it('taking keeps a queue alive past its TTL', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        await queue.ensureResultQueue(orderId, 8, 1);
        for (let i = 0; i < 4; i++) {
          await sleep(500);
          assert.deepEqual(await queue.takeResults(orderId, 1), []);
        }
        assert.equal(await queue.ensureResultQueue(orderId, 8, 1), false, 'used within its TTL, the queue is still there');
        await queue.deleteResultQueue(orderId);
      });
    });

    it('close() twice is safe, and a closed queue fails ping', async () => {
      const queue = await openQueue();
      await queue.close();
      await queue.close();
      await assert.rejects(queue.ping());
    });
  });
}
