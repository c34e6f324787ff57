import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_REGISTRY, SensoryError, type ErrorCode } from '../domain/errors.js';
import { errorBody, sendError } from './error-handler.js';
import { API_CSP, SECURITY_HEADERS } from './security-headers.js';

/**
 * Errors raised before a route is found (a malformed URL, an over-long path parameter) and before
 * a request exists at all (a header timeout, oversized headers, broken HTTP), answered in the
 * same `{error: {code, message}}` shape as every other error.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  // No route, so no hooks: the headers every answer carries are set here.
  reply.headers({ ...SECURITY_HEADERS, 'content-security-policy': API_CSP });
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendError(reply, new SensoryError('SENSORY_ERR_URL_TOO_LONG', 'a path parameter of the URL is longer than any route accepts'));
    return;
  }
  const message = error.code === 'FST_ERR_BAD_URL' ? 'the URL is malformed (invalid percent-encoding)' : 'the request is malformed';
  void sendError(reply, new SensoryError('SENSORY_ERR_BAD_REQUEST', message));
}

const CLIENT_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'SENSORY_ERR_REQUEST_TIMEOUT', message: 'the request did not arrive in time (SENSORY_HEADERS_TIMEOUT_MS, SENSORY_REQUEST_TIMEOUT_MS)' },
  HPE_HEADER_OVERFLOW: { code: 'SENSORY_ERR_HEADERS_TOO_LARGE', message: 'the request line and headers are larger than 16 KiB' },
};

/** Errors of the HTTP parser and of Node's request deadlines: an answer if the socket still takes one, then close. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { code, message } = CLIENT_ERRORS[error.code ?? ''] ?? { code: 'SENSORY_ERR_BAD_REQUEST' as const, message: 'the request is not valid HTTP' };
  const status = ERROR_REGISTRY[code].status;
  const body = JSON.stringify(errorBody(code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `${Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')}Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
