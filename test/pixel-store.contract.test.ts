/**
 * The PixelStore contract: one suite, run against every implementation in PIXEL_STORES
 * (test/support/pixel-stores.ts). It uses only the interface.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import { PIXEL_STORES } from './support/pixel-stores.js';
import { removeTempDirs, tempDir } from './support/process.js';

after(removeTempDirs);
/** A directory for one store, not made yet: the store makes it. */
const freshDir = () => join(tempDir('sensory-pixels-'), 'store');

const shape: DatasetShape = { width: 4, height: 3, channels: 3 };
const size = 4 * 3 * 3;
const record = (slot: number) => Uint8Array.from({ length: size }, (_, i) => (slot * 31 + i + 1) & 255);

for (const implementation of PIXEL_STORES) {
  describe(`PixelStore contract: ${implementation.name}`, () => {
    it('writes slots out of order with holes and reads them back in any order, at an offset; a hole reads as zeros', async () => {
      const store = implementation.open(freshDir());
      const slots = [5, 0, 2, 3, 9];
      await store.write(7, shape, slots, slots.map(record));
      await store.write(7, shape, [1], [record(1)]);
      const order = [3, 2, 1, 0, 5, 9, 2];
      const target = new Uint8Array(10 + order.length * size);
      await store.read(7, shape, order, target, 10);
      order.forEach((slot, i) => assert.deepEqual(target.subarray(10 + i * size, 10 + (i + 1) * size), record(slot)));
      const hole = new Uint8Array(size).fill(9);
      await store.read(7, shape, [7], hole, 0);
      assert.deepEqual(hole, new Uint8Array(size));
      await assert.rejects(store.read(7, shape, [10], new Uint8Array(size), 0), 'a slot beyond the last written');
      await assert.rejects(store.read(8, shape, [0], new Uint8Array(size), 0), 'a dataset never written');
      await store.close();
      await store.close();
    });

    it('keeps records across a new instance after concurrent and long writes', async () => {
      const directory = freshDir();
      const first = implementation.open(directory);
      await Promise.all(Array.from({ length: 40 }, (_, slot) => first.write(1, shape, [slot], [record(slot)])));
      const many = Array.from({ length: 1500 }, (_, i) => 100 + i);
      await first.write(1, shape, many, many.map(record));
      await first.close();
      const second = implementation.open(directory);
      const slots = [39, ...many, 0, 17];
      const target = new Uint8Array(slots.length * size);
      await second.read(1, shape, slots, target, 0);
      slots.forEach((slot, i) => assert.deepEqual(target.subarray(i * size, (i + 1) * size), record(slot)));
      await second.close();
    });

    it('takes concurrent writers on one directory (as replicas sharing a volume), to one dataset and to several', async () => {
      const directory = freshDir();
      const writers = [implementation.open(directory), implementation.open(directory), implementation.open(directory)];
      const slots = Array.from({ length: 300 }, (_, i) => i);
      await Promise.all(
        slots.flatMap((slot) => [
          writers[slot % 3].write(2, shape, [slot], [record(slot)]),
          writers[(slot + 1) % 3].write(3 + (slot % 4), shape, [slot], [record(slot + 1)]),
        ]),
      );
      await Promise.all(writers.map((writer) => writer.close()));
      const reader = implementation.open(directory);
      const target = new Uint8Array(slots.length * size);
      await reader.read(2, shape, slots, target, 0);
      slots.forEach((slot) => assert.deepEqual(target.subarray(slot * size, (slot + 1) * size), record(slot)));
      for (let dataset = 3; dataset < 7; dataset++) {
        const mine = slots.filter((slot) => 3 + (slot % 4) === dataset);
        const records = new Uint8Array(mine.length * size);
        await reader.read(dataset, shape, mine, records, 0);
        mine.forEach((slot, i) => assert.deepEqual(records.subarray(i * size, (i + 1) * size), record(slot + 1)));
      }
      await reader.close();
    });

    it('refuses records of the wrong size, mismatched lists, a negative slot and a target too small', async () => {
      const store = implementation.open(freshDir());
      await assert.rejects(store.write(1, shape, [0], [new Uint8Array(size - 1)]));
      await assert.rejects(store.write(1, shape, [0, 1], [record(0)]));
      await assert.rejects(store.write(1, shape, [-1], [record(0)]));
      await assert.rejects(store.read(1, shape, [0, 1], new Uint8Array(size), 0));
      await store.close();
    });

    it('drops a dataset (twice is fine), and a later write starts afresh', async () => {
      const store = implementation.open(freshDir());
      await store.write(3, shape, [4], [record(4)]);
      await store.write(4, shape, [0], [record(40)]);
      await store.drop(3);
      await store.drop(3);
      await assert.rejects(store.read(3, shape, [4], new Uint8Array(size), 0), 'the dropped records are gone');
      await store.write(3, shape, [0], [record(0)]);
      const target = new Uint8Array(size);
      await store.read(3, shape, [0], target, 0);
      assert.deepEqual(target, record(0));
      await assert.rejects(store.read(3, shape, [4], new Uint8Array(size), 0), 'the new records start afresh');
      await store.read(4, shape, [0], target, 0);
      assert.deepEqual(target, record(40), 'another dataset is untouched');
      await store.close();
    });
  });
}
