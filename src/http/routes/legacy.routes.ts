import type { FastifyInstance } from 'fastify';
import { SensoryError } from '../../domain/errors.js';
import { assertValidName, legacyDatasetName } from '../../domain/names.js';
import { categoryMap } from '../../domain/batch-plan.js';
import { recordBytes } from '../../domain/dataset-shape.js';
import { LEGACY_NO_SAMPLE, encodeLegacyBatch, encodeLegacySample } from '../../formats/legacy-json.encoder.js';
import type { AppDeps } from '../app.js';
import { sendEncoded } from '../batch-reply.js';
import { LegacyBatchBody, LegacyHeaders, LegacyPollBody, LegacyRequestBody, LegacyStoreBody, errorResponses } from '../schemas.js';
import { callerOf, settleWhenSent } from '../order-reply.js';
import { decodeBase64 } from './samples.routes.js';

/** The dicebox sensory service's API, kept so that its clients work unchanged. */
export function legacyRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { config, datasets, ingest, batches, orders } = deps;

  async function legacyDataset() {
    const name = config.legacyDataset;
    if (!name) throw new SensoryError('SENSORY_ERR_LEGACY_DATASET_UNSET', 'SENSORY_LEGACY_DATASET is not set: the legacy batch endpoints serve that dataset');
    try {
      return await datasets.get(name);
    } catch (error) {
      if ((error as SensoryError).code !== 'SENSORY_ERR_DATASET_NOT_FOUND') throw error;
      throw new SensoryError('SENSORY_ERR_LEGACY_DATASET_UNSET', `SENSORY_LEGACY_DATASET names dataset ${name}, which does not exist`);
    }
  }

  app.post<{ Body: LegacyStoreBody }>(
    '/api/sensory/store',
    {
      config: { legacyRole: 'write' },
      schema: {
        summary: 'Legacy: store one base64 PNG into dataset <name>_<width>x<height> (3 channels, created when missing)',
        tags: ['legacy'],
        headers: LegacyHeaders,
        body: LegacyStoreBody,
        response: errorResponses(400, 403, 409, 413, 415),
      },
    },
    async (request) => {
      const { name, width, height, category, data } = request.body;
      assertValidName('name', name);
      const dataset = legacyDatasetName(name, width, height);
      assertValidName('name', dataset);
      const bytes = decodeBase64('data', data);
      ingest.assertSize(bytes.length);
      assertValidName('category', category);
      if (!(await datasets.find(dataset))) {
        // A store that fails stores nothing: not even the dataset it would have created.
        await ingest.assertImage(bytes, { width, height, channels: 3 });
        await datasets.put(dataset, { width, height, channels: 3 });
      }
      const stored = await ingest.add(dataset, { category, bytes });
      if (!stored.duplicate) deps.metrics.samplesStored.inc();
      return { sensory_store: true };
    },
  );

  app.get(
    '/api/sensory/category',
    {
      config: { legacyRole: 'read' },
      schema: { summary: 'Legacy: the category map of SENSORY_LEGACY_DATASET', tags: ['legacy'], headers: LegacyHeaders, response: errorResponses(400, 403, 404) },
    },
    async () => {
      const dataset = await legacyDataset();
      return { category_map: categoryMap(dataset) };
    },
  );

  app.post<{ Body: LegacyRequestBody }>(
    '/api/sensory/request',
    {
      config: { legacyRole: 'read' },
      schema: {
        summary: 'Legacy: a batch of SENSORY_LEGACY_DATASET as {labels: [[i]…], data: N×H×W×C}',
        tags: ['legacy'],
        headers: LegacyHeaders,
        body: LegacyRequestBody,
        response: errorResponses(400, 403, 404, 413, 422),
      },
    },
    async (request, reply) => {
      const dataset = await legacyDataset();
      const plan = await batches.plan(dataset.name, { size: request.body.batch_size, noise: request.body.noise ?? 0 });
      const render = (start: number, count: number, target: Uint8Array) => batches.render(plan, start, count, target);
      return sendEncoded(reply, 201, 'application/json', encodeLegacyBatch(plan, render));
    },
  );

  app.post<{ Body: LegacyRequestBody }>(
    '/api/sensory/batch',
    {
      config: { legacyRole: 'read' },
      schema: {
        summary: 'Legacy: place a batch order on SENSORY_LEGACY_DATASET; poll it one sample at a time',
        tags: ['legacy'],
        headers: LegacyHeaders,
        body: LegacyBatchBody,
        response: errorResponses(400, 403, 404, 422, 503),
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

  app.get(
    '/api/version',
    { schema: { summary: 'Legacy: the service and dicebox library versions', tags: ['legacy'] } },
    async () => ({ version: deps.version, 'dicebox lib version': config.apiVersion }),
  );

  app.get('/health/plain', { schema: { summary: 'Legacy health check: true', tags: ['legacy', 'operations'] } }, async (_request, reply) =>
    reply.type('application/json').send('true'),
  );
}
