import { randomUUID } from 'node:crypto';
import { isActive } from '../domain/order-lifecycle.js';
import { claimMessages, commit, release } from '../domain/stream-ledger.js';
import { deliveredCount, enterMode, lowestUndelivered } from '../domain/stream-state.js';
import { sliceResultMessage, type ResultMessage } from '../formats/result-message.js';
import type { ReceivedResult, StreamRef } from '../ports/order-queue.js';
import type { StoredOrder } from '../ports/order-store.js';
import { decoded, gatherTimer, pollResult, TAKE_BATCH, type PollResult, type PollerDeps, type Waiting } from './order-poll.js';
import { describeOrder } from './order-report.js';

/** A poll without a cursor: shared by whoever polls the rank; delivered once written whole. */
export async function pollShared(deps: PollerDeps, start: StoredOrder, ref: StreamRef, max: number, { waitMs, watch }: Waiting): Promise<PollResult> {
  const { orders, queue, streams, clock, leaseMs, host } = deps;
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
  const gathered = gatherTimer(clock);
  const deadline = clock.now() + waitMs;
  while (isActive(describeOrder(stored, clock.now()).status) && !state.closed && count < max) {
    // Whole messages only (one split message at most, when max is below a message): a message
    // put back by a requeue does not count against the queue's bound, so fewer go back.
    const whole = Math.floor((max - count) / chunkSamples);
    if (whole === 0 && count > 0) break;
    watch.arm();
    const messages = await queue.takeResults(ref, Math.max(1, Math.min(whole, TAKE_BATCH)));
    if (messages.length === 0) {
      state = (await orders.stream(ref)) ?? state;
      await streams.wake(ref, state);
      if (!checked) {
        checked = true;
        await streams.recoverIfLost(stored.order, ref, lowestUndelivered);
      }
      if (count > 0 || state.closed || clock.now() >= deadline) break;
      try {
        await watch.wait(deadline - clock.now());
      } catch (error) {
        // Refused a waiting place (429): it took nothing, and what it holds for others goes back.
        for (const message of handBack) message.requeue();
        throw error;
      }
      stored = await host.reload(ref.orderId);
      continue;
    }
    tookAny = true;
    const chunks = messages.map(decoded);
    const usable = messages.filter((_, i) => chunks[i]);
    const ranges = chunks.filter((chunk): chunk is ResultMessage => chunk !== undefined);
    const now = clock.now();
    // What this poll claimed in its earlier takes: a copy of it in this take is not sent twice.
    const sendingRanges = taken.flatMap((t) => t.ranges);
    const claimed = (await orders.updateStream(ref, (current) => {
      const outcome = claimMessages(current, pollId, ranges, max - count, now + leaseMs + waitMs, now, sendingRanges);
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
    if (gathered(count)) break;
  }
  for (const message of handBack) message.requeue();
  if (tookAny && state.parked) await streams.wake(ref, state);
  const remaining = Math.max(0, state.length - deliveredCount(state) - count);
  const report = describeOrder(stored, clock.now());
  const othersDone = stored.streams.every((other) => other.stream === ref.stream || deliveredCount(other) >= other.length);
  return pollResult(stored, ref, {
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
  }, clock.now());
}
