import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dependencyFault } from '../adapters/dependency-faults.js';
import { noteErrorCode } from './access-log.js';
import { drainUnreadBody } from './unread-body.js';
import { ERROR_REGISTRY, SensoryError, isSensoryError, type ErrorCode } from '../domain/errors.js';
import { validationError, type SchemaIssue } from './validation-messages.js';

export function errorBody(code: ErrorCode, message: string, requestId?: string, field?: string, sampleId?: number) {
  return { error: { code, message, ...(field ? { field } : {}), ...(requestId ? { requestId } : {}), ...(sampleId !== undefined ? { sampleId } : {}) } };
}

/** Codes whose answer names the sample the request ran into (a program needs its id, not a sentence). */
const NAMES_SAMPLE: ReadonlySet<ErrorCode> = new Set(['SENSORY_ERR_CATEGORY_CONFLICT', 'SENSORY_ERR_NEAR_DUPLICATE']);

/** Seconds a client should wait before retrying a 503: a database restart takes about that. */
const RETRY_AFTER_SECONDS = 2;
/** Seconds before retrying a refusal for load: a waiting place frees within a poll's waitMs. */
const RETRY_AFTER: Partial<Record<ErrorCode, number>> = { SENSORY_ERR_TOO_MANY_POLLS: 1, SENSORY_ERR_TOO_MANY_ORDERS: 10 };

export function sendError(reply: FastifyReply, error: SensoryError) {
  noteErrorCode(reply, error.code);
  const retryAfter = error.status === 503 ? RETRY_AFTER_SECONDS : RETRY_AFTER[error.code];
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  const sampleId = NAMES_SAMPLE.has(error.code) && typeof error.details?.sampleId === 'number' ? error.details.sampleId : undefined;
  return reply.code(error.status).type('application/json').send(errorBody(error.code, error.message, undefined, error.field, sampleId));
}

/** Framework and plugin errors, by their code, to ours. */
const FRAMEWORK_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SENSORY_ERR_BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'SENSORY_ERR_SAMPLE_TOO_LARGE',
  FST_FILES_LIMIT: 'SENSORY_ERR_BODY_TOO_LARGE',
  FST_PARTS_LIMIT: 'SENSORY_ERR_BODY_TOO_LARGE',
  FST_FIELDS_LIMIT: 'SENSORY_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/** The one place where errors become HTTP responses. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    await drainUnreadBody(request.raw);
    if (isSensoryError(error)) {
      // Details stay on the server (a decoder's message, conflicting fields): the answer has the sentence.
      if (error.details) request.log.info({ code: error.code, details: error.details }, error.message);
      return sendError(reply, error);
    }
    if (error.validation) {
      // Schema text (anyOf, must match pattern) becomes a sentence naming the field, what was sent and what is allowed.
      return sendError(reply, validationError(error.validation as unknown as SchemaIssue[], error.validationContext));
    }
    const mapped = error.code ? FRAMEWORK_ERRORS[error.code] : undefined;
    if (mapped) return sendError(reply, new SensoryError(mapped, error.message));
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', 'the body is empty but Content-Type says JSON: send a JSON object, or no Content-Type', { field: 'body' }));
    }
    if (error.statusCode === 400 && (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError)) {
      return sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', `the body is not valid JSON: ${error.message}`, { field: 'body' }));
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', error.message));
    }
    const fault = dependencyFault(error);
    if (fault) {
      request.log.warn({ err: error, code: fault.code }, 'dependency fault');
      return sendError(reply, fault);
    }
    request.log.error({ err: error }, 'unexpected error');
    noteErrorCode(reply, 'SENSORY_ERR_INTERNAL');
    return reply
      .code(ERROR_REGISTRY.SENSORY_ERR_INTERNAL.status)
      .send(errorBody('SENSORY_ERR_INTERNAL', `internal error; quote request id ${request.id} when reporting it`, request.id));
  });
  app.setNotFoundHandler(async (request, reply) => {
    await drainUnreadBody(request.raw);
    return sendError(reply, new SensoryError('SENSORY_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
