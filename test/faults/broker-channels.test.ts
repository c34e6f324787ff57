/**
 * The RabbitMQ adapter when the broker closes a channel or the connection under it, on a private
 * RabbitMQ node (test/support/private-servers.ts) so the shared broker is never disturbed: no
 * unhandled error, SENSORY_ERR_UNAVAILABLE (never a raw amqplib error) while a link is down, and
 * the adapter recovers by itself — publishing, consuming and taking results work again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AmqpOrderQueue } from '../../src/adapters/queue/amqp.order-queue.js';
import { isSensoryError } from '../../src/domain/errors.js';
import type { ProduceTask, StreamRef } from '../../src/ports/order-queue.js';
import { inCi, uniqueAmqpNames } from '../support/broker.js';
import { privateServersSkip, startPrivateRabbit, type PrivateRabbit } from '../support/private-servers.js';
import { sleep } from '../support/process.js';

const log = (line: string) => process.stderr.write(`# faults/broker-channels: ${line}\n`);
const task = (orderId: string, stream: number): ProduceTask => ({ kind: 'produce', version: 2, data: { orderId, generation: 0, stream, taskId: `${orderId}-${stream}` } });
const ref = (orderId: string): StreamRef => ({ orderId, generation: 0, stream: 0 });
const bound = (maxMessages: number) => ({ maxMessages, maxBytes: 1 << 20 });
const skip = inCi() ? false : (privateServersSkip() ?? false);

/** Retries `work` until it succeeds or `ms` pass; every failure on the way must be a SensoryError. */
async function eventually<T>(work: () => Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      assert.ok(isSensoryError(error), `${what}: a raw error escaped the adapter: ${(error as Error).stack}`);
      assert.equal(error.code, 'SENSORY_ERR_UNAVAILABLE');
      assert.doesNotMatch(error.message, /127\.0\.0\.1|localhost|:\d{4,5}\b/, `no address in a client-facing message: ${error.message}`);
      if (performance.now() > deadline) throw new Error(`${what}: still failing after ${ms} ms: ${error.message}`);
      await sleep(100);
    }
  }
}

describe('RabbitMQ channels and connections closed by the broker', { skip }, () => {
  let broker: PrivateRabbit;
  let queue: AmqpOrderQueue;
  const handled: number[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (error: unknown) => unhandled.push(error);

  before(async () => {
    process.on('uncaughtException', onUnhandled);
    process.on('unhandledRejection', onUnhandled);
    const started = Date.now();
    broker = await startPrivateRabbit();
    log(`private RabbitMQ on ${broker.port} in ${Date.now() - started} ms`);
    queue = new AmqpOrderQueue({ url: broker.url, ...uniqueAmqpNames('faults') }, log);
    await queue.start();
    await queue.consumeTasks(2, async (t) => {
      handled.push(t.kind === 'produce' ? t.data.stream : t.kind === 'shard' ? t.data.shard : -1);
      return 'ack';
    });
  });

  after(async () => {
    process.off('uncaughtException', onUnhandled);
    process.off('unhandledRejection', onUnhandled);
    await queue?.close();
    await broker?.destroy();
  });

  test('the publishing channel closed by the broker (a precondition failure): publishing works again', { timeout: 30_000 }, async () => {
    await queue.ensureResultQueue(ref('order-a'), bound(10), 60);
    // A check of a queue that does not exist: the broker closes the publishing channel (404).
    const publisher = (queue as unknown as { link: { publisher: { checkQueue(name: string): Promise<unknown> } } }).link.publisher;
    await assert.rejects(publisher.checkQueue('sensory.faults.no-such-queue'));
    await eventually(() => queue.publishTasks([task('order-a', 1)]), 5000, 'publish after the channel was closed');
    assert.equal(await eventually(() => queue.publishResult(ref('order-a'), Buffer.from('r1')), 5000, 'publish a result'), 'published');
    const taken = await eventually(() => queue.takeResults(ref('order-a'), 5), 5000, 'take results');
    assert.equal(taken.length, 1);
    taken[0].ack();
    const deadline = performance.now() + 5000;
    while (!handled.includes(1) && performance.now() < deadline) await sleep(50);
    assert.ok(handled.includes(1), 'the consumer took the task published after the recovery');
    assert.deepEqual(unhandled, []);
  });

  test('the result connection lost on its own: results go through the amqplib channels meanwhile, the connection is opened again, and what was taken and not acknowledged comes back', { timeout: 30_000 }, async () => {
    const internals = () => (queue as unknown as { link?: { results?: { socket: { destroy(): void } } } }).link;
    await queue.ensureResultQueue(ref('order-c'), bound(10), 60);
    assert.equal(await queue.publishResult(ref('order-c'), Buffer.from('before')), 'published');
    const first = internals()?.results;
    assert.ok(first, 'results travel on the result connection');
    const taken = await queue.takeResults(ref('order-c'), 5);
    assert.deepEqual(taken.map((message) => message.body.toString()), ['before']);
    first.socket.destroy();
    // Settling on the lost connection does nothing: the broker has put the message back.
    taken[0].ack();
    assert.equal(await eventually(() => queue.publishResult(ref('order-c'), Buffer.from('after')), 5000, 'publish a result meanwhile'), 'published');
    const deadline = performance.now() + 10_000;
    while (!(internals()?.results && internals()?.results !== first) && performance.now() < deadline) await sleep(50);
    assert.ok(internals()?.results && internals()?.results !== first, 'the result connection was opened again');
    const again = await eventually(() => queue.takeResults(ref('order-c'), 5), 5000, 'take results after the loss');
    assert.deepEqual(again.map((message) => message.body.toString()), ['before', 'after']);
    for (const message of again) message.ack();
    assert.deepEqual(await queue.takeResults(ref('order-c'), 5), []);
    assert.deepEqual(unhandled, []);
  });

  test('the broker restarted: 503-class errors while it is away, then publishing and consuming resume', { timeout: 60_000 }, async () => {
    await broker.stop();
    await assert.rejects(queue.publishTasks([task('order-b', 1)]), (error) => isSensoryError(error) && error.code === 'SENSORY_ERR_UNAVAILABLE');
    await assert.rejects(queue.ping(), (error) => isSensoryError(error));
    await broker.start();
    await eventually(() => queue.publishTasks([task('order-b', 2)]), 15_000, 'publish after the restart');
    const deadline = performance.now() + 10_000;
    while (!handled.includes(2) && performance.now() < deadline) await sleep(50);
    assert.ok(handled.includes(2), 'the consumer resubscribed after the restart');
    // Result queues are not durable: declared again, they carry results both ways again.
    await eventually(() => queue.ensureResultQueue(ref('order-b'), bound(10), 60), 10_000, 'declare a result queue after the restart');
    assert.equal(await eventually(() => queue.publishResult(ref('order-b'), Buffer.from('r2')), 10_000, 'publish a result after the restart'), 'published');
    const taken = await eventually(() => queue.takeResults(ref('order-b'), 5), 10_000, 'take results after the restart');
    assert.deepEqual(taken.map((message) => message.body.toString()), ['r2']);
    taken[0].ack();
    assert.deepEqual(unhandled, []);
  });
});
