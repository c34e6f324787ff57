import { randomUUID } from 'node:crypto';
import { currentGeneration } from '../domain/order-streams.js';
import { producerLapsed, resetProduction, unpark } from '../domain/stream-production.js';
import type { StreamState } from '../domain/stream-state.js';
import type { Clock } from '../ports/clock.js';
import type { OrderQueue, ProduceTask, StreamRef } from '../ports/order-queue.js';
import type { OrderRow, OrderStore } from '../ports/order-store.js';
import { ORDER_BUFFER_BYTES, resultQueueBound } from './order-report.js';

export function produceTask(ref: StreamRef): ProduceTask {
  return { kind: 'produce', version: 2, data: { orderId: ref.orderId, generation: ref.generation, stream: ref.stream, taskId: randomUUID() } };
}

export function streamRefs(order: OrderRow, generation = currentGeneration(order.plan)): StreamRef[] {
  const ranks = order.plan.generations[generation].ranks;
  return Array.from({ length: ranks }, (_, stream) => ({ orderId: order.spec.id, generation, stream }));
}

/**
 * The result queues and produce tasks of orders' streams: creating and removing them, waking a
 * parked stream, and starting production again where a poll needs it.
 */
export class StreamQueues {
  constructor(
    private readonly orders: OrderStore,
    private readonly queue: OrderQueue,
    private readonly clock: Clock,
    /** SENSORY_ORDER_BUFFER_BYTES: an order's result queues hold this much at most, over all its ranks. */
    private readonly bufferBytes = ORDER_BUFFER_BYTES,
  ) {}

  private bound(order: OrderRow) {
    return resultQueueBound(order.spec, order.plan.generations[currentGeneration(order.plan)].ranks, this.bufferBytes);
  }

  /** Creates the result queues of the order's current generation and publishes a produce task per stream: O(ranks). */
  async start(order: OrderRow): Promise<void> {
    const refs = streamRefs(order);
    for (const ref of refs) await this.queue.ensureResultQueue(ref, this.bound(order), order.ttlSeconds);
    await this.queue.publishTasks(refs.map(produceTask));
  }

  /** Removes a generation's result queues (best effort: an unused queue also expires by itself). */
  async remove(order: OrderRow, generation = currentGeneration(order.plan)): Promise<void> {
    await Promise.all(streamRefs(order, generation).map((ref) => this.queue.deleteResultQueue(ref).catch(() => undefined)));
  }

  /** A poll made room, or found nothing: a parked stream, or one whose producer vanished, gets a task. */
  async wake(ref: StreamRef, state: StreamState): Promise<void> {
    if (state.parked) {
      const woke = await this.orders.updateStream(ref, (current) => {
        const result = unpark(current);
        return { state: result.woke ? result.state : undefined, result: result.woke };
      });
      if (woke) await this.queue.publishTasks([produceTask(ref)]);
    } else if (producerLapsed(state, this.clock.now())) {
      await this.queue.publishTasks([produceTask(ref)]);
    }
  }

  /**
   * Production starts over at `position(state)` in a new run: the queue is purged (what it held
   * is stale) and a task is published. Results of the earlier run still arriving are dropped.
   * The purge comes before the new run exists: a task already queued may take the stream as soon
   * as the run starts, and what it publishes must not be purged after its frontier moved on.
   */
  async reset(ref: StreamRef, position: (state: StreamState) => number): Promise<StreamState | undefined> {
    await this.queue.purgeResults(ref);
    const state = await this.orders.updateStream(ref, (current) => {
      if (current.closed) return { result: undefined };
      const next = resetProduction(current, position(current));
      return { state: next, result: next };
    });
    if (!state) return undefined;
    await this.queue.publishTasks([produceTask(ref)]);
    return state;
  }

  /**
   * A poll found the stream's queue empty: if the queue itself is gone (a broker restart, the
   * embedded process restarted, expiry), it is made again and production starts over at
   * `position(state)`. True when it was lost.
   */
  async recoverIfLost(order: OrderRow, ref: StreamRef, position: (state: StreamState) => number): Promise<boolean> {
    const created = await this.queue.ensureResultQueue(ref, this.bound(order), order.ttlSeconds);
    if (created) await this.reset(ref, position);
    return created;
  }
}
