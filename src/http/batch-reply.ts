import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BatchPlan } from '../domain/batch-plan.js';
import { encodeJson } from '../formats/batch-json.encoder.js';
import { encodeSafetensors } from '../formats/batch-safetensors.encoder.js';
import type { EncodedBatch } from '../formats/encoded-batch.js';
import type { BatchService } from '../services/batch.service.js';
import { EncodedBodyStream } from './encoded-body-stream.js';

export const SAFETENSORS = 'application/x-safetensors';

export function wantsSafetensors(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes(SAFETENSORS);
}

export function sendEncoded(reply: FastifyReply, status: number, contentType: string, encoded: EncodedBatch) {
  reply.code(status).type(contentType);
  if (encoded.contentLength !== undefined) reply.header('content-length', encoded.contentLength);
  return reply.send(new EncodedBodyStream(encoded.chunks, reply.raw));
}

/** A small batch as JSON or safetensors, by the Accept header; both are streamed. */
export function sendBatch(request: FastifyRequest, reply: FastifyReply, plan: BatchPlan, batches: BatchService) {
  const render = (start: number, count: number, target: Uint8Array) => batches.render(plan, start, count, target);
  return wantsSafetensors(request)
    ? sendEncoded(reply, 200, SAFETENSORS, encodeSafetensors(plan, render))
    : sendEncoded(reply, 200, 'application/json', encodeJson(plan, render));
}
