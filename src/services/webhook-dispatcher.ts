import { retryDelayMs, signatureHeader, SIGNATURE_HEADER, type Delivery } from '../domain/webhook.js';
import type { Clock } from '../ports/clock.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { WebhookStore } from '../ports/webhook-store.js';
import type { WebhookService } from './webhook.service.js';

export interface DispatcherSettings {
  /** An attempt that has no answer by then fails (and is retried). */
  readonly timeoutMs: number;
  /** Attempts before a delivery is given up (status failed). */
  readonly maxAttempts: number;
  /** First retry delay; it doubles with each failed attempt, up to an hour. */
  readonly retryBaseMs: number;
  /** dataset.revision: at most one event per dataset this often, with its newest revision. */
  readonly debounceMs: number;
  /** Deliveries in flight at once. */
  readonly concurrency: number;
}

/** What an attempt sends besides the body: the hook's secret and URL. */
interface Target {
  readonly url: string;
  readonly secret: string;
}

const IDLE_POLL_MS = 250;

/**
 * Sends the outbox: takes due deliveries (a lease on each, so replicas do not send one twice at
 * once), POSTs each signed body with a timeout, and records the outcome: 2xx delivered; anything
 * else retried after base × 2^(attempts − 1), until maxAttempts. Redirects are not followed.
 * It also turns dataset revisions into dataset.revision events, at most one per dataset per
 * debounce interval. Runs in `sensory serve` (every replica); nothing else waits on it.
 */
export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private revisionTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private pumping = false;
  /** Per dataset: the revision at the previous look, and how many looks it has been waiting. */
  private readonly seen = new Map<number, number>();
  private readonly looks = new Map<number, number>();

  constructor(
    private readonly store: WebhookStore,
    private readonly hooks: WebhookService,
    private readonly metadata: MetadataStore,
    private readonly clock: Clock,
    private readonly settings: DispatcherSettings,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.pump(), IDLE_POLL_MS);
    this.timer.unref();
    this.revisionTimer = setInterval(() => void this.revisions().catch((error: Error) => this.log(`dataset.revision events: ${error.message}`)), this.settings.debounceMs);
    this.revisionTimer.unref();
  }

  /** Stops taking deliveries and waits for those in flight (each ends within the timeout). Safe twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.revisionTimer) clearInterval(this.revisionTimer);
    await Promise.allSettled([...this.inFlight]);
  }

  /** Takes due deliveries while there is room; never throws. */
  async pump(): Promise<void> {
    if (this.pumping || this.stopping) return;
    this.pumping = true;
    try {
      const room = this.settings.concurrency - this.inFlight.size;
      if (room <= 0) return;
      // Held for the timeout and a margin: a replica that dies mid-attempt gives it back then.
      const due = await this.store.claimDue(this.clock.now(), this.settings.timeoutMs + 5000, room);
      const targets = new Map<string, Target | undefined>();
      for (const delivery of due) {
        if (!targets.has(delivery.hookId)) targets.set(delivery.hookId, await this.store.getHook(delivery.hookId));
        const attempt = this.attempt(delivery, targets.get(delivery.hookId)).finally(() => {
          this.inFlight.delete(attempt);
          if (!this.stopping) void this.pump();
        });
        this.inFlight.add(attempt);
      }
    } catch (error) {
      this.log(`webhook dispatch: ${(error as Error).message}`);
    } finally {
      this.pumping = false;
    }
  }

  private async attempt(delivery: Delivery, target: Target | undefined): Promise<void> {
    if (!target) return; // the hook was removed (its deliveries with it)
    const attempts = delivery.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const timestamp = Math.floor(this.clock.now() / 1000);
      const response = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Sensory-Webhook/1',
          [SIGNATURE_HEADER]: signatureHeader(target.secret, timestamp, delivery.body),
          'sensory-event': delivery.event,
          'sensory-delivery': delivery.id,
          'sensory-webhook': delivery.hookId,
        },
        body: delivery.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      status = response.status;
      await response.body?.cancel().catch(() => undefined);
      if (status < 200 || status > 299) error = `answered ${status}`;
    } catch (failure) {
      const cause = (failure as { cause?: { code?: string; message?: string } }).cause;
      error = (failure as Error).name === 'TimeoutError' ? `no answer within ${this.settings.timeoutMs} ms` : `${cause?.code ?? (failure as Error).message}`;
    }
    const now = this.clock.now();
    const delivered = error === null;
    const givenUp = !delivered && attempts >= this.settings.maxAttempts;
    await this.store
      .recordAttempt(delivery.id, {
        status: delivered ? 'delivered' : givenUp ? 'failed' : 'pending',
        attempts,
        nextAt: delivered || givenUp ? now : now + retryDelayMs(attempts, this.settings.retryBaseMs),
        lastStatus: status,
        lastError: error,
        deliveredAt: delivered ? new Date(now).toISOString() : null,
      })
      .catch((failure: Error) => this.log(`webhook delivery ${delivery.id}: its outcome was not recorded (${failure.message}); it is sent again`));
  }

  /**
   * One dataset.revision event per dataset whose revision moved since it was last notified. The
   * cursor moves by compare-and-set, so of several replicas one writes the event.
   */
  async revisions(): Promise<void> {
    if (this.stopping) return;
    const datasets = await this.metadata.listDatasets();
    const cursors = await this.store.revisionCursors();
    for (const dataset of datasets) {
      const last = cursors.get(dataset.id);
      if (last === dataset.revision) {
        this.looks.delete(dataset.id);
        continue;
      }
      // Debounced: wait until the revision held still for one interval, or for three intervals
      // while it keeps moving (a steady stream of uploads still gets an event now and then).
      const before = this.seen.get(dataset.id);
      this.seen.set(dataset.id, dataset.revision);
      const looks = (this.looks.get(dataset.id) ?? 0) + 1;
      this.looks.set(dataset.id, looks);
      if (before !== dataset.revision && looks < 3) continue;
      this.looks.delete(dataset.id);
      if (await this.store.advanceRevisionCursor(dataset.id, last, dataset.revision)) {
        await this.hooks.emit('dataset.revision', `${dataset.id}:${dataset.revision}`, {
          dataset: dataset.name,
          revision: dataset.revision,
          previousRevision: last ?? null,
          sampleCount: dataset.sampleCount,
        });
      }
    }
  }
}
