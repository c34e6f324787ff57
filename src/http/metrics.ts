import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
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

  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      this.requestDuration.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
  }
}
