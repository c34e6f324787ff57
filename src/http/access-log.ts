import type { FastifyInstance, FastifyReply } from 'fastify';
import { redactedUrlOf } from './log-redaction.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The socket's bytes written when the request began: the response's bytes are the difference. */
    accessLogBytesBefore?: number;
  }
  interface FastifyReply {
    /** The SENSORY_ERR_* code this answer carries, when it is an error. */
    errorCode?: string;
  }
}

/** Marks an answer as an error with `code`, for its access log line. */
export function noteErrorCode(reply: FastifyReply, code: string): void {
  reply.errorCode = code;
}

/**
 * One line per request, written when the response has ended (or the client went away):
 * method, route pattern, URL (credential-like query values redacted), status, milliseconds,
 * bytes sent (headers and body), the key's name ("key 2", never the key) and, for an error,
 * its SENSORY_ERR_* code. Fastify's own two lines per request are turned off.
 */
export function installAccessLog(app: FastifyInstance): void {
  // Callback-style hooks: no promise per hook per request (every request runs these).
  app.addHook('onRequest', (request, _reply, done) => {
    request.accessLogBytesBefore = request.raw.socket?.bytesWritten;
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const written = request.raw.socket?.bytesWritten;
    const before = request.accessLogBytesBefore;
    const length = Number(reply.getHeader('content-length'));
    const bytes = typeof written === 'number' && typeof before === 'number' && written >= before ? written - before : Number.isFinite(length) ? length : undefined;
    const status = reply.statusCode;
    const line = {
      reqId: request.id,
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: redactedUrlOf(request),
      status,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      bytes,
      key: request.principal?.label ?? null,
      ...(reply.errorCode ? { code: reply.errorCode } : {}),
      // The client went away before the whole answer was written.
      ...(reply.raw.writableFinished ? {} : { aborted: true }),
    };
    const message = `${request.method} ${line.route ?? line.url.split('?')[0]} ${status}`;
    // Through the app's logger with the request's id, as request.log would write it, without
    // making request.log (a child logger) for a line that is all most requests log.
    if (status >= 500) app.log.warn(line, message);
    else app.log.info(line, message);
    done();
  });
}
