import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { borrowedView, releaseChunk, takeChunk } from '../../src/lib/chunk-pool.js';

describe('chunk pool', () => {
  it('hands a buffer given back out again', () => {
    const chunk = takeChunk(100_000);
    releaseChunk(chunk);
    const again = takeChunk(100_000);
    assert.equal(again.buffer, chunk.buffer);
    releaseChunk(again);
  });

  it('ignores a borrowed view: the buffer stays with its owner until the owner gives it back', () => {
    const owned = takeChunk(100_000);
    releaseChunk(borrowedView(owned.subarray(10, 20)));
    const other = takeChunk(100_000);
    assert.notEqual(other.buffer, owned.buffer, 'a borrowed view must not give its buffer back');
    releaseChunk(other);
    releaseChunk(owned);
    const back = takeChunk(100_000);
    assert.equal(back.buffer, owned.buffer, 'the owner gives it back');
    releaseChunk(back);
  });
});
