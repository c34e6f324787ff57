import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { DatasetParams, errorResponses } from '../schemas.js';

const DatasetStats = Type.Object({
  dataset: Type.String(),
  revision: Type.Integer({ description: 'the revision the counts are taken at' }),
  testPercent: Type.Integer(),
  train: Type.Integer(),
  test: Type.Integer(),
  categories: Type.Array(
    Type.Object({ name: Type.String(), index: Type.Integer(), train: Type.Integer(), test: Type.Integer() }),
    { description: 'every category the dataset has had, by index, with its live samples in each split' },
  ),
});

/** Per-category train/test counts for the web page's chart, from one consistent revision. */
export function statsRoutes(app: FastifyInstance, { batches }: AppDeps): void {
  app.get<{ Params: { name: string } }>(
    '/v1/datasets/:name/stats',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Live samples per category, split into train and test',
        tags: ['datasets'],
        params: DatasetParams,
        response: { 200: DatasetStats, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      // Both selections pinned to one revision, so a change in between cannot skew the counts.
      const all = await batches.select(request.params.name, { split: 'all' });
      const tests = all.dataset.testPercent > 0 ? (await batches.select(request.params.name, { split: 'test', revision: all.revision })).eligible : [];
      const total = new Map<number, number>();
      const test = new Map<number, number>();
      for (const sample of all.eligible) total.set(sample.categoryIndex, (total.get(sample.categoryIndex) ?? 0) + 1);
      for (const sample of tests) test.set(sample.categoryIndex, (test.get(sample.categoryIndex) ?? 0) + 1);
      const categories = all.categories.map(({ name, index }) => {
        const inTest = test.get(index) ?? 0;
        return { name, index, train: (total.get(index) ?? 0) - inTest, test: inTest };
      });
      return {
        dataset: all.dataset.name,
        revision: all.revision,
        testPercent: all.dataset.testPercent,
        train: all.eligible.length - tests.length,
        test: tests.length,
        categories,
      };
    },
  );
}
