import type { IncomingMessage } from 'node:http';

/** Query parameters that look like credentials; such a request is refused, and never logged with them. */
export const CREDENTIAL_PARAMETER = /key|token|secret|passw|auth|signature|credential/i;

/** The URL with the value of every credential-like query parameter replaced by [REDACTED]. */
export function redactUrl(url: string): string {
  const question = url.indexOf('?');
  if (question < 0) return url;
  const query = url
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        // A malformed name is checked as it is.
      }
      return CREDENTIAL_PARAMETER.test(decoded) ? `${name}=[REDACTED]` : pair;
    })
    .join('&');
  return `${url.slice(0, question)}?${query}`;
}

/** pino serializer for requests: what Fastify logs, with the URL redacted and no headers. */
export function requestSerializer(request: IncomingMessage & { id?: string; ip?: string }) {
  return {
    method: request.method,
    url: redactUrl(request.url ?? ''),
    remoteAddress: request.socket?.remoteAddress,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** redactUrl(url), once worked out (the key check and the access log both need it). */
    redactedUrl?: string;
  }
}

/** The request's URL redacted, worked out once per request. */
export function redactedUrlOf(request: { url: string; redactedUrl?: string }): string {
  request.redactedUrl ??= redactUrl(request.url);
  return request.redactedUrl;
}
