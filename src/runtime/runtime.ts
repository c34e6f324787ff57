import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FilePixelStore } from '../adapters/files/file.pixel-store.js';
import { SegmentBlobStore } from '../adapters/files/segment.blob-store.js';
import { SharpImaging } from '../adapters/imaging/sharp.imaging.js';
import { PostgresBlobIndex } from '../adapters/postgres/postgres.blob-index.js';
import { PostgresMetadataStore } from '../adapters/postgres/postgres.metadata-store.js';
import { PostgresOrderStore } from '../adapters/postgres/postgres.order-store.js';
import { AmqpOrderQueue } from '../adapters/queue/amqp.order-queue.js';
import { MemoryOrderQueue } from '../adapters/queue/memory.order-queue.js';
import { SqliteBlobIndex } from '../adapters/sqlite/sqlite.blob-index.js';
import { SqliteMetadataStore } from '../adapters/sqlite/sqlite.metadata-store.js';
import { SqliteOrderStore } from '../adapters/sqlite/sqlite.order-store.js';
import type { Config } from '../config/config.js';
import type { AppDeps } from '../http/app.js';
import { Metrics } from '../http/metrics.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue, TaskConsumer } from '../ports/order-queue.js';
import type { OrderStore } from '../ports/order-store.js';
import { ApiKeyring, loadOrCreateAdminKey } from '../services/api-keyring.js';
import { BatchService } from '../services/batch.service.js';
import { BulkUploadService } from '../services/bulk-upload.service.js';
import { CompactionService, type PinnedOrders } from '../services/compaction.service.js';
import { DatasetService } from '../services/dataset.service.js';
import { ImportService } from '../services/import.service.js';
import { IngestService } from '../services/ingest.service.js';
import { OrderService } from '../services/order.service.js';
import { SampleService } from '../services/sample.service.js';
import { ShardWorker } from '../services/shard-worker.js';

/** Active orders a purge looks through (newest first); far above what a service runs at once. */
const MAX_ACTIVE_ORDERS_LISTED = 100_000;

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface Runtime {
  readonly deps: AppDeps;
  /** Where the generated admin key is kept, and the key itself when it was made by this start. */
  readonly keyFile?: { path: string; newKey?: string };
  readonly queue: OrderQueue;
  /** Starts consuming shard tasks; the consumer is closed (in-flight shards finished) by close(). */
  startWorker(concurrency: number): Promise<TaskConsumer>;
  /** Closes every adapter, each even if another fails; safe to call twice. */
  close(): Promise<void>;
}

function openStores(config: Config): { store: MetadataStore; orders: OrderStore; blobIndex: BlobIndex } {
  const url = config.databaseUrl;
  if (url !== undefined && ['postgres:', 'postgresql:'].includes(new URL(url).protocol)) {
    const store = new PostgresMetadataStore(url);
    return { store, orders: new PostgresOrderStore(store.pool), blobIndex: new PostgresBlobIndex(store.pool) };
  }
  const store = new SqliteMetadataStore(url === undefined ? join(config.dataDir, 'sensory.db') : decodeURIComponent(new URL(url).pathname));
  const synced = () => store.syncCommitted();
  return { store, orders: new SqliteOrderStore(store.db, synced), blobIndex: new SqliteBlobIndex(store.db, synced) };
}

async function openQueue(config: Config, log: (message: string) => void): Promise<OrderQueue> {
  if (config.amqpUrl === undefined) return new MemoryOrderQueue();
  const queue = new AmqpOrderQueue(
    { url: config.amqpUrl, exchange: config.amqpExchange, taskQueue: config.amqpTaskQueue, taskRoutingKey: config.amqpTaskRoutingKey },
    log,
  );
  await queue.start();
  return queue;
}

/** The composition root: configuration in, adapters and services wired together. */
export async function openRuntime(config: Config, log: (message: string) => void = () => undefined): Promise<Runtime> {
  await mkdir(config.dataDir, { recursive: true });
  const { store, orders: orderStore, blobIndex } = openStores(config);
  await store.migrate();
  // Originals: segment files, and the per-file layout of earlier releases read in place.
  const blobs = new SegmentBlobStore(join(config.dataDir, 'segments'), join(config.dataDir, 'blobs'), blobIndex, { log, segmentBytes: config.segmentBytes });
  await blobs.init();
  const pixels = new FilePixelStore(join(config.dataDir, 'pixels'));
  const imaging = new SharpImaging({ maxPixels: config.maxImagePixels, maxFrames: config.maxImageFrames });
  const generated = config.apiKeys ? undefined : await loadOrCreateAdminKey(config.dataDir);
  const keyring = new ApiKeyring(config.apiKeys ?? generated!.entries);

  const datasets = new DatasetService(store, pixels, blobs);
  const ingest = new IngestService(store, blobs, pixels, imaging, config.maxSampleBytes);
  const batches = new BatchService(store, pixels, config.maxBatchSamples);
  const archiveLimits = { maxSampleBytes: config.maxSampleBytes, maxItems: config.maxBulkItems };
  const queue = await openQueue(config, log);
  const orders = new OrderService(orderStore, queue, batches, { shardSize: config.shardSize, ttlSeconds: config.orderTtlSeconds, leaseMs: config.orderLeaseMs });
  // What a purge needs of the orders: the live ones of a dataset with their pinned revision, and failing one.
  const pinnedOrders: PinnedOrders = {
    active: async (datasetId) =>
      (await orders.list(true, MAX_ACTIVE_ORDERS_LISTED)).filter((order) => order.datasetId === datasetId).map((order) => ({ id: order.id, revision: order.revision })),
    fail: (id, reason) => orders.fail(id, reason),
  };
  const consumers: TaskConsumer[] = [];
  const workers: ShardWorker[] = [];
  const deps: AppDeps = {
    config,
    version: VERSION,
    keyring,
    datasets,
    samples: new SampleService(store, blobs),
    ingest,
    imports: new ImportService(store, ingest, archiveLimits),
    bulk: new BulkUploadService(store, ingest, archiveLimits),
    compaction: new CompactionService(store, blobs, pinnedOrders, config.purgeRetentionSeconds),
    batches,
    orders,
    metrics: new Metrics(),
    readiness: async () => ({
      database: await store.ping().then(() => 'ok', (error: Error) => `unavailable: ${error.message}`),
      dataDir: await blobs.ping().then(() => 'ok', (error: Error) => `unavailable: ${error.message}`),
      queue: await queue.ping().then(() => 'ok', (error: Error) => `unavailable: ${error.message}`),
    }),
  };

  let closing: Promise<void> | undefined;
  return {
    deps,
    keyFile: generated ? { path: generated.path, newKey: generated.newKey } : undefined,
    queue,
    startWorker: async (concurrency) => {
      const worker = new ShardWorker(store, orderStore, orders, queue, batches);
      workers.push(worker);
      const consumer = await queue.consumeTasks(concurrency, worker.handle);
      consumers.push(consumer);
      return consumer;
    },
    close: () => {
      // In-flight shards finish before the queue and the stores close under them.
      for (const worker of workers) worker.stop();
      closing ??= Promise.allSettled(consumers.map((consumer) => consumer.close()))
        .then(() => Promise.allSettled([queue.close()]))
        .then(() => Promise.allSettled([pixels.close(), blobs.close()]))
        .then(() => Promise.allSettled([store.close()]))
        .then(() => undefined);
      return closing;
    },
  };
}
