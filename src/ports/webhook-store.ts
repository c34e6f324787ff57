import type { Delivery, DeliveryStatus, Webhook, WebhookEvent } from '../domain/webhook.js';

export interface NewEvent {
  readonly event: WebhookEvent;
  readonly eventKey: string;
  /** Builds the body for a delivery id (each delivery has its own id in its body). */
  readonly body: (deliveryId: string) => string;
  readonly createdAt: string;
  readonly now: number;
}

export interface AttemptOutcome {
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly deliveredAt: string | null;
}

/**
 * Webhooks and their outbox of deliveries, as rows: deliveries are written durably when an event
 * happens and sent later by a dispatcher, so nothing waits on a receiver. Durable on return. The
 * contract suite in test/webhook-store.contract.test.ts runs on every backend.
 */
export interface WebhookStore {
  createHook(hook: Webhook): Promise<void>;
  getHook(id: string): Promise<Webhook | undefined>;
  /** Oldest first. */
  listHooks(): Promise<Webhook[]>;
  /** Removes the hook and its deliveries; true when there was one. */
  deleteHook(id: string): Promise<boolean>;
  /**
   * One pending delivery per hook subscribed to the event, due now; a hook that has a delivery
   * with this event key already gets none (replicas and restarts may report an event twice).
   * Returns how many were added.
   */
  enqueue(event: NewEvent): Promise<number>;
  /** Takes up to `limit` pending deliveries due at `now`, moving their next attempt to now + leaseMs (others skip them meanwhile). */
  claimDue(now: number, leaseMs: number, limit: number): Promise<Delivery[]>;
  /** Records an attempt's outcome. */
  recordAttempt(id: string, outcome: AttemptOutcome): Promise<void>;
  /** A hook's deliveries, newest first. */
  listDeliveries(hookId: string, limit: number): Promise<Delivery[]>;
  /** How many deliveries (of every hook) are in each status (statuses without one are absent). */
  countDeliveriesByStatus(): Promise<Map<DeliveryStatus, number>>;
  /**
   * The dataset.revision cursor: moves the dataset's notified revision from `from` (undefined: it
   * has none yet) to `to`; true for the one caller that moved it.
   */
  advanceRevisionCursor(datasetId: number, from: number | undefined, to: number): Promise<boolean>;
  /** Every dataset's notified revision. */
  revisionCursors(): Promise<Map<number, number>>;
}
