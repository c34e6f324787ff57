import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Verifies a webhook delivery from Sensory: `header` is the `Sensory-Signature` header
 * (`t=<unix seconds>,v1=<hex>`), `body` the raw request body as received (before any JSON
 * parsing), `secret` the hook's secret (shown once, when the hook was created). True when the
 * body was signed with that secret less than `toleranceSeconds` (default 300) from now: an
 * older delivery replayed by someone who captured it is refused.
 */
export function verifyWebhookSignature(secret: string, header: string, body: string | Buffer, toleranceSeconds = 300, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const fields = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const t = Number(fields.get('t'));
  const v1 = fields.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}
