import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import amqp from 'amqplib';
import { resultQueueName, type StreamRef } from '../../src/ports/order-queue.js';

/**
 * The RabbitMQ rule for tests: under CI (CI=true) the broker tests always run, so a broker that
 * is down makes them fail; elsewhere they are skipped with a message saying why.
 */
export const AMQP_URL = process.env.SENSORY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Where the URL points, without its credentials (for messages). */
export const AMQP_ADDRESS = (() => {
  const url = new URL(AMQP_URL);
  return `${url.hostname}:${url.port || '5672'}`;
})();

export function inCi(): boolean {
  const value = (process.env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== 'false' && value !== '0';
}

let probe: Promise<boolean> | undefined;

/** True when an AMQP connection (with these credentials) can be opened; checked once per process. */
export function amqpAvailable(): Promise<boolean> {
  probe ??= (async () => {
    try {
      const connection = await amqp.connect(AMQP_URL, { timeout: 2000 });
      connection.on('error', () => undefined);
      await connection.close();
      return true;
    } catch {
      return false;
    }
  })();
  return probe;
}

/**
 * The `skip` option for a suite that needs RabbitMQ: false (run it) when the broker is up or
 * when under CI (it must run there, and fail if the broker is down); otherwise a reason to skip.
 */
export async function brokerSkip(): Promise<false | string> {
  if (await amqpAvailable()) return false;
  if (inCi()) return false;
  return `RabbitMQ is unreachable at ${AMQP_ADDRESS} (guest/guest); skipped outside CI — with CI=true these tests run and fail`;
}

/**
 * A describe() that needs RabbitMQ. Broker up: the suite runs. Down and CI=true: a failing test
 * says so (plus the suite itself, which fails on its own). Down outside CI: skipped with a reason.
 * Await it at the top level of the test file (the broker check is asynchronous).
 */
export async function describeWithBroker(name: string, fn: () => void): Promise<void> {
  if (await amqpAvailable()) {
    describe(name, fn);
    return;
  }
  if (inCi()) {
    describe(name, () => {
      it(`needs RabbitMQ at ${AMQP_ADDRESS}`, () => {
        assert.fail(`CI is set but RabbitMQ is unreachable at ${AMQP_ADDRESS} (guest/guest): the broker tests must run under CI`);
      });
    });
    describe(name, fn);
    return;
  }
  describe(name, { skip: (await brokerSkip()) || true }, fn);
}

/** Names unique to this run, for exchanges and queues that must not collide with other test files. */
export function uniqueAmqpNames(prefix: string): { exchange: string; taskQueue: string; taskRoutingKey: string } {
  const tag = `${prefix}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
  return { exchange: `test.${tag}.exchange`, taskQueue: `test.${tag}.tasks`, taskRoutingKey: `test.${tag}.key` };
}

/**
 * Best effort: deletes what tests declared on the broker (task queues, result queues, exchanges).
 * An order id stands for its first stream's result queue; name other streams by their ref.
 */
export async function cleanBroker(
  declared: { exchanges: readonly string[]; taskQueues: readonly string[]; orderIds: readonly (string | StreamRef)[] },
  log: (line: string) => void = () => undefined,
): Promise<void> {
  let connection: amqp.ChannelModel | undefined;
  // One channel per deletion: a failed one closes its channel.
  const attempt = async (what: string, run: (channel: amqp.Channel) => Promise<unknown>) => {
    const channel = await connection!.createChannel();
    channel.on('error', () => undefined);
    await run(channel).catch((error: Error) => log(`could not delete ${what}: ${error.message}`));
    await channel.close().catch(() => undefined);
  };
  try {
    connection = await amqp.connect(AMQP_URL, { timeout: 2000 });
    connection.on('error', () => undefined);
    const results = declared.orderIds.map((order) => resultQueueName(typeof order === 'string' ? { orderId: order, generation: 0, stream: 0 } : order));
    for (const name of [...declared.taskQueues, ...results]) await attempt(name, (channel) => channel.deleteQueue(name));
    for (const name of declared.exchanges) await attempt(name, (channel) => channel.deleteExchange(name));
  } catch (error) {
    // Best effort: the broker may be down outside CI.
    log(`could not clean the broker: ${(error as Error).message}`);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
