import type { FastifyInstance } from 'fastify';
import { SensoryError } from '../../domain/errors.js';
import { hasRole } from '../../services/api-keyring.js';
import type { AppDeps } from '../app-deps.js';
import { actorOf } from '../actor.js';
import { sampleView } from '../presenters.js';
import {
  DatasetParams,
  FeedbackBody,
  FeedbackResult,
  ReviewDecisionBody,
  ReviewDecisionResult,
  ReviewPageView,
  ReviewQuery,
  SampleParams,
  errorResponses,
} from '../schemas.js';

/** Reports of a trainer's losses and probabilities may be large: this many bytes at most. */
const FEEDBACK_BODY_LIMIT = 64 * 1024 * 1024;

const feedbackExample = {
  revision: 42,
  items: [
    { id: 12, loss: 0.05, probs: [0.97, 0.02, 0.01] },
    { id: 13, loss: 3.9, probs: [0.02, 0.96, 0.02], predicted: 1 },
  ],
};

/** Label review: a trainer's reports in, the ranked queue of likely mislabels out, a person's decisions. */
export function reviewRoutes(app: FastifyInstance, { review }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: FeedbackBody }>(
    '/v1/datasets/:name/feedback',
    {
      config: { role: 'write' },
      bodyLimit: FEEDBACK_BODY_LIMIT,
      schema: {
        operationId: 'postFeedback',
        summary: 'Report per-sample losses, class probabilities or predicted classes from training',
        description:
          'Bulk, by sample id. The latest report of a sample replaces its previous one and takes it back into the review queue. Ids of no live sample get status not_found; nothing else of the request is refused for them.',
        tags: ['review'],
        params: DatasetParams,
        body: { ...FeedbackBody, examples: [feedbackExample] },
        response: { 200: FeedbackResult, ...errorResponses(400, 401, 403, 404, 413, 422) },
      },
    },
    async (request) => {
      const { dataset, ...rest } = await review.feedback(request.params.name, request.body);
      return { dataset: dataset.name, ...rest };
    },
  );

  app.get<{ Params: { name: string }; Querystring: ReviewQuery }>(
    '/v1/datasets/:name/review',
    {
      config: { role: 'read' },
      schema: {
        operationId: 'getReviewQueue',
        summary: 'The review queue: samples ranked as likely mislabels, with reasons and a suggested class, paged',
        tags: ['review'],
        params: DatasetParams,
        querystring: ReviewQuery,
        response: { 200: ReviewPageView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { dataset, ...rest } = await review.queue(request.params.name, request.query);
      return { dataset: dataset.name, ...rest };
    },
  );

  app.post<{ Params: { name: string; id: number }; Body: ReviewDecisionBody }>(
    '/v1/datasets/:name/review/:id',
    {
      config: { role: 'write' },
      schema: {
        operationId: 'decideReview',
        summary: 'Decide on a sample in review: confirm its label, relabel it (to the suggested class by default) or delete it (admin)',
        tags: ['review'],
        params: SampleParams,
        body: ReviewDecisionBody,
        response: { 200: ReviewDecisionResult, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) => {
      if (request.body.decision === 'delete' && (!request.principal || !hasRole(request.principal, 'admin'))) {
        throw new SensoryError('SENSORY_ERR_FORBIDDEN', 'deleting a sample needs the admin role', { field: 'decision' });
      }
      const { dataset, id, decision, sample } = await review.decide(request.params.name, request.params.id, request.body, actorOf(request));
      return { id, decision, sample: sampleView(dataset, sample) };
    },
  );
}
