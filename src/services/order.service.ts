import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { chunkSamplesFor, shardCount, shardRange, slotsOf } from '../domain/order-plan.js';
import { randomSeed } from '../domain/random.js';
import { decodeChunk, selectSlots, type ResultChunk } from '../domain/result-chunk.js';
import type { OrderQueue, ReceivedResult, ShardTask } from '../ports/order-queue.js';
import { ACTIVE_STATUSES, type OrderRecord, type OrderStore } from '../ports/order-store.js';
import type { BatchRequest, BatchService } from './batch.service.js';

export const MAX_ORDER_SIZE = 100_000_000;
export const MAX_POLL = 4096;
export const MAX_WAIT_MS = 20_000;
/** How long a poll holds the slots it is sending before another poll may send them (default). */
export const LEASE_MS = 120_000;
const EMPTY_WAIT_MS = 15;

export interface OrderRequest extends BatchRequest {
  readonly shardSize?: number;
}

export interface OrderSettings {
  readonly shardSize: number;
  readonly ttlSeconds: number;
  /** Lease of a poll on the slots it sends (plus its waitMs); LEASE_MS when absent. */
  readonly leaseMs?: number;
}

/** What a poll hands out; `settle` must be called once the response was sent, or was not. */
export interface PollResult {
  readonly order: OrderRecord;
  readonly chunks: readonly ResultChunk[];
  readonly count: number;
  /** Samples still to be delivered after these. */
  readonly remaining: number;
  /** No more samples will come (complete, or a final status). */
  readonly done: boolean;
  settle(sent: boolean): Promise<void>;
}

/** Result messages a queue may hold per order: enough for two full polls. */
export function resultQueueBound(chunkSamples: number): number {
  return Math.max(8, 2 * Math.ceil(MAX_POLL / chunkSamples));
}

/**
 * Batch orders: planning (one small task per shard), status, cancel, expiry, and polling with
 * exactly-once delivery per slot (see OrderStore).
 */
export class OrderService {
  constructor(
    private readonly orders: OrderStore,
    private readonly queue: OrderQueue,
    private readonly batches: BatchService,
    private readonly settings: OrderSettings,
    private readonly now: () => number = Date.now,
  ) {}

  async create(datasetName: string, request: OrderRequest): Promise<OrderRecord> {
    if (request.balance) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'balance is available for small batches only, not for orders');
    if (request.size > MAX_ORDER_SIZE) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `an order may have at most ${MAX_ORDER_SIZE} samples`);
    const selection = await this.batches.select(datasetName, request);
    if (selection.eligible.length === 0) {
      throw new SensoryError('SENSORY_ERR_NOT_ENOUGH_SAMPLES', `size ${request.size} is above the 0 eligible samples`, { size: request.size, eligible: 0 });
    }
    await this.queue.ping();
    const { dataset } = selection;
    const shardSize = request.shardSize ?? this.settings.shardSize;
    const chunkSamples = Math.min(chunkSamplesFor(recordBytes(dataset)), shardSize);
    const createdAt = new Date(this.now()).toISOString();
    const order = await this.orders.createOrder(
      {
        id: randomUUID(),
        datasetId: dataset.id,
        datasetName: dataset.name,
        size: request.size,
        shardSize,
        chunkSamples,
        seed: request.seed ?? randomSeed(),
        noise: request.noise ?? 0,
        split: selection.split,
        categoryIndexes: selection.categoryIndexes ?? null,
        revision: selection.revision,
        dtype: request.dtype ?? 'uint8',
        labels: request.labels ?? 'index',
        eligibleCount: selection.eligible.length,
        width: dataset.width,
        height: dataset.height,
        channels: dataset.channels,
        categories: selection.categories,
        ttlSeconds: this.settings.ttlSeconds,
        createdAt,
      },
      shardCount(request.size, shardSize),
      this.expiry(),
    );
    try {
      await this.queue.ensureResultQueue(order.id, resultQueueBound(chunkSamples), order.ttlSeconds);
      await this.queue.publishTasks(Array.from({ length: order.shardsTotal }, (_, shard) => shardTask(order.id, shard)));
    } catch (error) {
      await this.orders.finish(order.id, 'failed', `its shards could not be queued: ${(error as Error).message}`);
      throw error instanceof SensoryError ? error : new SensoryError('SENSORY_ERR_UNAVAILABLE', `the queue refused the order: ${(error as Error).message}`);
    }
    return order;
  }

  /** The order (expired first when its TTL passed); SENSORY_ERR_ORDER_NOT_FOUND when there is none. */
  async get(id: string): Promise<OrderRecord> {
    const order = await this.orders.getOrder(id);
    if (!order) throw new SensoryError('SENSORY_ERR_ORDER_NOT_FOUND', `there is no order ${id}`);
    return this.expireIfDue(order);
  }

  /** The newest orders, each marked expired first when its TTL passed, as get() does. */
  async list(activeOnly: boolean, limit = 100): Promise<OrderRecord[]> {
    const listed = await Promise.all((await this.orders.listOrders({ activeOnly, limit })).map((order) => this.expireIfDue(order)));
    return activeOnly ? listed.filter((order) => ACTIVE_STATUSES.includes(order.status)) : listed;
  }

  async cancel(id: string): Promise<OrderRecord> {
    const order = await this.get(id);
    if (ACTIVE_STATUSES.includes(order.status)) {
      await this.orders.finish(id, 'cancelled');
      await this.queue.deleteResultQueue(id).catch(() => undefined);
    }
    return (await this.orders.getOrder(id))!;
  }

  /** Fails an active order (its dataset is gone, say) and removes its results. */
  async fail(id: string, reason: string): Promise<void> {
    if (await this.orders.finish(id, 'failed', reason)) await this.queue.deleteResultQueue(id).catch(() => undefined);
  }

  async poll(id: string, max: number, waitMs: number): Promise<PollResult> {
    let order = await this.get(id);
    const pollId = randomUUID();
    const taken: { message: ReceivedResult; chunk: ResultChunk; keep: number[]; whole: boolean }[] = [];
    const busy: ReceivedResult[] = [];
    const sending = new Set<number>();
    let count = 0;
    let checkedQueue = false;
    const deadline = this.now() + waitMs;
    while (ACTIVE_STATUSES.includes(order.status) && count < max) {
      // Whole messages only (one split message at most, when max is below a message): a message
      // put back by a requeue does not count against the queue's bound, so fewer go back.
      const whole = Math.floor((max - count) / order.chunkSamples);
      if (whole === 0 && count > 0) break;
      const messages = await this.queue.takeResults(id, Math.max(1, whole));
      if (messages.length === 0) {
        if (!checkedQueue) {
          checkedQueue = true;
          await this.recoverIfLost(order);
        }
        if (count > 0 || this.now() >= deadline) break;
        await sleep(EMPTY_WAIT_MS);
        order = await this.get(id);
        continue;
      }
      const chunks = messages.map((message) => decodeChunk(message.body));
      const claims = await this.orders.claim(id, pollId, chunks.map((chunk) => chunk.slots), this.now() + (this.settings.leaseMs ?? LEASE_MS) + waitMs, this.now());
      claims.forEach((claim, i) => {
        if (claim.kind === 'delivered') messages[i].ack();
        else if (claim.kind === 'busy') busy.push(messages[i]);
        else {
          // A shard run again (its worker was killed) publishes copies of chunks: when two copies
          // come in one poll, their slots are sent once; the spare copy goes back, to be dropped.
          const fresh = claim.slots.filter((slot) => !sending.has(slot));
          if (fresh.length === 0) {
            busy.push(messages[i]);
            return;
          }
          const keep = fresh.slice(0, max - count);
          for (const slot of keep) sending.add(slot);
          count += keep.length;
          taken.push({ message: messages[i], chunk: chunks[i], keep, whole: keep.length === claim.slots.length });
        }
      });
      if (busy.length > 0 && taken.length === 0 && this.now() >= deadline) break;
    }
    for (const message of busy) message.requeue();
    const remaining = Math.max(0, order.size - order.delivered - count);
    return {
      order,
      chunks: taken.map(({ chunk, keep }) => selectSlots(chunk, new Set(keep))),
      count,
      remaining,
      done: remaining === 0 || !ACTIVE_STATUSES.includes(order.status),
      settle: async (sent) => {
        if (taken.length === 0) return;
        if (!sent) {
          await this.orders.releaseClaims(id, pollId);
          for (const { message } of taken) message.requeue();
          return;
        }
        await this.orders.commitDelivery(id, pollId, taken.flatMap(({ keep }) => keep), this.expiry());
        // A message partly delivered goes back whole: its delivered slots are dropped next time.
        for (const { message, whole } of taken) whole ? message.ack() : message.requeue();
        if (remaining === 0) await this.queue.deleteResultQueue(id).catch(() => undefined);
      },
    };
  }

  /**
   * The result queue is gone (a broker restart, or an in-process queue after a restart): make it
   * again and re-queue every shard with undelivered slots. Copies of delivered slots are
   * dropped at delivery, so re-running a shard is always safe.
   */
  private async recoverIfLost(order: OrderRecord): Promise<void> {
    const created = await this.queue.ensureResultQueue(order.id, resultQueueBound(order.chunkSamples), order.ttlSeconds);
    if (!created) return;
    const tasks: ShardTask[] = [];
    for (let shard = 0; shard < order.shardsTotal; shard++) {
      const open = await this.orders.undelivered(order.id, [...slotsOf(shardRange(shard, order.size, order.shardSize))]);
      if (open.length > 0) tasks.push(shardTask(order.id, shard));
    }
    await this.queue.publishTasks(tasks);
  }

  /** The order, marked expired first when its TTL passed with no sample delivered. */
  private async expireIfDue(order: OrderRecord): Promise<OrderRecord> {
    if (!ACTIVE_STATUSES.includes(order.status) || Date.parse(order.expiresAt) >= this.now()) return order;
    await this.orders.finish(order.id, 'expired', `no sample was delivered for ${order.ttlSeconds} s`);
    await this.queue.deleteResultQueue(order.id).catch(() => undefined);
    return (await this.orders.getOrder(order.id))!;
  }

  private expiry(): string {
    return new Date(this.now() + this.settings.ttlSeconds * 1000).toISOString();
  }
}

export function shardTask(orderId: string, shard: number): ShardTask {
  return { kind: 'shard', version: 1, data: { orderId, shard } };
}
