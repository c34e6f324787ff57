/**
 * The chunk pool: buffers given back are handed out again, within a cap on idle bytes, and the
 * sizes in use now are kept over those used before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { borrowedView, chunkPoolStats, idleChunkBytes, releaseChunk, takeChunk, takeWasmChunk } from '../../src/lib/chunk-pool.js';

const MiB = 1024 * 1024;

describe('chunk pool', () => {
  it('hands a chunk given back out again, and ignores a second release', () => {
    const first = takeChunk(3 * MiB);
    const buffer = first.buffer;
    releaseChunk(first);
    releaseChunk(first);
    const again = takeChunk(3 * MiB + 5);
    assert.equal(again.buffer, buffer);
    assert.equal(again.length, 3 * MiB + 5);
    const other = takeChunk(3 * MiB);
    assert.notEqual(other.buffer, buffer, 'a buffer released twice is not handed out twice');
    releaseChunk(again);
    releaseChunk(other);
  });

  it('WebAssembly chunks are over a memory of their own and come back as such', () => {
    const taken = takeWasmChunk(2 * MiB);
    assert.ok(taken);
    assert.equal(taken.chunk.buffer, taken.memory.buffer);
    releaseChunk(taken.chunk.subarray(100, 200));
    const again = takeWasmChunk(2 * MiB);
    assert.equal(again?.memory, taken.memory);
    const plain = takeChunk(2 * MiB);
    assert.notEqual(plain.buffer, taken.memory.buffer, 'a plain chunk is never a WebAssembly memory');
    releaseChunk(again!.chunk);
    releaseChunk(plain);
  });

  it('idle buffers of a size used before make room for the size used now, rather than each chunk of it being made anew', () => {
    // Fill the idle cap (48 MiB) with 1 MiB buffers, as a run of safetensors batches leaves it.
    const old = Array.from({ length: 60 }, () => takeChunk(MiB));
    for (const chunk of old) releaseChunk(chunk);
    assert.ok(idleChunkBytes() >= 40 * MiB, `${idleChunkBytes()} idle bytes`);
    const made = chunkPoolStats().madeBuffers;
    for (let round = 0; round < 10; round++) {
      const held = Array.from({ length: 4 }, () => takeWasmChunk(4 * MiB)!.chunk);
      for (const chunk of held) releaseChunk(chunk);
    }
    assert.equal(chunkPoolStats().madeBuffers - made, 4, 'four 4 MiB chunks made once, then reused');
    assert.ok(idleChunkBytes() <= 48 * MiB);
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
