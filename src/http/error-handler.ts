import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dependencyFault } from '../adapters/dependency-faults.js';
import { ERROR_REGISTRY, SensoryError, isSensoryError, type ErrorCode } from '../domain/errors.js';

export function errorBody(code: ErrorCode, message: string, requestId?: string, sampleId?: number) {
  return { error: { code, message, ...(requestId ? { requestId } : {}), ...(sampleId !== undefined ? { sampleId } : {}) } };
}

/** Codes whose answer names the sample the request ran into (a program needs its id, not a sentence). */
const NAMES_SAMPLE: ReadonlySet<ErrorCode> = new Set(['SENSORY_ERR_CATEGORY_CONFLICT', 'SENSORY_ERR_NEAR_DUPLICATE']);

/** Seconds a client should wait before retrying a 503: a database restart takes about that. */
const RETRY_AFTER_SECONDS = 2;

export function sendError(reply: FastifyReply, error: SensoryError) {
  if (error.status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  const sampleId = NAMES_SAMPLE.has(error.code) && typeof error.details?.sampleId === 'number' ? error.details.sampleId : undefined;
  return reply.code(error.status).type('application/json').send(errorBody(error.code, error.message, undefined, sampleId));
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
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (isSensoryError(error)) {
      // Details stay on the server (a decoder's message, conflicting fields): the answer has the sentence.
      if (error.details) request.log.info({ code: error.code, details: error.details }, error.message);
      return sendError(reply, error);
    }
    if (error.validation) {
      const where = error.validationContext ?? 'request';
      // Ajv's message for a field it does not know omits the field's name.
      const unknown = error.validation.find((issue) => issue.keyword === 'additionalProperties')?.params?.additionalProperty;
      const message = `${where}: ${error.message.replace(/^(body|querystring|params|headers)\/?/, '')}${unknown ? `: ${unknown}` : ''}`;
      return sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', message));
    }
    const mapped = error.code ? FRAMEWORK_ERRORS[error.code] : undefined;
    if (mapped) return sendError(reply, new SensoryError(mapped, error.message));
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', error.message));
    }
    const fault = dependencyFault(error);
    if (fault) {
      request.log.warn({ err: error, code: fault.code }, 'dependency fault');
      return sendError(reply, fault);
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply
      .code(ERROR_REGISTRY.SENSORY_ERR_INTERNAL.status)
      .send(errorBody('SENSORY_ERR_INTERNAL', `internal error; quote request id ${request.id} when reporting it`, request.id));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new SensoryError('SENSORY_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
