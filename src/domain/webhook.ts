import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhooks: the events, the URL rule, the signature and the retry schedule. Plain functions
 * (HMAC from node:crypto is computation, not I/O); the dispatcher does the sending.
 */
export const WEBHOOK_EVENTS = ['dataset.revision', 'order.completed', 'order.failed', 'export.completed', 'export.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`. */
export const SIGNATURE_HEADER = 'sensory-signature';
/** A receiver should refuse signatures older (or newer) than this: a replayed delivery is then refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export interface Webhook {
  readonly id: string;
  readonly url: string;
  readonly events: readonly WebhookEvent[];
  /** The signing secret: shown once, when the hook is created. */
  readonly secret: string;
  readonly createdAt: string;
}

export interface Delivery {
  readonly id: string;
  readonly hookId: string;
  readonly event: WebhookEvent;
  /** What makes the event unique (e.g. the order id): one delivery per hook and key. */
  readonly eventKey: string;
  /** The JSON body sent, exactly. */
  readonly body: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** When the next attempt is due (epoch ms); while an attempt runs, when it may be taken again. */
  readonly nextAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly deliveredAt: string | null;
}

/** Why a hook URL is refused, or undefined when it is fine: http(s) only, no credentials, no fragment. */
export function webhookUrlProblem(raw: string): string | undefined {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `url must be http:// or https://, not ${url.protocol}//`;
  if (url.username || url.password) return 'url must not carry credentials (user:password@): put a token in the path or query, or verify the signature';
  if (url.hash) return 'url must not have a #fragment';
  return undefined;
}

/** The signature header's value for a body sent at `timestampSeconds`. */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  const digest = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${digest}`;
}

/**
 * What a receiver does with the header (the README shows the same in a few lines): true when it
 * was made with `secret` for this exact body, at most `toleranceSeconds` from `nowSeconds`.
 */
export function verifySignature(secret: string, header: string, body: string, nowSeconds: number, toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS): boolean {
  const parts = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const expected = Buffer.from(signatureHeader(secret, t, body).split('v1=')[1], 'hex');
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

/** Delay before attempt `attempt + 1` (attempt ≥ 1 failed ones): base × 2^(attempt − 1), at most an hour. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(3_600_000, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

/** The body of an event: `{id, type, createdAt, data}`. */
export function eventBody(id: string, type: WebhookEvent, createdAt: string, data: Record<string, unknown>): string {
  return JSON.stringify({ id, type, createdAt, data });
}
