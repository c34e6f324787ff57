/**
 * The group commit of uploads: the original and the pixels of each sample are made durable before
 * its metadata transaction (nothing is committed whose bytes could still be lost) — their syncs
 * start as they are written and the commit of the group awaits them, for single uploads and bulk
 * items alike. Here, on the real stores (SQLite, segments, pixel file):
 * the order of those steps for concurrent uploads, and the deferred syncs of the two file
 * stores, including one asked for after the store was closed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { FilePixelStore } from '../src/adapters/files/file.pixel-store.js';
import { SegmentBlobStore } from '../src/adapters/files/segment.blob-store.js';
import { HEADER_BYTES, isSealed, readRecord } from '../src/adapters/files/segment.format.js';
import { SharpImaging } from '../src/adapters/imaging/sharp.imaging.js';
import { SqliteBlobIndex } from '../src/adapters/sqlite/sqlite.blob-index.js';
import { SqliteDatabase } from '../src/adapters/sqlite/sqlite.database.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import type { IndexedBlob } from '../src/ports/blob-index.js';
import type { AddOutcome, NewSample } from '../src/ports/metadata-store.js';
import type { DurableWhen } from '../src/ports/pixel-store.js';
import { SILENT_TELEMETRY } from '../src/ports/telemetry.js';
import { IngestService } from '../src/services/ingest.service.js';
import { patternPixels } from './support/harness.js';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sensory-group-commit-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => join(scratch, `d${++dirs}`);

const SIDE = 8;

async function pngOf(seed: number): Promise<Buffer> {
  const pixels = patternPixels(SIDE, SIDE, 3, seed);
  pixels.writeUInt32LE(seed, 0);
  return sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } }).png().toBuffer();
}

describe('group commit of uploads', () => {
  it('commits no sample before its original and its pixels are durable, for concurrent uploads', async () => {
    const dir = freshDir();
    const database = new SqliteDatabase(`${dir}.db`);
    const events: string[] = [];

    // The real stores, each step noted as it completes.
    class NotedStore extends SqliteMetadataStore {
      override async addSamples(datasetId: number, samples: readonly NewSample[]): Promise<AddOutcome[]> {
        for (const sample of samples) events.push(`commit ${sample.pixelSlot}`);
        return super.addSamples(datasetId, samples);
      }
    }
    class NotedPixels extends FilePixelStore {
      override async writeDeferred(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<DurableWhen> {
        const durable = await super.writeDeferred(datasetId, shape, slots, records);
        return async () => {
          await durable();
          events.push(`pixels ${slots[0]}`);
        };
      }
    }
    const store = new NotedStore(database);
    await store.migrate();
    const blobs = new SegmentBlobStore(join(dir, 'segments'), join(dir, 'legacy'), new SqliteBlobIndex(database.connection, () => database.syncCommitted()));
    const stageDeferred = blobs.stageDeferred.bind(blobs);
    blobs.stageDeferred = async (sha256: string, bytes: Buffer, indexed?: boolean): Promise<{ blob: IndexedBlob | undefined; durable: DurableWhen }> => {
      const staged = await stageDeferred(sha256, bytes, indexed);
      return {
        blob: staged.blob,
        durable: async () => {
          await staged.durable();
          events.push(`original ${sha256}`);
        },
      };
    };
    const pixels = new NotedPixels(join(dir, 'pixels'));
    const ingest = new IngestService(store, blobs, pixels, new SharpImaging(), 1 << 20, SILENT_TELEMETRY);
    const { dataset } = await store.putDataset({ name: 'd', width: SIDE, height: SIDE, channels: 3, testPercent: 10 });

    // Single uploads and bulk items (their syncs left to the group commit), all at once.
    const pngs = await Promise.all(Array.from({ length: 24 }, (_, i) => pngOf(i + 1)));
    const stored = await Promise.all(
      pngs.map((bytes, i) => (i % 2 === 0 ? ingest.add('d', { category: `c${i % 3}`, bytes }) : ingest.addTo(dataset, { category: `c${i % 3}`, bytes }, { offload: true }))),
    );
    for (const { sample, duplicate } of stored) {
      assert.equal(duplicate, false);
      const committed = events.indexOf(`commit ${sample.pixelSlot}`);
      assert.ok(committed >= 0, `sample ${sample.id} was committed`);
      const original = events.indexOf(`original ${sample.sha256}`);
      const pixelsDurable = events.indexOf(`pixels ${sample.pixelSlot}`);
      assert.ok(original >= 0 && original < committed, `the original of sample ${sample.id} was durable before its commit`);
      assert.ok(pixelsDurable >= 0 && pixelsDurable < committed, `the pixels of sample ${sample.id} were durable before their commit`);
    }
    // Every sample reads back whole: its original by SHA-256, its pixels at its slot.
    for (const [i, { sample }] of stored.entries()) {
      assert.deepEqual(await blobs.get(sample.sha256), pngs[i]);
      const read = new Uint8Array(SIDE * SIDE * 3);
      await pixels.read(sample.datasetId, { width: SIDE, height: SIDE, channels: 3 }, [sample.pixelSlot], read, 0);
      const expected = patternPixels(SIDE, SIDE, 3, i + 1);
      expected.writeUInt32LE(i + 1, 0);
      assert.deepEqual(Buffer.from(read), expected);
    }
    await blobs.close();
    await pixels.close();
    await store.close();
  });

  it('FilePixelStore.writeDeferred: the records read back at once; a sync asked for after the close is the close’s own', async () => {
    const root = freshDir();
    const shape: DatasetShape = { width: 4, height: 3, channels: 3 };
    const record = (slot: number) => Uint8Array.from({ length: 36 }, (_, i) => (slot * 7 + i) & 255);
    const store = new FilePixelStore(root);
    const first = await store.writeDeferred(5, shape, [0, 1], [record(0), record(1)]);
    const target = new Uint8Array(72);
    await store.read(5, shape, [0, 1], target, 0);
    assert.deepEqual(target, Uint8Array.from([...record(0), ...record(1)]));
    await first();
    const second = await store.writeDeferred(5, shape, [2], [record(2)]);
    await store.close();
    await second();
    const again = new FilePixelStore(root);
    const back = new Uint8Array(36);
    await again.read(5, shape, [2], back, 0);
    assert.deepEqual(back, record(2));
    await again.close();
  });

  it('SegmentBlobStore.stageDeferred: the bytes are appended at once; a sync asked for after the close is the seal’s', async () => {
    const dir = freshDir();
    const database = new SqliteDatabase(`${dir}.db`);
    const store = new SqliteMetadataStore(database);
    await store.migrate();
    const blobs = new SegmentBlobStore(join(dir, 'segments'), join(dir, 'legacy'), new SqliteBlobIndex(database.connection, () => database.syncCommitted()));
    const bytes = await pngOf(99);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { blob, durable } = await blobs.stageDeferred(sha256, bytes);
    assert.ok(blob, 'a blob not indexed yet is staged');
    const path = join(dir, 'segments', `${blob.segment}.seg`);
    const fd = openSync(path, 'r');
    try {
      assert.equal(blob.offset >= HEADER_BYTES, true);
      assert.deepEqual(readRecord(fd, blob.offset, statSync(path).size)?.payload, bytes);
    } finally {
      closeSync(fd);
    }
    await blobs.close();
    await durable();
    const sealed = openSync(path, 'r');
    try {
      assert.equal(isSealed(sealed, statSync(path).size), true);
    } finally {
      closeSync(sealed);
    }
    await store.close();
  });
});
