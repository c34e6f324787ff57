/**
 * An order's status as a function of the facts: what its row says (a final status once one was
 * reached), its expiry, and its current generation's streams. Pure: the services read the
 * facts, ask here, and write back only what changes.
 *
 *   queued    → running    the first result of one of its streams is produced
 *   queued, running → complete   every position of every stream is delivered
 *   queued, running → expired    read after expiresAt (the TTL after placement or the last delivery)
 *   queued, running → cancelled, failed   by a cancel, or a worker / the placement (with an error)
 * The final statuses never change.
 */

export const ORDER_STATUSES = ['queued', 'running', 'complete', 'failed', 'cancelled', 'expired'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export type FinalStatus = Exclude<OrderStatus, 'queued' | 'running'>;
export const ACTIVE_STATUSES: readonly OrderStatus[] = ['queued', 'running'];

export function isActive(status: OrderStatus): boolean {
  return status === 'queued' || status === 'running';
}

export interface StreamFacts {
  readonly produced: number;
  readonly delivered: number;
  readonly length: number;
}

export interface OrderFacts {
  /** The status column: active until a final status is written. */
  readonly stored: OrderStatus;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  readonly now: number;
  /** Slots delivered in generations before the current one. */
  readonly deliveredBefore: number;
  readonly streams: readonly StreamFacts[];
}

export function allDelivered(streams: readonly StreamFacts[]): boolean {
  return streams.every((stream) => stream.delivered >= stream.length);
}

/** The status the facts give. */
export function statusOf(facts: OrderFacts): OrderStatus {
  if (!isActive(facts.stored)) return facts.stored;
  if (allDelivered(facts.streams)) return 'complete';
  if (facts.now > facts.expiresAt) return 'expired';
  if (facts.deliveredBefore > 0 || facts.streams.some((stream) => stream.produced > 0 || stream.delivered > 0)) return 'running';
  return 'queued';
}

/** A final status the facts reached that the row does not say yet (to be written). */
export function dueFinalStatus(facts: OrderFacts): 'complete' | 'expired' | undefined {
  const status = statusOf(facts);
  return isActive(facts.stored) && (status === 'complete' || status === 'expired') ? status : undefined;
}

/** Only an active order moves, and only to a final status. */
export function canFinish(stored: OrderStatus): boolean {
  return isActive(stored);
}

/**
 * The expiry after a delivery at `now`, or undefined when the stored one is recent enough:
 * writing it on every delivery would make every poll of every rank write the order's row.
 * An order thus expires between 7/8 of its TTL and its TTL after its last delivery.
 */
export function extendedExpiry(expiresAt: number, now: number, ttlSeconds: number): number | undefined {
  const next = now + ttlSeconds * 1000;
  return next - expiresAt > (ttlSeconds * 1000) / 8 ? next : undefined;
}
