import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { actorOf } from '../actor.js';
import { BulkResult, DatasetParams, errorResponses } from '../schemas.js';
import { GZIP_TYPES, TAR_TYPES, importMediaType } from '../upload-body.js';

export function bulkRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { bulk } = deps;

  app.post<{ Params: { name: string } }>(
    '/v1/datasets/:name/samples/bulk',
    {
      config: { role: 'write' },
      schema: {
        summary: 'Add many samples in one streamed request: a tar (gzip allowed) of <category>/<file> members; a receipt per item, in input order',
        description:
          'Each item is checked and stored as a single upload would be, and committed in groups as the body streams in: a cut connection keeps exactly the items committed until then, and the same body sent again stores nothing twice (duplicates come back with their sample ids). Folders are structure; links and other non-file members, paths outside <category>/<file>, and members over SENSORY_MAX_SAMPLE_BYTES are rejected items. 201 when at least one item was stored, else 200.',
        tags: ['samples'],
        params: DatasetParams,
        consumes: [...TAR_TYPES, ...GZIP_TYPES],
        response: { 200: BulkResult, 201: BulkResult, ...errorResponses(400, 401, 403, 404, 413, 415) },
      },
      // Before any body parser runs (after auth): a JSON or text body is a 415, not a parse error.
      onRequest: async (request) => {
        importMediaType(request);
      },
    },
    async (request, reply) => {
      const result = await bulk.upload(request.params.name, request.raw, importMediaType(request) === 'gzip', actorOf(request));
      return reply.code(result.stored > 0 ? 201 : 200).send(result);
    },
  );
}
