import type { FastifyInstance } from 'fastify';

/** No MIME sniffing, no referrer, no framing; the page sets its own fuller CSP (web.ts). */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

/** For API answers (JSON, tensors, images): nothing in them may run or load anything. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Security headers on every answer. CORS: none is sent, on purpose — the API is for programs
 * and the page is served from the same origin, so a browser on another origin cannot read
 * answers (SECURITY.md). A deployment that needs cross-origin access adds it at its proxy.
 */
export function installSecurityHeaders(app: FastifyInstance): void {
  // Callback-style (no promise per request); with the request id every answer carries.
  app.addHook('onSend', (request, reply, _payload, done) => {
    reply.headers(SECURITY_HEADERS);
    if (!reply.hasHeader('content-security-policy') && !/^text\/html/.test(String(reply.getHeader('content-type') ?? ''))) {
      reply.header('content-security-policy', API_CSP);
    }
    reply.header('x-request-id', request.id);
    done();
  });
}
