import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SensoryError, isSensoryError } from '../../domain/errors.js';
import { assertValidName } from '../../domain/names.js';
import type { Stored, Upload } from '../../services/ingest.service.js';
import type { AppDeps } from '../app.js';
import { sampleView } from '../presenters.js';
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

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeBase64(field: string, text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact)) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `${field} must be base64`, { field });
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

export const TAR_TYPES = ['application/x-tar', 'application/tar'];
export const GZIP_TYPES = ['application/gzip', 'application/x-gzip', 'application/x-gtar'];

/** The import body's kind from its Content-Type; anything else is a 415. */
export function importMediaType(request: FastifyRequest): 'tar' | 'gzip' {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (GZIP_TYPES.includes(type)) return 'gzip';
  if (TAR_TYPES.includes(type)) return 'tar';
  throw new SensoryError('SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', `send the tar as ${TAR_TYPES[0]} (or gzipped as ${GZIP_TYPES[0]})`);
}

interface FilePart {
  readonly filename: string;
  readonly bytes?: Buffer;
  readonly error?: SensoryError;
}

/** Reads a multipart form: `category` and one or more `file` parts (each checked for size). */
async function readForm(request: FastifyRequest): Promise<{ category: unknown; files: FilePart[] }> {
  let category: unknown;
  const files: FilePart[] = [];
  try {
    // The plugin runs with throwFileSizeLimit: false, so an over-long file is one file's 413
    // (its `truncated` flag), not the whole form's.
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.fieldname === 'category') category = part.value;
        continue;
      }
      const filename = part.filename || `file ${files.length + 1}`;
      const bytes = await part.toBuffer();
      if (part.fieldname !== 'file') continue;
      if (part.file.truncated) {
        files.push({ filename, error: new SensoryError('SENSORY_ERR_SAMPLE_TOO_LARGE', `${filename} is larger than the sample limit`) });
      } else {
        files.push({ filename, bytes });
      }
    }
  } catch (error) {
    // Framework errors (limits) carry their own status; anything else is a body that cannot be parsed.
    if (isSensoryError(error) || (error as { statusCode?: number }).statusCode) throw error;
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `the multipart form could not be read: ${(error as Error).message}`);
  }
  if (files.length === 0) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'the form has no file part');
  return { category, files };
}

export function sampleRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { datasets, samples, ingest, imports, config, metrics } = deps;

  app.post<{ Params: { name: string }; Querystring: { category?: string }; Body: unknown }>(
    '/v1/datasets/:name/samples',
    {
      config: { role: 'write' },
      bodyLimit: Math.ceil((config.maxSampleBytes * 4) / 3) + 64 * 1024,
      schema: {
        summary: 'Add a sample: JSON {category, data: base64}, a multipart form (category + file parts), or a raw image/* body with ?category=',
        tags: ['samples'],
        params: DatasetParams,
        querystring: SampleUploadQuery,
        body: { content: { 'application/json': { schema: SampleJsonBody } } },
        response: { 200: Type.Union([SampleView, UploadResults]), 201: Type.Union([SampleView, UploadResults]), ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const name = request.params.name;
      if (request.isMultipart()) {
        const { category, files } = await readForm(request);
        if (files.length === 1) {
          if (files[0].error) throw files[0].error;
          return sendStored(reply, await ingest.add(name, { category, bytes: files[0].bytes! }));
        }
        // What fails the whole form fails it once, before any file: the dataset and the category.
        await datasets.get(name);
        assertValidName('category', category);
        const results = await Promise.all(files.map((file) => uploadOne(name, category, file)));
        return reply.code(results.some((result) => result.status === 201) ? 201 : 200).send({ samples: results });
      }
      let upload: Upload;
      if (Buffer.isBuffer(request.body)) {
        if (request.query.category === undefined) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'a raw image body needs ?category=');
        upload = { category: request.query.category, bytes: request.body };
      } else if (typeof request.body === 'object' && request.body !== null) {
        const body = request.body as SampleJsonBody;
        upload = { category: body.category, bytes: decodeBase64('data', body.data) };
      } else {
        // e.g. text/plain, which Fastify parses to a string: not one of the accepted forms.
        throw new SensoryError('SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', 'send JSON {category, data}, a multipart form, or a raw image/* body with ?category=');
      }
      return sendStored(reply, await ingest.add(name, upload));
    },
  );

  function sendStored(reply: FastifyReply, stored: Stored) {
    if (!stored.duplicate) metrics.samplesStored.inc();
    return reply.code(stored.duplicate ? 200 : 201).send(sampleView(stored.dataset, stored.sample, stored.duplicate));
  }

  /** One file of a several-file form: its own status, sample or error. */
  async function uploadOne(datasetName: string, category: unknown, file: FilePart) {
    try {
      if (file.error) throw file.error;
      const stored = await ingest.add(datasetName, { category, bytes: file.bytes! });
      if (!stored.duplicate) metrics.samplesStored.inc();
      return { filename: file.filename, status: stored.duplicate ? 200 : 201, sample: sampleView(stored.dataset, stored.sample, stored.duplicate) };
    } catch (error) {
      if (!isSensoryError(error)) throw error;
      return { filename: file.filename, status: error.status, error: { code: error.code, message: error.message } };
    }
  }

  app.post<{ Params: { name: string } }>(
    '/v1/datasets/:name/imports',
    {
      config: { role: 'write' },
      schema: {
        summary: 'Import a tar stream laid out <category>/<file> (gzip allowed); all or nothing',
        tags: ['samples'],
        params: DatasetParams,
        consumes: [...TAR_TYPES, ...GZIP_TYPES],
        response: { 200: ImportSummary, ...errorResponses(400, 401, 403, 404, 415) },
      },
      // Checked before any body parser runs (after auth), so that a JSON or text body is a 415, not a parse error.
      onRequest: async (request) => {
        importMediaType(request);
      },
    },
    async (request) => {
      const summary = await imports.importTar(request.params.name, request.raw, importMediaType(request) === 'gzip');
      metrics.samplesStored.inc(summary.imported);
      return summary;
    },
  );

  app.get<{ Params: { name: string }; Querystring: SampleListQuery }>(
    '/v1/datasets/:name/samples',
    {
      config: { role: 'read' },
      schema: {
        summary: 'List live samples by id, paged with an opaque cursor',
        tags: ['samples'],
        params: DatasetParams,
        querystring: SampleListQuery,
        response: { 200: SamplePage, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const page = await samples.list(request.params.name, request.query);
      return {
        samples: page.samples.map((sample) => sampleView(page.dataset, sample)),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      };
    },
  );

  type OneSample = { Params: { name: string; id: number } };

  app.get<OneSample>(
    '/v1/datasets/:name/samples/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'One sample', tags: ['samples'], params: SampleParams, response: { 200: SampleView, ...errorResponses(400, 401, 403, 404) } },
    },
    async (request) => {
      const { dataset, sample } = await samples.get(request.params.name, request.params.id);
      return sampleView(dataset, sample);
    },
  );

  app.get<OneSample>(
    '/v1/datasets/:name/samples/:id/content',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The original bytes, with their Content-Type',
        tags: ['samples'],
        params: SampleParams,
        produces: ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/tiff'],
        response: errorResponses(400, 401, 403, 404),
      },
    },
    async (request, reply) => {
      const { sample, bytes } = await samples.content(request.params.name, request.params.id);
      return reply
        .type(sample.mediaType)
        .header('cache-control', 'private, max-age=31536000, immutable')
        .header('etag', `"${sample.sha256}"`)
        .send(bytes);
    },
  );

  app.patch<OneSample & { Body: RelabelBody }>(
    '/v1/datasets/:name/samples/:id',
    {
      config: { role: 'write' },
      schema: {
        summary: 'Relabel a sample',
        tags: ['samples'],
        params: SampleParams,
        body: RelabelBody,
        response: { 200: SampleView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { dataset, sample } = await samples.relabel(request.params.name, request.params.id, request.body.category);
      return sampleView(dataset, sample);
    },
  );

  app.delete<OneSample>(
    '/v1/datasets/:name/samples/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Delete a sample (kept for older revisions)',
        tags: ['samples'],
        params: SampleParams,
        response: { 200: SampleView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { dataset, sample } = await samples.delete(request.params.name, request.params.id);
      return sampleView(dataset, sample);
    },
  );
}
