import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { DatasetParams, DiffQuery, DuplicateQuery, DuplicateReportView, LeakageReportView, RevisionDiffView, errorResponses } from '../schemas.js';

type Named = { Params: { name: string } };

const report = (summary: string, querystring: object, response: object) => ({
  summary,
  tags: ['know your data'],
  params: DatasetParams,
  querystring,
  response: { 200: response, ...errorResponses(400, 401, 403, 404, 422) },
});

const duplicatesSchema = report('Groups of near-duplicate samples (perceptual hashes within distance bits), exact ones marked, paged', DuplicateQuery, DuplicateReportView);
const leakageSchema = report('Near-duplicate groups that straddle the train/test split or carry different categories, counted first, paged', DuplicateQuery, LeakageReportView);
const diffSchema = report('What changed between two revisions, per category (added, deleted, relabelled from → to), counted first, samples paged', DiffQuery, RevisionDiffView);

/** Reports on a dataset's contents: near-duplicates, leaks between splits, revision diffs. */
export function dataReportRoutes(app: FastifyInstance, { nearDuplicates, revisionDiffs }: AppDeps): void {
  app.get<Named & { Querystring: DuplicateQuery }>('/v1/datasets/:name/duplicates', { config: { role: 'read' }, schema: duplicatesSchema }, async (request) => {
    const { dataset, ...rest } = await nearDuplicates.duplicates(request.params.name, request.query);
    return { dataset: dataset.name, ...rest };
  });

  app.get<Named & { Querystring: DuplicateQuery }>('/v1/datasets/:name/leakage', { config: { role: 'read' }, schema: leakageSchema }, async (request) => {
    const { dataset, ...rest } = await nearDuplicates.leakage(request.params.name, request.query);
    return { dataset: dataset.name, ...rest };
  });

  app.get<Named & { Querystring: DiffQuery }>('/v1/datasets/:name/diff', { config: { role: 'read' }, schema: diffSchema }, async (request) => {
    const { dataset, ...rest } = await revisionDiffs.diff(request.params.name, request.query);
    return { dataset: dataset.name, ...rest };
  });
}
