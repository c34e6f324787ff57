import { randomBytes, randomUUID } from 'node:crypto';
import { SensoryError } from '../domain/errors.js';
import { WEBHOOK_EVENTS, eventBody, webhookUrlProblem, type Delivery, type Webhook, type WebhookEvent } from '../domain/webhook.js';
import type { Clock } from '../ports/clock.js';
import type { WebhookStore } from '../ports/webhook-store.js';

/** Hooks one service keeps at most: each event is written once per subscribed hook. */
export const MAX_WEBHOOKS = 100;
export const MAX_DELIVERIES_LISTED = 1000;

/**
 * Webhooks (admin): created with a secret shown once, listed, removed; and the events the rest of
 * the service reports, written into the outbox (one durable row per subscribed hook). Reporting
 * an event is a database write, never a network call: a receiver that is slow or gone cannot
 * slow an upload, an order or an export.
 */
export class WebhookService {
  constructor(
    private readonly store: WebhookStore,
    private readonly clock: Clock,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  async create(request: { url: string; events: readonly string[] }): Promise<Webhook> {
    const problem = webhookUrlProblem(request.url);
    if (problem) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', problem, { field: 'url' });
    const unknown = request.events.find((event) => !(WEBHOOK_EVENTS as readonly string[]).includes(event));
    if (unknown !== undefined) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `events: unknown event ${JSON.stringify(unknown).slice(0, 80)}; known: ${WEBHOOK_EVENTS.join(', ')}`);
    if ((await this.store.listHooks()).length >= MAX_WEBHOOKS) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `at most ${MAX_WEBHOOKS} webhooks: remove one first`);
    }
    const hook: Webhook = {
      id: randomUUID(),
      url: request.url,
      events: [...new Set(request.events as WebhookEvent[])],
      secret: `whsec_${randomBytes(32).toString('base64url')}`,
      createdAt: new Date(this.clock.now()).toISOString(),
    };
    await this.store.createHook(hook);
    return hook;
  }

  async get(id: string): Promise<Webhook> {
    const hook = await this.store.getHook(id);
    if (!hook) throw new SensoryError('SENSORY_ERR_WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    return hook;
  }

  list(): Promise<Webhook[]> {
    return this.store.listHooks();
  }

  async remove(id: string): Promise<Webhook> {
    const hook = await this.get(id);
    await this.store.deleteHook(id);
    return hook;
  }

  async deliveries(id: string, limit: number): Promise<Delivery[]> {
    await this.get(id);
    return this.store.listDeliveries(id, limit);
  }

  /** Writes the event for every subscribed hook; `key` makes it unique (a second report adds nothing). */
  async emit(event: WebhookEvent, key: string, data: Record<string, unknown>): Promise<number> {
    const now = this.clock.now();
    const createdAt = new Date(now).toISOString();
    return this.store.enqueue({ event, eventKey: `${event}:${key}`, body: (id) => eventBody(id, event, createdAt, data), createdAt, now });
  }

  /** emit() that never throws nor makes its caller wait: for the code paths that report events. */
  report(event: WebhookEvent, key: string, data: Record<string, unknown>): void {
    this.emit(event, key, data).catch((error: Error) => this.log(`webhook event ${event} ${key} was not written: ${error.message}`));
  }
}
