import { SensoryError } from '../domain/errors.js';
import { allDelivered, dueFinalStatus, extendedExpiry, isActive, type FinalStatus, type OrderStatus } from '../domain/order-lifecycle.js';
import { currentGeneration, reshapePlan, streamLength, type Rounding } from '../domain/order-streams.js';
import { expireLeases } from '../domain/stream-ledger.js';
import { isDelivered, liveLeases, newStream, undeliveredRanges, type StreamState } from '../domain/stream-state.js';
import type { Clock } from '../ports/clock.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue } from '../ports/order-queue.js';
import type { OrderRow, OrderStore, StoredOrder } from '../ports/order-store.js';
import type { BatchService } from './batch.service.js';
import { pollCursor } from './cursor-poll.js';
import type { PollRequest, PollResult, PollerDeps } from './order-poll.js';
import { pollShared } from './shared-poll.js';
import { MAX_POLL, describeOrder, orderFacts, type OrderReport } from './order-report.js';
import { MAX_WAITING_POLLS, MAX_WAITING_POLLS_PER_KEY, OrderSignals, POLL_RECHECK_MS } from './order-signals.js';
import { StreamQueues } from './stream-queues.js';
import { canonicalRequest, checkOrder, orderSpec, type Caller, type OrderRequest, type OrderSettings } from './order-placement.js';

export { MAX_POLL };
export type { PollRequest, PollResult };
export const MAX_WAIT_MS = 20_000;
/** How long a poll holds the samples it is sending before another poll may send them (default). */
export const LEASE_MS = 120_000;
/** Active orders one API key may have (default). */
export const MAX_ACTIVE_ORDERS_PER_KEY = 16;

export type { Caller, OrderRequest, OrderSettings };

/**
 * Batch orders: placement (limits, idempotent keys, owners), status, cancel, TTL, reshape, and
 * polls in both modes. The rules are the domain's (order-streams, stream-ledger,
 * stream-production, order-lifecycle); this reads and writes rows and queues around them.
 */
export class OrderService {
  /** Told of every order that reached a final status (once, by the process that wrote it). */
  onFinished: ((order: OrderRow) => void) | undefined;
  private readonly streams: StreamQueues;
  private readonly pollers: PollerDeps;
  private readonly signals: OrderSignals;

  constructor(
    private readonly orders: OrderStore,
    private readonly queue: OrderQueue,
    private readonly batches: BatchService,
    private readonly metadata: MetadataStore,
    private readonly settings: OrderSettings,
    private readonly clock: Clock,
  ) {
    this.streams = new StreamQueues(orders, queue, clock, settings.bufferBytes);
    this.signals = new OrderSignals(
      clock,
      {
        recheckMs: settings.pollRecheckMs ?? POLL_RECHECK_MS,
        maxWaiting: settings.maxWaitingPolls ?? MAX_WAITING_POLLS,
        maxWaitingPerKey: settings.maxWaitingPollsPerKey ?? MAX_WAITING_POLLS_PER_KEY,
      },
      (signal) => queue.onSignal(signal),
    );
    this.pollers = {
      orders,
      queue,
      streams: this.streams,
      clock,
      leaseMs: settings.leaseMs ?? LEASE_MS,
      host: { reload: (id) => this.load(id), afterDelivery: (stored, state) => this.afterDelivery(stored, state) },
    };
  }

  /** Places an order; `created` is false when its key named an existing one. Nothing is stored when it cannot be served. */
  async place(datasetName: string, request: OrderRequest, caller: Caller): Promise<{ order: OrderReport; created: boolean }> {
    const { plan, shardSize } = checkOrder(request, this.settings);
    const canonical = canonicalRequest(datasetName, request, shardSize);
    if (request.key !== undefined) {
      const existing = await this.orders.findByKey(caller.owner, request.key);
      if (existing) return { order: this.sameRequest(existing, canonical), created: false };
    }
    await this.checkActiveOrders(caller);
    const selection = await this.batches.select(datasetName, request);
    if (selection.eligible.length === 0) {
      throw new SensoryError('SENSORY_ERR_NOT_ENOUGH_SAMPLES', `size ${request.size} is above the 0 eligible samples`, { size: request.size, eligible: 0 });
    }
    await this.queue.ping();
    const order: OrderRow = {
      spec: orderSpec(selection, request, shardSize, this.clock.now()),
      owner: caller.owner,
      key: request.key ?? null,
      request: canonical,
      plan,
      status: 'queued',
      ttlSeconds: this.settings.ttlSeconds,
      expiresAt: this.expiry(this.settings.ttlSeconds),
    };
    const streams = Array.from({ length: plan.generations[0].ranks }, (_, stream) => newStream(0, stream, streamLength(plan, 0)));
    if ((await this.orders.insert(order, streams, { durable: true })) === 'key-taken') {
      return { order: this.sameRequest((await this.orders.findByKey(caller.owner, request.key!))!, canonical), created: false };
    }
    try {
      await this.streams.start(order);
    } catch (error) {
      await this.finish(order.spec.id, 'failed', `its tasks could not be queued: ${(error as Error).message}`);
      throw error instanceof SensoryError ? error : new SensoryError('SENSORY_ERR_UNAVAILABLE', `the queue refused the order: ${(error as Error).message}`);
    }
    return { order: describeOrder({ order, streams }, this.clock.now()), created: true };
  }

  /**
   * 429 when the key has SENSORY_MAX_ACTIVE_ORDERS_PER_KEY active orders: those whose rows say
   * active, brought up to date first (an expired or completed one is finished now, and frees its
   * place). Concurrent placements of one key may pass it by the few that race.
   */
  private async checkActiveOrders(caller: Caller): Promise<void> {
    const max = this.settings.maxActiveOrdersPerKey ?? MAX_ACTIVE_ORDERS_PER_KEY;
    const candidates = await this.orders.list({ owner: caller.owner, activeOnly: true, limit: max });
    if (candidates.length < max) return;
    const now = this.clock.now();
    const active = (await Promise.all(candidates.map((one) => this.refresh(one)))).filter((one) => isActive(describeOrder(one, now).status));
    if (active.length >= max) {
      throw new SensoryError(
        'SENSORY_ERR_TOO_MANY_ORDERS',
        `this API key has ${active.length} active orders, the most SENSORY_MAX_ACTIVE_ORDERS_PER_KEY allows: cancel one (DELETE /v1/orders/{id}) or wait until one is complete or expired`,
        { active: active.length, max },
      );
    }
  }

  private sameRequest(existing: StoredOrder, canonical: string): OrderReport {
    if (existing.order.request !== canonical) {
      throw new SensoryError('SENSORY_ERR_ORDER_KEY_CONFLICT', `key ${existing.order.key} names order ${existing.order.spec.id}, placed with another request`, { id: existing.order.spec.id });
    }
    return describeOrder(existing, this.clock.now());
  }

  /** The order as it stands (expired, completed or failed first when its facts say so). */
  async get(id: string): Promise<OrderReport> {
    return describeOrder(await this.load(id, { checkDataset: true }), this.clock.now());
  }

  /** The caller's newest orders (every order for an admin key), each brought up to date as get() does. */
  async list(caller: Caller, activeOnly: boolean, limit = 100): Promise<OrderReport[]> {
    const stored = await this.orders.list({ owner: caller.admin ? undefined : caller.owner, activeOnly, limit });
    const reports = await Promise.all(stored.map(async (one) => describeOrder(await this.refresh(one, { checkDataset: true }), this.clock.now())));
    return activeOnly ? reports.filter((report) => isActive(report.status)) : reports;
  }

  async cancel(id: string, caller: Caller): Promise<OrderReport> {
    await this.owned(id, caller);
    await this.finish(id, 'cancelled');
    return this.get(id);
  }

  /** Fails an active order (its dataset is gone, say) and removes its results. */
  async fail(id: string, reason: string): Promise<void> {
    await this.finish(id, 'failed', reason);
  }

  /** Sets the order's idle TTL and moves its expiry to that long from now. */
  async extend(id: string, caller: Caller, ttlSeconds: number): Promise<OrderReport> {
    const max = this.settings.maxTtlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > max) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `ttlSeconds must be a whole number from 1 to ${max} (SENSORY_ORDER_MAX_TTL_SECONDS); got ${ttlSeconds}`, { field: 'ttlSeconds' });
    }
    await this.owned(id, caller, { active: true });
    await this.orders.updateOrder(id, ({ order }) => {
      if (!isActive(order.status)) throw finished(order);
      return { order: { ...order, ttlSeconds, expiresAt: this.expiry(ttlSeconds) }, result: undefined };
    }, { durable: true });
    return this.get(id);
  }

  /** Deals the undelivered samples again over `ranks` ranks (a new generation). */
  async reshape(id: string, caller: Caller, request: { ranks: number; rounding?: Rounding }): Promise<OrderReport> {
    if (request.ranks > this.settings.maxRanks) {
      throw new SensoryError('SENSORY_ERR_TOO_MANY_RANKS', `an order may have at most ${this.settings.maxRanks} ranks (SENSORY_MAX_ORDER_RANKS); asked ${request.ranks}`);
    }
    await this.owned(id, caller, { active: true });
    await this.queue.ping();
    const now = this.clock.now();
    const reshaped = (await this.orders.updateOrder(id, ({ order, streams }) => {
      if (!isActive(order.status)) throw finished(order);
      const busy = streams.find((state) => liveLeases(state, now).length > 0);
      if (busy) {
        throw new SensoryError('SENSORY_ERR_ORDER_BUSY', `polls without a cursor are sending samples of rank ${busy.stream}: reshape once they finish (at most SENSORY_ORDER_LEASE_MS)`);
      }
      const plan = reshapePlan(order.plan, streams.map((state) => undeliveredRanges(expireLeases(state, now))), request.ranks, request.rounding ?? 'exact');
      const g = currentGeneration(plan);
      const next = Array.from({ length: request.ranks }, (_, stream) => newStream(g, stream, streamLength(plan, g)));
      const closed = streams.map((state): StreamState => ({ ...state, closed: true, producer: null, parked: false }));
      return { order: { ...order, plan }, streams: [...closed, ...next], result: { before: order, after: { ...order, plan } } };
    }, { durable: true }))!;
    await this.streams.remove(reshaped.before);
    await this.streams.start(reshaped.after).catch(() => undefined); // a poll recovers what this could not start
    await this.announce(id);
    return this.get(id);
  }

  async poll(id: string, caller: Caller, request: PollRequest): Promise<PollResult> {
    const stored = await this.owned(id, caller);
    const g = currentGeneration(stored.order.plan);
    const ranks = stored.order.plan.generations[g].ranks;
    const rank = request.rank ?? 0;
    if (rank >= ranks) {
      throw new SensoryError('SENSORY_ERR_RANK_OUT_OF_RANGE', `rank ${rank} does not exist: order ${id} has ${ranks} rank(s) (0 … ${ranks - 1}) in its generation ${g}`, { ranks, generation: g });
    }
    const max = request.max ?? MAX_POLL;
    const waitMs = request.waitMs ?? 0;
    const ref = { orderId: id, generation: g, stream: rank };
    if (request.cursor === undefined) {
      if (request.ack !== undefined || request.resume !== undefined) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'ack and resume go with a cursor: send cursor too', { field: 'cursor' });
      if (max === 0) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'max 0 is for a final acknowledgement: send cursor and ack with it', { field: 'max' });
    }
    const watch = this.signals.watch(ref, caller.owner);
    try {
      const waiting = { waitMs, watch };
      return request.cursor !== undefined ? await pollCursor(this.pollers, stored, ref, request, max, waiting) : await pollShared(this.pollers, stored, ref, max, waiting);
    } finally {
      watch.close();
    }
  }

  /** Polls waiting now: in all, or of one API key. */
  waitingPolls(owner?: string): number {
    return this.signals.count(owner);
  }

  /** The order, with the transitions its facts call for written first; 404 when there is none. */
  private async load(id: string, options: { checkDataset?: boolean } = {}): Promise<StoredOrder> {
    const stored = await this.orders.get(id);
    if (!stored) throw new SensoryError('SENSORY_ERR_ORDER_NOT_FOUND', `there is no order ${id}`);
    return this.refresh(stored, options);
  }

  /** The order after the caller's ownership is checked (and, with `active`, that it is still active). */
  private async owned(id: string, caller: Caller, options: { active?: boolean } = {}): Promise<StoredOrder> {
    const stored = await this.load(id);
    if (!caller.admin && stored.order.owner !== caller.owner) {
      throw new SensoryError('SENSORY_ERR_NOT_ORDER_OWNER', `order ${id} was placed with another API key: only that key or an admin key may act on it`);
    }
    if (options.active && !isActive(stored.order.status)) throw finished(stored.order);
    return stored;
  }

  private async refresh(stored: StoredOrder, options: { checkDataset?: boolean } = {}): Promise<StoredOrder> {
    const id = stored.order.spec.id;
    const due = dueFinalStatus(orderFacts(stored, this.clock.now()));
    if (due === 'complete') await this.finish(id, 'complete');
    else if (due === 'expired') await this.finish(id, 'expired', `no sample was delivered for ${stored.order.ttlSeconds} s`);
    else if (options.checkDataset && isActive(stored.order.status)) {
      const dataset = await this.metadata.getDataset(stored.order.spec.datasetName);
      if (!dataset || dataset.id !== stored.order.spec.datasetId) await this.fail(id, `dataset ${stored.order.spec.datasetName} was deleted`);
      else return stored;
    } else return stored;
    return (await this.orders.get(id))!;
  }

  /**
   * Moves an active order to a final status (re-checked on the locked rows: 'complete' only when
   * every stream is delivered) and removes its result queues.
   */
  private async finish(id: string, status: FinalStatus, error?: string): Promise<boolean> {
    const finishedOrder = await this.orders.updateOrder(id, (stored) => {
      const { order } = stored;
      if (!isActive(order.status)) return { result: undefined };
      if (status === 'complete' && !allDelivered(orderFacts(stored, this.clock.now()).streams)) return { result: undefined };
      const next: OrderRow = { ...order, status, ...(error ? { error } : {}) };
      return { order: next, result: next };
    }, { durable: true });
    if (finishedOrder) {
      try {
        this.onFinished?.(finishedOrder);
      } catch {
        // a listener's failure is its own
      }
      await this.streams.remove(finishedOrder);
      await this.announce(id);
    }
    return finishedOrder !== undefined;
  }

  private async afterDelivery(stored: StoredOrder, state: StreamState): Promise<OrderStatus> {
    const { order } = stored;
    const completed = isDelivered(state) && (await this.finish(order.spec.id, 'complete'));
    const now = this.clock.now();
    const extended = extendedExpiry(Date.parse(order.expiresAt), now, order.ttlSeconds);
    if (!completed && extended !== undefined) {
      await this.orders.updateOrder(order.spec.id, ({ order: current }) =>
        isActive(current.status) ? { order: { ...current, expiresAt: new Date(extended).toISOString() }, result: undefined } : { result: undefined },
      );
    }
    if (completed) return 'complete';
    return isActive(order.status) ? 'running' : order.status;
  }

  /** Wakes the order's waiting polls, here and (through the queue) in other processes. */
  private async announce(id: string): Promise<void> {
    this.signals.signal(id);
    await this.queue.signal(id).catch(() => undefined);
  }

  private expiry(ttlSeconds: number): string {
    return new Date(this.clock.now() + ttlSeconds * 1000).toISOString();
  }
}

function finished(order: OrderRow): SensoryError {
  return new SensoryError('SENSORY_ERR_ORDER_FINISHED', `order ${order.spec.id} is ${order.status}: only an active order can change`, { status: order.status });
}
