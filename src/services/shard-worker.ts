import { setTimeout as sleep } from 'node:timers/promises';
import { recordBytes } from '../domain/dataset-shape.js';
import { chunkRanges, drawSlots, shardRange } from '../domain/order-plan.js';
import { encodeChunk } from '../domain/result-chunk.js';
import type { EligibleSample, MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue, ShardTask, TaskOutcome } from '../ports/order-queue.js';
import { ACTIVE_STATUSES, type OrderRecord, type OrderStore } from '../ports/order-store.js';
import type { BatchService } from './batch.service.js';
import type { OrderService } from './order.service.js';

const FULL_WAIT_MIN_MS = 5;
const FULL_WAIT_MAX_MS = 250;
const CANDIDATE_CACHE = 8;

/**
 * Fulfils shard tasks: draws the shard's slots, renders their pixels from the stored records
 * (augmented per the order's seed and slot), and publishes them in chunks to the order's result
 * queue. A full queue makes it wait (back-pressure). The task is acknowledged only after every
 * chunk is confirmed, so a worker killed mid-shard leaves the task to another one.
 */
export class ShardWorker {
  private readonly candidates = new Map<string, Promise<readonly EligibleSample[]>>();
  private stopping = false;

  constructor(
    private readonly store: MetadataStore,
    private readonly orders: OrderStore,
    private readonly orderService: OrderService,
    private readonly queue: OrderQueue,
    private readonly batches: BatchService,
  ) {}

  handle = async (task: ShardTask): Promise<TaskOutcome> => {
    const { orderId, shard } = task.data;
    let order = await this.orders.getOrder(orderId);
    if (!order) return 'drop';
    order = await this.orderService.get(orderId);
    if (!ACTIVE_STATUSES.includes(order.status)) return 'ack';
    const dataset = await this.store.getDataset(order.datasetName);
    if (!dataset || dataset.id !== order.datasetId) {
      await this.failDatasetGone(order);
      return 'ack';
    }
    const candidates = await this.candidatesOf(order);
    if (candidates.length !== order.eligibleCount) {
      await this.orderService.fail(orderId, `dataset ${order.datasetName} no longer holds the ${order.eligibleCount} samples of revision ${order.revision}`);
      return 'ack';
    }
    const categories = await this.batches.categoriesAt(dataset, order.revision);
    for (const chunk of chunkRanges(shardRange(shard, order.size, order.shardSize), order.chunkSamples)) {
      const open = new Set(await this.orders.undelivered(orderId, rangeSlots(chunk.from, chunk.to)));
      if (open.size === 0) continue;
      const draws = drawSlots(chunk, order.eligibleCount, order.seed, order.noise).filter((draw) => open.has(draw.slot));
      const samples = draws.map((draw) => candidates[draw.candidate]);
      const plan = { dataset, revision: order.revision, seed: order.seed, samples, augments: draws.map((draw) => draw.augment), categories, dtype: 'uint8' as const, labels: 'index' as const };
      const pixels = new Uint8Array(samples.length * recordBytes(dataset));
      await this.batches.render(plan, 0, samples.length, pixels);
      const body = encodeChunk({
        orderId,
        slots: draws.map((draw) => draw.slot),
        ids: samples.map((sample) => sample.id),
        labels: samples.map((sample) => sample.categoryIndex),
        augments: plan.augments,
        recordBytes: recordBytes(dataset),
        pixels,
      });
      const published = await this.publishWhenRoom(order, body);
      if (published === 'stopping') return 'requeue';
      if (published === 'stopped') return 'ack';
      await this.orders.recordProduced(orderId, draws.map((draw) => draw.slot));
    }
    await this.orders.markShardDone(orderId, shard);
    return 'ack';
  };

  /**
   * Publishes, waiting while the result queue is full; false when the order stopped meanwhile,
   * or its dataset was deleted (the order is failed then: nobody else would, while the workers
   * wait here on a queue that nobody drains).
   */
  private async publishWhenRoom(order: OrderRecord, body: Buffer): Promise<'published' | 'stopped' | 'stopping'> {
    let wait = FULL_WAIT_MIN_MS;
    let waited = 0;
    while ((await this.queue.publishResult(order.id, body)) === 'full') {
      // Shutting down: hand the shard back rather than wait for a trainer that may never poll.
      if (this.stopping) return 'stopping';
      await sleep(wait);
      waited += wait;
      wait = Math.min(FULL_WAIT_MAX_MS, wait * 2);
      if (waited >= 1000) {
        waited = 0;
        const current = await this.orderService.get(order.id);
        if (!ACTIVE_STATUSES.includes(current.status)) return 'stopped';
        const dataset = await this.store.getDataset(order.datasetName);
        if (!dataset || dataset.id !== order.datasetId) {
          await this.failDatasetGone(order);
          return 'stopped';
        }
      }
    }
    return 'published';
  }

  /** Shards waiting for room in a full result queue give up and go back to the task queue. */
  stop(): void {
    this.stopping = true;
  }

  private failDatasetGone(order: OrderRecord): Promise<void> {
    return this.orderService.fail(order.id, `dataset ${order.datasetName} was deleted`);
  }

  private candidatesOf(order: OrderRecord): Promise<readonly EligibleSample[]> {
    let found = this.candidates.get(order.id);
    if (!found) {
      found = this.store.eligibleSamples(order.datasetId, {
        revision: order.revision,
        split: order.split,
        categoryIndexes: order.categoryIndexes ?? undefined,
      });
      this.candidates.set(order.id, found);
      found.catch(() => this.candidates.delete(order.id));
      if (this.candidates.size > CANDIDATE_CACHE) this.candidates.delete(this.candidates.keys().next().value!);
    }
    return found;
  }
}

function rangeSlots(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
