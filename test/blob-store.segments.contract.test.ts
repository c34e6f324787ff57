/**
 * The BlobStore contract, run over every implementation (test/support/blob-stores.ts): put, get,
 * dedupe, concurrent writers, a reopen, and a crash mid-append (a child SIGKILLed while it writes:
 * every acknowledged blob is intact after a reopen). Then what only the segment store promises:
 * the torn tail a crash leaves is cut, segments roll and are sealed, compaction gives disk space
 * back while readers and writers carry on, and originals of the per-file layout are read in place
 * and moved into segments by compaction.
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
import { openBlobStore, type BlobStoreKind, type OpenedBlobStore } from './support/blob-stores.js';
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

interface Implementation {
  readonly kind: BlobStoreKind;
  readonly skip: false | string;
  /** Per data dir: the PostgreSQL URL of a schema of its own. */
  databaseUrl(dir: string): Promise<string | undefined>;
}

const IMPLEMENTATIONS: Implementation[] = [
  { kind: 'segments+sqlite', skip: false, databaseUrl: async () => undefined },
  { kind: 'segments+postgres', skip: pgSkip, databaseUrl: (dir) => useSchema(schemaOf(dir)) },
  { kind: 'files', skip: false, databaseUrl: async () => undefined },
];

/** Bytes of every file of the store's own area (segments/ or blobs/). */
function footprint(dir: string, kind: BlobStoreKind): number {
  const area = join(dir, kind === 'files' ? 'blobs' : 'segments');
  let total = 0;
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const info = statSync(full);
      if (info.isDirectory()) walk(full);
      else total += info.size;
    }
  };
  walk(area);
  return total;
}

const schemas = new Map<string, string>();
/** One PostgreSQL schema per data dir, as one database per deployment. */
function schemaOf(dir: string): string {
  if (!schemas.has(dir)) schemas.set(dir, uniqueSchema('blobs'));
  return schemas.get(dir)!;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Runs the writer child until it has acknowledged at least `count` blobs, then SIGKILLs it. */
async function killWriterAfter(kind: BlobStoreKind, dir: string, databaseUrl: string | undefined, count: number): Promise<Set<number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'support', 'blob-writer.child.ts'), kind, dir, ...(databaseUrl ? [databaseUrl] : [])], {
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
  describe(`BlobStore contract: ${impl.kind}`, { skip: impl.skip }, () => {
    const open = async (dir: string, options = {}) => openBlobStore(impl.kind, dir, { databaseUrl: await impl.databaseUrl(dir), ...options });

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
      const once = footprint(dir, impl.kind);
      for (let i = 0; i < 5; i++) await blobs.put(sha, bytes);
      assert.equal(footprint(dir, impl.kind), once);
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
      const acknowledged = await killWriterAfter(impl.kind, dir, databaseUrl, 300);
      const reopened = await openBlobStore(impl.kind, dir, { databaseUrl });
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
  const open = (dir: string, options = {}): Promise<OpenedBlobStore> => openBlobStore('segments+sqlite', dir, options);
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
    const acknowledged = await killWriterAfter('segments+sqlite', dir, undefined, 400);
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
    const before = footprint(dir, 'segments+sqlite');

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
    const afterBytes = footprint(dir, 'segments+sqlite');
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
    const legacy = new FileBlobStore(join(dir, 'blobs'));
    const old = Array.from({ length: 30 }, (_, i) => blobNumbered(i, 'old'));
    for (const { sha, bytes } of old) await legacy.put(sha, bytes);
    const { blobs, close } = await open(dir);
    for (const { sha, bytes } of old) {
      assert.equal(await blobs.has(sha), true);
      assert.ok((await blobs.get(sha)).equals(bytes));
    }
    assert.equal(await (blobs as CompactingBlobStore).moveLegacyOriginals(), 30);
    assert.equal(footprint(dir, 'files'), 0);
    for (const { sha, bytes } of old) assert.ok((await blobs.get(sha)).equals(bytes));
    await close();
  });
});
