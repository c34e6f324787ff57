/**
 * ExternalGarbage: a full collection is asked for once the memory outside the heap has grown by
 * the given amount above the lowest level seen, looked at every so many items, and the next one
 * only after it has grown that much again; the real collection runs without harm.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExternalGarbage, requestFullCollection } from '../../src/lib/external-garbage.js';

describe('ExternalGarbage', () => {
  it('asks for a collection when outside memory grew by the amount above its lowest level, looking every N items', () => {
    const MB = 1024 * 1024;
    let outside = 50 * MB;
    let looks = 0;
    let collections = 0;
    const garbage = new ExternalGarbage(
      24 * MB,
      4,
      () => (looks++, outside),
      () => collections++,
    );
    const items = (n: number) => {
      for (let i = 0; i < n; i++) garbage.itemRead();
    };
    items(3);
    assert.equal(looks, 0, 'not looked at before the 4th item');
    items(1);
    assert.deepEqual([looks, collections], [1, 0]);
    outside = 40 * MB; // a new low
    items(4);
    outside = 63 * MB; // 23 MB above it
    items(4);
    assert.equal(collections, 0);
    outside = 64 * MB; // 24 MB above it
    items(4);
    assert.equal(collections, 1);
    outside = 80 * MB; // not 24 MB above the level it was collected at
    items(4);
    assert.equal(collections, 1);
    outside = 30 * MB; // the collection freed it
    items(4);
    outside = 54 * MB;
    items(4);
    assert.deepEqual([looks, collections], [7, 2]);
  });

  it('runs a real incremental collection', () => {
    requestFullCollection();
    requestFullCollection();
  });
});
