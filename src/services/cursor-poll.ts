import { SensoryError } from '../domain/errors.js';
import { isActive } from '../domain/order-lifecycle.js';
import { decodeCursor, encodeCursor } from '../domain/order-cursor.js';
import { cursorPoll } from '../domain/stream-ledger.js';
import { deliveredCount } from '../domain/stream-state.js';
import { sliceResultMessage, type ResultMessage } from '../formats/result-message.js';
import type { ReceivedResult, StreamRef } from '../ports/order-queue.js';
import type { StoredOrder } from '../ports/order-store.js';
import { decoded, gatherTimer, pollResult, TAKE_BATCH, type PollRequest, type PollResult, type PollerDeps, type Waiting } from './order-poll.js';
import { describeOrder } from './order-report.js';

/** The answer of a poll of a finished order: nothing more will come. */
async function finished(deps: PollerDeps, stored: StoredOrder, ref: StreamRef, cursor: number | 'start'): Promise<PollResult> {
  const state = (await deps.orders.stream(ref))!;
  const position = cursor === 'start' ? (state.mode === 'cursor' ? state.acked : state.length) : cursor;
  const status = describeOrder(stored, deps.clock.now()).status;
  return pollResult(stored, ref, {
    parts: [],
    remaining: status === 'complete' ? 0 : Math.max(0, state.length - deliveredCount(state)),
    done: true,
    status,
    cursor: encodeCursor({ orderId: ref.orderId, generation: ref.generation, stream: ref.stream, position: Math.min(position, state.length) }),
    settle: async () => undefined,
  }, deps.clock.now());
}

/** A poll with a cursor: one consumer per rank, retried polls give the same samples, acks deliver. */
export async function pollCursor(deps: PollerDeps, start: StoredOrder, ref: StreamRef, request: PollRequest, max: number, { waitMs, watch }: Waiting): Promise<PollResult> {
  const { orders, queue, streams, clock, host } = deps;
  let stored = start;
  const expected = { orderId: ref.orderId, generation: ref.generation, stream: ref.stream };
  const cursor = request.cursor === 'start' ? 'start' : decodeCursor('cursor', request.cursor!, expected);
  const ack = request.ack === undefined ? undefined : decodeCursor('ack', request.ack, expected);
  if (!isActive(describeOrder(stored, clock.now()).status)) return finished(deps, stored, ref, cursor);
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
  const gathered = gatherTimer(clock);
  const deadline = clock.now() + waitMs;
  while (isActive(status) && !state.closed && count < max && position < state.length) {
    watch.arm();
    const messages = await queue.takeResults(ref, Math.max(1, Math.min(TAKE_BATCH, Math.floor((max - count) / stored.order.spec.chunkSamples))));
    if (messages.length === 0) {
      state = (await orders.stream(ref)) ?? state;
      await streams.wake(ref, state);
      if (!checked) {
        checked = true;
        const from = position;
        if (await streams.recoverIfLost(stored.order, ref, () => from)) state = (await orders.stream(ref)) ?? state;
        // The cursor's samples were produced and taken by earlier answers (a resume to a
        // checkpoint, or a retry of a lost last answer): nothing would bring them again.
        else if (state.produced > from) state = (await streams.reset(ref, () => from)) ?? state;
      }
      if (count > 0 || state.closed || clock.now() >= deadline) break;
      await watch.wait(deadline - clock.now());
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
    if (gathered(count)) break;
  }
  if (tookAny && state.parked) await streams.wake(ref, state);
  return pollResult(stored, ref, {
    parts,
    remaining: Math.max(0, state.length - position),
    done: !state.closed && (position >= state.length || !isActive(status)),
    status,
    cursor: encodeCursor({ ...expected, position }),
    settle: async (sent) => {
      for (const { message, whole } of sending) (sent && whole ? message.ack() : message.requeue());
    },
  }, clock.now());
}
