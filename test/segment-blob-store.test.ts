/**
 * The segment store (test/blob-store.contract.test.ts runs the shared BlobStore contract on it,
 * its index on SQLite). Here: the same promises with its index on PostgreSQL — put, get, dedupe,
 * concurrent writers, a reopen, a SIGKILLed writer — and what only the segment store promises:
 * the torn tail a crash leaves is cut, segments roll and are sealed, compaction gives disk space
 * back while readers and writers carry on, and originals of the per-file layout are read in place
 * and moved into segments.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileBlobStore } from '../src/adapters/files/file.blob-store.js';
import { SegmentBlobStore } from '../src/adapters/files/segment.blob-store.js';
import { HEADER_BYTES, RECORD_HEADER_BYTES, encodeRecordHeader, isSealed, readRecord } from '../src/adapters/files/segment.format.js';
import type { CompactingBlobStore } from '../src/ports/blob-store.js';
import { blobNumbered } from './support/blob-bytes.js';
import { openSegmentStore, type OpenedSegmentStore } from './support/blob-stores.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, uniqueSchema, useSchema } from './support/postgres.js';

await requirePostgresInCi();
const pgSkip = await postgresSkip();

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sensory-blobs-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
  await dropSchemas();
});

let dirs = 0;
const freshDir = () => join(scratch, `d${++dirs}`);

type Backend = 'sqlite' | 'postgres';

interface Implementation {
  readonly backend: Backend;
  readonly skip: false | string;
  /** Per store directory: the PostgreSQL URL of a schema of its own. */
  databaseUrl(dir: string): Promise<string | undefined>;
}

const IMPLEMENTATIONS: Implementation[] = [{ backend: 'postgres', skip: pgSkip, databaseUrl: (dir) => useSchema(schemaOf(dir)) }];

/** Bytes of every segment file of the store. */
function footprint(dir: string): number {
  const area = join(dir, 'segments');
  return readdirSync(area).reduce((total, name) => total + statSync(join(area, name)).size, 0);
}

const schemas = new Map<string, string>();
/** One PostgreSQL schema per data dir, as one database per deployment. */
function schemaOf(dir: string): string {
  if (!schemas.has(dir)) schemas.set(dir, uniqueSchema('blobs'));
  return schemas.get(dir)!;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Runs the writer child until it has acknowledged at least `count` blobs, then SIGKILLs it. */
async function killWriterAfter(backend: Backend, dir: string, databaseUrl: string | undefined, count: number): Promise<Set<number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'support', 'segment-writer.child.ts'), backend, dir, ...(databaseUrl ? [databaseUrl] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acknowledged = new Set<number>();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.startsWith('ok ')) acknowledged.add(Number(line.slice(3)));
      if (acknowledged.size >= count) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`))));
  });
  await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  return acknowledged;
}

for (const impl of IMPLEMENTATIONS) {
  describe(`segment store with its index on ${impl.backend}`, { skip: impl.skip }, () => {
    const open = async (dir: string, options = {}) => openSegmentStore(dir, impl.backend, { databaseUrl: await impl.databaseUrl(dir), ...options });

    it('puts, gets, has and removes', async () => {
      const dir = freshDir();
      const { blobs, close } = await open(dir);
      const { sha, bytes } = blobNumbered(1);
      assert.equal(await blobs.has(sha), false);
      await assert.rejects(blobs.get(sha));
      await blobs.put(sha, bytes);
      assert.equal(await blobs.has(sha), true);
      assert.ok((await blobs.get(sha)).equals(bytes));
      await blobs.remove(sha);
      assert.equal(await blobs.has(sha), false);
      await assert.rejects(blobs.get(sha));
      await assert.rejects(blobs.put('not-a-sha', bytes), /SHA-256/);
      await blobs.ping();
      await close();
    });

    it('dedupes: the same bytes put again, at once or later, are stored once', async () => {
      const dir = freshDir();
      const { blobs, close } = await open(dir);
      const { sha, bytes } = blobNumbered(2);
      await Promise.all(Array.from({ length: 10 }, () => blobs.put(sha, bytes)));
      const once = footprint(dir);
      for (let i = 0; i < 5; i++) await blobs.put(sha, bytes);
      assert.equal(footprint(dir), once);
      assert.ok(once < bytes.length * 2, `${once} bytes on disk for one blob of ${bytes.length}`);
      assert.ok((await blobs.get(sha)).equals(bytes));
      await close();
    });

    it('keeps what concurrent writers (two stores on one directory) put, across a reopen', async () => {
      const dir = freshDir();
      const first = await open(dir);
      const second = await open(dir);
      const writes = [first, second].map((store, s) =>
        Promise.all(Array.from({ length: 150 }, (_, i) => blobNumbered(s * 1000 + i)).map(({ sha, bytes }) => store.blobs.put(sha, bytes))),
      );
      await Promise.all(writes);
      await first.close();
      await second.close();
      const reopened = await open(dir);
      for (const s of [0, 1]) {
        for (let i = 0; i < 150; i++) {
          const { sha, bytes } = blobNumbered(s * 1000 + i);
          assert.ok((await reopened.blobs.get(sha)).equals(bytes), `blob ${s}/${i}`);
        }
      }
      await reopened.close();
    });

    it('keeps every acknowledged blob when its writer is SIGKILLed mid-append', async () => {
      const dir = freshDir();
      const databaseUrl = await impl.databaseUrl(dir);
      const acknowledged = await killWriterAfter(impl.backend, dir, databaseUrl, 300);
      const reopened = openSegmentStore(dir, impl.backend, { databaseUrl });
      for (const n of acknowledged) {
        const { sha, bytes } = blobNumbered(n);
        assert.ok((await reopened.blobs.get(sha)).equals(bytes), `acknowledged blob ${n} lost or damaged`);
      }
      // And the store takes new blobs after the crash.
      const { sha, bytes } = blobNumbered(99_999);
      await reopened.blobs.put(sha, bytes);
      assert.ok((await reopened.blobs.get(sha)).equals(bytes));
      await reopened.close();
    });
  });
}

describe('segment store', () => {
  const open = async (dir: string, options = {}): Promise<OpenedSegmentStore> => {
    const opened = openSegmentStore(dir, 'sqlite', options);
    await opened.blobs.init();
    return opened;
  };
  const segmentFiles = (dir: string) =>
    readdirSync(join(dir, 'segments'))
      .filter((name) => name.endsWith('.seg'))
      .map((name) => join(dir, 'segments', name));

  /** Every record of a segment file, checked: its header, whole records, then (when sealed) the seal. */
  function scan(path: string): { records: number; sealed: boolean; end: number; size: number } {
    const fd = openSync(path, 'r');
    try {
      const size = statSync(path).size;
      let offset = HEADER_BYTES;
      let records = 0;
      for (let record = readRecord(fd, offset, size); record; record = readRecord(fd, offset, size)) {
        offset += RECORD_HEADER_BYTES + record.payload.length;
        records++;
      }
      return { records, sealed: isSealed(fd, size), end: offset, size };
    } finally {
      closeSync(fd);
    }
  }

  it('cuts the torn tail a crashed writer left, and keeps every acknowledged record', async () => {
    const dir = freshDir();
    const acknowledged = await killWriterAfter('sqlite', dir, undefined, 400);
    // What a crash in the middle of a write leaves: a record header and part of its payload.
    const newest = segmentFiles(dir).sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs).at(-1)!;
    const fd = openSync(newest, 'a');
    const { sha, bytes } = blobNumbered(77_777);
    writeSync(fd, encodeRecordHeader(sha, bytes.length));
    writeSync(fd, bytes.subarray(0, 1234));
    closeSync(fd);
    const tornSize = statSync(newest).size;

    const reopened = await open(dir);
    const store = reopened.blobs as SegmentBlobStore;
    assert.ok(store.recovered.segments >= 1);
    assert.ok(store.recovered.bytesCut >= RECORD_HEADER_BYTES + 1234, `cut ${store.recovered.bytesCut} bytes`);
    for (const path of segmentFiles(dir)) {
      const { sealed, end, size } = scan(path);
      assert.ok(sealed, `${path} is not sealed after the repair`);
      assert.equal(end + RECORD_HEADER_BYTES, size, `${path} has bytes after its last whole record`);
    }
    assert.ok(statSync(newest).size < tornSize);
    for (const n of acknowledged) assert.ok((await reopened.blobs.get(blobNumbered(n).sha)).equals(blobNumbered(n).bytes));
    assert.equal(await reopened.blobs.has(sha), false);
    await reopened.close();
  });

  it('getMany gives what get gives, in the order asked, across segments, after a removal and a compaction', async () => {
    const dir = freshDir();
    const { blobs, close } = await open(dir, { segmentBytes: 300_000 });
    const store = blobs as SegmentBlobStore & CompactingBlobStore;
    const all = Array.from({ length: 60 }, (_, i) => blobNumbered(i, 'm'));
    for (const { sha, bytes } of all) await store.put(sha, bytes);
    const order = [...all.keys()].sort((a, b) => ((a * 37) % 61) - ((b * 37) % 61));
    const got = await store.getMany(order.map((i) => all[i].sha));
    order.forEach((i, k) => assert.ok(got[k].equals(all[i].bytes), `blob ${i}`));
    // Every other blob removed, then the segments compacted: the rest moved.
    for (let i = 0; i < all.length; i += 2) await store.remove(all[i].sha);
    await store.compact({ minGarbageShare: 0.1 });
    const kept = all.filter((_, i) => i % 2 === 1);
    const again = await store.getMany(kept.map((b) => b.sha));
    kept.forEach((b, k) => assert.ok(again[k].equals(b.bytes)));
    await assert.rejects(store.getMany([kept[0].sha, all[0].sha]), 'a missing blob rejects');
    assert.deepEqual(await store.getMany([]), []);
    await close();
  });

  it('rolls to a new segment when one is full and seals each on close', async () => {
    const dir = freshDir();
    const { blobs, close } = await open(dir, { segmentBytes: 200_000 });
    for (let i = 0; i < 40; i++) await blobs.put(blobNumbered(i).sha, blobNumbered(i).bytes);
    await close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 4, `${files.length} segments`);
    let records = 0;
    for (const path of files) {
      const scanned = scan(path);
      assert.ok(scanned.sealed && scanned.end + RECORD_HEADER_BYTES === scanned.size, path);
      assert.ok(scanned.size <= 200_000 + RECORD_HEADER_BYTES || scanned.records === 1);
      records += scanned.records;
    }
    assert.equal(records, 40);
  });

  it('compacts online: space comes back, readers and writers carry on, removed blobs stay gone', async () => {
    const dir = freshDir();
    const { blobs, close } = await open(dir, { segmentBytes: 256 * 1024 });
    const store = blobs as CompactingBlobStore;
    const all = Array.from({ length: 300 }, (_, i) => blobNumbered(i, 'c'));
    for (const { sha, bytes } of all) await store.put(sha, bytes);
    const removed = all.filter((_, i) => i % 3 !== 0);
    const kept = all.filter((_, i) => i % 3 === 0);
    for (const { sha } of removed) await store.remove(sha);
    const before = footprint(dir);

    let stop = false;
    let reads = 0;
    const readers = Array.from({ length: 4 }, async (_, r) => {
      for (let i = r; !stop; i++) {
        const { sha, bytes } = kept[i % kept.length];
        assert.ok((await store.get(sha)).equals(bytes), `read of ${sha} during compaction`);
        reads++;
      }
    });
    const fresh = Array.from({ length: 60 }, (_, i) => blobNumbered(1000 + i, 'c'));
    const writer = (async () => {
      for (const { sha, bytes } of fresh) await store.put(sha, bytes);
    })();
    const report = await store.compact({ minGarbageShare: 0.3 });
    await writer;
    stop = true;
    await Promise.all(readers);

    assert.ok(reads > 0);
    assert.ok(report.blobsMoved > 0 && report.segmentsAfter < report.segmentsBefore + 2, JSON.stringify(report));
    const afterBytes = footprint(dir);
    const freshBytes = fresh.reduce((n, b) => n + b.bytes.length + RECORD_HEADER_BYTES, 0);
    assert.ok(afterBytes - freshBytes < before * 0.6, `before ${before}, after ${afterBytes} (${freshBytes} of new blobs)`);
    for (const { sha, bytes } of [...kept, ...fresh]) assert.ok((await store.get(sha)).equals(bytes));
    for (const { sha } of removed) assert.equal(await store.has(sha), false);
    await close();
    const reopened = await open(dir);
    for (const { sha, bytes } of [...kept, ...fresh]) assert.ok((await reopened.blobs.get(sha)).equals(bytes));
    await reopened.close();
  });

  it('reads originals of the per-file layout in place, and compaction moves them into segments', async () => {
    const dir = freshDir();
    const legacy = new FileBlobStore(dir);
    const old = Array.from({ length: 30 }, (_, i) => blobNumbered(i, 'old'));
    for (const { sha, bytes } of old) await legacy.put(sha, bytes);
    const { blobs, close } = await open(dir);
    for (const { sha, bytes } of old) {
      assert.equal(await blobs.has(sha), true);
      assert.ok((await blobs.get(sha)).equals(bytes));
    }
    assert.equal(await (blobs as CompactingBlobStore).moveLegacyOriginals(), 30);
    assert.deepEqual(readdirSync(dir, { recursive: true }).filter((name) => /[0-9a-f]{64}$/.test(String(name))), [], 'no original left in the per-file layout');
    for (const { sha, bytes } of old) assert.ok((await blobs.get(sha)).equals(bytes));
    await close();
  });
});
