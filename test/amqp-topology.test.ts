import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { AmqpOrderQueue } from '../src/adapters/queue/amqp.order-queue.js';
import { orderTasksOnly, resultQueueName, type OrderTask, type ProduceTask, type TaskConsumer } from '../src/ports/order-queue.js';
import { AMQP_URL, describeWithBroker, uniqueAmqpNames } from './support/broker.js';

/**
 * What AmqpOrderQueue declares on a real RabbitMQ, checked with a bare amqplib connection: the
 * topic exchange, the durable task queue and its binding, the result queues' arguments, the
 * persistence of task messages, and the topology declared again after a reconnect.
 */

const TTL_SECONDS = 30;
const BOUND = 7;
const BOUND_BYTES = 4096;

/** A produce task; its stream number marks it in these tests. */
function produceTask(orderId: string, stream: number): ProduceTask {
  return { kind: 'produce', version: 2, data: { orderId, generation: 0, stream, taskId: `topology-${stream}` } };
}

function streamOf(task: OrderTask): number {
  return task.kind === 'produce' ? task.data.stream : -1;
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

await describeWithBroker('RabbitMQ topology of AmqpOrderQueue', () => {
  const names = uniqueAmqpNames('topology');
  const orderId = `topology-${process.pid}-${Date.now().toString(36)}`;
  const ref = { orderId, generation: 0, stream: 0 };
  let queue: AmqpOrderQueue;
  let bare: ChannelModel;
  const consumers: TaskConsumer[] = [];

  /** A fresh channel on the bare connection (a failed declaration closes the channel it ran on). */
  async function channel(): Promise<Channel> {
    const ch = await bare.createChannel();
    ch.on('error', () => undefined);
    return ch;
  }

  /** Runs `operation` on a fresh channel; it must fail with 406 PRECONDITION_FAILED. */
  async function expect406(what: string, operation: (ch: Channel) => Promise<unknown>): Promise<void> {
    const ch = await channel();
    await assert.rejects(
      operation(ch),
      (error: { code?: number; message?: string }) => {
        assert.equal(error.code, 406, `${what}: expected 406 PRECONDITION_FAILED, got ${error.message}`);
        return true;
      },
      `${what} should be refused`,
    );
    await ch.close().catch(() => undefined);
  }

  /** Whether a message published with `routingKey` reaches the task queue. */
  async function routes(routingKey: string, marker: string): Promise<boolean> {
    const ch = await bare.createConfirmChannel();
    ch.on('error', () => undefined);
    try {
      ch.publish(names.exchange, routingKey, Buffer.from(marker));
      await ch.waitForConfirms();
      // A routed message is in the queue once confirmed; give the broker a moment all the same.
      for (let attempt = 0; attempt < 10; attempt++) {
        const message = await ch.get(names.taskQueue, { noAck: true });
        if (message) {
          assert.equal(message.content.toString(), marker, 'the task queue held only our message');
          return true;
        }
        await sleep(20);
      }
      return false;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async function checkTopology(): Promise<void> {
    const ch = await channel();
    await ch.checkExchange(names.exchange);
    const info = await ch.checkQueue(names.taskQueue);
    assert.equal(info.queue, names.taskQueue);
    await ch.close();
    await expect406('declaring the exchange as direct', (c) => c.assertExchange(names.exchange, 'direct', { durable: true }));
    await expect406('declaring the exchange as not durable', (c) => c.assertExchange(names.exchange, 'topic', { durable: false }));
    await expect406('declaring the task queue as not durable', (c) => c.assertQueue(names.taskQueue, { durable: false }));
    // The same declarations are accepted: topic, durable.
    const same = await channel();
    await same.assertExchange(names.exchange, 'topic', { durable: true });
    await same.assertQueue(names.taskQueue, { durable: true });
    await same.close();
    assert.equal(await routes(names.taskRoutingKey, 'bound'), true, 'the routing key reaches the task queue');
    assert.equal(await routes(`${names.taskRoutingKey}.other`, 'not bound'), false, 'another key does not');
  }

  before(async () => {
    bare = await amqp.connect(AMQP_URL);
    bare.on('error', () => undefined);
    queue = new AmqpOrderQueue({ url: AMQP_URL, ...names });
    await queue.start();
    await queue.ping();
  });

  after(async () => {
    for (const consumer of consumers) await consumer.close();
    await queue?.close();
    if (bare) {
      const ch = await channel();
      await ch.deleteQueue(resultQueueName(ref)).catch(() => undefined);
      await ch.deleteQueue(names.taskQueue).catch(() => undefined);
      await ch.deleteExchange(names.exchange).catch(() => undefined);
      await ch.close().catch(() => undefined);
      await bare.close();
    }
  });

  it('declares a durable topic exchange and a durable task queue bound with the routing key', async () => {
    await checkTopology();
  });

  it('publishes task messages persistent (deliveryMode 2) as JSON', async () => {
    const tasks = [produceTask(orderId, 0), produceTask(orderId, 1)];
    await queue.publishTasks(tasks);
    const ch = await channel();
    try {
      const got: OrderTask[] = [];
      await until(async () => {
        const message = await ch.get(names.taskQueue, { noAck: true });
        if (message) {
          assert.equal(message.properties.deliveryMode, 2, 'persistent');
          assert.equal(message.properties.contentType, 'application/json');
          assert.equal(message.fields.exchange, names.exchange);
          assert.equal(message.fields.routingKey, names.taskRoutingKey);
          got.push(JSON.parse(message.content.toString('utf8')) as OrderTask);
        }
        return got.length === tasks.length;
      }, 'the two task messages');
      assert.deepEqual(got, tasks);
    } finally {
      await ch.close();
    }
  });

  it('declares result queues sensory.order.<id>.<generation>.<stream> with x-expires = TTL, x-max-length and x-max-length-bytes = the bound, x-overflow reject-publish', async () => {
    assert.equal(await queue.ensureResultQueue(ref, { maxMessages: BOUND, maxBytes: BOUND_BYTES }, TTL_SECONDS), true);
    const name = resultQueueName(ref);
    assert.equal(name, `sensory.order.${orderId}.0.0`);
    const args = { 'x-expires': TTL_SECONDS * 1000, 'x-max-length': BOUND, 'x-max-length-bytes': BOUND_BYTES, 'x-overflow': 'reject-publish' };
    // Redeclaring with the very same arguments is accepted ...
    const ch = await channel();
    await ch.assertQueue(name, { durable: false, arguments: args });
    await ch.close();
    // ... and with any one of them different it is refused: that proves each argument.
    await expect406('another x-expires', (c) => c.assertQueue(name, { durable: false, arguments: { ...args, 'x-expires': TTL_SECONDS * 1000 + 1 } }));
    await expect406('another x-max-length', (c) => c.assertQueue(name, { durable: false, arguments: { ...args, 'x-max-length': BOUND + 1 } }));
    await expect406('another x-max-length-bytes', (c) => c.assertQueue(name, { durable: false, arguments: { ...args, 'x-max-length-bytes': BOUND_BYTES + 1 } }));
    await expect406('another x-overflow', (c) => c.assertQueue(name, { durable: false, arguments: { ...args, 'x-overflow': 'drop-head' } }));
    await expect406('durable', (c) => c.assertQueue(name, { durable: true, arguments: args }));
    // The bound really refuses publishes.
    for (let i = 0; i < BOUND; i++) assert.equal(await queue.publishResult(ref, Buffer.from(`m${i}`)), 'published');
    assert.equal(await queue.publishResult(ref, Buffer.from('one too many')), 'full');
    // Declared again (a poll that finds it empty): the queue is found, its arguments left as they are.
    assert.equal(await queue.ensureResultQueue(ref, { maxMessages: BOUND * 2, maxBytes: BOUND_BYTES * 2 }, TTL_SECONDS + 1), false);
    const check = await channel();
    assert.equal((await check.checkQueue(name)).messageCount, BOUND);
    await check.close();
  });

  it('declares the topology again after a reconnect, and resubscribes its consumers', async () => {
    const seen: number[] = [];
    consumers.push(
      await queue.consumeTasks(2, orderTasksOnly(async (task) => {
        if (task.data.orderId === orderId) seen.push(streamOf(task));
        return 'ack';
      })),
    );
    await queue.publishTasks([produceTask(orderId, 10)]);
    await until(() => seen.includes(10), 'a task before the reconnect');

    // Remove the topology behind its back, then drop its connection.
    const ch = await channel();
    await ch.deleteQueue(names.taskQueue);
    await ch.deleteExchange(names.exchange);
    await ch.close();
    const gone = await channel();
    await assert.rejects(gone.checkExchange(names.exchange), (error: { code?: number }) => error.code === 404);
    await gone.close().catch(() => undefined);

    await (queue as any).link.connection.close();
    await assert.rejects(queue.ping(), 'no connection right after the close');
    await until(async () => queue.ping().then(() => true, () => false), 'ping() to work again');

    // The subscription comes back with the connection: a new task reaches the same consumer.
    await queue.publishTasks([produceTask(orderId, 11)]);
    await until(() => seen.includes(11), 'a task after the reconnect');
    // The consumer holds the task queue now; close it so the binding check can read the queue.
    for (const consumer of consumers.splice(0)) await consumer.close();
    await checkTopology();
  });
});
