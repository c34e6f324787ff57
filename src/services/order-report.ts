import { recordBytes } from '../domain/dataset-shape.js';
import { statusOf, type OrderFacts, type OrderStatus } from '../domain/order-lifecycle.js';
import { currentGeneration, slotCount, type Rounding } from '../domain/order-streams.js';
import { productionDone } from '../domain/stream-production.js';
import { deliveredCount, type PollMode, type StreamState } from '../domain/stream-state.js';
import { messageBytes } from '../formats/result-message.js';
import type { ResultQueueBound } from '../ports/order-queue.js';
import type { OrderSpec, StoredOrder } from '../ports/order-store.js';

/** The most samples one poll hands out. */
export const MAX_POLL = 4096;
/** What one order's result queues may hold in bytes, over all its ranks (SENSORY_ORDER_BUFFER_BYTES' default). */
export const ORDER_BUFFER_BYTES = 256 * 1024 * 1024;

export interface StreamReport {
  readonly rank: number;
  readonly mode: PollMode | 'none';
  /** Positions of the rank in the current generation. */
  readonly length: number;
  readonly produced: number;
  /** Committed (shared mode) or acknowledged (cursor mode). */
  readonly delivered: number;
  /** Cursor mode: the position every earlier one was acknowledged up to. */
  readonly acknowledged?: number;
}

/** An order as the services report it: its row's facts and what follows from them. */
export interface OrderReport {
  readonly spec: OrderSpec;
  readonly status: OrderStatus;
  /** Slots the order delivers in all (its size, rounded for its ranks, reshapes included). */
  readonly slots: number;
  readonly ranks: number;
  readonly generation: number;
  readonly rounding: Rounding;
  readonly shards: { readonly total: number; readonly done: number };
  readonly samples: { readonly produced: number; readonly delivered: number };
  readonly streams: readonly StreamReport[];
  readonly key: string | null;
  readonly ttlSeconds: number;
  readonly expiresAt: string;
  readonly error?: string;
}

function produced(state: StreamState): number {
  return productionDone(state) ? state.length : Math.min(state.produced, state.length);
}

export function orderFacts(stored: StoredOrder, now: number): OrderFacts {
  const { order, streams } = stored;
  const generation = order.plan.generations[currentGeneration(order.plan)];
  return {
    stored: order.status,
    expiresAt: Date.parse(order.expiresAt),
    now,
    deliveredBefore: generation.deliveredBefore,
    streams: streams.map((state) => ({ produced: produced(state), delivered: deliveredCount(state), length: state.length })),
  };
}

export function describeOrder(stored: StoredOrder, now: number): OrderReport {
  const { order, streams } = stored;
  const g = currentGeneration(order.plan);
  const generation = order.plan.generations[g];
  const shardSize = order.spec.shardSize;
  const perStream = generation.length / generation.ranks;
  const unitsPerStream = Math.ceil(perStream / shardSize);
  return {
    spec: order.spec,
    status: statusOf(orderFacts(stored, now)),
    slots: slotCount(order.plan),
    ranks: generation.ranks,
    generation: g,
    rounding: generation.rounding,
    shards: {
      total: generation.ranks * unitsPerStream,
      done: streams.reduce((sum, state) => sum + (produced(state) >= state.length ? unitsPerStream : Math.floor(produced(state) / shardSize)), 0),
    },
    samples: {
      produced: generation.deliveredBefore + streams.reduce((sum, state) => sum + produced(state), 0),
      delivered: generation.deliveredBefore + streams.reduce((sum, state) => sum + deliveredCount(state), 0),
    },
    streams: streams.map((state) => ({
      rank: state.stream,
      mode: state.mode ?? 'none',
      length: state.length,
      produced: produced(state),
      delivered: deliveredCount(state),
      ...(state.mode === 'cursor' ? { acknowledged: state.acked } : {}),
    })),
    key: order.key,
    ttlSeconds: order.ttlSeconds,
    expiresAt: order.expiresAt,
    ...(order.error ? { error: order.error } : {}),
  };
}

/** Messages a result queue holds beyond one full poll's. */
const QUEUE_MARGIN_MESSAGES = 8;

/**
 * What a stream's result queue holds: a full poll and a few messages more, in messages, and at
 * most its share of the order's buffer (`bufferBytes` / ranks), but always one message, so an
 * order's unpolled results stay within about `bufferBytes` whatever its records' size. A poll
 * wakes production as soon as it takes messages, so the queue fills again while the answer is
 * sent: what a stream holds at once is about the queue plus one answer. (Two full polls, as
 * before, held 360 MiB of 30 KB records at once for one rank: serve passed 512 MiB.)
 */
export function resultQueueBound(spec: Pick<OrderSpec, 'chunkSamples' | 'width' | 'height' | 'channels'>, ranks = 1, bufferBytes = ORDER_BUFFER_BYTES): ResultQueueBound {
  const maxMessages = Math.max(8, Math.ceil(MAX_POLL / spec.chunkSamples) + QUEUE_MARGIN_MESSAGES);
  const message = messageBytes(spec.chunkSamples, recordBytes(spec));
  return { maxMessages, maxBytes: Math.max(message, Math.min(maxMessages * message, Math.floor(bufferBytes / ranks))) };
}
