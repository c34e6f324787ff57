import type { FastifyInstance } from 'fastify';
import type { Delivery, Webhook } from '../../domain/webhook.js';
import type { AppDeps } from '../app-deps.js';
import { DeliveryList, DeliveryListQuery, WebhookBody, WebhookCreated, WebhookList, WebhookParams, WebhookView, errorResponses } from '../schemas.js';

const webhookView = (hook: Webhook) => ({ id: hook.id, url: hook.url, events: [...hook.events], createdAt: hook.createdAt });

const deliveryView = (delivery: Delivery) => ({
  id: delivery.id,
  event: delivery.event,
  status: delivery.status,
  attempts: delivery.attempts,
  lastStatus: delivery.lastStatus,
  lastError: delivery.lastError,
  nextAttemptAt: delivery.status === 'pending' ? new Date(delivery.nextAt).toISOString() : null,
  createdAt: delivery.createdAt,
  deliveredAt: delivery.deliveredAt,
  body: delivery.body,
});

/** Webhooks: admin only (a hook makes the service send requests to a URL of the caller's choice). */
export function webhookRoutes(app: FastifyInstance, { webhooks }: AppDeps): void {
  app.post<{ Body: WebhookBody }>(
    '/v1/webhooks',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Create a webhook: signed POSTs of the events asked for to an http(s) URL; its signing secret is in this answer only',
        tags: ['webhooks'],
        body: WebhookBody,
        response: { 201: WebhookCreated, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const hook = await webhooks.create(request.body);
      return reply.code(201).send({ ...webhookView(hook), secret: hook.secret });
    },
  );

  app.get('/v1/webhooks', { config: { role: 'admin' }, schema: { summary: 'Every webhook (without secrets), oldest first', tags: ['webhooks'], response: { 200: WebhookList, ...errorResponses(401, 403) } } }, async () => ({
    webhooks: (await webhooks.list()).map(webhookView),
  }));

  app.get<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    { config: { role: 'admin' }, schema: { summary: 'A webhook (without its secret)', tags: ['webhooks'], params: WebhookParams, response: { 200: WebhookView, ...errorResponses(401, 403, 404) } } },
    async (request) => webhookView(await webhooks.get(request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    { config: { role: 'admin' }, schema: { summary: 'Remove a webhook and its deliveries (pending ones are not sent)', tags: ['webhooks'], params: WebhookParams, response: { 200: WebhookView, ...errorResponses(401, 403, 404) } } },
    async (request) => webhookView(await webhooks.remove(request.params.id)),
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/v1/webhooks/:id/deliveries',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The delivery log of a webhook, newest first: status, attempts, the last answer or error, when the next attempt is due',
        tags: ['webhooks'],
        params: WebhookParams,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryList, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({ deliveries: (await webhooks.deliveries(request.params.id, request.query.limit ?? 100)).map(deliveryView) }),
  );
}
