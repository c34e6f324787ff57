import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OrderRecord } from '../../ports/order-store.js';
import type { BatchPlan } from '../../domain/batch-plan.js';
import { encodeJson } from '../../formats/batch-json.encoder.js';
import { encodeSafetensors } from '../../formats/batch-safetensors.encoder.js';
import type { Render } from '../../formats/encoded-batch.js';
import type { PollResult } from '../../services/order.service.js';
import type { AppDeps } from '../app-deps.js';
import type { Metrics } from '../metrics.js';
import { SAFETENSORS, sendEncoded, wantsSafetensors } from '../batch-reply.js';
import { DatasetParams, OrderBody, OrderCreated, OrderList, OrderListQuery, OrderParams, OrderView, PollBody, errorResponses } from '../schemas.js';

export function orderView(order: OrderRecord) {
  return {
    id: order.id,
    dataset: order.datasetName,
    status: order.status,
    size: order.size,
    shards: { total: order.shardsTotal, done: order.shardsDone },
    samples: { produced: order.produced, delivered: order.delivered },
    revision: order.revision,
    seed: order.seed,
    createdAt: order.createdAt,
    expiresAt: order.expiresAt,
    ...(order.error ? { error: order.error } : {}),
  };
}

/** The polled samples as a batch plan whose pixels are already rendered (by the worker). */
export function pollPlan(result: PollResult): { plan: BatchPlan; render: Render } {
  const { order, chunks } = result;
  const dataset = { id: order.datasetId, name: order.datasetName, width: order.width, height: order.height, channels: order.channels };
  const samples = chunks.flatMap((chunk) => chunk.ids.map((id, i) => ({ id, categoryIndex: chunk.labels[i], pixelSlot: -1 })));
  const plan: BatchPlan = {
    dataset,
    revision: order.revision,
    seed: order.seed,
    samples,
    augments: chunks.flatMap((chunk) => chunk.augments),
    categories: order.categories,
    dtype: order.dtype,
    labels: order.labels,
  };
  const record = chunks[0]?.recordBytes ?? 0;
  // Copies each requested record straight from its message: no joined copy of the whole poll.
  const render: Render = async (start, count, target) => {
    let skip = start;
    let written = 0;
    for (const chunk of chunks) {
      const records = chunk.slots.length;
      if (skip >= records) {
        skip -= records;
        continue;
      }
      const take = Math.min(records - skip, count - written);
      target.set(chunk.pixels.subarray(skip * record, (skip + take) * record), written * record);
      written += take;
      skip = 0;
      if (written === count) break;
    }
  };
  return { plan, render };
}

/**
 * Settles the poll once the response is fully written, or the client went away first; a sent
 * response counts its samples as delivered in `delivered` (format: json, safetensors, legacy).
 */
export function settleWhenSent(request: FastifyRequest, reply: FastifyReply, result: PollResult, delivered: { metrics: Metrics; format: string }): void {
  let settled = false;
  const settle = (sent: boolean) => {
    if (settled) return;
    settled = true;
    if (sent && result.count > 0) delivered.metrics.orderSamplesDelivered.inc({ format: delivered.format }, result.count);
    result.settle(sent).catch((error: unknown) => request.log.error({ err: error }, 'settling a poll failed'));
  };
  reply.raw.once('finish', () => settle(true));
  reply.raw.once('close', () => settle(reply.raw.writableFinished));
}

export function orderRoutes(app: FastifyInstance, { orders, metrics }: AppDeps): void {
  app.post<{ Params: { name: string }; Body: OrderBody }>(
    '/v1/datasets/:name/orders',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Place a batch order: split into shards, fulfilled by workers, polled until every sample is delivered',
        tags: ['orders'],
        params: DatasetParams,
        body: OrderBody,
        response: { 202: OrderCreated, ...errorResponses(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) => {
      const order = await orders.create(request.params.name, request.body);
      return reply.code(202).send({ id: order.id, status: order.status, size: order.size, shards: order.shardsTotal, revision: order.revision });
    },
  );

  app.get<{ Querystring: { active?: boolean } }>(
    '/v1/orders',
    {
      config: { role: 'read' },
      schema: { summary: 'Orders, newest first (?active=true: queued and running only)', tags: ['orders'], querystring: OrderListQuery, response: { 200: OrderList, ...errorResponses(400, 401, 403) } },
    },
    async (request) => ({ orders: (await orders.list(request.query.active ?? false)).map(orderView) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'An order: status, shards, samples produced and delivered', tags: ['orders'], params: OrderParams, response: { 200: OrderView, ...errorResponses(401, 403, 404) } },
    },
    async (request) => orderView(await orders.get(request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: { role: 'read' },
      schema: { summary: 'Cancel an order: pending shards are skipped, its result queue removed', tags: ['orders'], params: OrderParams, response: { 200: OrderView, ...errorResponses(401, 403, 404) } },
    },
    async (request) => orderView(await orders.cancel(request.params.id)),
  );

  app.post<{ Params: { id: string }; Body: PollBody | undefined }>(
    '/v1/orders/:id/poll',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Up to max samples of the order (long-polls up to waitMs), as JSON or safetensors; acknowledged only once the response is fully sent',
        tags: ['orders'],
        params: OrderParams,
        body: PollBody,
        produces: ['application/json', SAFETENSORS],
        response: errorResponses(400, 401, 403, 404),
      },
    },
    async (request, reply) => {
      const result = await orders.poll(request.params.id, request.body?.max ?? 4096, request.body?.waitMs ?? 0);
      const { plan, render } = pollPlan(result);
      const safetensors = wantsSafetensors(request);
      settleWhenSent(request, reply, result, { metrics, format: safetensors ? 'safetensors' : 'json' });
      reply.header('sensory-remaining', String(result.remaining)).header('sensory-done', String(result.done));
      const slots = result.chunks.flatMap((chunk) => chunk.slots);
      // This response delivers the last samples: the order is complete once it is sent.
      const status = result.remaining === 0 && result.order.status === 'running' ? 'complete' : result.order.status;
      return safetensors
        ? sendEncoded(reply, 200, SAFETENSORS, encodeSafetensors(plan, render, { slots: JSON.stringify(slots), remaining: String(result.remaining), done: String(result.done), status }))
        : sendEncoded(reply, 200, 'application/json', encodeJson(plan, render, { slots, remaining: result.remaining, done: result.done, status }));
    },
  );
}
