import type { FastifyInstance } from 'fastify';
import { recordBytes } from '../../domain/dataset-shape.js';
import { LEGACY_NO_SAMPLE, encodeLegacySample } from '../../formats/legacy-json.encoder.js';
import type { AppDeps } from '../app-deps.js';
import { actorOf } from '../actor.js';
import { sendEncoded } from '../batch-reply.js';
import { LegacyBatchBody, LegacyHeaders, LegacyPollBody, LegacyRequestBody, LegacyStoreBody, errorResponses } from '../schemas.js';
import { decodeBase64 } from '../upload-body.js';
import { callerOf, settleWhenSent } from '../order-reply.js';

const storeSchema = {
  summary: 'Legacy: store one base64 PNG into dataset <name>_<width>x<height> (3 channels, created when missing)',
  tags: ['legacy'],
  headers: LegacyHeaders,
  body: LegacyStoreBody,
  response: errorResponses(400, 403, 409, 413, 415),
};

const categorySchema = { summary: 'Legacy: the category map of SENSORY_LEGACY_DATASET', tags: ['legacy'], headers: LegacyHeaders, response: errorResponses(400, 403, 404) };

const requestSchema = {
  summary: 'Legacy: a batch of SENSORY_LEGACY_DATASET as {labels: [[i]…], data: N×H×W×C}',
  tags: ['legacy'],
  headers: LegacyHeaders,
  body: LegacyRequestBody,
  response: errorResponses(400, 403, 404, 413, 422),
};

/** The dicebox sensory service's API, kept so that its clients work unchanged. */
export function legacyRoutes(app: FastifyInstance, { legacy, config, version }: AppDeps): void {
  // A sample of SENSORY_MAX_SAMPLE_BYTES as base64 (4/3) plus the JSON around it.
  const storeLimits = { config: { legacyRole: 'write' as const }, schema: storeSchema, bodyLimit: Math.ceil((config.maxSampleBytes * 4) / 3) + 64 * 1024 };
  app.post<{ Body: LegacyStoreBody }>('/api/sensory/store', storeLimits, async (request) => {
    const { data, ...store } = request.body;
    await legacy.store({ ...store, bytes: decodeBase64('data', data), actor: actorOf(request) });
    return { sensory_store: true };
  });

  app.get('/api/sensory/category', { config: { legacyRole: 'read' }, schema: categorySchema }, async () => ({ category_map: await legacy.categoryMap() }));

  app.post<{ Body: LegacyRequestBody }>('/api/sensory/request', { config: { legacyRole: 'read' }, schema: requestSchema }, async (request, reply) =>
    sendEncoded(reply, 201, 'application/json', await legacy.batch(request.body.batch_size, request.body.noise ?? 0)),
  );

  app.get(
    '/api/version',
    { schema: { summary: 'Legacy: the service and dicebox library versions', tags: ['legacy'] } },
    async () => ({ version, 'dicebox lib version': config.apiVersion }),
  );

  app.get('/health/plain', { schema: { summary: 'Legacy health check: true', tags: ['legacy', 'operations'] } }, async (_request, reply) =>
    reply.type('application/json').send('true'),
  );
}

/** Batch orders the dicebox way: placed on SENSORY_LEGACY_DATASET, polled one sample at a time. */
export function legacyOrderRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { orders } = deps;
  const legacyDataset = () => deps.legacy.dataset();

  app.post<{ Body: LegacyRequestBody }>(
    '/api/sensory/batch',
    {
      config: { legacyRole: 'read' },
      schema: {
        summary: 'Legacy: place a batch order on SENSORY_LEGACY_DATASET; poll it one sample at a time',
        tags: ['legacy'],
        headers: LegacyHeaders,
        body: LegacyBatchBody,
        response: errorResponses(400, 403, 404, 422, 429, 503),
      },
    },
    async (request, reply) => {
      const dataset = await legacyDataset();
      const { order } = await orders.place(dataset.name, { size: request.body.batch_size, noise: request.body.noise ?? 0 }, callerOf(request));
      return reply.code(202).send({ batch_id: order.spec.id });
    },
  );

  app.post<{ Body: LegacyPollBody }>(
    '/api/sensory/poll',
    {
      config: { legacyRole: 'read' },
      schema: {
        summary: 'Legacy: one sample of an order as {label: [i], data: H×W×C}, or {label: null, data: null} when none is ready',
        tags: ['legacy'],
        headers: LegacyHeaders,
        body: LegacyPollBody,
        response: errorResponses(400, 403, 404),
      },
    },
    async (request, reply) => {
      const result = await orders.poll(request.body.batch_id, callerOf(request), { max: 1, waitMs: 0 });
      if (result.count === 0) return reply.type('application/json').send(LEGACY_NO_SAMPLE);
      const pixels = new Uint8Array(recordBytes(result.plan.dataset));
      await result.render(0, 1, pixels);
      settleWhenSent(request, reply, result, { metrics: deps.metrics, format: 'legacy' });
      return reply.type('application/json').send(encodeLegacySample(result.plan.samples[0].categoryIndex, pixels, result.plan.dataset));
    },
  );
}
