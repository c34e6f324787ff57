import type { FastifyInstance } from 'fastify';
import { SensoryError } from '../../domain/errors.js';
import type { AuditRecord, BulkActionRecord, BulkOutcome } from '../../ports/metadata-store.js';
import { SYSTEM_ACTOR } from '../../ports/metadata-store.js';
import { hasRole } from '../../services/api-keyring.js';
import type { AppDeps } from '../app-deps.js';
import { actorOf } from '../actor.js';
import {
  AuditPage,
  AuditQuery,
  BulkActionBody,
  BulkActionList,
  BulkActionListQuery,
  BulkActionParams,
  BulkActionResult,
  DatasetParams,
  SampleParams,
  errorResponses,
} from '../schemas.js';

function actionView(action: BulkActionRecord) {
  return {
    id: action.id,
    action: action.kind,
    actor: action.actor,
    at: action.at,
    revision: action.revision,
    changed: action.changed,
    ...(action.undoes !== null ? { undoes: action.undoes } : {}),
    ...(action.undoneBy !== null ? { undoneBy: action.undoneBy } : {}),
  };
}

function outcomeView(outcome: BulkOutcome) {
  return { action: actionView(outcome.action), results: outcome.results };
}

function auditView(entry: AuditRecord) {
  const { bulkId, ...rest } = entry;
  return { ...rest, ...(bulkId !== null ? { bulkId } : {}) };
}

const bulkExample = { action: 'relabel', ids: [12, 13, 14], category: 'cat' };
const resultExample = {
  action: { id: 7, action: 'relabel', actor: { name: 'labeller', roles: ['read', 'write'] }, at: '2026-01-05T10:00:00.000Z', revision: 42, changed: 2 },
  results: [
    { id: 12, status: 'changed' },
    { id: 13, status: 'unchanged' },
    { id: 14, status: 'changed' },
  ],
};

/** Bulk actions (relabel, delete, tag, untag over ids or a filter), their undo, and the audit log. */
export function curationRoutes(app: FastifyInstance, { curation }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: BulkActionBody }>(
    '/v1/datasets/:name/samples/actions',
    {
      config: { role: 'write' },
      schema: {
        operationId: 'applyBulkAction',
        summary: 'Relabel, delete, tag or untag many samples in one request',
        description:
          'One request, one revision: relabels and deletes raise the revision by one in all. Select the samples by `ids`, or by `filter` (the listing\'s parameters: every live sample it gives, at most 100,000). Each sample gets its own result. `delete` needs the admin role. The last action of a dataset can be undone.',
        tags: ['samples'],
        params: DatasetParams,
        body: { ...BulkActionBody, examples: [bulkExample, { action: 'tag', filter: { category: 'cat', q: 'IMG_' }, tags: ['checked'] }] },
        response: { 200: { ...BulkActionResult, examples: [resultExample] }, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) => {
      if (request.body.action === 'delete' && (!request.principal || !hasRole(request.principal, 'admin'))) {
        throw new SensoryError('SENSORY_ERR_FORBIDDEN', 'a bulk delete needs the admin role', { field: 'action' });
      }
      return outcomeView(await curation.apply(request.params.name, request.body, actorOf(request) ?? SYSTEM_ACTOR));
    },
  );

  app.get<{ Params: { name: string }; Querystring: { limit?: number } }>(
    '/v1/datasets/:name/samples/actions',
    {
      config: { role: 'read' },
      schema: {
        operationId: 'listBulkActions',
        summary: 'The dataset\'s bulk actions, newest first',
        description: 'What the page offers to undo: the first action that is neither an undo nor undone, when it is the newest of its kind.',
        tags: ['samples'],
        params: DatasetParams,
        querystring: BulkActionListQuery,
        response: { 200: BulkActionList, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({ actions: (await curation.actions(request.params.name, request.query.limit)).map(actionView) }),
  );

  app.post<{ Params: { name: string; id: number } }>(
    '/v1/datasets/:name/samples/actions/:id/undo',
    {
      config: { role: 'write' },
      schema: {
        operationId: 'undoBulkAction',
        summary: 'Undo the dataset\'s last bulk action',
        description:
          'Relabels back, gives removed tags back and takes added ones away, and brings deleted samples back as new samples (new ids; the same bytes, label and annotations), each only where nothing changed it since (skipped otherwise). One revision. Only the last action (not an undo) can be undone, once (409 otherwise). Undoing a delete needs the admin role.',
        tags: ['samples'],
        params: BulkActionParams,
        response: { 200: BulkActionResult, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const actions = await curation.actions(request.params.name, 100);
      const target = actions.find((action) => action.id === request.params.id);
      if (target?.kind === 'delete' && (!request.principal || !hasRole(request.principal, 'admin'))) {
        throw new SensoryError('SENSORY_ERR_FORBIDDEN', 'undoing a bulk delete needs the admin role', { field: 'id' });
      }
      return outcomeView(await curation.undo(request.params.name, request.params.id, actorOf(request) ?? SYSTEM_ACTOR));
    },
  );

  const auditSchema = (extra: { operationId: string; summary: string; params: object }) => ({
    ...extra,
    description: 'Who (the key\'s name and roles, never the key) added, relabelled, deleted, annotated or restored which sample, and when; newest first, paged with an opaque cursor.',
    tags: ['audit'],
    querystring: AuditQuery,
    response: { 200: AuditPage, ...errorResponses(400, 401, 403, 404) },
  });

  app.get<{ Params: { name: string }; Querystring: AuditQuery }>(
    '/v1/datasets/:name/audit',
    { config: { role: 'read' }, schema: auditSchema({ operationId: 'getDatasetAudit', summary: 'The dataset\'s audit log', params: DatasetParams }) },
    async (request) => {
      const page = await curation.audit(request.params.name, request.query);
      return { entries: page.entries.map(auditView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );

  app.get<{ Params: { name: string; id: number }; Querystring: AuditQuery }>(
    '/v1/datasets/:name/samples/:id/audit',
    { config: { role: 'read' }, schema: auditSchema({ operationId: 'getSampleAudit', summary: 'One sample\'s history', params: SampleParams }) },
    async (request) => {
      const page = await curation.audit(request.params.name, { ...request.query, sampleId: request.params.id });
      return { entries: page.entries.map(auditView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );
}
