import { randomUUID } from 'node:crypto';
import type { BatchPlan } from '../domain/batch-plan.js';
import { SensoryError } from '../domain/errors.js';
import { isActive, type OrderStatus } from '../domain/order-lifecycle.js';
import { decodeCursor, encodeCursor } from '../domain/order-cursor.js';
import { claimMessages, commit, cursorPoll, release } from '../domain/stream-ledger.js';
import { deliveredCount, enterMode, lowestUndelivered, type StreamState } from '../domain/stream-state.js';
import type { Render } from '../formats/encoded-batch.js';
import { decodeResultMessage, sliceResultMessage, type ResultMessage } from '../formats/result-message.js';
import type { Clock } from '../ports/clock.js';
import type { OrderQueue, ReceivedResult, StreamRef } from '../ports/order-queue.js';
import type { OrderStore, StoredOrder } from '../ports/order-store.js';
import { describeOrder, type OrderReport } from './order-report.js';
import type { StreamQueues } from './stream-queues.js';

/** How long a waiting poll sleeps between looks at an empty queue. */
const EMPTY_WAIT_MS = 15;

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

/** The answer's samples as a batch plan, rendered from the messages' bytes (no joined copy). */
function pollPlan(report: OrderReport, parts: readonly ResultMessage[]): { plan: BatchPlan; render: Render } {
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
  return { plan, render };
}

function decoded(message: ReceivedResult): ResultMessage | undefined {
  try {
    return decodeResultMessage(message.body);
  } catch {
    // Not a result of this release (an older layout): it cannot be served; production makes it again.
    message.ack();
    return undefined;
  }
}

interface Answer {
  readonly parts: readonly ResultMessage[];
  readonly remaining: number;
  readonly done: boolean;
  readonly status: OrderStatus;
  readonly cursor?: string;
  readonly settle: (sent: boolean) => Promise<void>;
}

/**
 * Polls of one stream, in either mode (see domain/stream-ledger.ts). Results are taken from the
 * stream's queue; what a poll sends is settled on the queue only after its answer was written.
 */
export class OrderPoller {
  constructor(private readonly deps: PollerDeps) {}

  private result(stored: StoredOrder, ref: StreamRef, answer: Answer): PollResult {
    const order = describeOrder(stored, this.deps.clock.now());
    const { plan, render } = pollPlan(order, answer.parts);
    return {
      order,
      plan,
      render,
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

  /** A poll without a cursor: shared by whoever polls the rank; delivered once written whole. */
  async shared(start: StoredOrder, ref: StreamRef, max: number, waitMs: number): Promise<PollResult> {
    const { orders, queue, streams, clock, leaseMs, host } = this.deps;
    let stored = start;
    // A finished order answers done, whatever its streams were polled like.
    let state = !isActive(describeOrder(stored, clock.now()).status)
      ? await orders.stream(ref)
      : await orders.updateStream(ref, (current) => {
          const next = enterMode(current, 'shared');
          return { state: next === current ? undefined : next, result: next };
        });
    if (!state) throw new Error(`order ${ref.orderId} has no stream ${ref.generation}/${ref.stream}`);
    const pollId = randomUUID();
    const chunkSamples = stored.order.spec.chunkSamples;
    const taken: { message: ReceivedResult; whole: boolean; parts: ResultMessage[]; ranges: { from: number; to: number }[] }[] = [];
    const handBack: ReceivedResult[] = [];
    let count = 0;
    let checked = false;
    let tookAny = false;
    const deadline = clock.now() + waitMs;
    while (isActive(describeOrder(stored, clock.now()).status) && !state.closed && count < max) {
      // Whole messages only (one split message at most, when max is below a message): a message
      // put back by a requeue does not count against the queue's bound, so fewer go back.
      const whole = Math.floor((max - count) / chunkSamples);
      if (whole === 0 && count > 0) break;
      const messages = await queue.takeResults(ref, Math.max(1, whole));
      if (messages.length === 0) {
        state = (await orders.stream(ref)) ?? state;
        await streams.wake(ref, state);
        if (!checked) {
          checked = true;
          await streams.recoverIfLost(stored.order, ref, lowestUndelivered);
        }
        if (count > 0 || clock.now() >= deadline) break;
        await clock.sleep(EMPTY_WAIT_MS);
        stored = await host.reload(ref.orderId);
        continue;
      }
      tookAny = true;
      const chunks = messages.map(decoded);
      const usable = messages.filter((_, i) => chunks[i]);
      const ranges = chunks.filter((chunk): chunk is ResultMessage => chunk !== undefined);
      const now = clock.now();
      const claimed = (await orders.updateStream(ref, (current) => {
        const outcome = claimMessages(current, pollId, ranges, max - count, now + leaseMs + waitMs, now);
        return { state: outcome.state, result: outcome };
      }))!;
      state = claimed.state;
      claimed.outcomes.forEach((outcome, i) => {
        if (outcome.kind === 'delivered') usable[i].ack();
        else if (outcome.kind === 'claimed') {
          taken.push({ message: usable[i], whole: outcome.whole, ranges: [...outcome.ranges], parts: outcome.ranges.map((range) => sliceResultMessage(ranges[i], range)) });
        } else handBack.push(usable[i]);
      });
      count += claimed.count;
      if (handBack.length > 0 && taken.length === 0 && clock.now() >= deadline) break;
    }
    for (const message of handBack) message.requeue();
    if (tookAny && state.parked) await streams.wake(ref, state);
    const remaining = Math.max(0, state.length - deliveredCount(state) - count);
    const report = describeOrder(stored, clock.now());
    const othersDone = stored.streams.every((other) => other.stream === ref.stream || deliveredCount(other) >= other.length);
    return this.result(stored, ref, {
      parts: taken.flatMap((t) => t.parts),
      remaining,
      done: !state.closed && (remaining === 0 || !isActive(report.status)),
      // This answer delivers the last samples: the order is complete once it is sent.
      status: count > 0 && remaining === 0 && othersDone && isActive(report.status) ? 'complete' : report.status,
      settle: async (sent) => {
        if (taken.length === 0) return;
        if (!sent) {
          await orders.updateStream(ref, (current) => ({ state: release(current, pollId), result: undefined }));
          for (const { message } of taken) message.requeue();
          return;
        }
        const sentRanges = taken.flatMap((t) => t.ranges);
        const after = await orders.updateStream(ref, (current) => {
          const committed = commit(current, pollId, sentRanges);
          return { state: committed.state, result: committed.state };
        }, { durable: true });
        // A message partly delivered goes back whole: its delivered positions are dropped next time.
        for (const { message, whole } of taken) (whole ? message.ack() : message.requeue());
        if (after) await host.afterDelivery(stored, after);
      },
    });
  }

  /** The answer of a poll of a finished order: nothing more will come. */
  private async finished(stored: StoredOrder, ref: StreamRef, cursor: number | 'start'): Promise<PollResult> {
    const state = (await this.deps.orders.stream(ref))!;
    const position = cursor === 'start' ? (state.mode === 'cursor' ? state.acked : state.length) : cursor;
    const status = describeOrder(stored, this.deps.clock.now()).status;
    return this.result(stored, ref, {
      parts: [],
      remaining: status === 'complete' ? 0 : Math.max(0, state.length - deliveredCount(state)),
      done: true,
      status,
      cursor: encodeCursor({ orderId: ref.orderId, generation: ref.generation, stream: ref.stream, position: Math.min(position, state.length) }),
      settle: async () => undefined,
    });
  }

  /** A poll with a cursor: one consumer per rank, retried polls give the same samples, acks deliver. */
  async cursor(start: StoredOrder, ref: StreamRef, request: PollRequest, max: number, waitMs: number): Promise<PollResult> {
    const { orders, queue, streams, clock, host } = this.deps;
    let stored = start;
    const expected = { orderId: ref.orderId, generation: ref.generation, stream: ref.stream };
    const cursor = request.cursor === 'start' ? 'start' : decodeCursor('cursor', request.cursor!, expected);
    const ack = request.ack === undefined ? undefined : decodeCursor('ack', request.ack, expected);
    if (!isActive(describeOrder(stored, clock.now()).status)) return this.finished(stored, ref, cursor);
    const applied = (await orders.updateStream(
      ref,
      (current) => {
        if (current.closed) {
          throw new SensoryError('SENSORY_ERR_CURSOR_CONFLICT', `order ${ref.orderId} was reshaped while this poll came: poll the new generation with cursor "start"`);
        }
        const outcome = cursorPoll(current, { cursor, ack, resume: request.resume });
        const changed = outcome.state.mode !== current.mode || outcome.state.acked !== current.acked;
        return { state: changed ? outcome.state : undefined, result: outcome };
      },
      { durable: ack !== undefined },
    ))!;
    let state = applied.state;
    let status = describeOrder(stored, clock.now()).status;
    if (applied.newlyAcked > 0) status = await host.afterDelivery(stored, state);
    let position = applied.position;
    const sending: { message: ReceivedResult; whole: boolean }[] = [];
    const parts: ResultMessage[] = [];
    let count = 0;
    let checked = false;
    let tookAny = false;
    const deadline = clock.now() + waitMs;
    while (isActive(status) && !state.closed && count < max && position < state.length) {
      const messages = await queue.takeResults(ref, Math.max(1, Math.floor((max - count) / stored.order.spec.chunkSamples)));
      if (messages.length === 0) {
        state = (await orders.stream(ref)) ?? state;
        await streams.wake(ref, state);
        if (!checked) {
          checked = true;
          const from = position;
          if (await streams.recoverIfLost(stored.order, ref, () => from)) state = (await orders.stream(ref)) ?? state;
        }
        if (count > 0 || clock.now() >= deadline) break;
        await clock.sleep(EMPTY_WAIT_MS);
        stored = await host.reload(ref.orderId);
        status = describeOrder(stored, clock.now()).status;
        continue;
      }
      tookAny = true;
      let gap = false;
      for (const message of messages) {
        if (gap) {
          message.ack();
          continue;
        }
        if (count >= max) {
          message.requeue();
          continue;
        }
        const chunk = decoded(message);
        if (!chunk) continue;
        // Stale (an earlier run), or wholly before the cursor (sent and received already): dropped.
        if (chunk.run < state.run || chunk.to <= position) {
          message.ack();
          continue;
        }
        if (chunk.from > position) {
          // The queue's head is past the cursor (the client never got an answer that was sent):
          // production starts over at the cursor; what the queue holds now is stale.
          message.ack();
          gap = true;
          const from = position;
          state = (await streams.reset(ref, () => from)) ?? state;
          continue;
        }
        const end = Math.min(chunk.to, position + (max - count));
        parts.push(sliceResultMessage(chunk, { from: position, to: end }));
        sending.push({ message, whole: end === chunk.to });
        count += end - position;
        position = end;
      }
      if (gap && count > 0) break;
    }
    if (tookAny && state.parked) await streams.wake(ref, state);
    return this.result(stored, ref, {
      parts,
      remaining: Math.max(0, state.length - position),
      done: !state.closed && (position >= state.length || !isActive(status)),
      status,
      cursor: encodeCursor({ ...expected, position }),
      settle: async (sent) => {
        for (const { message, whole } of sending) (sent && whole ? message.ack() : message.requeue());
      },
    });
  }
}
