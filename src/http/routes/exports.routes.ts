import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { progressOf, type ExportJob } from '../../domain/export-job.js';
import { SensoryError } from '../../domain/errors.js';
import type { AppDeps } from '../app-deps.js';
import { sendError } from '../error-handler.js';
import { parseRange } from '../range.js';
import { DatasetParams, ExportBody, ExportFileParams, ExportList, ExportListQuery, ExportParams, ExportView, errorResponses } from '../schemas.js';

export function exportView(job: ExportJob) {
  const { spec } = job;
  const names = new Map(spec.categories.map((category) => [category.index, category.name]));
  return {
    id: spec.id,
    dataset: spec.datasetName,
    format: spec.format,
    status: job.status,
    revision: spec.revision,
    split: spec.split,
    categories: spec.categoryIndexes ? spec.categoryIndexes.map((index) => names.get(index) ?? String(index)) : null,
    shardSize: spec.shardSize,
    samples: { total: spec.total, done: job.status === 'complete' ? spec.total : job.done },
    progress: progressOf(job),
    files: job.files.map((file, n) => ({ n, name: file.name, bytes: file.bytes, samples: file.samples, url: `/v1/exports/${spec.id}/files/${n}` })),
    attempts: job.attempts,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
    ...(job.error ? { error: job.error } : {}),
  };
}

export function exportRoutes(app: FastifyInstance, { exports }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: ExportBody }>(
    '/v1/datasets/:name/exports',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Start an export job: the dataset (at a revision, in a split and categories) written as WebDataset shards, an ImageFolder tar or safetensors shards, in the background',
        tags: ['exports'],
        params: DatasetParams,
        body: ExportBody,
        response: { 202: ExportView, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) => reply.code(202).send(exportView(await exports.create(request.params.name, request.body))),
  );

  app.get<{ Querystring: { dataset?: string } }>(
    '/v1/exports',
    {
      config: { role: 'read' },
      schema: { summary: 'Export jobs, newest first (?dataset=: of one dataset)', tags: ['exports'], querystring: ExportListQuery, response: { 200: ExportList, ...errorResponses(400, 401, 403) } },
    },
    async (request) => ({ exports: (await exports.list(request.query.dataset)).map(exportView) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/exports/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'An export job: status, progress, its finished files', tags: ['exports'], params: ExportParams, response: { 200: ExportView, ...errorResponses(401, 403, 404) } },
    },
    async (request) => exportView(await exports.get(request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/exports/:id',
    {
      config: { role: 'admin' },
      schema: { summary: 'Remove an export job that is not running, with its files (admin)', tags: ['exports'], params: ExportParams, response: { 200: ExportView, ...errorResponses(401, 403, 404, 409) } },
    },
    async (request) => exportView(await exports.remove(request.params.id)),
  );

  app.get<{ Params: { id: string; n: number } }>(
    '/v1/exports/:id/files/:n',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Download a finished file of an export job, streamed; a Range header (one range) resumes a download: 206, or 416 past the end',
        tags: ['exports'],
        params: ExportFileParams,
        produces: ['application/x-tar', 'application/octet-stream'],
        response: {
          200: { description: 'the whole file', content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          206: { description: 'the range asked for (Content-Range)', content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          ...errorResponses(401, 403, 404, 409, 416),
        },
      },
    },
    async (request, reply) => {
      const file = await exports.file(request.params.id, request.params.n);
      reply.header('accept-ranges', 'bytes').header('etag', file.etag).header('content-disposition', `attachment; filename="${file.name}"`);
      // A resumed download whose file changed since (If-Range names another version) gets the whole new file.
      const ifRange = request.headers['if-range'];
      const range = ifRange !== undefined && ifRange !== file.etag ? { kind: 'whole' as const } : parseRange(request.headers.range, file.bytes);
      if (range.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${file.bytes}`);
        return sendError(reply, new SensoryError('SENSORY_ERR_RANGE_NOT_SATISFIABLE', `range ${request.headers.range} is past the end of ${file.name} (${file.bytes} bytes)`));
      }
      reply.type(file.contentType);
      if (range.kind === 'whole') {
        reply.header('content-length', String(file.bytes));
        return reply.send(createReadStream(file.path));
      }
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${file.bytes}`).header('content-length', String(range.end - range.start + 1));
      return reply.send(createReadStream(file.path, { start: range.start, end: range.end }));
    },
  );
}
