import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { actorOf } from '../actor.js';
import { fileOutcomesView, sampleView, storedView } from '../presenters.js';
import {
  DatasetParams,
  ImportSummary,
  RelabelBody,
  SampleJsonBody,
  SampleListQuery,
  SamplePage,
  SampleParams,
  SampleUploadQuery,
  SampleView,
  UploadResults,
  errorResponses,
} from '../schemas.js';
import { GZIP_TYPES, TAR_TYPES, importMediaType, readUploadBody } from '../upload-body.js';

type Named = { Params: { name: string } };
type OneSample = { Params: { name: string; id: number } };

const uploadSchema = {
  summary: 'Add a sample: JSON {category, data: base64}, a multipart form (category + file parts), or a raw image/* body with ?category=',
  tags: ['samples'],
  params: DatasetParams,
  querystring: SampleUploadQuery,
  body: { content: { 'application/json': { schema: SampleJsonBody } } },
  response: { 200: Type.Union([SampleView, UploadResults]), 201: Type.Union([SampleView, UploadResults]), ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
};

const importSchema = {
  summary: 'Import a tar stream laid out <category>/<file> (gzip allowed); all or nothing',
  tags: ['samples'],
  params: DatasetParams,
  consumes: [...TAR_TYPES, ...GZIP_TYPES],
  response: { 200: ImportSummary, ...errorResponses(400, 401, 403, 404, 415) },
};

const listSchema = {
  summary: 'List live samples by id, paged with an opaque cursor',
  tags: ['samples'],
  params: DatasetParams,
  querystring: SampleListQuery,
  response: { 200: SamplePage, ...errorResponses(400, 401, 403, 404) },
};

const oneSchema = (summary: string, extra: object = {}) => ({ summary, tags: ['samples'], params: SampleParams, response: { 200: SampleView, ...errorResponses(400, 401, 403, 404) }, ...extra });

const contentSchema = {
  summary: 'The original bytes, with their Content-Type',
  tags: ['samples'],
  params: SampleParams,
  produces: ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/tiff'],
  response: errorResponses(400, 401, 403, 404),
};

/** Samples in: one or several uploads, or a tar import. */
export function sampleUploadRoutes(app: FastifyInstance, { ingest, imports, config }: AppDeps): void {
  const uploadBodyLimit = Math.ceil((config.maxSampleBytes * 4) / 3) + 64 * 1024;
  app.post<Named & { Querystring: SampleUploadQuery; Body: unknown }>(
    '/v1/datasets/:name/samples',
    { config: { role: 'write' }, bodyLimit: uploadBodyLimit, schema: uploadSchema },
    async (request, reply) => {
      const body = await readUploadBody(request, config.maxSampleMetadataBytes);
      const options = { rejectNearDuplicate: request.query.rejectNearDuplicate };
      const { status, body: view } =
        body.kind === 'files'
          ? fileOutcomesView(await ingest.addFiles(request.params.name, body.category, body.files, actorOf(request), options))
          : storedView(await ingest.add(request.params.name, { ...body.upload, actor: actorOf(request) }, options));
      return reply.code(status).send(view);
    },
  );

  app.post<Named>(
    '/v1/datasets/:name/imports',
    // The media type is checked before any body parser runs (after auth), so that a JSON or text body is a 415, not a parse error.
    { config: { role: 'write' }, schema: importSchema, onRequest: async (request) => void importMediaType(request) },
    async (request) => imports.importTar(request.params.name, request.raw, importMediaType(request) === 'gzip', actorOf(request)),
  );
}

/** Samples read, relabelled and deleted one at a time, and listed by pages. */
export function sampleRoutes(app: FastifyInstance, { samples }: AppDeps): void {
  app.get<Named & { Querystring: SampleListQuery }>('/v1/datasets/:name/samples', { config: { role: 'read' }, schema: listSchema }, async (request) => {
    const page = await samples.list(request.params.name, request.query);
    return { samples: page.samples.map((sample) => sampleView(page.dataset, sample)), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  app.get<OneSample>('/v1/datasets/:name/samples/:id', { config: { role: 'read' }, schema: oneSchema('One sample') }, async (request) => {
    const { dataset, sample } = await samples.get(request.params.name, request.params.id);
    return sampleView(dataset, sample);
  });

  app.get<OneSample>('/v1/datasets/:name/samples/:id/content', { config: { role: 'read' }, schema: contentSchema }, async (request, reply) => {
    const { sample, bytes } = await samples.content(request.params.name, request.params.id);
    return reply.type(sample.mediaType).header('cache-control', 'private, max-age=31536000, immutable').header('etag', `"${sample.sha256}"`).send(bytes);
  });

  app.patch<OneSample & { Body: RelabelBody }>(
    '/v1/datasets/:name/samples/:id',
    { config: { role: 'write' }, schema: oneSchema('Relabel a sample, or change its filename, tags or metadata', { body: RelabelBody }) },
    async (request) => {
      const { dataset, sample } = await samples.patch(request.params.name, request.params.id, request.body, actorOf(request));
      return sampleView(dataset, sample);
    },
  );

  app.delete<OneSample>('/v1/datasets/:name/samples/:id', { config: { role: 'admin' }, schema: oneSchema('Delete a sample (kept for older revisions)') }, async (request) => {
    const { dataset, sample } = await samples.delete(request.params.name, request.params.id, actorOf(request));
    return sampleView(dataset, sample);
  });
}
