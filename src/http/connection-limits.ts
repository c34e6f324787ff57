import type { IncomingMessage, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Config } from '../config/config.js';
import { SensoryError } from '../domain/errors.js';
import { sendError } from './error-handler.js';

/**
 * What a slow or greedy client can hold, bounded in time and count: headers, the whole request
 * (headers and body), an idle socket, an idle keep-alive connection, the writing of a response,
 * and connections per client address. Every bound is a setting (README, SECURITY.md).
 */
export type ConnectionLimits = Pick<
  Config,
  'headersTimeoutMs' | 'requestTimeoutMs' | 'idleTimeoutMs' | 'keepAliveTimeoutMs' | 'responseTimeoutMs' | 'maxConnectionsPerIp'
>;

/** How often Node checks the header and request deadlines (its default, 30 s, would let them overrun by that much). */
const DEADLINE_CHECK_MS = 1000;

/** The options of Fastify() that set the server's own timeouts. */
export function serverTimeouts(limits: ConnectionLimits): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'connectionTimeout'> & { http: ServerOptions } {
  return {
    // Node answers 408 and closes when headers, or the whole request, are not in by these times.
    http: { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: DEADLINE_CHECK_MS },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // A socket with no traffic either way for this long is destroyed.
    connectionTimeout: limits.idleTimeoutMs,
  };
}

const overLimit = new WeakSet<Socket>();

/**
 * Counts connections per client address; a connection over the cap is answered 429
 * SENSORY_ERR_TOO_MANY_CONNECTIONS at its first request and closed. Behind a reverse proxy every
 * client has the proxy's address: raise the cap there, or set it to 0 (no cap) and cap at the proxy.
 * Also bounds the time a response may take to be written (a client reading a byte at a time).
 */
export function installConnectionLimits(app: FastifyInstance, limits: ConnectionLimits): void {
  if (limits.maxConnectionsPerIp > 0) {
    const open = new Map<string, number>();
    app.server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? 'unknown';
      const count = (open.get(address) ?? 0) + 1;
      open.set(address, count);
      if (count > limits.maxConnectionsPerIp) overLimit.add(socket);
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left <= 0) open.delete(address);
        else open.set(address, left);
      });
    });
    // Callback-style (no promise per request); the refusal answers instead of calling done().
    app.addHook('onRequest', (request, reply, done) => {
      if (!overLimit.has(request.raw.socket)) return done();
      reply.header('connection', 'close');
      sendError(
        reply,
        new SensoryError('SENSORY_ERR_TOO_MANY_CONNECTIONS', `more than ${limits.maxConnectionsPerIp} open connections from this address (SENSORY_MAX_CONNECTIONS_PER_IP)`),
      );
    });
  }

  app.addHook('onSend', (request, reply, _payload, done) => {
    const response = reply.raw;
    if (!response.writableFinished) {
      const timer = setTimeout(() => {
        request.log.warn({ url: redactedUrl(request.raw) }, `response not written within ${limits.responseTimeoutMs} ms: connection closed`);
        response.destroy();
      }, limits.responseTimeoutMs);
      timer.unref();
      response.once('close', () => clearTimeout(timer));
    }
    done();
  });
}

/** The request's path without its query string (which may carry a key). */
function redactedUrl(request: IncomingMessage): string {
  return (request.url ?? '').split('?')[0];
}
