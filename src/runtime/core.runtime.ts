import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BLOB_STORES, DATABASES, openByScheme } from '../adapters/backends.js';
import { FilePixelStore } from '../adapters/files/file.pixel-store.js';
import { systemClock } from '../adapters/clock/system.clock.js';
import { AmqpOrderQueue } from '../adapters/queue/amqp.order-queue.js';
import { MemoryOrderQueue } from '../adapters/queue/memory.order-queue.js';
import type { Config } from '../config/config.js';
import type { ExportJob } from '../domain/export-job.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { ExportStore } from '../ports/export-store.js';
import type { WebhookStore } from '../ports/webhook-store.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue, TaskConsumer } from '../ports/order-queue.js';
import type { PixelStore } from '../ports/pixel-store.js';
import { SILENT_TELEMETRY, type Telemetry } from '../ports/telemetry.js';
import { WarpThreads } from '../lib/warp-threads.js';
import { BatchService } from '../services/batch.service.js';
import { OrderService, type OrderSettings } from '../services/order.service.js';
import { ExportRunner } from '../services/export-runner.js';
import { WebhookService } from '../services/webhook.service.js';
import { ExportService } from '../services/export.service.js';
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
  /** Originals (the segment store), opened and repaired once per process. */
  readonly blobs: BlobStore;
  readonly exportJobs: ExportStore;
  readonly exports: ExportService;
  /** Runs export jobs in this process: those the queue's tasks name, and those a sweep finds queued or abandoned. */
  readonly exportRunner: ExportRunner;
  /** Webhooks, and the events every process reports into their outbox. */
  readonly webhooks: WebhookService;
  readonly webhookStore: WebhookStore;
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

/** SENSORY_BLOB_URL, or files under the data dir when it is unset. */
export function blobUrl(config: Config): string {
  return config.blobUrl ?? pathToFileURL(join(config.dataDir, 'blobs')).href;
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
  const { metadata: store, orders: orderStore, blobIndex, exports: exportJobs, webhooks: webhookStore } = openByScheme(DATABASES, databaseUrl(config));
  await store.migrate();
  const blobs = openByScheme(BLOB_STORES, blobUrl(config), { blobIndex, segmentBytes: config.segmentBytes, log });
  // Repairs what a crashed writer left (a torn segment tail) before the first upload.
  await blobs.init();
  const pixels = new PixelQuota(new FilePixelStore(join(config.dataDir, 'pixels')), config.maxDatasetPixelBytes);
  const warpThreads = config.warpThreads > 0 ? new WarpThreads(config.warpThreads) : undefined;
  const batches = new BatchService(store, pixels, config.maxBatchSamples, telemetry, config.maxBatchBytes, warpThreads);
  const queue = await openQueue(config, log);
  const orders = new OrderService(orderStore, queue, batches, store, orderSettings(config), systemClock);
  const webhooks = new WebhookService(webhookStore, systemClock, log);
  orders.onFinished = (order) => {
    if (order.status !== 'complete' && order.status !== 'failed') return;
    webhooks.report(order.status === 'complete' ? 'order.completed' : 'order.failed', order.spec.id, {
      order: order.spec.id,
      dataset: order.spec.datasetName,
      status: order.status,
      size: order.spec.size,
      revision: order.spec.revision,
      ...(order.error ? { error: order.error } : {}),
    });
  };
  const exportsDir = join(config.dataDir, 'exports');
  const exports = new ExportService(store, exportJobs, batches, queue, systemClock, exportsDir, log);
  const exportRunner = new ExportRunner(store, exportJobs, blobs, pixels, systemClock, {
    dir: exportsDir,
    leaseMs: config.exportLeaseMs,
    concurrency: config.exportConcurrency,
    log,
    onFinished: (job: ExportJob) =>
      webhooks.report(job.status === 'complete' ? 'export.completed' : 'export.failed', job.spec.id, {
        export: job.spec.id,
        dataset: job.spec.datasetName,
        format: job.spec.format,
        status: job.status,
        revision: job.spec.revision,
        samples: job.spec.total,
        files: job.files.map((file, n) => ({ n, name: file.name, bytes: file.bytes, url: `/v1/exports/${job.spec.id}/files/${n}` })),
        ...(job.error ? { error: job.error } : {}),
      }),
  });
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
    blobs,
    exportJobs,
    exports,
    exportRunner,
    webhooks,
    webhookStore,
    startWorker: async (concurrency) => {
      const worker = new OrderWorker(store, orderStore, orders, queue, batches, systemClock, log);
      workers.push(worker);
      exportRunner.start();
      const consumer = await queue.consumeTasks(concurrency, (task) => (task.kind === 'export' ? exportRunner.handle(task) : worker.handle(task)));
      consumers.push(consumer);
      return consumer;
    },
    close: () => {
      // Tasks in flight let go of their streams before the queue and the stores close under them.
      for (const worker of workers) worker.stop();
      closing ??= Promise.allSettled([...consumers.map((consumer) => consumer.close()), exportRunner.stop()])
        .then(() => Promise.allSettled([queue.close()]))
        // The open segment is sealed before the stores close.
        .then(() => Promise.allSettled([blobs.close()]))
        .then(() => Promise.allSettled([pixels.close(), store.close(), warpThreads?.close()]))
        .then(() => undefined);
      return closing;
    },
  };
}
