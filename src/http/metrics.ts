import type { FastifyInstance } from 'fastify';
import type { PrometheusTelemetry } from '../adapters/telemetry/prometheus.telemetry.js';

/** The metrics the HTTP edge records request durations into and exposes at /metrics. */
export type Metrics = PrometheusTelemetry;

export function installRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
