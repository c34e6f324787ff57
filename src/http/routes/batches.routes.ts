import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { SAFETENSORS, sendEncoded, wantsSafetensors } from '../batch-reply.js';
import { BatchBody, DatasetParams, errorResponses } from '../schemas.js';

const batchSchema = {
  summary: 'A small batch, drawn without replacement (JSON, or safetensors with Accept: application/x-safetensors)',
  tags: ['batches'],
  params: DatasetParams,
  body: BatchBody,
  produces: ['application/json', SAFETENSORS],
  response: errorResponses(400, 401, 403, 404, 413, 422),
};

export function batchRoutes(app: FastifyInstance, { batches }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: BatchBody }>('/v1/datasets/:name/batches', { config: { role: 'read' }, schema: batchSchema }, async (request, reply) => {
    const format = wantsSafetensors(request) ? 'safetensors' : 'json';
    return sendEncoded(reply, 200, format === 'safetensors' ? SAFETENSORS : 'application/json', await batches.serve(request.params.name, request.body, format));
  });
}
