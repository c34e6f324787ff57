import { CurationService } from '../services/curation.service.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SharpImaging } from '../adapters/imaging/sharp.imaging.js';
import { DecodeThreads } from '../adapters/imaging/decode-threads.js';
import { PrometheusTelemetry } from '../adapters/telemetry/prometheus.telemetry.js';
import type { Config } from '../config/config.js';
import type { AppDeps } from '../http/app-deps.js';
import { ApiKeyring, loadOrCreateAdminKey } from '../services/api-keyring.js';
import { DatasetStatsService } from '../services/dataset-stats.service.js';
import { BulkUploadService } from '../services/bulk-upload.service.js';
import { CompactionService, type PinnedOrders } from '../services/compaction.service.js';
import { DatasetService } from '../services/dataset.service.js';
import { HashBackfill } from '../services/hash-backfill.service.js';
import { ImportService } from '../services/import.service.js';
import { IngestService } from '../services/ingest.service.js';
import { LegacyService } from '../services/legacy.service.js';
import { NearDuplicateService } from '../services/near-duplicate.service.js';
import { RevisionDiffService } from '../services/revision-diff.service.js';
import { ReviewService } from '../services/review.service.js';
import { SampleService } from '../services/sample.service.js';
import { ThumbnailService } from '../services/thumbnail.service.js';
import { FileThumbnailCache } from '../adapters/files/file.thumbnail-cache.js';
import { WebhookDispatcher } from '../services/webhook-dispatcher.js';
import { systemClock } from '../adapters/clock/system.clock.js';
import { openCoreRuntime, type CoreRuntime } from './core.runtime.js';

/** Active orders a purge looks through (newest first); far above what a service runs at once. */
const MAX_ACTIVE_ORDERS_LISTED = 100_000;
/** Webhook deliveries one replica has in flight at once. */
const WEBHOOK_CONCURRENCY = 8;

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** The API process: the core, plus the blobs, imaging, keys, metrics and services only the HTTP layer uses. */
export interface ServeRuntime extends CoreRuntime {
  readonly deps: AppDeps;
  /** The background pass computing the perceptual hashes of samples stored before they were computed at ingest. */
  readonly backfill: HashBackfill;
  /** Where the generated admin key is kept, and the key itself when it was made by this start. */
  readonly keyFile?: { path: string; newKey?: string };
  /** Sends the webhook outbox and reports dataset revisions (every replica runs one). */
  readonly dispatcher: WebhookDispatcher;
}

export { blobUrl } from './core.runtime.js';

const state = (check: Promise<void>) => check.then(() => 'ok', (error: Error) => `unavailable: ${error.message}`);

/** The composition root of `sensory serve`. */
export async function openServeRuntime(config: Config, log: (message: string) => void = () => undefined): Promise<ServeRuntime> {
  const metrics = new PrometheusTelemetry();
  const core = await openCoreRuntime(config, { log, telemetry: metrics });
  const { store, pixels, queue, batches, orders, blobs } = core;
  metrics.watchWaitingPolls(() => orders.waitingPolls());
  const generated = config.apiKeys ? undefined : await loadOrCreateAdminKey(config.dataDir);
  const imageLimits = { maxPixels: config.maxImagePixels, maxFrames: config.maxImageFrames };
  const imaging = new SharpImaging(imageLimits);
  const nearDuplicates = new NearDuplicateService(store, pixels);
  const decodeThreads = config.ingestThreads > 0 ? new DecodeThreads(config.ingestThreads, imageLimits).startAll() : undefined;
  const ingest = new IngestService(store, blobs, pixels, imaging, config.maxSampleBytes, metrics, nearDuplicates, decodeThreads);
  const archiveLimits = { maxSampleBytes: config.maxSampleBytes, maxItems: config.maxBulkItems };
  // The purge acts for the service itself: it sees every owner's orders.
  const SERVICE_CALLER = { owner: 'sensory', admin: true } as const;
  // What a purge needs of the orders: the live ones of a dataset with their pinned revision, and failing one.
  const pinnedOrders: PinnedOrders = {
    active: async (datasetId) =>
      (await orders.list(SERVICE_CALLER, true, MAX_ACTIVE_ORDERS_LISTED))
        .filter((order) => order.spec.datasetId === datasetId)
        .map((order) => ({ id: order.spec.id, revision: order.spec.revision })),
    fail: (id, reason) => orders.fail(id, reason),
  };
  const datasets = new DatasetService(store, pixels, blobs, [ingest, nearDuplicates], config.maxRecordBytes);
  // Previews on the data volume, beside the originals: replicas sharing it share them.
  const thumbnails = new ThumbnailService(store, blobs, imaging, new FileThumbnailCache(join(config.dataDir, 'thumbnails')));
  // The gauges read datasets and orders in flight when /metrics is scraped.
  metrics.readStateFrom({
    datasets: async () => (await datasets.list()).map((dataset) => ({ name: dataset.name, samples: dataset.sampleCount })),
    activeOrders: async () =>
      (await orders.list(SERVICE_CALLER, true, MAX_ACTIVE_ORDERS_LISTED)).map((order) => ({
        status: order.status,
        undelivered: Math.max(0, order.samples.produced - order.samples.delivered),
      })),
    exportJobs: () => core.exportJobs.countByStatus(),
    webhookDeliveries: () => core.webhookStore.countDeliveriesByStatus(),
  });
  const samples = new SampleService(store, blobs, config.maxSampleMetadataBytes);
  const deps: AppDeps = {
    config,
    version: VERSION,
    keyring: new ApiKeyring(config.apiKeys ?? generated!.entries),
    datasets,
    stats: new DatasetStatsService(batches),
    samples,
    thumbnails,
    curation: new CurationService(store),
    ingest,
    imports: new ImportService(store, ingest, archiveLimits, metrics),
    bulk: new BulkUploadService(store, ingest, archiveLimits, decodeThreads),
    compaction: new CompactionService(store, blobs, pinnedOrders, config.purgeRetentionSeconds, () => thumbnails.dropOrphans()),
    batches,
    orders,
    exports: core.exports,
    webhooks: core.webhooks,
    legacy: new LegacyService(config.legacyDataset, datasets, ingest, batches),
    nearDuplicates,
    revisionDiffs: new RevisionDiffService(store),
    review: new ReviewService(store, samples, nearDuplicates, systemClock, config.maxFeedbackItems),
    metrics,
    readiness: async () => ({ database: await state(store.ping()), dataDir: await state(blobs.ping()), queue: await state(queue.ping()) }),
  };
  const dispatcher = new WebhookDispatcher(
    core.webhookStore,
    core.webhooks,
    store,
    systemClock,
    {
      timeoutMs: config.webhookTimeoutMs,
      maxAttempts: config.webhookMaxAttempts,
      retryBaseMs: config.webhookRetryBaseMs,
      debounceMs: config.webhookDebounceMs,
      concurrency: WEBHOOK_CONCURRENCY,
    },
    log,
  );
  const backfill = new HashBackfill(store, pixels, log);
  backfill.start();
  let closing: Promise<void> | undefined;
  return {
    ...core,
    deps,
    dispatcher,
    backfill,
    keyFile: generated ? { path: generated.path, newKey: generated.newKey } : undefined,
    // Deliveries in flight end (each within its timeout) and the hash pass stops before the stores close.
    close: () => (closing ??= Promise.allSettled([dispatcher.stop(), backfill.stop()]).then(() => Promise.allSettled([core.close(), decodeThreads?.close()])).then(() => undefined)),
  };
}
