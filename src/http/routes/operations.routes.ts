import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';

export function operationsRoutes(app: FastifyInstance, { readiness, metrics }: AppDeps): void {
  app.get('/health/live', { schema: { summary: 'The process is up', tags: ['operations'] } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { schema: { summary: 'Database, data dir and queue answer; 503 naming what is down', tags: ['operations'] } }, async (request, reply) => {
    const states = await readiness();
    const down = Object.entries(states).filter(([, state]) => state !== 'ok');
    // This route needs no key: it says only "down"; what is wrong (addresses, paths) goes to the log.
    if (down.length > 0) request.log.warn({ down: Object.fromEntries(down) }, 'not ready');
    const checks = Object.fromEntries(Object.entries(states).map(([name, state]) => [name, state === 'ok' ? 'ok' : 'down']));
    return reply.code(down.length === 0 ? 200 : 503).send({ status: down.length === 0 ? 'ok' : 'unavailable', checks, down: down.map(([name]) => name) });
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_request, reply) => {
    const { contentType, text } = await metrics.exposition();
    return reply.type(contentType).send(text);
  });

  app.get('/openapi.json', { schema: { summary: 'This OpenAPI 3 document', tags: ['operations'] } }, async () => app.swagger());
}
