import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { drawAugment, IDENTITY, warpInto, type Augment } from '../src/domain/augmentation.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import { WarpThreads } from '../src/lib/warp-threads.js';

function records(shape: DatasetShape, count: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(count * shape.width * shape.height * shape.channels);
  let state = seed;
  for (let i = 0; i < bytes.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/** The same records warped one by one on this thread. */
function inline(source: Uint8Array, shape: DatasetShape, augments: readonly Augment[]): Uint8Array {
  const size = shape.width * shape.height * shape.channels;
  const out = new Uint8Array(source.length);
  augments.forEach((augment, i) => warpInto(source.subarray(i * size, (i + 1) * size), shape, augment, out, i * size));
  return out;
}

describe('WarpThreads', () => {
  const threads = new WarpThreads(2);
  after(() => threads.close());

  for (const shape of [{ width: 40, height: 30, channels: 3 }, { width: 28, height: 28, channels: 1 }] as const) {
    it(`gives the bytes of the warps one by one on this thread (${shape.width}×${shape.height}×${shape.channels}), identities among them`, async () => {
      const count = 9;
      const augments = Array.from({ length: count }, (_, slot) => (slot % 4 === 3 ? IDENTITY : drawAugment(17, slot, 1)));
      const source = records(shape, count, 5);
      const arena = threads.arena(source.length);
      arena.source.set(source);
      await threads.warp(arena, shape, augments);
      assert.deepEqual(new Uint8Array(arena.target), inline(source, shape, augments));
      threads.release(arena);
    });
  }

  it('keeps concurrent chunks apart, in arenas reused after release', async () => {
    const shape: DatasetShape = { width: 33, height: 21, channels: 3 };
    for (let round = 0; round < 3; round++) {
      const chunks = [0, 1, 2, 3].map((k) => {
        const augments = Array.from({ length: 5 + k }, (_, slot) => drawAugment(100 * round + k, slot, 1));
        const source = records(shape, augments.length, 1 + k + round);
        const arena = threads.arena(source.length);
        arena.source.set(source);
        return { augments, source, arena };
      });
      await Promise.all(chunks.map(({ arena, augments }) => threads.warp(arena, shape, augments)));
      for (const { arena, augments, source } of chunks) {
        assert.deepEqual(new Uint8Array(arena.target), inline(source, shape, augments));
        threads.release(arena);
      }
    }
  });

  it('fails a job whose records do not fit their arena, and carries on with the next', async () => {
    const shape: DatasetShape = { width: 8, height: 8, channels: 3 };
    const memory = threads.arena(64).source.buffer;
    // Two records of 192 bytes named 10 bytes before the end of the shared memory: the thread cannot view them.
    const end = new Uint8Array(memory, memory.byteLength - 10, 10);
    await assert.rejects(threads.warp({ source: end, target: end }, shape, [IDENTITY, IDENTITY]), /warp thread: .*(Invalid|out of range|bounds)/i);
    const augments = [drawAugment(3, 0, 1), drawAugment(3, 1, 1)];
    const good = threads.arena(2 * 192);
    const source = records(shape, 2, 9);
    good.source.set(source);
    await threads.warp(good, shape, augments);
    assert.deepEqual(new Uint8Array(good.target), inline(source, shape, augments));
  });

  it('refuses work once closed; closing twice is safe', async () => {
    const closing = new WarpThreads(1);
    const arena = closing.arena(192);
    await closing.warp(arena, { width: 8, height: 8, channels: 3 }, [drawAugment(1, 0, 1)]);
    await closing.close();
    await closing.close();
    await assert.rejects(closing.warp(arena, { width: 8, height: 8, channels: 3 }, [drawAugment(1, 0, 1)]), /closed/);
  });
});
