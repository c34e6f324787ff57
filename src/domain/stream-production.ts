import type { PositionRange } from './position-ranges.js';
import { undeliveredRunFrom, type StreamState } from './stream-state.js';

/**
 * Production of a stream's results, as pure functions over its row. One task at a time holds
 * the producer lease (compare-and-set with an expiry, so a killed worker's lease lapses; the
 * same task delivered again takes it over at once). It publishes chunks in position order and
 * advances the produced frontier past confirmed ones (one chunk, or several confirmed since the
 * last advance), only while it still holds the lease and the run has not been reset under it.
 */

export type TakeOutcome = 'producing' | 'busy' | 'done' | 'closed';

/** The next positions to publish: [from, to), skipping delivered ones from `skipFrom`. */
export interface NextChunk extends PositionRange {
  readonly skipFrom: number;
}

export function nextChunk(state: StreamState, chunkSamples: number): NextChunk | undefined {
  const run = undeliveredRunFrom(state, state.produced);
  if (!run) return undefined;
  return { skipFrom: state.produced, from: run.from, to: Math.min(run.to, run.from + chunkSamples) };
}

export function productionDone(state: StreamState): boolean {
  return nextChunk(state, 1) === undefined;
}

export function takeProducer(state: StreamState, holder: string, now: number, leaseMs: number): { state: StreamState; outcome: TakeOutcome } {
  if (state.closed) return { state, outcome: 'closed' };
  if (productionDone(state)) {
    return { state: state.producer?.holder === holder ? { ...state, producer: null } : state, outcome: 'done' };
  }
  if (state.producer && state.producer.holder !== holder && state.producer.until > now) return { state, outcome: 'busy' };
  return { state: { ...state, producer: { holder, until: now + leaseMs }, parked: false }, outcome: 'producing' };
}

function holds(state: StreamState, holder: string, run: number): boolean {
  return !state.closed && state.producer?.holder === holder && state.run === run;
}

/** After a confirmed publish of [chunk.from, chunk.to): false when the task lost the stream meanwhile. */
export function advanceProduced(state: StreamState, holder: string, run: number, chunk: NextChunk, now: number, leaseMs: number): { state: StreamState; ok: boolean } {
  if (!holds(state, holder, run) || state.produced !== chunk.skipFrom) return { state, ok: false };
  return { state: { ...state, produced: chunk.to, producer: { holder, until: now + leaseMs } }, ok: true };
}

/** The result queue is full: stop until a poll takes something, holding nothing. */
export function park(state: StreamState, holder: string, run: number): { state: StreamState; ok: boolean } {
  if (!holds(state, holder, run)) return { state, ok: false };
  return { state: { ...state, parked: true, producer: null }, ok: true };
}

export function releaseProducer(state: StreamState, holder: string): StreamState {
  return state.producer?.holder === holder ? { ...state, producer: null } : state;
}

/** A poll made room: true when the stream was parked (publish a task to go on). */
export function unpark(state: StreamState): { state: StreamState; woke: boolean } {
  if (!state.parked || state.closed) return { state, woke: false };
  return { state: { ...state, parked: false }, woke: true };
}

/** Production starts again at `position` (a lost result queue, or a cursor behind the queue's head). */
export function resetProduction(state: StreamState, position: number): StreamState {
  return { ...state, produced: Math.max(0, Math.min(position, state.length)), run: state.run + 1, parked: false, producer: null };
}

/** Production lapsed: a producer lease that expired with nobody to take it over. */
export function producerLapsed(state: StreamState, now: number): boolean {
  return !state.closed && !state.parked && state.producer !== null && state.producer.until <= now && !productionDone(state);
}
