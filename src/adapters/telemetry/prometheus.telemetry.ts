import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EXPORT_STATUSES } from '../../domain/export-job.js';
import { DELIVERY_STATUSES } from '../../domain/webhook.js';
import type { BatchFormat, IngestOutcome, PixelRoute, ServiceState, Telemetry } from '../../ports/telemetry.js';

/**
 * Datasets named in `sensory_dataset_samples`: the largest ones by live samples; the others are
 * summed under `dataset="_other"` (a name no dataset can have), so that a service with thousands
 * of datasets still exports a bounded number of series.
 */
export const MAX_DATASET_SERIES = 50;
/** The label of the datasets past MAX_DATASET_SERIES. */
export const OTHER_DATASETS = '_other';

/** How long one reading of the datasets and orders serves the gauges of a scrape. */
const READING_REUSE_MS = 1000;

/** The counts of the services and the HTTP edge, in one Prometheus registry with the Node process metrics. */
export class PrometheusTelemetry implements Telemetry {
  readonly registry = new Registry();
  private state: ServiceState | undefined;
  private readonly readings = new Map<keyof ServiceState, { at: number; value: Promise<unknown> }>();

  readonly requestDuration = new Histogram({
    name: 'sensory_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly samplesStored = new Counter({
    name: 'sensory_samples_stored_total',
    help: 'Samples stored (duplicates not counted)',
    registers: [this.registry],
  });
  readonly batchSamplesServed = new Counter({
    name: 'sensory_batch_samples_served_total',
    help: 'Samples handed out in small batches',
    labelNames: ['format'] as const,
    registers: [this.registry],
  });
  readonly orderSamplesDelivered = new Counter({
    name: 'sensory_order_samples_delivered_total',
    help: 'Samples of batch orders delivered by polls (counted once their response was fully sent)',
    labelNames: ['format'] as const,
    registers: [this.registry],
  });
  readonly ingestDuration = new Histogram({
    name: 'sensory_ingest_duration_seconds',
    help: 'Time to check, decode and store one uploaded image (single, multipart, bulk or tar), by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly uploadRejects = new Counter({
    name: 'sensory_upload_rejects_total',
    help: 'Uploaded images refused, by error code',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly batchDuration = new Histogram({
    name: 'sensory_batch_duration_seconds',
    help: 'Time from a small batch request to its last encoded byte, by format',
    labelNames: ['format'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly pixelBytesServed = new Counter({
    name: 'sensory_pixel_bytes_served_total',
    help: 'Bytes of dataset-shaped pixels handed out (samples × width × height × channels), by small batches or order polls',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const telemetry = this;
    new Gauge({
      name: 'sensory_datasets',
      help: 'Datasets',
      registers: [this.registry],
      async collect() {
        const datasets = await telemetry.read('datasets');
        if (datasets) this.set(datasets.length);
      },
    });
    new Gauge({
      name: 'sensory_dataset_samples',
      help: `Live samples by dataset: the ${MAX_DATASET_SERIES} largest datasets, the others summed as dataset="${OTHER_DATASETS}"`,
      labelNames: ['dataset'] as const,
      registers: [this.registry],
      async collect() {
        const datasets = await telemetry.read('datasets');
        if (!datasets) return;
        this.reset();
        const largest = [...datasets].sort((a, b) => b.samples - a.samples || (a.name < b.name ? -1 : 1));
        for (const dataset of largest.slice(0, MAX_DATASET_SERIES)) this.set({ dataset: dataset.name }, dataset.samples);
        if (largest.length > MAX_DATASET_SERIES) {
          this.set({ dataset: OTHER_DATASETS }, largest.slice(MAX_DATASET_SERIES).reduce((sum, dataset) => sum + dataset.samples, 0));
        }
      },
    });
    new Gauge({
      name: 'sensory_orders_in_flight',
      help: 'Batch orders not finished yet, by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const orders = await telemetry.read('activeOrders');
        if (!orders) return;
        this.reset();
        // Both statuses always present, so a dashboard shows 0 rather than no data.
        const counts = new Map<string, number>([
          ['queued', 0],
          ['running', 0],
        ]);
        for (const order of orders) counts.set(order.status, (counts.get(order.status) ?? 0) + 1);
        for (const [status, count] of counts) this.set({ status }, count);
      },
    });
    // Every status always present, so a dashboard shows 0 rather than no data.
    const byStatus = (name: string, help: string, statuses: readonly string[], kind: 'exportJobs' | 'webhookDeliveries') =>
      new Gauge({
        name,
        help,
        labelNames: ['status'] as const,
        registers: [this.registry],
        async collect() {
          const counts = await telemetry.read(kind);
          if (!counts) return;
          for (const status of statuses) this.set({ status }, counts.get(status) ?? 0);
        },
      });
    byStatus('sensory_export_jobs', 'Export jobs, by status', EXPORT_STATUSES, 'exportJobs');
    byStatus('sensory_webhook_deliveries', 'Webhook deliveries in the outbox (every hook), by status', DELIVERY_STATUSES, 'webhookDeliveries');
    new Gauge({
      name: 'sensory_result_queue_samples',
      help: 'Samples produced onto the result queues of orders in flight and not delivered yet',
      registers: [this.registry],
      async collect() {
        const orders = await telemetry.read('activeOrders');
        if (orders) this.set(orders.reduce((sum, order) => sum + order.undelivered, 0));
      },
    });
  }

  /** Where the gauges read the datasets and orders from at each scrape. */
  readStateFrom(state: ServiceState): void {
    this.state = state;
  }

  /**
   * One reading of the state per scrape (the gauges of a scrape share it). A reading that fails
   * (the database is away) leaves those gauges as they were: the scrape itself still answers.
   */
  private async read<K extends keyof ServiceState>(kind: K): Promise<Awaited<ReturnType<ServiceState[K]>> | undefined> {
    const state = this.state;
    if (!state) return undefined;
    const now = Date.now();
    let cached = this.readings.get(kind);
    if (!cached || now - cached.at > READING_REUSE_MS) {
      cached = { at: now, value: state[kind]().catch(() => undefined) };
      this.readings.set(kind, cached);
    }
    return (await cached.value) as Awaited<ReturnType<ServiceState[K]>> | undefined;
  }

  countSamplesStored(count: number): void {
    if (count > 0) this.samplesStored.inc(count);
  }

  countBatchSamplesServed(format: BatchFormat, count: number): void {
    this.batchSamplesServed.inc({ format }, count);
  }

  countOrderSamplesDelivered(format: string, count: number): void {
    if (count > 0) this.orderSamplesDelivered.inc({ format }, count);
  }

  /** Exposes the order polls waiting now (read at each scrape). */
  watchWaitingPolls(read: () => number): void {
    new Gauge({
      name: 'sensory_order_polls_waiting',
      help: 'Order polls waiting for samples in this process (bounded by SENSORY_MAX_WAITING_POLLS)',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  observeIngest(outcome: IngestOutcome, seconds: number): void {
    this.ingestDuration.observe({ outcome }, seconds);
  }

  countUploadRejected(code: string): void {
    this.uploadRejects.inc({ reason: code });
  }

  observeBatch(format: BatchFormat, seconds: number): void {
    this.batchDuration.observe({ format }, seconds);
  }

  countPixelBytesServed(route: PixelRoute, bytes: number): void {
    if (bytes > 0) this.pixelBytesServed.inc({ route }, bytes);
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requestDuration.observe({ method, route, status: String(status) }, seconds);
  }

  /** The text exposition format, for GET /metrics. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
