import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_THUMBNAIL_SIZE, THUMBNAIL_SIZES } from '../../services/thumbnail.service.js';
import type { AppDeps } from '../app-deps.js';
import { SampleParams, errorResponses } from '../schemas.js';

const ThumbnailQuery = Type.Object(
  {
    size: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        default: DEFAULT_THUMBNAIL_SIZE,
        description: `longest side in pixels, one of ${THUMBNAIL_SIZES.join(', ')}`,
        examples: [DEFAULT_THUMBNAIL_SIZE],
      }),
    ),
  },
  { additionalProperties: false },
);

type Request = { Params: { name: string; id: number }; Querystring: { size?: number } };

/** Previews are cacheable for a week by the browser alone (they carry the key's data); the ETag revalidates after. */
const CACHE_CONTROL = 'private, max-age=604800';

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export function thumbnailRoutes(app: FastifyInstance, { thumbnails }: AppDeps): void {
  app.get<Request>(
    '/v1/datasets/:name/samples/:id/thumbnail',
    {
      config: { role: 'read' },
      schema: {
        operationId: 'getSampleThumbnail',
        summary: 'A small WebP preview of the sample, fitted inside size × size (never enlarged)',
        description: `Made from the original on first request and cached on the data volume, shared by replicas. Sizes: ${THUMBNAIL_SIZES.join(', ')} (default ${DEFAULT_THUMBNAIL_SIZE}). A strong ETag from the original's SHA-256; If-None-Match answers 304.`,
        tags: ['samples'],
        params: SampleParams,
        querystring: ThumbnailQuery,
        produces: ['image/webp'],
        response: {
          200: { description: 'The preview', content: { 'image/webp': { schema: { type: 'string', format: 'binary' } } } },
          304: { description: 'Not modified: the If-None-Match validator is current', type: 'null' },
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const ref = await thumbnails.locate(request.params.name, request.params.id, request.query.size ?? DEFAULT_THUMBNAIL_SIZE);
      reply.header('etag', ref.etag).header('cache-control', CACHE_CONTROL).header('vary', 'API-ACCESS-KEY, Authorization');
      if (matches(request.headers['if-none-match'], ref.etag)) return reply.code(304).send();
      return reply.type('image/webp').send(await thumbnails.bytes(ref));
    },
  );
}
