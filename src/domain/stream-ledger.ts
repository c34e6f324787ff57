import { SensoryError } from './errors.js';
import { firstPositions, intersectRanges, normalizeRanges, overlaps, rangeSize, subtractRanges, type PositionRange } from './position-ranges.js';
import { enterMode, type Lease, type StreamState } from './stream-state.js';

/**
 * Delivery of a stream's positions, as pure functions over its ledger.
 *
 * Shared mode (polls without a cursor; several pollers may share the stream): a poll claims the
 * positions of the result messages it took under a lease, sends them, then commits them as
 * delivered once the response was written whole, or releases them when it was cut. Positions
 * below the frontier that are neither leased nor returned are delivered, so the ledger is a few
 * ranges whatever the stream's length. A copy of delivered positions is dropped at claim time.
 *
 * Cursor mode (one consumer, client-driven): a poll names the position it has received up to;
 * its `ack` acknowledges every position before the one it names, and only acknowledged
 * positions count as delivered.
 */

export type ClaimOutcome =
  /** Every position of the message was delivered already: a copy to drop. */
  | { readonly kind: 'delivered' }
  /** Another poll's live lease covers some of its positions: hand it back. */
  | { readonly kind: 'busy' }
  /** Leased to this poll; `whole` when these are all of the message's undelivered positions. */
  | { readonly kind: 'claimed'; readonly ranges: readonly PositionRange[]; readonly whole: boolean };

function mergeLeases(leases: readonly Lease[]): Lease[] {
  const sorted = [...leases].sort((a, b) => a.from - b.from);
  const merged: Lease[] = [];
  for (const lease of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.poll === lease.poll && last.until === lease.until && last.to === lease.from) merged[merged.length - 1] = { ...last, to: lease.to };
    else merged.push(lease);
  }
  return merged;
}

/** Leases that ended by `now` become returned positions. */
export function expireLeases(state: StreamState, now: number): StreamState {
  const expired = state.leases.filter((lease) => lease.until <= now);
  if (expired.length === 0) return state;
  return { ...state, leases: state.leases.filter((lease) => lease.until > now), returned: normalizeRanges([...state.returned, ...expired]) };
}

/**
 * A poll's claim on the positions [message.from, message.to) of one result message, at most
 * `limit` of them (its first undelivered ones), leased until `until`.
 */
export function claim(
  before: StreamState,
  poll: string,
  message: PositionRange,
  limit: number,
  until: number,
  now: number,
): { state: StreamState; outcome: ClaimOutcome } {
  let state = expireLeases(enterMode(before, 'shared'), now);
  const range = { from: Math.max(0, message.from), to: Math.min(state.length, message.to) };
  if (range.to <= range.from) return { state, outcome: { kind: 'delivered' } };
  if (state.leases.some((lease) => lease.poll !== poll && overlaps(lease, range))) return { state, outcome: { kind: 'busy' } };
  const below = { from: range.from, to: Math.min(range.to, state.frontier) };
  const owed = intersectRanges([...state.returned, ...state.leases.filter((lease) => lease.poll === poll)], below);
  const fresh = range.to > state.frontier ? [{ from: Math.max(range.from, state.frontier), to: range.to }] : [];
  const claimable = normalizeRanges([...owed, ...fresh]);
  if (claimable.length === 0) return { state, outcome: { kind: 'delivered' } };
  const taken = firstPositions(claimable, limit);
  const end = taken[taken.length - 1].to;
  let returned = subtractRanges(state.returned, taken);
  let frontier = state.frontier;
  if (end > frontier) {
    // Positions between the old frontier and the message were handed out to nobody: still owed.
    returned = normalizeRanges([...returned, { from: frontier, to: Math.max(frontier, range.from) }]);
    frontier = end;
  }
  const own = state.leases.filter((lease) => lease.poll === poll);
  const others = state.leases.filter((lease) => lease.poll !== poll);
  const kept = own.flatMap((lease) => subtractRanges([lease], taken).map((r) => ({ ...lease, ...r })));
  const leases = mergeLeases([...others, ...kept, ...taken.map((r) => ({ ...r, poll, until }))]);
  state = { ...state, frontier, returned, leases };
  return { state, outcome: { kind: 'claimed', ranges: taken, whole: rangeSize(taken) === rangeSize(claimable) } };
}

/**
 * The poll's response was written whole: the positions it `sent` are delivered, and its leases
 * end (leased positions it did not send are owed again). Sent positions whose lease had expired
 * count too, unless another poll has leased them since.
 */
export function commit(before: StreamState, poll: string, sent: readonly PositionRange[]): { state: StreamState; added: number } {
  const own = before.leases.filter((lease) => lease.poll === poll);
  const sentRanges = normalizeRanges(sent);
  const delivered = normalizeRanges(sentRanges.flatMap((range) => intersectRanges(own, range)));
  const late = normalizeRanges(sentRanges.flatMap((range) => intersectRanges(before.returned, range)));
  const unsent = subtractRanges(own, sentRanges);
  const returned = normalizeRanges([...subtractRanges(before.returned, late), ...unsent]);
  const state = { ...before, leases: before.leases.filter((lease) => lease.poll !== poll), returned };
  return { state, added: rangeSize(delivered) + rangeSize(late) };
}

/** The poll's response was cut: its leased positions are owed again. */
export function release(state: StreamState, poll: string): StreamState {
  const own = state.leases.filter((lease) => lease.poll === poll);
  if (own.length === 0) return state;
  return { ...state, leases: state.leases.filter((lease) => lease.poll !== poll), returned: normalizeRanges([...state.returned, ...own]) };
}

export interface CursorPoll {
  /** The position the poll starts at; 'start' is the acknowledged position. */
  readonly cursor: number | 'start';
  /** Acknowledges every position before this one. */
  readonly ack?: number;
  /** Allows a cursor behind the acknowledged position, which then moves back to it. */
  readonly resume?: boolean;
}

/** A cursor-mode poll's effect on the ledger, and the position it sends from. */
export function cursorPoll(before: StreamState, request: CursorPoll): { state: StreamState; position: number; newlyAcked: number } {
  const state = enterMode(before, 'cursor');
  const position = request.cursor === 'start' ? state.acked : request.cursor;
  if (position < 0 || position > state.length) throw new SensoryError('SENSORY_ERR_BAD_CURSOR', `cursor position ${position} is outside rank ${state.stream} (0 … ${state.length})`, { field: 'cursor' });
  if (request.ack !== undefined && request.ack > position) {
    throw new SensoryError('SENSORY_ERR_BAD_CURSOR', `ack (position ${request.ack}) is past the cursor (position ${position}): acknowledge only what was received`, { field: 'ack' });
  }
  let acked = state.acked;
  if (position < acked) {
    if (!request.resume) {
      throw new SensoryError(
        'SENSORY_ERR_CURSOR_CONFLICT',
        `the cursor (position ${position}) is behind what rank ${state.stream} acknowledged (position ${acked}); send resume: true to take back everything after it`,
        { position, acknowledged: acked },
      );
    }
    acked = position;
  }
  if (request.ack !== undefined && request.ack > acked) acked = request.ack;
  return { state: { ...state, acked }, position, newlyAcked: Math.max(0, acked - state.acked) };
}

export type MessageOutcome =
  | ClaimOutcome
  /** Its undelivered positions are already in this poll (a copy taken with the original): hand it back. */
  | { readonly kind: 'copy' }
  /** The poll was full before this message: hand it back untouched. */
  | { readonly kind: 'skipped' };

/**
 * A poll's claims on the messages it took, in order, up to `max` positions in all. Copies of
 * positions already claimed by this poll are sent once: those of these messages, and `sending`,
 * what it claimed from messages it took before (a poll takes the queue a few messages at a time,
 * and a copy may come in a later take than its original).
 */
export function claimMessages(
  before: StreamState,
  poll: string,
  messages: readonly PositionRange[],
  max: number,
  until: number,
  now: number,
  sendingBefore: readonly PositionRange[] = [],
): { state: StreamState; outcomes: MessageOutcome[]; count: number } {
  let state = before;
  let count = 0;
  let sending = normalizeRanges(sendingBefore);
  const outcomes: MessageOutcome[] = [];
  for (const message of messages) {
    if (count >= max) {
      outcomes.push({ kind: 'skipped' });
      continue;
    }
    const result = claim(state, poll, message, max - count, until, now);
    state = result.state;
    if (result.outcome.kind !== 'claimed') {
      outcomes.push(result.outcome);
      continue;
    }
    const fresh = subtractRanges(result.outcome.ranges, sending);
    if (fresh.length === 0) {
      outcomes.push({ kind: 'copy' });
      continue;
    }
    const whole = result.outcome.whole && rangeSize(fresh) === rangeSize(result.outcome.ranges);
    outcomes.push({ kind: 'claimed', ranges: fresh, whole });
    count += rangeSize(fresh);
    sending = normalizeRanges([...sending, ...fresh]);
  }
  return { state, outcomes, count };
}
