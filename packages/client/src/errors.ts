import type { ErrorCode } from './types.js';

/**
 * An error answer of the service: its HTTP status, its SENSORY_ERR_* code, its message and the
 * request id to quote when reporting it (every response carries one).
 */
export class SensoryApiError extends Error {
  readonly status: number;
  /** A SENSORY_ERR_* code; SENSORY_ERR_UNKNOWN when the body was not the service's error shape (a proxy's page, say). */
  readonly code: ErrorCode | 'SENSORY_ERR_UNKNOWN';
  readonly requestId?: string;
  /** The answer's Retry-After, when it gave one (a 503 may). */
  readonly retryAfterMs?: number;

  constructor(status: number, code: ErrorCode | 'SENSORY_ERR_UNKNOWN', message: string, requestId?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'SensoryApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The service could not be reached, or the connection broke before a whole answer arrived (after the retries). */
export class SensoryConnectionError extends Error {
  /** The system error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT…) or SENSORY_CONNECTION_ABORTED. */
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SensoryConnectionError';
    this.code = code;
  }
}

/** An order ended (failed, cancelled, expired) before every sample was delivered. */
export class SensoryOrderEndedError extends Error {
  readonly orderId: string;
  readonly status: string;
  readonly remaining: number;

  constructor(orderId: string, status: string, remaining: number, reason?: string) {
    super(`order ${orderId} is ${status} with ${remaining} sample(s) undelivered${reason ? `: ${reason}` : ''}`);
    this.name = 'SensoryOrderEndedError';
    this.orderId = orderId;
    this.status = status;
    this.remaining = remaining;
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'SENSORY_CONNECTION_ABORTED']);

/** Refusals for load that took nothing: the service says when to come back (Retry-After). */
const RETRY_LATER_CODES = new Set(['SENSORY_ERR_TOO_MANY_POLLS']);

/** Worth another try: the connection failed or broke, the service answered 5xx, or asked to come back later. */
export function isTransient(error: unknown): boolean {
  if (error instanceof SensoryApiError) return error.status >= 500 || RETRY_LATER_CODES.has(error.code);
  if (error instanceof SensoryConnectionError) return TRANSIENT_CODES.has(error.code);
  return false;
}
