import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SensoryError } from '../../src/domain/errors.js';
import { firstPositions, intersectRanges, normalizeRanges, rangeSize, subtractRanges } from '../../src/domain/position-ranges.js';
import { claim, claimMessages, commit, cursorPoll, expireLeases, release, type ClaimOutcome } from '../../src/domain/stream-ledger.js';
import {
  deliveredCount,
  enterMode,
  isDelivered,
  liveLeases,
  lowestUndelivered,
  newStream,
  undeliveredRanges,
  undeliveredRunFrom,
  type StreamState,
} from '../../src/domain/stream-state.js';

const r = (from: number, to: number) => ({ from, to });
const NOW = 1_000_000;
const LEASE = NOW + 60_000;

function expectError(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SensoryError, String(error));
    assert.equal(error.code, code);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

/** Claims several messages in turn by one poll, as a poll does with what it took. */
function claimAll(state: StreamState, poll: string, messages: [number, number][], now = NOW, until = LEASE, limit = Infinity): { state: StreamState; outcomes: ClaimOutcome[] } {
  const outcomes: ClaimOutcome[] = [];
  for (const [from, to] of messages) {
    const result = claim(state, poll, r(from, to), limit, until, now);
    state = result.state;
    outcomes.push(result.outcome);
  }
  return { state, outcomes };
}

const claimed = (...ranges: [number, number][]) => ({ kind: 'claimed', ranges: ranges.map(([from, to]) => r(from, to)), whole: true });

/** A shared stream of `length` in which exactly `delivered` were delivered (by an earlier poll). */
function withDelivered(length: number, delivered: number[]): StreamState {
  const frontier = delivered.length === 0 ? 0 : Math.max(...delivered) + 1;
  const returned = normalizeRanges(
    Array.from({ length: frontier }, (_, p) => p)
      .filter((p) => !delivered.includes(p))
      .map((p) => r(p, p + 1)),
  );
  return { ...newStream(0, 0, length), mode: 'shared', frontier, returned };
}

describe('position ranges', () => {
  it('normalize, intersect, subtract, first positions, size', () => {
    assert.deepEqual(normalizeRanges([r(5, 7), r(0, 2), r(2, 3), r(6, 9), r(4, 4)]), [r(0, 3), r(5, 9)]);
    assert.deepEqual(intersectRanges([r(0, 3), r(5, 9)], r(2, 6)), [r(2, 3), r(5, 6)]);
    assert.deepEqual(subtractRanges([r(0, 10)], [r(2, 3), r(5, 7), r(9, 12)]), [r(0, 2), r(3, 5), r(7, 9)]);
    assert.deepEqual(subtractRanges([r(0, 3)], [r(0, 3)]), []);
    assert.deepEqual(firstPositions([r(5, 7), r(0, 2)], 3), [r(0, 2), r(5, 6)]);
    assert.deepEqual(firstPositions([r(0, 2)], 0), []);
    assert.equal(rangeSize([r(0, 2), r(5, 9)]), 6);
  });
});

describe('stream ledger: shared mode', () => {
  it('a new stream has nothing delivered and everything undelivered; the first claim fixes shared mode', () => {
    const state = newStream(2, 1, 10);
    assert.equal(deliveredCount(state), 0);
    assert.deepEqual(undeliveredRanges(state), [r(0, 10)]);
    assert.equal(state.mode, null);
    const { state: after } = claim(state, 'p', r(0, 3), 10, LEASE, NOW);
    assert.equal(after.mode, 'shared');
    expectError(() => cursorPoll(after, { cursor: 'start' }), 'SENSORY_ERR_POLL_MODE_CONFLICT', /without cursors/);
  });

  it('claimed with the open positions, delivered when all are delivered', () => {
    const { outcomes } = claimAll(withDelivered(10, [0, 1, 3]), 'poll-a', [[0, 2], [2, 5], [3, 4], [5, 7]]);
    assert.deepEqual(outcomes, [{ kind: 'delivered' }, claimed([2, 3], [4, 5]), { kind: 'delivered' }, claimed([5, 7])]);
  });

  it('busy while another poll holds a live lease on an overlapping range; the holder itself is not blocked', () => {
    let state = newStream(0, 0, 20);
    ({ state } = claimAll(state, 'poll-a', [[4, 7]]));
    const b = claimAll(state, 'poll-b', [[6, 8], [2, 4], [0, 10], [5, 6], [7, 9]], NOW + 1);
    assert.deepEqual(b.outcomes, [{ kind: 'busy' }, claimed([2, 4]), { kind: 'busy' }, { kind: 'busy' }, claimed([7, 9])]);
    // b holds 2..3 and 7..8: a is blocked there, but not on its own range.
    const a = claimAll(b.state, 'poll-a', [[4, 7], [3, 4], [8, 10]], NOW + 2);
    assert.deepEqual(a.outcomes, [claimed([4, 7]), { kind: 'busy' }, { kind: 'busy' }]);
    // Adjacent ranges do not overlap.
    const c = claimAll(a.state, 'poll-c', [[1, 2], [9, 10]], NOW + 3);
    assert.deepEqual(c.outcomes, [claimed([1, 2]), claimed([9, 10])]);
  });

  it('an expired lease no longer blocks: its positions are owed again', () => {
    let state = newStream(0, 0, 10);
    ({ state } = claimAll(state, 'poll-a', [[0, 3]], NOW, NOW + 1000));
    assert.deepEqual(claimAll(state, 'poll-b', [[1, 2]], NOW + 999).outcomes, [{ kind: 'busy' }]);
    const b = claimAll(state, 'poll-b', [[1, 2]], NOW + 1000, NOW + 5000);
    assert.deepEqual(b.outcomes, [claimed([1, 2])]);
    // b's lease is live now, and a's expired one is gone: a is the one blocked.
    assert.deepEqual(claimAll(b.state, 'poll-a', [[0, 3]], NOW + 1001).outcomes, [{ kind: 'busy' }]);
    assert.deepEqual(claimAll(b.state, 'poll-a', [[0, 1]], NOW + 1001).outcomes, [claimed([0, 1])]);
    assert.deepEqual(expireLeases(b.state, NOW + 5000).returned, [r(0, 3)]);
    assert.deepEqual(liveLeases(b.state, NOW + 1001).map((l) => l.poll), ['poll-b']);
  });

  it('commit counts only new positions, ends the poll\'s leases and completes exactly at the length', () => {
    let state = newStream(0, 0, 6);
    ({ state } = claimAll(state, 'poll-a', [[0, 3], [3, 5]]));
    assert.deepEqual(claimAll(state, 'poll-b', [[4, 5]]).outcomes, [{ kind: 'busy' }]);
    let added: number;
    ({ state, added } = commit(state, 'poll-a', [r(0, 3), r(2, 3), r(3, 4)]));
    assert.equal(added, 4);
    assert.equal(deliveredCount(state), 4);
    // a's lease on 4 ended with the commit, though 4 was not sent: it is owed again.
    const b = claimAll(state, 'poll-b', [[3, 5]]);
    assert.deepEqual(b.outcomes, [claimed([4, 5])]);
    state = b.state;
    ({ state, added } = commit(state, 'poll-b', [r(1, 4)]));
    assert.equal(added, 0, 'delivered positions count once');
    assert.equal(deliveredCount(state), 4);
    ({ state, added } = commit(state, 'poll-b', [r(4, 5)]));
    assert.equal(added, 1, 'sent after its lease ended, and nobody took it since: delivered');
    assert.equal(isDelivered(state), false, 'one short of the length is not complete');
    ({ state } = claimAll(state, 'poll-c', [[5, 6]]));
    ({ state, added } = commit(state, 'poll-c', [r(5, 6), r(4, 5)]));
    assert.equal(added, 1);
    assert.equal(deliveredCount(state), 6);
    assert.equal(isDelivered(state), true);
    assert.deepEqual(claimAll(state, 'poll-d', [[0, 5], [3, 4]]).outcomes, [{ kind: 'delivered' }, { kind: 'delivered' }]);
    ({ state, added } = commit(state, 'poll-c', [r(5, 6)]));
    assert.equal(added, 0);
    assert.equal(deliveredCount(state), 6);
  });

  it('a late commit does not count positions another poll leased meanwhile', () => {
    let state = newStream(0, 0, 10);
    ({ state } = claimAll(state, 'slow', [[0, 4]], NOW, NOW + 10));
    ({ state } = claimAll(state, 'fast', [[0, 2]], NOW + 20));
    const { state: after, added } = commit(state, 'slow', [r(0, 4)]);
    assert.equal(added, 2, 'only 2 and 3, which nobody else holds');
    assert.deepEqual(after.leases.map((l) => [l.poll, l.from, l.to]), [['fast', 0, 2]]);
  });

  it('release drops only that poll\'s leases; releasing delivers nothing', () => {
    let state = newStream(0, 0, 10);
    ({ state } = claimAll(state, 'poll-a', [[0, 2]]));
    ({ state } = claimAll(state, 'poll-c', [[5, 7]]));
    assert.deepEqual(claimAll(state, 'poll-b', [[1, 2], [6, 7]]).outcomes, [{ kind: 'busy' }, { kind: 'busy' }]);
    state = release(state, 'poll-a');
    assert.deepEqual(claimAll(state, 'poll-b', [[1, 2], [6, 7]]).outcomes, [claimed([1, 2]), { kind: 'busy' }]);
    assert.equal(deliveredCount(state), 0);
    assert.equal(release(state, 'poll-nobody'), state);
  });

  it('a message past the frontier leaves the gap owed; a limit splits a message and leases only its first positions', () => {
    let state = newStream(0, 0, 100);
    const first = claim(state, 'p', r(10, 20), 3, LEASE, NOW);
    assert.deepEqual(first.outcome, { kind: 'claimed', ranges: [r(10, 13)], whole: false });
    state = first.state;
    assert.equal(state.frontier, 13);
    assert.deepEqual(state.returned, [r(0, 10)], 'positions 0 … 9 were handed to nobody: still owed');
    assert.deepEqual(undeliveredRanges(state), [r(0, 100)]);
    ({ state } = commit(state, 'p', [r(10, 13)]));
    assert.equal(deliveredCount(state), 3);
    assert.equal(lowestUndelivered(state), 0);
    // The rest of the message, handed back and taken again: its first part is dropped as delivered.
    const again = claim(state, 'q', r(10, 20), 100, LEASE, NOW);
    assert.deepEqual(again.outcome, { kind: 'claimed', ranges: [r(13, 20)], whole: true });
    assert.deepEqual(undeliveredRunFrom(again.state, 5), r(5, 10));
    assert.deepEqual(undeliveredRunFrom(again.state, 10), r(13, 100));
  });

  it('positions beyond the length are ignored; a message wholly outside is a copy to drop', () => {
    const state = newStream(0, 0, 5);
    assert.deepEqual(claim(state, 'p', r(3, 9), 10, LEASE, NOW).outcome, claimed([3, 5]));
    assert.deepEqual(claim(state, 'p', r(5, 9), 10, LEASE, NOW).outcome, { kind: 'delivered' });
  });

  it('positions far into a long stream are claimed and delivered like the first ones', () => {
    let state = newStream(0, 0, 300_000);
    ({ state } = claimAll(state, 'a', [[65_535, 65_537], [131_072, 300_000]]));
    assert.deepEqual(claimAll(state, 'b', [[200_000, 200_001]]).outcomes, [{ kind: 'busy' }], 'inside 131,072 … 299,999');
    ({ state } = commit(state, 'a', [r(65_535, 65_537), r(131_072, 131_073), r(299_999, 300_000)]));
    assert.equal(deliveredCount(state), 4);
    assert.ok(state.returned.length <= 3, 'a few ranges, not a bitmap');
    assert.deepEqual(undeliveredRunFrom(state, 65_536), r(65_537, 131_072));
    assert.deepEqual(claimAll(state, 'b', [[65_536, 65_537], [200_000, 200_001]]).outcomes, [{ kind: 'delivered' }, claimed([200_000, 200_001])]);
    // Deliver everything, in one claim and one commit.
    ({ state } = claimAll(state, 'c', [[0, 300_000]]));
    ({ state } = commit(state, 'c', [r(0, 300_000)]));
    assert.equal(deliveredCount(state), 300_000);
    assert.deepEqual(undeliveredRanges(state), []);
  });
});

describe('stream ledger: cursor mode', () => {
  it('"start" is the acknowledged position; a poll fixes cursor mode; the other mode is refused after', () => {
    const { state, position } = cursorPoll(newStream(0, 3, 10), { cursor: 'start' });
    assert.equal(position, 0);
    assert.equal(state.mode, 'cursor');
    expectError(() => claim(state, 'p', r(0, 1), 1, LEASE, NOW), 'SENSORY_ERR_POLL_MODE_CONFLICT', /rank 3 is polled with cursors/);
    assert.equal(enterMode(state, 'cursor'), state);
  });

  it('ack acknowledges every position before it, only ever rising; delivered counts what was acknowledged', () => {
    let state = newStream(0, 0, 10);
    ({ state } = cursorPoll(state, { cursor: 4 }));
    assert.equal(deliveredCount(state), 0, 'sent is not delivered');
    let newlyAcked: number;
    ({ state, newlyAcked } = cursorPoll(state, { cursor: 6, ack: 4 }));
    assert.equal(newlyAcked, 4);
    assert.equal(deliveredCount(state), 4);
    ({ state, newlyAcked } = cursorPoll(state, { cursor: 6, ack: 2 }));
    assert.equal(newlyAcked, 0);
    assert.equal(state.acked, 4, 'an older ack moves nothing back');
    assert.equal(cursorPoll(state, { cursor: 'start' }).position, 4);
    ({ state } = cursorPoll(state, { cursor: 10, ack: 10 }));
    assert.equal(isDelivered(state), true);
    assert.deepEqual(undeliveredRanges(state), []);
  });

  it('the same poll twice gives the same position: retries are idempotent', () => {
    let state = newStream(0, 0, 10);
    ({ state } = cursorPoll(state, { cursor: 3, ack: 3 }));
    const once = cursorPoll(state, { cursor: 3, ack: 3 });
    const twice = cursorPoll(once.state, { cursor: 3, ack: 3 });
    assert.deepEqual([once.position, twice.position, twice.state.acked], [3, 3, 3]);
  });

  it('a cursor behind the acknowledged position is refused unless resume, which rolls the position back', () => {
    let state = newStream(0, 0, 10);
    ({ state } = cursorPoll(state, { cursor: 7, ack: 7 }));
    expectError(() => cursorPoll(state, { cursor: 5 }), 'SENSORY_ERR_CURSOR_CONFLICT', /behind .*position 7.*resume/);
    const resumed = cursorPoll(state, { cursor: 5, resume: true });
    assert.equal(resumed.position, 5);
    assert.equal(resumed.state.acked, 5);
    assert.equal(deliveredCount(resumed.state), 5, 'delivered now agrees with the checkpoint');
    assert.equal(cursorPoll(state, { cursor: 8, resume: true }).state.acked, 7, 'resume ahead of the position moves nothing');
  });

  it('ack past the cursor, or a cursor outside the stream, is a bad cursor', () => {
    const state = newStream(0, 0, 10);
    expectError(() => cursorPoll(state, { cursor: 3, ack: 4 }), 'SENSORY_ERR_BAD_CURSOR', /ack .*past the cursor/);
    expectError(() => cursorPoll(state, { cursor: 11 }), 'SENSORY_ERR_BAD_CURSOR');
    expectError(() => cursorPoll(state, { cursor: -1 }), 'SENSORY_ERR_BAD_CURSOR');
  });
});

describe('stream ledger: the messages of one poll', () => {
  it('claims in order up to max, sends copies once, leaves the rest untouched', () => {
    let state = withDelivered(40, [0, 1]);
    // The second message is a copy of the first (a re-run production), the fourth comes after max.
    const { state: after, outcomes, count } = claimMessages(state, 'p', [r(0, 8), r(0, 8), r(8, 16), r(16, 24)], 12, LEASE, NOW);
    assert.deepEqual(outcomes, [
      { kind: 'claimed', ranges: [r(2, 8)], whole: true },
      { kind: 'copy' },
      { kind: 'claimed', ranges: [r(8, 14)], whole: false },
      { kind: 'skipped' },
    ]);
    assert.equal(count, 12);
    state = commit(after, 'p', [r(2, 14)]).state;
    assert.equal(deliveredCount(state), 14);
    assert.deepEqual(undeliveredRanges(state), [r(14, 40)]);
  });

  it('a copy of what the poll claimed in an earlier take is a copy, not claimed again', () => {
    const state = newStream(0, 0, 40);
    // First take: [8, 16) ahead of [0, 8) (a message refused by a full queue, published again after).
    const first = claimMessages(state, 'p', [r(0, 4), r(8, 16), r(4, 8)], 100, LEASE, NOW);
    assert.deepEqual(first.outcomes.map((o) => o.kind), ['claimed', 'claimed', 'claimed']);
    // Second take of the same poll: the republished [8, 16) and what follows.
    const second = claimMessages(first.state, 'p', [r(8, 16), r(16, 24)], 100 - first.count, LEASE, NOW, [r(0, 16)]);
    assert.deepEqual(second.outcomes, [{ kind: 'copy' }, { kind: 'claimed', ranges: [r(16, 24)], whole: true }]);
    assert.equal(first.count + second.count, 24);
    // Without what it sends already, the poll's own lease made the copy claimable again.
    assert.equal(claimMessages(first.state, 'p', [r(8, 16)], 100, LEASE, NOW).outcomes[0].kind, 'claimed');
    // Part of a message sent already: only the rest is claimed, and the message is not whole.
    const part = claimMessages(first.state, 'p', [r(12, 20)], 100, LEASE, NOW, [r(0, 16)]);
    assert.deepEqual(part.outcomes, [{ kind: 'claimed', ranges: [r(16, 20)], whole: false }]);
  });

  it('passes on busy and delivered outcomes', () => {
    let state = newStream(0, 0, 20);
    ({ state } = claimAll(state, 'other', [[4, 8]]));
    const { outcomes, count } = claimMessages(state, 'p', [r(0, 4), r(4, 8), r(8, 12)], 100, LEASE, NOW);
    assert.deepEqual(outcomes.map((o) => o.kind), ['claimed', 'busy', 'claimed']);
    assert.equal(count, 8);
  });
});
