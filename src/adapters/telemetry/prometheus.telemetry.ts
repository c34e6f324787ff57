import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchFormat, Telemetry } from '../../ports/telemetry.js';

/** The counts of the services and the HTTP edge, in one Prometheus registry with the Node process metrics. */
export class PrometheusTelemetry implements Telemetry {
  readonly registry = new Registry();
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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
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

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requestDuration.observe({ method, route, status: String(status) }, seconds);
  }

  /** The text exposition format, for GET /metrics. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
