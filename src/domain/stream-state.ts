import { SensoryError } from './errors.js';
import { normalizeRanges, rangeSize, type PositionRange } from './position-ranges.js';

/**
 * One stream of an order (a rank's part of one generation): its delivery ledger and its
 * production state, a small value stored as one row. The pure functions that change it are in
 * stream-ledger.ts (delivery) and stream-production.ts (production).
 */

export const POLL_MODES = ['shared', 'cursor'] as const;
export type PollMode = (typeof POLL_MODES)[number];

/** Positions a poll is sending (shared mode), until it commits, releases, or the lease expires. */
export interface Lease extends PositionRange {
  readonly poll: string;
  /** Epoch milliseconds. */
  readonly until: number;
}

/** The task producing the stream's results, and until when it holds it (renewed as it goes). */
export interface ProducerLease {
  readonly holder: string;
  readonly until: number;
}

export interface StreamState {
  readonly generation: number;
  readonly stream: number;
  /** Positions 0 … length − 1. */
  readonly length: number;
  /** Fixed by the first poll; null before. */
  readonly mode: PollMode | null;
  /** Shared mode: positions ≥ frontier were never handed out. */
  readonly frontier: number;
  /** Shared mode: positions being sent. */
  readonly leases: readonly Lease[];
  /** Shared mode: positions below the frontier that are owed again (a cut response, an expired lease, a gap). */
  readonly returned: readonly PositionRange[];
  /** Cursor mode: positions < acked were acknowledged by the trainer. */
  readonly acked: number;
  /** Positions < produced were published (in this run) or skipped as delivered. */
  readonly produced: number;
  /** Raised by every reset of production: results of an earlier run are stale. */
  readonly run: number;
  /** Production stopped on a full result queue; the next poll wakes it. */
  readonly parked: boolean;
  readonly producer: ProducerLease | null;
  /** A reshape replaced the stream's generation. */
  readonly closed: boolean;
}

export function newStream(generation: number, stream: number, length: number): StreamState {
  return {
    generation,
    stream,
    length,
    mode: null,
    frontier: 0,
    leases: [],
    returned: [],
    acked: 0,
    produced: 0,
    run: 0,
    parked: false,
    producer: null,
    closed: false,
  };
}

/** Positions that count as delivered: committed (shared) or acknowledged (cursor). */
export function deliveredCount(state: StreamState): number {
  if (state.mode === 'cursor') return state.acked;
  if (state.mode === 'shared') return state.frontier - rangeSize(state.leases) - rangeSize(state.returned);
  return 0;
}

export function isDelivered(state: StreamState): boolean {
  return deliveredCount(state) >= state.length;
}

/** Every position not delivered, leased ones included. */
export function undeliveredRanges(state: StreamState): PositionRange[] {
  if (state.mode === 'cursor') return normalizeRanges([{ from: state.acked, to: state.length }]);
  if (state.mode === 'shared') return normalizeRanges([...state.returned, ...state.leases, { from: state.frontier, to: state.length }]);
  return normalizeRanges([{ from: 0, to: state.length }]);
}

export function lowestUndelivered(state: StreamState): number {
  return undeliveredRanges(state)[0]?.from ?? state.length;
}

/** The first run of undelivered positions at or after `position`, if any. */
export function undeliveredRunFrom(state: StreamState, position: number): PositionRange | undefined {
  for (const range of undeliveredRanges(state)) {
    if (range.to <= position) continue;
    return { from: Math.max(range.from, position), to: range.to };
  }
  return undefined;
}

/** Leases still running at `now` (shared mode). */
export function liveLeases(state: StreamState, now: number): Lease[] {
  return state.leases.filter((lease) => lease.until > now);
}

/** The first poll fixes the stream's mode; a poll in the other mode is refused. */
export function enterMode(state: StreamState, mode: PollMode): StreamState {
  if (state.mode === mode) return state;
  if (state.mode === null) return { ...state, mode };
  throw new SensoryError(
    'SENSORY_ERR_POLL_MODE_CONFLICT',
    mode === 'cursor'
      ? `rank ${state.stream} is polled without cursors (shared mode): a poll with a cursor cannot join it`
      : `rank ${state.stream} is polled with cursors: send the cursor of the last answer (or "start")`,
    { rank: state.stream, mode: state.mode },
  );
}
