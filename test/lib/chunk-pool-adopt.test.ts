/**
 * Chunks lent from another owner's memory (warp thread arenas): given back to that owner, never
 * pooled, and to no one once disowned.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adoptChunk, disownChunk, releaseChunk, takeChunk } from '../../src/lib/chunk-pool.js';

const MiB = 1024 * 1024;

describe('chunk pool: adopted chunks', () => {
  it('gives an adopted chunk back to its owner once, never into the pool; a disowned one to no one', () => {
    const shared = new SharedArrayBuffer(2 * MiB);
    let givenBack = 0;
    const chunk = adoptChunk(Buffer.from(shared, MiB, 100_000), () => givenBack++);
    releaseChunk(chunk);
    releaseChunk(chunk);
    assert.equal(givenBack, 1);
    const taken = takeChunk(100_000);
    assert.notEqual(taken.buffer, shared, 'an adopted buffer never joins the pool');
    releaseChunk(taken);
    const disowned = adoptChunk(Buffer.from(shared, 0, 10), () => givenBack++);
    disownChunk(disowned);
    releaseChunk(disowned);
    assert.equal(givenBack, 1);
  });
});
