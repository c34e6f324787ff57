import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { categoriesView, datasetView } from '../presenters.js';
import { CategoriesView, DatasetBody, DatasetList, DatasetParams, DatasetView, errorResponses } from '../schemas.js';

type Named = { Params: { name: string } };

export function datasetRoutes(app: FastifyInstance, { datasets, ingest }: AppDeps): void {
  app.put<Named & { Body: DatasetBody }>(
    '/v1/datasets/:name',
    {
      config: { role: 'write' },
      schema: {
        summary: 'Create a dataset, or confirm it exists with the same shape',
        tags: ['datasets'],
        params: DatasetParams,
        body: DatasetBody,
        response: { 200: DatasetView, 201: DatasetView, ...errorResponses(400, 401, 403, 409, 413) },
      },
    },
    async (request, reply) => {
      const { dataset, created } = await datasets.put(request.params.name, request.body);
      return reply.code(created ? 201 : 200).send(datasetView(dataset));
    },
  );

  app.get(
    '/v1/datasets',
    {
      config: { role: 'read' },
      schema: { summary: 'List datasets', tags: ['datasets'], response: { 200: DatasetList, ...errorResponses(401, 403) } },
    },
    async () => ({ datasets: (await datasets.list()).map((dataset) => datasetView(dataset)) }),
  );

  app.get<Named>(
    '/v1/datasets/:name',
    {
      config: { role: 'read' },
      schema: {
        summary: 'A dataset: shape, sample count, revision, categories with index and count',
        tags: ['datasets'],
        params: DatasetParams,
        response: { 200: DatasetView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const dataset = await datasets.get(request.params.name);
      return datasetView(dataset, dataset.categories);
    },
  );

  app.delete<Named>(
    '/v1/datasets/:name',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Delete a dataset and its samples',
        tags: ['datasets'],
        params: DatasetParams,
        response: { 200: DatasetView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const deleted = await datasets.delete(request.params.name);
      // Its id is never used again: the upload path's per-dataset state can go.
      ingest.forgetDataset(deleted.id);
      return datasetView(deleted);
    },
  );

  app.get<Named>(
    '/v1/datasets/:name/categories',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The category map: stable indices, never shifted or reused',
        tags: ['datasets'],
        params: DatasetParams,
        response: { 200: CategoriesView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => categoriesView(await datasets.categories(request.params.name)),
  );
}
