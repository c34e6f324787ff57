import type { BatchPlan } from '../domain/batch-plan.js';
import type { OrderStatus } from '../domain/order-lifecycle.js';
import type { StreamState } from '../domain/stream-state.js';
import type { PixelViews, Render } from '../formats/encoded-batch.js';
import { decodeResultMessage, type ResultMessage } from '../formats/result-message.js';
import { borrowedView } from '../lib/chunk-pool.js';
import type { Clock } from '../ports/clock.js';
import type { OrderQueue, ReceivedResult, StreamRef } from '../ports/order-queue.js';
import type { OrderStore, StoredOrder } from '../ports/order-store.js';
import { describeOrder, type OrderReport } from './order-report.js';
import type { Watch } from './order-signals.js';
import type { StreamQueues } from './stream-queues.js';

export interface PollRequest {
  /** The stream (rank) polled; 0 by default. */
  readonly rank?: number;
  readonly max?: number;
  readonly waitMs?: number;
  /** Cursor mode: "start", or the cursor of an earlier answer. */
  readonly cursor?: string;
  /** Cursor mode: acknowledges every sample before this cursor. */
  readonly ack?: string;
  /** Cursor mode: a cursor behind the acknowledged position takes back everything after it. */
  readonly resume?: boolean;
}

/** What a poll hands out; `settle` must be called once the response was sent whole, or was not. */
export interface PollResult {
  readonly order: OrderReport;
  /** The samples to send, as a plan whose pixels `render` copies from the result messages. */
  readonly plan: BatchPlan;
  readonly render: Render;
  /** The same pixels as views of the result messages, for an answer that sends them as they are. */
  readonly views: PixelViews;
  readonly slots: readonly number[];
  readonly epochs: readonly number[];
  readonly count: number;
  readonly rank: number;
  readonly generation: number;
  /** Cursor mode: the cursor to send next (and to acknowledge these samples with). */
  readonly cursor?: string;
  /** Positions of the rank still to come after these. */
  readonly remaining: number;
  /** No more samples will come for this rank. */
  readonly done: boolean;
  /** The order's status once this answer is sent. */
  readonly status: OrderStatus;
  settle(sent: boolean): Promise<void>;
}

/** What the poller needs of the order service. */
export interface PollHost {
  /** The order read again, with the transitions its facts call for. */
  reload(id: string): Promise<StoredOrder>;
  /** After positions of a stream were delivered: completes the order when it is, extends its expiry. Its status after. */
  afterDelivery(stored: StoredOrder, state: StreamState): Promise<OrderStatus>;
}

export interface PollerDeps {
  readonly orders: OrderStore;
  readonly queue: OrderQueue;
  readonly streams: StreamQueues;
  readonly clock: Clock;
  readonly leaseMs: number;
  readonly host: PollHost;
}

/**
 * A poll holding samples keeps taking what the queue has for at most this long, then answers:
 * results that keep coming as fast as they are taken do not hold the first ones back until
 * `max` (the trainer gets its first samples early, and polls overlap production).
 */
export const POLL_GATHER_MS = 100;
/** Messages a poll takes at once, so that POLL_GATHER_MS is looked at between takes. */
export const TAKE_BATCH = 8;

/**
 * A poll's gathering clock: asked after each take with the samples the poll holds so far, it
 * says whether POLL_GATHER_MS have passed since the poll first held any (time to answer).
 */
export function gatherTimer(clock: Clock): (count: number) => boolean {
  let firstAt: number | undefined;
  return (count) => {
    if (count === 0) return false;
    const now = clock.now();
    firstAt ??= now;
    return now - firstAt >= POLL_GATHER_MS;
  };
}

/** How a poll waits for something to send: `watch` wakes it (see OrderSignals). */
export interface Waiting {
  readonly waitMs: number;
  readonly watch: Watch;
}

/** The answer's samples as a batch plan, rendered from the messages' bytes (no joined copy). */
export function pollPlan(report: OrderReport, parts: readonly ResultMessage[]): { plan: BatchPlan; render: Render; views: PixelViews } {
  const { spec } = report;
  const plan: BatchPlan = {
    dataset: { id: spec.datasetId, name: spec.datasetName, width: spec.width, height: spec.height, channels: spec.channels },
    revision: spec.revision,
    seed: spec.seed,
    samples: parts.flatMap((part) => part.ids.map((id, i) => ({ id, categoryIndex: part.labels[i], pixelSlot: -1 }))),
    augments: parts.flatMap((part) => part.augments),
    categories: spec.categories,
    dtype: spec.dtype,
    labels: spec.labels,
    ...(spec.labelDtype ? { labelDtype: spec.labelDtype } : {}),
    ...(spec.layout ? { layout: spec.layout } : {}),
  };
  const render: Render = async (start, count, target) => {
    let skip = start;
    let written = 0;
    for (const part of parts) {
      const records = part.slots.length;
      if (skip >= records) {
        skip -= records;
        continue;
      }
      const take = Math.min(records - skip, count - written);
      target.set(part.pixels.subarray(skip * part.recordBytes, (skip + take) * part.recordBytes), written * part.recordBytes);
      written += take;
      skip = 0;
      if (written === count) break;
    }
  };
  // The messages' own bytes: the queue gives their buffers back once they are acknowledged (after
  // the answer was sent), so the answer must not give them back itself.
  const views: PixelViews = () => parts.filter((part) => part.pixels.length > 0).map((part) => borrowedView(part.pixels.subarray()));
  return { plan, render, views };
}

/** A taken message decoded, or undefined (and dropped) when it is not one this release reads. */
export function decoded(message: ReceivedResult): ResultMessage | undefined {
  try {
    return decodeResultMessage(message.body);
  } catch {
    // Not a result of this release (an older layout): it cannot be served; production makes it again.
    message.ack();
    return undefined;
  }
}

/** What a poll found, before it is presented. */
export interface Answer {
  readonly parts: readonly ResultMessage[];
  readonly remaining: number;
  readonly done: boolean;
  readonly status: OrderStatus;
  readonly cursor?: string;
  readonly settle: (sent: boolean) => Promise<void>;
}

/** The poll's result: the order's report, the samples as a plan, and the answer's fields. */
export function pollResult(stored: StoredOrder, ref: StreamRef, answer: Answer, now: number): PollResult {
  const order = describeOrder(stored, now);
  const { plan, render, views } = pollPlan(order, answer.parts);
  return {
    order,
    plan,
    render,
    views,
    slots: answer.parts.flatMap((part) => part.slots),
    epochs: answer.parts.flatMap((part) => part.epochs),
    count: plan.samples.length,
    rank: ref.stream,
    generation: ref.generation,
    ...(answer.cursor !== undefined ? { cursor: answer.cursor } : {}),
    remaining: answer.remaining,
    done: answer.done,
    status: answer.status,
    settle: answer.settle,
  };
}
