import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EncodedBatch } from '../formats/encoded-batch.js';
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
