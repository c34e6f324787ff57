import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { AmqpOrderQueue } from '../src/adapters/queue/amqp.order-queue.js';
import { MemoryOrderQueue } from '../src/adapters/queue/memory.order-queue.js';
import { releaseChunk, takeChunk } from '../src/lib/chunk-pool.js';
import { orderTasksOnly, type OrderQueue, type OrderTask, type ProduceTask, type ResultQueueBound, type StreamRef, type TaskConsumer, type TaskOutcome } from '../src/ports/order-queue.js';
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

/** A produce task; its stream number stands for the task's identity in these tests. */
function task(orderId: string, stream: number): ProduceTask {
  return { kind: 'produce', version: 2, data: { orderId, generation: 0, stream, taskId: `${orderId}/${stream}` } };
}

/** The stream number of a produce task (what the tests below count). */
function numberOf(t: OrderTask): number {
  assert.equal(t.kind, 'produce');
  return t.kind === 'produce' ? t.data.stream : -1;
}

/** A bound of `maxMessages` messages and plenty of bytes. */
function messages(maxMessages: number): ResultQueueBound {
  return { maxMessages, maxBytes: 1024 * 1024 };
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
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
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
    /** A stream of a new order: its own result queue. */
    const newStream = (): StreamRef => ({ orderId: newOrderId(), generation: 0, stream: 0 });

    async function openQueue(): Promise<OrderQueue> {
      const queue = await backend.open();
      queues.push(queue);
      return queue;
    }

    async function consume(queue: OrderQueue, prefetch: number, handle: (task: OrderTask) => Promise<TaskOutcome>): Promise<TaskConsumer> {
      const consumer = await queue.consumeTasks(prefetch, orderTasksOnly(handle));
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
          assert.equal(t.kind, 'produce');
          assert.equal(t.version, 2);
          assert.equal(t.data.orderId, orderId);
          assert.deepEqual(t, task(orderId, numberOf(t)), 'the task arrives whole');
          await sleep(15);
          seen.push(numberOf(t));
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
          seen.push(numberOf(t));
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
          const n = (counts.get(numberOf(t)) ?? 0) + 1;
          counts.set(numberOf(t), n);
          if (numberOf(t) === 0) return n < 3 ? 'requeue' : 'ack';
          if (numberOf(t) === 1) return 'drop';
          return 'ack';
        });
        await until(() => counts.get(0) === 3 && counts.get(1) === 1 && counts.get(2) === 1, 'the three outcomes');
        await sleep(300);
        assert.deepEqual(Object.fromEntries(counts), { 0: 3, 1: 1, 2: 1 });
        // The queue is empty now: a fresh consumer gets nothing.
        await consumers.pop()!.close();
        const later: number[] = [];
        await consume(queue, 5, async (t) => {
          later.push(numberOf(t));
          return 'ack';
        });
        await sleep(300);
        assert.deepEqual(later, []);
      });

      it('hands over a task of an earlier release (a v1 shard task); drops tasks it does not know', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const seen: OrderTask[] = [];
        await consume(queue, 2, async (t) => {
          seen.push(t);
          return 'ack';
        });
        const unknown = [
          { kind: 'shard', version: 3, data: { orderId, shard: 1 } },
          { kind: 'export', version: 1, data: { orderId } },
          { kind: 'produce', version: 2, data: { orderId, generation: -1, stream: 0, taskId: 'x' } },
          { kind: 'produce', version: 2, data: { orderId, generation: 0, stream: 0 } },
        ] as unknown as OrderTask[];
        await queue.publishTasks([...unknown, { kind: 'shard', version: 1, data: { orderId, shard: 4 } }, task(orderId, 5)]);
        await until(() => seen.length >= 2, 'the two known tasks');
        await sleep(200);
        assert.deepEqual(seen, [{ kind: 'shard', version: 1, data: { orderId, shard: 4 } }, task(orderId, 5)]);
      });

      it('requeues a task whose handler throws', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        let calls = 0;
        await queue.publishTasks([task(orderId, 7)]);
        await consume(queue, 1, async (t) => {
          calls++;
          assert.equal(numberOf(t), 7);
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
        const consumerA = await queue.consumeTasks(2, orderTasksOnly(async (t) => {
          startedA.push(numberOf(t));
          await hold.promise;
          await sleep(20);
          finishedA.push(numberOf(t));
          return 'ack';
        }));
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
          seenB.push(numberOf(t));
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
        const ref = newStream();
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 60), true);
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 60), false);
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 60), false);
        await queue.deleteResultQueue(ref);
      });

      it('takeResults returns the published bodies in order, and ack removes them', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(16), 60);
        const bodies = Array.from({ length: 5 }, (_, i) => Buffer.from(`message ${i} ${'x'.repeat(i * 100)}`));
        for (const body of bodies) assert.equal(await queue.publishResult(ref, body), 'published');
        const first = await queue.takeResults(ref, 2);
        assert.deepEqual(first.map((m) => m.body.toString()), bodies.slice(0, 2).map(String));
        const rest = await queue.takeResults(ref, 10);
        assert.deepEqual(rest.map((m) => m.body.toString()), bodies.slice(2).map(String));
        for (const message of [...first, ...rest]) message.ack();
        assert.deepEqual(await queue.takeResults(ref, 10), []);
        await sleep(100);
        assert.deepEqual(await queue.takeResults(ref, 10), [], 'acknowledged messages never come back');
        await queue.deleteResultQueue(ref);
      });

      it('takeResults does not wait: an empty queue answers [] at once', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(8), 60);
        const started = performance.now();
        assert.deepEqual(await queue.takeResults(ref, 5), []);
        assert.ok(performance.now() - started < 1000);
        await queue.deleteResultQueue(ref);
      });

      it('requeue puts a message back, to be taken again', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(16), 60);
        for (const body of ['a', 'b', 'c']) await queue.publishResult(ref, Buffer.from(body));
        const taken = await queue.takeResults(ref, 3);
        assert.deepEqual(taken.map((m) => m.body.toString()), ['a', 'b', 'c']);
        taken[0].ack();
        taken[1].requeue();
        taken[2].ack();
        taken[1].ack(); // settling twice is a no-op: the message stays requeued
        const again = await queue.takeResults(ref, 10);
        assert.deepEqual(again.map((m) => m.body.toString()), ['b']);
        again[0].ack();
        assert.deepEqual(await queue.takeResults(ref, 10), []);
        await queue.deleteResultQueue(ref);
      });

      it("is bounded: a publish beyond maxMessages is 'full' until one is taken and acknowledged", async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(3), 60);
        for (let i = 0; i < 3; i++) assert.equal(await queue.publishResult(ref, Buffer.from(`m${i}`)), 'published');
        assert.equal(await queue.publishResult(ref, Buffer.from('m3')), 'full');
        assert.equal(await queue.publishResult(ref, Buffer.from('m3')), 'full');
        const [one] = await queue.takeResults(ref, 1);
        assert.equal(one.body.toString(), 'm0');
        one.ack();
        assert.equal(await queue.publishResult(ref, Buffer.from('m3')), 'published');
        assert.equal(await queue.publishResult(ref, Buffer.from('m4')), 'full');
        const rest = await queue.takeResults(ref, 10);
        assert.deepEqual(rest.map((m) => m.body.toString()), ['m1', 'm2', 'm3'], 'the refused publishes were not stored');
        for (const message of rest) message.ack();
        await queue.deleteResultQueue(ref);
      });

      it("is bounded in bytes too: a publish that would pass maxBytes is 'full', whatever the message count", async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, { maxMessages: 100, maxBytes: 1000 }, 60);
        const body = (tag: string) => Buffer.alloc(300, tag);
        for (const tag of ['a', 'b', 'c']) assert.equal(await queue.publishResult(ref, body(tag)), 'published');
        assert.equal(await queue.publishResult(ref, body('d')), 'full', '1200 bytes would pass 1000');
        assert.equal(await queue.publishResult(ref, Buffer.alloc(100, 'e')), 'published', '1000 bytes exactly fit');
        assert.equal(await queue.publishResult(ref, Buffer.alloc(1, 'f')), 'full');
        const [first] = await queue.takeResults(ref, 1);
        first.ack();
        assert.equal(await queue.publishResult(ref, body('g')), 'published', 'taking one made room');
        const rest = await queue.takeResults(ref, 10);
        assert.deepEqual(rest.map((m) => m.body.subarray(0, 1).toString()), ['b', 'c', 'e', 'g']);
        for (const message of rest) message.ack();
        await queue.deleteResultQueue(ref);
      });

      it('messages handed back return to their places: the queue stays in publish order', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(16), 60);
        for (const body of ['m0', 'm1', 'm2', 'm3', 'm4']) await queue.publishResult(ref, Buffer.from(body));
        const taken = await queue.takeResults(ref, 3);
        taken[0].requeue();
        taken[2].requeue();
        taken[1].requeue();
        const again = await queue.takeResults(ref, 10);
        assert.deepEqual(again.map((m) => m.body.toString()), ['m0', 'm1', 'm2', 'm3', 'm4']);
        for (const message of again) message.ack();
        await queue.deleteResultQueue(ref);
      });

      it('purgeResults removes the waiting messages, keeps the queue, and leaves taken ones to be settled', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(16), 60);
        for (const body of ['x', 'y', 'z']) await queue.publishResult(ref, Buffer.from(body));
        const [held] = await queue.takeResults(ref, 1);
        await queue.purgeResults(ref);
        assert.deepEqual(await queue.takeResults(ref, 10), []);
        assert.equal(await queue.ensureResultQueue(ref, messages(16), 60), false, 'the queue is still there');
        await queue.publishResult(ref, Buffer.from('after'));
        held.ack();
        const after = await queue.takeResults(ref, 10);
        assert.deepEqual(after.map((m) => m.body.toString()), ['after']);
        after[0].ack();
        await queue.purgeResults(newStream()); // purging a missing queue is fine
        await queue.deleteResultQueue(ref);
      });

      it('each stream of an order has its own queue, with its own bound', async () => {
        const queue = await openQueue();
        const orderId = newOrderId();
        const streams = [0, 1, 2].map((stream) => ({ orderId, generation: 0, stream }));
        const later = { orderId, generation: 1, stream: 0 };
        for (const ref of [...streams, later]) assert.equal(await queue.ensureResultQueue(ref, messages(1), 60), true);
        for (const ref of [...streams, later]) assert.equal(await queue.publishResult(ref, Buffer.from(`${ref.generation}.${ref.stream}`)), 'published');
        assert.equal(await queue.publishResult(streams[1], Buffer.from('more')), 'full');
        for (const ref of [...streams, later]) {
          const taken = await queue.takeResults(ref, 10);
          assert.deepEqual(taken.map((m) => m.body.toString()), [`${ref.generation}.${ref.stream}`]);
          taken[0].ack();
          await queue.deleteResultQueue(ref);
        }
      });

      it('takeResults on a missing queue is [], and the queue object keeps working afterwards', async () => {
        const queue = await openQueue();
        assert.deepEqual(await queue.takeResults(newStream(), 5), []);
        assert.deepEqual(await queue.takeResults(newStream(), 1), []);
        const ref = newStream();
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 60), true);
        assert.equal(await queue.publishResult(ref, Buffer.from('after')), 'published');
        const taken = await queue.takeResults(ref, 5);
        assert.deepEqual(taken.map((m) => m.body.toString()), ['after']);
        taken[0].ack();
        await queue.ping();
        // Tasks still flow too.
        const seen: number[] = [];
        await consume(queue, 1, async (t) => {
          seen.push(numberOf(t));
          return 'ack';
        });
        await queue.publishTasks([task(ref.orderId, 3)]);
        await until(() => seen.length === 1, 'a task after the failed take');
        await queue.deleteResultQueue(ref);
      });

      it('a message taken before a failing take on another queue can still be settled', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(8), 60);
        await queue.publishResult(ref, Buffer.from('kept'));
        const [taken] = await queue.takeResults(ref, 1);
        assert.deepEqual(await queue.takeResults(newStream(), 1), []);
        taken.requeue(); // must not throw, even when the channel it came on is gone
        await until(async () => {
          const again = await queue.takeResults(ref, 1);
          for (const message of again) message.ack();
          return again.length === 1;
        }, 'the requeued message');
        await queue.deleteResultQueue(ref);
      });

      it('deleteResultQueue removes the queue and its messages', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(8), 60);
        await queue.publishResult(ref, Buffer.from('gone'));
        await queue.deleteResultQueue(ref);
        assert.deepEqual(await queue.takeResults(ref, 5), []);
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 60), true, 'the queue was gone');
        assert.deepEqual(await queue.takeResults(ref, 5), [], 'a new queue starts empty');
        await queue.deleteResultQueue(ref);
        await queue.deleteResultQueue(ref); // deleting a missing queue is fine
      });

      it('a result queue unused for its TTL expires', async () => {
        const queue = await openQueue();
        const ref = newStream();
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 1), true);
        await queue.publishResult(ref, Buffer.from('stale'));
        await sleep(1600);
        assert.deepEqual(await queue.takeResults(ref, 5), [], 'its messages went with it');
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 1), true, 'the queue expired');
        await queue.deleteResultQueue(ref);
      });

      it('taking keeps a queue alive past its TTL', async () => {
        const queue = await openQueue();
        const ref = newStream();
        await queue.ensureResultQueue(ref, messages(8), 1);
        for (let i = 0; i < 4; i++) {
          await sleep(500);
          assert.deepEqual(await queue.takeResults(ref, 1), []);
        }
        assert.equal(await queue.ensureResultQueue(ref, messages(8), 1), false, 'used within its TTL, the queue is still there');
        await queue.deleteResultQueue(ref);
      });
    });

    it('signals: a published result, a result handed back and signal() reach every listener, with the order id', async () => {
      const queue = await openQueue();
      const heard: string[] = [];
      queue.onSignal((orderId, stream) => heard.push(stream ? `${orderId}/${stream.generation}/${stream.stream}` : orderId));
      // On RabbitMQ the listener's queue is bound asynchronously: give it a moment.
      await sleep(backend.name === 'amqp' ? 300 : 0);
      const until = async (count: number) => {
        for (let i = 0; i < 100 && heard.length < count; i++) await sleep(20);
      };
      const ref = { ...newStream(), stream: 3 };
      const named = `${ref.orderId}/0/3`;
      await queue.ensureResultQueue(ref, messages(8), 60);
      assert.equal(await queue.publishResult(ref, Buffer.from('one')), 'published');
      await until(1);
      assert.deepEqual(heard, [named], 'a published result, with its stream');
      const [taken] = await queue.takeResults(ref, 1);
      taken.requeue();
      await until(2);
      assert.deepEqual(heard, [named, named], 'a result handed back, with its stream');
      await queue.signal('another-order');
      await until(3);
      assert.deepEqual(heard, [named, named, 'another-order'], 'signal(): the whole order');
      await queue.deleteResultQueue(ref);
    });

    it('close() twice is safe, and a closed queue fails ping', async () => {
      const queue = await openQueue();
      await queue.close();
      await queue.close();
      await assert.rejects(queue.ping());
    });
  });
}

describe('the in-process queue: pooled bodies', () => {
  const ref: StreamRef = { orderId: 'pooled', generation: 0, stream: 0 };

  it('keeps a pooled body while it is queued or handed back, and gives it to the pool once acknowledged', async () => {
    const queue = new MemoryOrderQueue();
    await queue.ensureResultQueue(ref, { maxMessages: 10, maxBytes: 1 << 22 }, 60);
    const body = takeChunk(200_000).fill(7);
    assert.equal(await queue.publishResult(ref, body), 'published');
    const [first] = await queue.takeResults(ref, 1);
    first.requeue();
    const meanwhile = takeChunk(200_000);
    assert.notEqual(meanwhile.buffer, body.buffer, 'a queued body is not the pool\'s');
    releaseChunk(meanwhile);
    const [again] = await queue.takeResults(ref, 1);
    assert.equal(again.body.every((byte) => byte === 7), true, 'the body as published');
    again.ack();
    const next = takeChunk(200_000);
    assert.equal(next.buffer, body.buffer, 'an acknowledged body is the pool\'s again');
    releaseChunk(next);
  });
});

describe('the in-process queue: bytes waiting in all its result queues', () => {
  const ref = (orderId: string): StreamRef => ({ orderId, generation: 0, stream: 0 });
  const body = (bytes: number) => Buffer.alloc(bytes, 1);

  it('refuses a publish past the total, except the next message of a queue a poll found empty; signals the refused once there is room', async () => {
    const queue = new MemoryOrderQueue(Date.now, 1000);
    const heard: string[] = [];
    queue.onSignal((orderId, stream) => heard.push(stream ? `${orderId}/${stream.stream}` : orderId));
    for (const id of ['a', 'b', 'c']) await queue.ensureResultQueue(ref(id), { maxMessages: 100, maxBytes: 10_000 }, 60);
    assert.equal(await queue.publishResult(ref('a'), body(600)), 'published');
    assert.equal(await queue.publishResult(ref('b'), body(400)), 'published');
    assert.equal(queue.bufferedBytes(), 1000);
    assert.equal(await queue.publishResult(ref('c'), body(1)), 'full', 'past the total');
    // A poll of c finds it empty: c's next message is taken even so, and only that one.
    assert.deepEqual(await queue.takeResults(ref('c'), 1), []);
    assert.equal(await queue.publishResult(ref('c'), body(300)), 'published');
    assert.equal(await queue.publishResult(ref('c'), body(300)), 'full');
    assert.equal(queue.bufferedBytes(), 1300);
    await sleep(0);
    heard.length = 0;
    // Taking a's message makes room below the total: c, refused, is signalled.
    const [message] = await queue.takeResults(ref('a'), 1);
    message.ack();
    await sleep(0);
    assert.deepEqual(heard, ['c']);
    assert.equal(queue.bufferedBytes(), 700);
    // Purge and delete give their bytes back too.
    await queue.purgeResults(ref('b'));
    await queue.deleteResultQueue(ref('c'));
    assert.equal(queue.bufferedBytes(), 0);
    await queue.close();
  });
});
