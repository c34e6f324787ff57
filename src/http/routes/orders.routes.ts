import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { SAFETENSORS } from '../batch-reply.js';
import { callerOf, orderView, sendPoll } from '../order-reply.js';
import {
  DatasetParams,
  OrderBody,
  OrderCreated,
  OrderList,
  OrderListQuery,
  OrderParams,
  OrderPatchBody,
  OrderView,
  PollAnswer,
  PollBody,
  ReshapeBody,
  errorResponses,
} from '../schemas.js';

const POLL_ANSWER = {
  200: {
    description: 'the samples: JSON, or safetensors with the same fields in __metadata__ (and Sensory-Remaining, Sensory-Done, Sensory-Cursor headers)',
    content: { 'application/json': { schema: PollAnswer }, [SAFETENSORS]: { schema: { type: 'string', format: 'binary' } } },
  },
};

export function orderRoutes(app: FastifyInstance, { orders, metrics }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: OrderBody }>(
    '/v1/datasets/:name/orders',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Place a batch order: produced by workers, polled by one or more ranks until every sample is delivered (a known key: 200 with the same order)',
        tags: ['orders'],
        params: DatasetParams,
        body: OrderBody,
        response: { 200: OrderCreated, 202: OrderCreated, ...errorResponses(400, 401, 403, 404, 409, 413, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { order, created } = await orders.place(request.params.name, request.body, callerOf(request));
      const view = orderView(order);
      return reply.code(created ? 202 : 200).send({ id: view.id, status: view.status, size: view.size, shards: view.shards.total, revision: view.revision });
    },
  );

  app.get<{ Querystring: { active?: boolean } }>(
    '/v1/orders',
    {
      config: { role: 'read' },
      schema: { summary: 'The orders of this key (every order for an admin key), newest first (?active=true: queued and running only)', tags: ['orders'], querystring: OrderListQuery, response: { 200: OrderList, ...errorResponses(400, 401, 403) } },
    },
    async (request) => ({ orders: (await orders.list(callerOf(request), request.query.active ?? false)).map(orderView) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'An order: status, ranks, samples produced and delivered, each rank\'s progress', tags: ['orders'], params: OrderParams, response: { 200: OrderView, ...errorResponses(401, 403, 404) } },
    },
    async (request) => orderView(await orders.get(request.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: OrderPatchBody }>(
    '/v1/orders/:id',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Set the order\'s idle TTL and move its expiry to that long from now (trainers paused for long)',
        tags: ['orders'],
        params: OrderParams,
        body: OrderPatchBody,
        response: { 200: OrderView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => orderView(await orders.extend(request.params.id, callerOf(request), request.body.ttlSeconds)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'Cancel an order: pending production is skipped, its result queues removed', tags: ['orders'], params: OrderParams, response: { 200: OrderView, ...errorResponses(401, 403, 404) } },
    },
    async (request) => orderView(await orders.cancel(request.params.id, callerOf(request))),
  );

  app.post<{ Params: { id: string }; Body: ReshapeBody }>(
    '/v1/orders/:id/reshape',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Deal the samples not yet delivered again over another number of ranks (a new generation; polls of the old one get 409)',
        tags: ['orders'],
        params: OrderParams,
        body: ReshapeBody,
        response: { 200: OrderView, ...errorResponses(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request) => orderView(await orders.reshape(request.params.id, callerOf(request), request.body)),
  );

  app.post<{ Params: { id: string }; Body: PollBody | undefined }>(
    '/v1/orders/:id/poll',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Up to max samples of one rank (long-polls up to waitMs). Without a cursor: delivered once the answer is sent whole. With a cursor: retried polls give the same samples, and acknowledged ones are delivered',
        tags: ['orders'],
        params: OrderParams,
        body: PollBody,
        produces: ['application/json', SAFETENSORS],
        response: { ...POLL_ANSWER, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => sendPoll(request, reply, await orders.poll(request.params.id, callerOf(request), request.body ?? {}), metrics),
  );
}
