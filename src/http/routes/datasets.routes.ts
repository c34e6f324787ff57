import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { categoriesView, datasetView } from '../presenters.js';
import { CategoriesView, DatasetBody, DatasetList, DatasetParams, DatasetStats, DatasetView, errorResponses } from '../schemas.js';

type Named = { Params: { name: string } };

const oneDataset = (summary: string, response: object, extra: object = {}) => ({ summary, tags: ['datasets'], params: DatasetParams, response, ...extra });

const putSchema = oneDataset('Create a dataset, or confirm it exists with the same shape', { 200: DatasetView, 201: DatasetView, ...errorResponses(400, 401, 403, 409, 413) }, { body: DatasetBody });
const listSchema = { summary: 'List datasets', tags: ['datasets'], response: { 200: DatasetList, ...errorResponses(401, 403) } };
const getSchema = oneDataset('A dataset: shape, sample count, revision, categories with index and count', { 200: DatasetView, ...errorResponses(400, 401, 403, 404) });
const deleteSchema = oneDataset('Delete a dataset and its samples', { 200: DatasetView, ...errorResponses(400, 401, 403, 404) });
const categoriesSchema = oneDataset('The category map: stable indices, never shifted or reused', { 200: CategoriesView, ...errorResponses(400, 401, 403, 404) });
const statsSchema = oneDataset('Live samples per category, split into train and test', { 200: DatasetStats, ...errorResponses(400, 401, 403, 404) });

export function datasetRoutes(app: FastifyInstance, { datasets, stats }: AppDeps): void {
  app.put<Named & { Body: DatasetBody }>('/v1/datasets/:name', { config: { role: 'write' }, schema: putSchema }, async (request, reply) => {
    const { dataset, created } = await datasets.put(request.params.name, request.body);
    return reply.code(created ? 201 : 200).send(datasetView(dataset));
  });

  app.get('/v1/datasets', { config: { role: 'read' }, schema: listSchema }, async () => ({ datasets: (await datasets.list()).map((dataset) => datasetView(dataset)) }));

  app.get<Named>('/v1/datasets/:name', { config: { role: 'read' }, schema: getSchema }, async (request) => {
    const dataset = await datasets.get(request.params.name);
    return datasetView(dataset, dataset.categories);
  });

  app.delete<Named>('/v1/datasets/:name', { config: { role: 'admin' }, schema: deleteSchema }, async (request) => datasetView(await datasets.delete(request.params.name)));

  app.get<Named>('/v1/datasets/:name/categories', { config: { role: 'read' }, schema: categoriesSchema }, async (request) =>
    categoriesView(await datasets.categories(request.params.name)),
  );

  // Per-category train/test counts for the web page's chart, from one consistent revision.
  app.get<Named>('/v1/datasets/:name/stats', { config: { role: 'read' }, schema: statsSchema }, async (request) => stats.stats(request.params.name));
}
