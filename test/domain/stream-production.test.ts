import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claim, commit, cursorPoll } from '../../src/domain/stream-ledger.js';
import {
  advanceProduced,
  nextChunk,
  park,
  producerLapsed,
  productionDone,
  releaseProducer,
  resetProduction,
  takeProducer,
  unpark,
} from '../../src/domain/stream-production.js';
import { lowestUndelivered, newStream, type StreamState } from '../../src/domain/stream-state.js';

const NOW = 5_000_000;
const LEASE_MS = 30_000;

function taken(state: StreamState, holder: string, now = NOW): StreamState {
  const result = takeProducer(state, holder, now, LEASE_MS);
  assert.equal(result.outcome, 'producing');
  return result.state;
}

/** Produces every chunk as a worker would, returning the ranges published. */
function produceAll(state: StreamState, holder: string, chunkSamples: number): { state: StreamState; published: [number, number][] } {
  const published: [number, number][] = [];
  for (let chunk = nextChunk(state, chunkSamples); chunk; chunk = nextChunk(state, chunkSamples)) {
    published.push([chunk.from, chunk.to]);
    const advanced = advanceProduced(state, holder, state.run, chunk, NOW, LEASE_MS);
    assert.equal(advanced.ok, true);
    state = advanced.state;
  }
  return { state, published };
}

describe('stream production', () => {
  it('publishes in position order, chunk by chunk, until the stream is produced', () => {
    const state = taken(newStream(0, 0, 10), 'task-1');
    const { state: done, published } = produceAll(state, 'task-1', 4);
    assert.deepEqual(published, [[0, 4], [4, 8], [8, 10]]);
    assert.equal(done.produced, 10);
    assert.equal(productionDone(done), true);
    assert.equal(takeProducer(done, 'task-2', NOW, LEASE_MS).outcome, 'done');
    assert.equal(takeProducer(done, 'task-1', NOW, LEASE_MS).state.producer, null, 'the holder lets go when it is done');
  });

  it('one producer at a time: another task is busy until the lease lapses; the same task again takes over at once', () => {
    const state = taken(newStream(0, 0, 100), 'task-1');
    assert.equal(takeProducer(state, 'task-2', NOW + LEASE_MS - 1, LEASE_MS).outcome, 'busy');
    assert.equal(takeProducer(state, 'task-1', NOW + 1, LEASE_MS).outcome, 'producing', 'the task delivered again (its worker died)');
    const lapsed = takeProducer(state, 'task-2', NOW + LEASE_MS, LEASE_MS);
    assert.equal(lapsed.outcome, 'producing', 'a killed worker\'s lease lapses');
    assert.equal(lapsed.state.producer?.holder, 'task-2');
    assert.equal(producerLapsed(state, NOW + LEASE_MS), true);
    assert.equal(producerLapsed(state, NOW), false);
  });

  it('advancing is a compare-and-set: a task that lost the lease, a reset run or a moved frontier advances nothing', () => {
    let state = taken(newStream(0, 0, 100), 'task-1');
    const chunk = nextChunk(state, 10)!;
    const stolen = takeProducer(state, 'task-2', NOW + LEASE_MS, LEASE_MS).state;
    assert.equal(advanceProduced(stolen, 'task-1', state.run, chunk, NOW, LEASE_MS).ok, false);
    const reset = resetProduction(state, 0);
    assert.equal(advanceProduced(reset, 'task-1', state.run, chunk, NOW, LEASE_MS).ok, false, 'the run was reset');
    state = advanceProduced(state, 'task-1', state.run, chunk, NOW, LEASE_MS).state;
    assert.equal(state.produced, 10);
    assert.equal(advanceProduced(state, 'task-1', state.run, chunk, NOW, LEASE_MS).ok, false, 'the same chunk twice counts once');
    assert.equal(state.produced, 10);
    const renewed = advanceProduced(state, 'task-1', state.run, nextChunk(state, 10)!, NOW + 1000, LEASE_MS).state;
    assert.equal(renewed.producer?.until, NOW + 1000 + LEASE_MS, 'each advance renews the lease');
  });

  it('park holds nothing; a poll unparks once; a closed stream is never produced', () => {
    let state = taken(newStream(0, 0, 100), 'task-1');
    const parked = park(state, 'task-1', state.run);
    assert.equal(parked.ok, true);
    state = parked.state;
    assert.deepEqual([state.parked, state.producer], [true, null]);
    assert.equal(park(state, 'task-9', state.run).ok, false);
    const woke = unpark(state);
    assert.equal(woke.woke, true);
    assert.equal(unpark(woke.state).woke, false, 'woken once');
    assert.equal(takeProducer(state, 'task-2', NOW, LEASE_MS).state.parked, false, 'taking the producer unparks');
    assert.equal(takeProducer({ ...state, closed: true }, 'task-2', NOW, LEASE_MS).outcome, 'closed');
    assert.equal(unpark({ ...state, closed: true }).woke, false);
    assert.equal(releaseProducer(taken(newStream(0, 0, 5), 'a'), 'a').producer, null);
    assert.equal(releaseProducer(taken(newStream(0, 0, 5), 'a'), 'b').producer?.holder, 'a');
  });

  it('a reset starts a new run at a position; production after it skips what was delivered (shared mode)', () => {
    let state = newStream(0, 0, 20);
    // Positions 0 … 9 handed out; 3 and 4 came back (a cut response); the rest delivered.
    ({ state } = claim(state, 'p', { from: 0, to: 10 }, 10, NOW + 1000, NOW));
    ({ state } = commit(state, 'p', [{ from: 0, to: 3 }, { from: 5, to: 10 }]));
    assert.equal(lowestUndelivered(state), 3);
    state = resetProduction({ ...state, produced: 20, parked: true }, lowestUndelivered(state));
    assert.deepEqual([state.produced, state.run, state.parked, state.producer], [3, 1, false, null]);
    state = taken(state, 'task-3');
    const { published } = produceAll(state, 'task-3', 4);
    assert.deepEqual(published, [[3, 5], [10, 14], [14, 18], [18, 20]]);
  });

  it('cursor mode produces from the position reset to, whatever was sent before', () => {
    let state = newStream(0, 0, 12);
    ({ state } = cursorPoll(state, { cursor: 5, ack: 5 }));
    state = taken(resetProduction(state, 8), 'task-1');
    assert.deepEqual(produceAll(state, 'task-1', 3).published, [[8, 11], [11, 12]]);
    assert.equal(resetProduction(state, 99).produced, 12, 'clamped to the stream');
  });
});
