import { SensoryError } from '../domain/errors.js';
import type { Clock } from '../ports/clock.js';
import type { StreamRef } from '../ports/order-queue.js';

/** How long a waiting poll goes without looking again when nothing told it to (default). */
export const POLL_RECHECK_MS = 5000;
/** Polls that may wait at once, in all and per API key (defaults). */
export const MAX_WAITING_POLLS = 4096;
export const MAX_WAITING_POLLS_PER_KEY = 1024;

export interface WaitLimits {
  readonly recheckMs: number;
  readonly maxWaiting: number;
  readonly maxWaitingPerKey: number;
}

/** One poll's registration: armed before it looks at its queue, so a signal in between is not missed. */
export interface Watch {
  /** Forgets earlier signals: call before each look at the queue. */
  arm(): void;
  /**
   * Waits until the order is signalled (since arm()), `ms` pass, or the safety re-check is due.
   * The first wait takes a waiting place: 429 SENSORY_ERR_TOO_MANY_POLLS when none is left.
   */
  wait(ms: number): Promise<void>;
  /** Gives the waiting place back; safe twice. */
  close(): void;
}

interface Waiter {
  /** The stream the poll takes from: a signal of another stream of its order does not wake it. */
  readonly generation: number;
  readonly stream: number;
  fired: boolean;
  wake?: () => void;
}

/**
 * What waiting polls wait on: a signal per order (results published to one of its streams,
 * results handed back, its status changed), raised in this process or, through the queue, by
 * another (a worker's results, a replica's cancel). A waiting poll costs a timer and a set
 * entry; it looks again only when signalled, at its deadline, or at the safety re-check.
 */
export class OrderSignals {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly perKey = new Map<string, number>();
  private waiting = 0;
  private listening = false;

  constructor(
    private readonly clock: Clock,
    private readonly limits: WaitLimits,
    /** Subscribes to signals from elsewhere (the queue); called once, at the first watch. */
    private readonly listen: (signal: (orderId: string, stream?: StreamRef) => void) => void = () => undefined,
  ) {}

  /**
   * Wakes the polls waiting on one stream of the order (results for it), or on every stream
   * (the order changed): a result wakes only the polls that can take it, not all the order's.
   */
  signal(orderId: string, stream?: StreamRef): void {
    const set = this.waiters.get(orderId);
    if (!set) return;
    for (const waiter of set) {
      if (stream && (stream.generation !== waiter.generation || stream.stream !== waiter.stream)) continue;
      waiter.fired = true;
      waiter.wake?.();
    }
  }

  /** Polls waiting now (in all, or of one key). */
  count(owner?: string): number {
    return owner === undefined ? this.waiting : (this.perKey.get(owner) ?? 0);
  }

  watch(ref: StreamRef, owner: string): Watch {
    const { orderId } = ref;
    if (!this.listening) {
      this.listening = true;
      this.listen((id, stream) => this.signal(id, stream));
    }
    const waiter: Waiter = { generation: ref.generation, stream: ref.stream, fired: false };
    let set = this.waiters.get(orderId);
    if (!set) this.waiters.set(orderId, (set = new Set()));
    set.add(waiter);
    let admitted = false;
    let closed = false;
    return {
      arm: () => {
        waiter.fired = false;
      },
      wait: async (ms) => {
        if (!admitted) {
          this.admit(owner);
          admitted = true;
        }
        if (waiter.fired || ms <= 0) return;
        const controller = new AbortController();
        waiter.wake = () => controller.abort();
        try {
          await this.clock.sleep(Math.min(ms, this.limits.recheckMs), controller.signal);
        } finally {
          waiter.wake = undefined;
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(orderId) === set) this.waiters.delete(orderId);
        if (admitted) {
          this.waiting--;
          const left = (this.perKey.get(owner) ?? 1) - 1;
          if (left > 0) this.perKey.set(owner, left);
          else this.perKey.delete(owner);
        }
      },
    };
  }

  private admit(owner: string): void {
    const { maxWaiting, maxWaitingPerKey } = this.limits;
    const mine = this.perKey.get(owner) ?? 0;
    if (mine >= maxWaitingPerKey) {
      throw new SensoryError('SENSORY_ERR_TOO_MANY_POLLS', `this API key has ${mine} polls waiting already, the most SENSORY_MAX_WAITING_POLLS_PER_KEY allows: retry after a moment, or poll with a shorter waitMs`, { waiting: mine, max: maxWaitingPerKey });
    }
    if (this.waiting >= maxWaiting) {
      throw new SensoryError('SENSORY_ERR_TOO_MANY_POLLS', `${this.waiting} polls are waiting already, the most SENSORY_MAX_WAITING_POLLS allows: retry after a moment`, { waiting: this.waiting, max: maxWaiting });
    }
    this.waiting++;
    this.perKey.set(owner, mine + 1);
  }
}
