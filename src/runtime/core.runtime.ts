import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATABASES, openByScheme } from '../adapters/backends.js';
import { FilePixelStore } from '../adapters/files/file.pixel-store.js';
import { systemClock } from '../adapters/clock/system.clock.js';
import { AmqpOrderQueue } from '../adapters/queue/amqp.order-queue.js';
import { MemoryOrderQueue } from '../adapters/queue/memory.order-queue.js';
import type { Config } from '../config/config.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue, TaskConsumer } from '../ports/order-queue.js';
import type { PixelStore } from '../ports/pixel-store.js';
import { SILENT_TELEMETRY, type Telemetry } from '../ports/telemetry.js';
import { BatchService } from '../services/batch.service.js';
import { OrderService, type OrderSettings } from '../services/order.service.js';
import { OrderWorker } from '../services/order-worker.js';
import { PixelQuota } from '../services/pixel-quota.js';

/**
 * What both processes need, the API (`serve`) and the shard worker (`worker`): the metadata and
 * order stores, the pixel records, the queue, and the services that plan batches and run orders.
 */
export interface CoreRuntime {
  readonly config: Config;
  readonly store: MetadataStore;
  /** Where the segment store finds originals: in the same database as the metadata. */
  readonly blobIndex: BlobIndex;
  readonly pixels: PixelStore;
  readonly queue: OrderQueue;
  readonly batches: BatchService;
  readonly orders: OrderService;
  readonly telemetry: Telemetry;
  /** Starts consuming produce tasks; the consumer is closed (tasks in flight handed back after their chunk) by close(). */
  startWorker(concurrency: number): Promise<TaskConsumer>;
  /** Closes every adapter, each even if another fails; safe to call twice. */
  close(): Promise<void>;
}

export interface CoreOptions {
  /** Where the queue reports that it lost or regained the broker. */
  readonly log?: (message: string) => void;
  /** What the services count as they work; nothing is counted without it. */
  readonly telemetry?: Telemetry;
}

/** SENSORY_DATABASE_URL, or SQLite in the data dir when it is unset. */
export function databaseUrl(config: Config): string {
  return config.databaseUrl ?? `sqlite:${pathToFileURL(join(config.dataDir, 'sensory.db')).pathname}`;
}

async function openQueue(config: Config, log: (message: string) => void): Promise<OrderQueue> {
  if (config.amqpUrl === undefined) return new MemoryOrderQueue(Date.now, config.orderBufferTotalBytes);
  const queue = new AmqpOrderQueue(
    { url: config.amqpUrl, exchange: config.amqpExchange, taskQueue: config.amqpTaskQueue, taskRoutingKey: config.amqpTaskRoutingKey },
    log,
  );
  await queue.start();
  return queue;
}

function orderSettings(config: Config): OrderSettings {
  return {
    shardSize: config.shardSize,
    ttlSeconds: config.orderTtlSeconds,
    leaseMs: config.orderLeaseMs,
    maxSamples: config.maxOrderSamples,
    maxShards: config.maxOrderShards,
    maxRanks: config.maxOrderRanks,
    maxTtlSeconds: config.orderMaxTtlSeconds,
    pollRecheckMs: config.pollRecheckMs,
    maxWaitingPolls: config.maxWaitingPolls,
    maxWaitingPollsPerKey: config.maxWaitingPollsPerKey,
    maxActiveOrdersPerKey: config.maxActiveOrdersPerKey,
    bufferBytes: config.orderBufferBytes,
  };
}

/** The composition root's core: configuration in, stores, queue and the order services wired together. */
export async function openCoreRuntime(config: Config, { log = () => undefined, telemetry = SILENT_TELEMETRY }: CoreOptions = {}): Promise<CoreRuntime> {
  await mkdir(config.dataDir, { recursive: true });
  const { metadata: store, orders: orderStore, blobIndex } = openByScheme(DATABASES, databaseUrl(config));
  await store.migrate();
  const pixels = new PixelQuota(new FilePixelStore(join(config.dataDir, 'pixels')), config.maxDatasetPixelBytes);
  const batches = new BatchService(store, pixels, config.maxBatchSamples, telemetry, config.maxBatchBytes);
  const queue = await openQueue(config, log);
  const orders = new OrderService(orderStore, queue, batches, store, orderSettings(config), systemClock);
  const consumers: TaskConsumer[] = [];
  const workers: OrderWorker[] = [];

  let closing: Promise<void> | undefined;
  return {
    config,
    store,
    blobIndex,
    pixels,
    queue,
    batches,
    orders,
    telemetry,
    startWorker: async (concurrency) => {
      const worker = new OrderWorker(store, orderStore, orders, queue, batches, systemClock, log);
      workers.push(worker);
      const consumer = await queue.consumeTasks(concurrency, worker.handle);
      consumers.push(consumer);
      return consumer;
    },
    close: () => {
      // Tasks in flight let go of their streams before the queue and the stores close under them.
      for (const worker of workers) worker.stop();
      closing ??= Promise.allSettled(consumers.map((consumer) => consumer.close()))
        .then(() => Promise.allSettled([queue.close()]))
        .then(() => Promise.allSettled([pixels.close(), store.close()]))
        .then(() => undefined);
      return closing;
    },
  };
}
