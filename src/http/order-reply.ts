import type { FastifyReply, FastifyRequest } from 'fastify';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { encodeJson } from '../formats/batch-json.encoder.js';
import { encodeSafetensors } from '../formats/batch-safetensors.encoder.js';
import { hasRole } from '../services/api-keyring.js';
import type { Caller, PollResult } from '../services/order.service.js';
import type { OrderReport } from '../services/order-report.js';
import { SAFETENSORS, sendEncoded, wantsSafetensors } from './batch-reply.js';
import type { Metrics } from './metrics.js';

/** The caller of an authenticated request, as the order service knows it. */
export function callerOf(request: FastifyRequest): Caller {
  const principal = request.principal;
  if (!principal) throw new SensoryError('SENSORY_ERR_UNAUTHORIZED', 'send a known API key in API-ACCESS-KEY or Authorization: Bearer');
  return { owner: principal.owner, admin: hasRole(principal, 'admin') };
}

export function orderView(order: OrderReport) {
  const { spec } = order;
  return {
    id: spec.id,
    dataset: spec.datasetName,
    status: order.status,
    size: spec.size,
    slots: order.slots,
    ranks: order.ranks,
    generation: order.generation,
    rounding: order.rounding,
    shards: order.shards,
    samples: order.samples,
    streams: order.streams,
    revision: spec.revision,
    seed: spec.seed,
    ...(order.key !== null ? { key: order.key } : {}),
    ttlSeconds: order.ttlSeconds,
    createdAt: spec.createdAt,
    expiresAt: order.expiresAt,
    ...(order.error ? { error: order.error } : {}),
  };
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
    if (sent) {
      delivered.metrics.countOrderSamplesDelivered(delivered.format, result.count);
      delivered.metrics.countPixelBytesServed('order', result.count * recordBytes(result.plan.dataset));
    }
    result.settle(sent).catch((error: unknown) => request.log.error({ err: error }, 'settling a poll failed'));
  };
  reply.raw.once('finish', () => settle(true));
  reply.raw.once('close', () => settle(reply.raw.writableFinished));
}

/** A poll's answer: JSON or safetensors by Accept, the poll's fields in the body (or metadata) and headers. */
export function sendPoll(request: FastifyRequest, reply: FastifyReply, result: PollResult, metrics: Metrics) {
  const safetensors = wantsSafetensors(request);
  settleWhenSent(request, reply, result, { metrics, format: safetensors ? 'safetensors' : 'json' });
  reply.header('sensory-remaining', String(result.remaining)).header('sensory-done', String(result.done));
  if (result.cursor !== undefined) reply.header('sensory-cursor', result.cursor);
  const fields = {
    slots: result.slots,
    epochs: result.epochs,
    rank: result.rank,
    generation: result.generation,
    ...(result.cursor !== undefined ? { cursor: result.cursor } : {}),
    remaining: result.remaining,
    done: result.done,
    status: result.status,
  };
  if (!safetensors) return sendEncoded(reply, 200, 'application/json', encodeJson(result.plan, result.render, fields));
  const metadata = Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]));
  return sendEncoded(reply, 200, SAFETENSORS, encodeSafetensors(result.plan, result.render, metadata, result.views));
}
