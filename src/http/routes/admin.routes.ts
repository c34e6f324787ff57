import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { CompactionBody, CompactionResult, errorResponses } from '../schemas.js';

export function adminRoutes(app: FastifyInstance, { compaction }: AppDeps): void {
  app.post<{ Body: { retentionSeconds?: number; minGarbageShare?: number } }>(
    '/v1/admin/compaction',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Purge deleted samples older than the retention period and compact the segment files; online',
        description:
          'Samples deleted at least retentionSeconds ago are removed; live orders whose pinned revision still needs one are failed first, and batches or orders below the newest purged deletion are refused from then on (422 SENSORY_ERR_REVISION_PURGED). Originals no sample names are forgotten and segments with enough garbage are rewritten, so the disk space comes back. Uploads, batches and orders carry on meanwhile. Answers when done.',
        tags: ['admin'],
        body: CompactionBody,
        response: { 200: CompactionResult, ...errorResponses(400, 401, 403, 409) },
      },
      // No body at all means the defaults.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => compaction.run(request.body ?? {}),
  );
}
