import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { SAFETENSORS, sendBatch, wantsSafetensors } from '../batch-reply.js';
import { BatchBody, DatasetParams, errorResponses } from '../schemas.js';

export function batchRoutes(app: FastifyInstance, { batches, metrics }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: BatchBody }>(
    '/v1/datasets/:name/batches',
    {
      config: { role: 'read' },
      schema: {
        summary: 'A small batch, drawn without replacement (JSON, or safetensors with Accept: application/x-safetensors)',
        tags: ['batches'],
        params: DatasetParams,
        body: BatchBody,
        produces: ['application/json', SAFETENSORS],
        response: errorResponses(400, 401, 403, 404, 413, 422),
      },
    },
    async (request, reply) => {
      const plan = await batches.plan(request.params.name, request.body, wantsSafetensors(request) ? 'safetensors' : 'json');
      metrics.batchSamplesServed.inc({ format: wantsSafetensors(request) ? 'safetensors' : 'json' }, plan.samples.length);
      return sendBatch(request, reply, plan, batches);
    },
  );
}
