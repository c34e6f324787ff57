import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, readdirSync, statSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { mkdir, open, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { WriteBatcher } from '../../lib/write-batcher.js';
import type { BlobIndex, BlobLocation, BlobMove, IndexedBlob } from '../../ports/blob-index.js';
import type { CompactingBlobStore, CompactionReport } from '../../ports/blob-store.js';
import type { DurableWhen } from '../../ports/pixel-store.js';
import { FileBlobStore } from './file.blob-store.js';
import { GroupSync, fsyncDirectory } from './fsync.js';
import {
  HEADER_BYTES,
  RECORD_HEADER_BYTES,
  cutTornTail,
  decodeHeader,
  encodeHeader,
  encodeRecordHeader,
  isSealed,
  sealRecord,
  type SegmentOwner,
} from './segment.format.js';

const fdatasyncAsync = promisify(fdatasync);
const nothingToSync: DurableWhen = async () => undefined;
const SHA256 = /^[0-9a-f]{64}$/;
const SEGMENT_FILE = /^(\d{1,15})\.seg$/;
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 12);
const PROCESS_STARTED_MS = Date.now() - process.uptime() * 1000;
/** An unclosed segment of another host is taken for a crashed writer's once unchanged this long. */
const FOREIGN_MAX_AGE_MS = 60 * 60 * 1000;
/** Copies made by compaction and legacy moves are synced and indexed in groups of about this size. */
const MOVE_GROUP_BYTES = 8 * 1024 * 1024;

export interface SegmentStoreOptions {
  /** A writer closes its segment and begins another once the next record would pass this size. */
  readonly segmentBytes?: number;
  /** A writer closes an idle segment after this long (so that no healthy writer leaves one open for an hour). */
  readonly idleCloseMs?: number;
  /**
   * A closed segment is rewritten by compaction only once it has been closed this long: a record
   * staged for an upload gets its index row with the upload's commit, moments later, and must
   * not look like garbage meanwhile. Default 10 minutes.
   */
  readonly rewriteAfterMs?: number;
  readonly log?: (message: string) => void;
}

interface ActiveSegment {
  readonly id: number;
  readonly fd: number;
  size: number;
  readonly sync: GroupSync;
  /** A write failed and could not be undone: no more appends here. */
  broken: boolean;
  /** Once sealing: the sync that covers every append (none follows), for callers that sync late. */
  lastSync?: Promise<void>;
}

/** getMany reads records at most this far apart together (the bytes between are read and dropped). */
const MAX_READ_GAP = 64 * 1024;
/** … and at most this much in one read. */
const MAX_READ_BYTES = 8 * 1024 * 1024;

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException)?.code === code;
}

function checkSha(sha256: string): void {
  if (!SHA256.test(sha256)) throw new Error(`Not a lowercase hex SHA-256: ${JSON.stringify(sha256).slice(0, 80)}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isCode(error, 'EPERM');
  }
}

/**
 * Originals packed into append-only segment files, `<dir>/<id>.seg`, found through an index in
 * the metadata store (SHA-256 → segment, offset, length). Each writing process appends to a
 * segment of its own (ids are claimed by exclusive create, so replicas sharing the volume never
 * share one); puts arriving together share one fdatasync and one index transaction. A segment's
 * writer seals it when it is full, idle or closing; a segment left unsealed by a dead writer has
 * its torn tail cut at the next start. Originals of earlier releases, one file each under
 * `<legacy dir>`, are read in place until compaction moves them into segments.
 */
export class SegmentBlobStore implements CompactingBlobStore {
  readonly indexed = true;
  private readonly legacy: FileBlobStore;
  private readonly segmentBytes: number;
  private readonly idleCloseMs: number;
  private readonly rewriteAfterMs: number;
  private readonly owner: SegmentOwner;
  private readonly log: (message: string) => void;
  private ready: Promise<void> | undefined;
  private active: ActiveSegment | undefined;
  private nextId = 1;
  private lastAppendMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly closing = new Set<Promise<void>>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly staging = new Map<string, Promise<{ blob: IndexedBlob | undefined; durable: DurableWhen }>>();
  private readonly indexer: WriteBatcher<IndexedBlob, undefined>;
  /** What the start found and repaired: unsealed segments of dead writers, and bytes cut from their tails. */
  readonly recovered = { segments: 0, bytesCut: 0 };

  constructor(
    private readonly dir: string,
    private readonly legacyDir: string,
    private readonly index: BlobIndex,
    options: SegmentStoreOptions = {},
  ) {
    this.legacy = new FileBlobStore(legacyDir);
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.idleCloseMs = options.idleCloseMs ?? 10 * 60 * 1000;
    this.rewriteAfterMs = options.rewriteAfterMs ?? 10 * 60 * 1000;
    this.log = options.log ?? (() => undefined);
    // The pid and start time of this store (not only of the process): two stores of one
    // process on one directory (tests do that) must not take each other for crashed writers.
    this.owner = { host: HOST_TAG, pid: process.pid, startedMs: Date.now() };
    this.indexer = new WriteBatcher(async (entries) => {
      await this.index.add(entries);
      return entries.map(() => undefined);
    });
  }

  /** Creates the directory and repairs what crashed writers left; every method awaits it. */
  init(): Promise<void> {
    this.ready ??= this.start().catch((error) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  async put(sha256: string, bytes: Buffer): Promise<void> {
    checkSha(sha256);
    await this.init();
    const running = this.inFlight.get(sha256);
    if (running) return running;
    const writing = this.write(sha256, bytes).finally(() => this.inFlight.delete(sha256));
    this.inFlight.set(sha256, writing);
    return writing;
  }

  async stage(sha256: string, bytes: Buffer, indexed?: boolean): Promise<IndexedBlob | undefined> {
    const { blob, durable } = await this.stageDeferred(sha256, bytes, indexed);
    await durable();
    return blob;
  }

  async stageDeferred(sha256: string, bytes: Buffer, indexed?: boolean): Promise<{ blob: IndexedBlob | undefined; durable: DurableWhen }> {
    checkSha(sha256);
    await this.init();
    if (indexed === true) return { blob: undefined, durable: nothingToSync };
    const running = this.staging.get(sha256);
    if (running) return running;
    const staging = (async () => {
      if (indexed === undefined && (await this.index.find(sha256))) return { blob: undefined, durable: nothingToSync };
      const { segment, location } = this.append(sha256, bytes);
      return { blob: { sha256, ...location }, durable: () => segment.lastSync ?? segment.sync.sync() };
    })().finally(() => this.staging.delete(sha256));
    this.staging.set(sha256, staging);
    return staging;
  }

  async get(sha256: string): Promise<Buffer> {
    checkSha(sha256);
    await this.init();
    // A compaction or a legacy move may take the bytes away between the lookup and the read:
    // the index then names their new place.
    for (let attempt = 0; ; attempt++) {
      const location = await this.index.find(sha256);
      try {
        if (!location) return await this.legacy.get(sha256);
        return await this.readAt(location, sha256);
      } catch (error) {
        if (!isCode(error, 'ENOENT') || attempt >= 2) throw error;
      }
    }
  }

  /**
   * Many blobs at once, in the order asked (an export's page): each segment is opened once and
   * records lying close together are read in one read, each still checked against its SHA-256.
   * Blobs not in segments, or moved meanwhile, are read one by one through get().
   */
  async getMany(sha256s: readonly string[]): Promise<Buffer[]> {
    for (const sha256 of sha256s) checkSha(sha256);
    await this.init();
    const out = new Array<Buffer>(sha256s.length);
    const locations = await Promise.all(sha256s.map((sha256) => this.index.find(sha256)));
    const bySegment = new Map<number, number[]>();
    const oneByOne: number[] = [];
    locations.forEach((location, i) => {
      if (!location) oneByOne.push(i);
      else bySegment.set(location.segment, [...(bySegment.get(location.segment) ?? []), i]);
    });
    for (const [segment, indices] of bySegment) {
      indices.sort((a, b) => locations[a]!.offset - locations[b]!.offset);
      const handle = await open(this.pathOf(segment), 'r').catch((error: unknown) => {
        if (isCode(error, 'ENOENT')) return undefined;
        throw error;
      });
      if (!handle) {
        oneByOne.push(...indices);
        continue;
      }
      try {
        for (let first = 0; first < indices.length; ) {
          // A run of records with gaps below MAX_READ_GAP, up to MAX_READ_BYTES in one read.
          const start = locations[indices[first]]!.offset;
          let last = first;
          let end = start + RECORD_HEADER_BYTES + locations[indices[first]]!.length;
          while (last + 1 < indices.length) {
            const next = locations[indices[last + 1]]!;
            const nextEnd = next.offset + RECORD_HEADER_BYTES + next.length;
            if (next.offset - end > MAX_READ_GAP || nextEnd - start > MAX_READ_BYTES) break;
            end = Math.max(end, nextEnd);
            last++;
          }
          const run = Buffer.allocUnsafe(end - start);
          const { bytesRead } = await handle.read(run, 0, run.length, start);
          for (let k = first; k <= last; k++) {
            const i = indices[k];
            const location = locations[i]!;
            const from = location.offset - start;
            const record = run.subarray(from, from + RECORD_HEADER_BYTES + location.length);
            const payload = record.subarray(RECORD_HEADER_BYTES);
            const whole = from + record.length <= bytesRead;
            if (whole && record.toString('hex', 8, 40) === sha256s[i] && createHash('sha256').update(payload).digest('hex') === sha256s[i]) out[i] = payload;
            else oneByOne.push(i);
          }
          first = last + 1;
        }
      } finally {
        await handle.close();
      }
    }
    // get() follows a record a compaction moved, reads the legacy layout, and reports damage.
    await Promise.all(oneByOne.map(async (i) => (out[i] = await this.get(sha256s[i]))));
    return out;
  }

  async has(sha256: string): Promise<boolean> {
    checkSha(sha256);
    await this.init();
    return (await this.index.find(sha256)) !== undefined || this.legacy.has(sha256);
  }

  async remove(sha256: string): Promise<void> {
    checkSha(sha256);
    await this.init();
    await this.index.remove([sha256]);
    await this.legacy.remove(sha256);
  }

  async ping(): Promise<void> {
    await this.init();
    const probe = join(this.dir, `.ping.${HOST_TAG}.${process.pid}.${randomBytes(6).toString('hex')}`);
    await writeFile(probe, 'ping', { flag: 'wx' });
    await unlink(probe);
  }

  /** Seals the segment this process writes; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    await Promise.allSettled([...this.inFlight.values(), ...this.staging.values()]);
    if (this.active) this.closing.add(this.seal(this.active));
    this.active = undefined;
    await Promise.allSettled(this.closing);
  }

  async compact(options: { minGarbageShare: number; onMove?: (moves: readonly BlobMove[]) => void }): Promise<CompactionReport> {
    await this.init();
    const before = this.diskUsage();
    const usage = await this.index.usage();
    let blobsMoved = 0;
    for (const { id, size } of this.closedSegments()) {
      const live = usage.get(id) ?? { bytes: 0, blobs: 0 };
      const payload = size - HEADER_BYTES - RECORD_HEADER_BYTES;
      const garbage = payload <= 0 ? 1 : 1 - (live.bytes + live.blobs * RECORD_HEADER_BYTES) / payload;
      if (garbage < options.minGarbageShare) continue;
      blobsMoved += await this.rewrite(id, options.onMove);
    }
    const after = this.diskUsage();
    return { segmentsBefore: before.segments, segmentsAfter: after.segments, bytesBefore: before.bytes, bytesAfter: after.bytes, blobsMoved };
  }

  // ------------------------------------------------------------------ writing

  private async write(sha256: string, bytes: Buffer): Promise<void> {
    if (await this.index.find(sha256)) return;
    const { segment, location } = this.append(sha256, bytes);
    await segment.sync.sync();
    await this.indexer.submit({ sha256, ...location });
  }

  /** Appends one record to this process's segment (synchronously: appends never interleave). */
  private append(sha256: string, bytes: Buffer): { segment: ActiveSegment; location: BlobLocation } {
    if (this.closed) throw new Error('the blob store is closed');
    const segment = this.writable(RECORD_HEADER_BYTES + bytes.length);
    const offset = segment.size;
    try {
      writeFully(segment.fd, [encodeRecordHeader(sha256, bytes.length), bytes], offset);
    } catch (error) {
      // Leave no partial record behind a later one: cut it, or give the segment up.
      try {
        ftruncateSync(segment.fd, offset);
      } catch {
        segment.broken = true;
      }
      throw error;
    }
    segment.size += RECORD_HEADER_BYTES + bytes.length;
    this.lastAppendMs = Date.now();
    return { segment, location: { segment: segment.id, offset, length: bytes.length } };
  }

  /** The segment to append `bytes` to: the current one, or a new one when it is full or broken. */
  private writable(bytes: number): ActiveSegment {
    const current = this.active;
    if (current && !current.broken && (current.size + bytes <= this.segmentBytes || current.size === HEADER_BYTES)) return current;
    if (current) {
      if (current.broken) this.log(`segment ${current.id} left unsealed after a failed write; the next start repairs it`);
      else this.closing.add(this.seal(current));
    }
    this.active = this.createSegment();
    return this.active;
  }

  /** Claims the next free id by exclusive create; its header and directory entry are durable before any record. */
  private createSegment(): ActiveSegment {
    for (;;) {
      const id = this.nextId++;
      const path = this.pathOf(id);
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
      } catch (error) {
        if (isCode(error, 'EEXIST')) continue;
        throw error;
      }
      try {
        writeSync(fd, encodeHeader(this.owner), 0, HEADER_BYTES, 0);
        fdatasyncSync(fd);
        const dirFd = openSync(this.dir, 'r');
        try {
          fdatasyncSync(dirFd);
        } finally {
          closeSync(dirFd);
        }
      } catch (error) {
        closeSync(fd);
        throw error;
      }
      return { id, fd, size: HEADER_BYTES, sync: new GroupSync(() => fdatasyncAsync(fd)), broken: false };
    }
  }

  /** Writes the seal record once every append to the segment is synced, then closes it. */
  private seal(segment: ActiveSegment): Promise<void> {
    segment.lastSync = segment.sync.sync();
    const done = (async () => {
      await segment.lastSync!.catch(() => undefined);
      await segment.sync.idle();
      try {
        writeSync(segment.fd, sealRecord(), 0, RECORD_HEADER_BYTES, segment.size);
        await fdatasyncAsync(segment.fd);
      } catch (error) {
        this.log(`segment ${segment.id} could not be sealed (${(error as Error).message}); the next start repairs it`);
      } finally {
        closeSync(segment.fd);
      }
    })();
    void done.finally(() => this.closing.delete(done));
    return done;
  }

  // ------------------------------------------------------------------ reading

  private async readAt(location: BlobLocation, sha256: string): Promise<Buffer> {
    const handle = await open(this.pathOf(location.segment), 'r');
    try {
      const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + location.length);
      const { bytesRead } = await handle.read(record, 0, record.length, location.offset);
      const payload = record.subarray(RECORD_HEADER_BYTES);
      if (bytesRead !== record.length || record.toString('hex', 8, 40) !== sha256 || createHash('sha256').update(payload).digest('hex') !== sha256) {
        throw new Error(`blob ${sha256} at segment ${location.segment} offset ${location.offset} is damaged`);
      }
      return payload;
    } finally {
      await handle.close();
    }
  }

  // ------------------------------------------------------------------ start and repair

  private pathOf(id: number): string {
    return join(this.dir, `${id}.seg`);
  }

  private segmentIds(): number[] {
    return readdirSync(this.dir)
      .map((name) => SEGMENT_FILE.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
  }

  private async start(): Promise<void> {
    const created = await mkdir(this.dir, { recursive: true });
    if (created) await fsyncDirectory(dirname(this.dir));
    const ids = this.segmentIds();
    this.nextId = (ids.at(-1) ?? 0) + 1;
    for (const id of ids) this.repair(id);
    if (await stat(this.legacyDir).then(() => true, () => false)) await this.legacy.init();
    this.idleTimer = setInterval(() => this.closeIfIdle(), Math.min(60_000, this.idleCloseMs));
    this.idleTimer.unref();
  }

  /** Cuts the torn tail of an unsealed segment whose writer is gone, and seals it. */
  private repair(id: number): void {
    const path = this.pathOf(id);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return;
      throw error;
    }
    try {
      const { size, mtimeMs } = fstatSync(fd);
      const header = Buffer.alloc(HEADER_BYTES);
      const owner = size >= HEADER_BYTES && (readHeader(fd, header), decodeHeader(header));
      if (!owner) {
        // Created but never given its header: it holds no record. Left alone while its writer may still be at it.
        if (Date.now() - mtimeMs > FOREIGN_MAX_AGE_MS) {
          closeSync(fd);
          fd = -1;
          unlinkSync(path);
          this.log(`removed segment ${id}: it has no header`);
        }
        return;
      }
      if (isSealed(fd, size) || !this.writerIsGone(owner, mtimeMs)) return;
      const { cutBytes, end } = cutTornTail(fd);
      writeSync(fd, sealRecord(), 0, RECORD_HEADER_BYTES, end);
      fdatasyncSync(fd);
      this.recovered.segments++;
      this.recovered.bytesCut += cutBytes;
      if (cutBytes > 0) this.log(`segment ${id}: cut a torn tail of ${cutBytes} bytes left by a crashed writer`);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  private writerIsGone(owner: SegmentOwner, mtimeMs: number): boolean {
    if (owner.host !== HOST_TAG) return Date.now() - mtimeMs > FOREIGN_MAX_AGE_MS;
    if (owner.pid === process.pid) return owner.startedMs < PROCESS_STARTED_MS;
    return !isAlive(owner.pid);
  }

  private closeIfIdle(): void {
    const current = this.active;
    if (!current || this.closed || Date.now() - this.lastAppendMs < this.idleCloseMs) return;
    this.active = undefined;
    if (!current.broken) this.closing.add(this.seal(current));
  }

  // ------------------------------------------------------------------ compaction

  /** Segments sealed long enough ago (never one a writer is still appending to), with their sizes. */
  private closedSegments(): { id: number; size: number }[] {
    const out: { id: number; size: number }[] = [];
    for (const id of this.segmentIds()) {
      if (id === this.active?.id) continue;
      let fd: number;
      try {
        fd = openSync(this.pathOf(id), 'r');
      } catch (error) {
        if (isCode(error, 'ENOENT')) continue;
        throw error;
      }
      try {
        const { size, mtimeMs } = fstatSync(fd);
        if (isSealed(fd, size) && Date.now() - mtimeMs >= this.rewriteAfterMs) out.push({ id, size });
      } finally {
        closeSync(fd);
      }
    }
    return out;
  }

  private diskUsage(): { segments: number; bytes: number } {
    let segments = 0;
    let bytes = 0;
    for (const id of this.segmentIds()) {
      try {
        bytes += statSync(this.pathOf(id)).size;
        segments++;
      } catch (error) {
        if (!isCode(error, 'ENOENT')) throw error;
      }
    }
    return { segments, bytes };
  }

  /** Copies the live blobs of one segment into this process's segment, repoints the index, deletes the file. */
  private async rewrite(id: number, onMove?: (moves: readonly BlobMove[]) => void): Promise<number> {
    const entries = await this.index.inSegment(id);
    let moved = 0;
    const handle = await open(this.pathOf(id), 'r');
    try {
      const mover = new MoveGroup(this, onMove);
      for (const entry of entries) {
        const payload = await readPayload(handle, entry);
        moved += await mover.add(entry, this.append(entry.sha256, payload));
      }
      moved += await mover.flush();
    } finally {
      await handle.close();
    }
    await unlink(this.pathOf(id)).catch((error) => {
      if (!isCode(error, 'ENOENT')) throw error;
    });
    await fsyncDirectory(this.dir);
    return moved;
  }

  /** Moves originals of the one-file-per-blob layout into segments, then deletes their files. */
  async moveLegacyOriginals(): Promise<number> {
    await this.init();
    if (!(await stat(this.legacyDir).then(() => true, () => false))) return 0;
    let moved = 0;
    let group: { entry: IndexedBlob; segment: ActiveSegment }[] = [];
    let groupBytes = 0;
    const flush = async () => {
      for (const segment of new Set(group.map((g) => g.segment))) await segment.sync.sync();
      await this.index.add(group.map((g) => g.entry));
      for (const { entry } of group) await this.legacy.remove(entry.sha256);
      moved += group.length;
      group = [];
      groupBytes = 0;
    };
    for await (const sha256 of this.legacy.list()) {
      if (await this.index.find(sha256)) {
        await this.legacy.remove(sha256);
        continue;
      }
      const bytes = await this.legacy.get(sha256).catch((error) => (isCode(error, 'ENOENT') ? undefined : Promise.reject(error)));
      if (!bytes) continue;
      if (createHash('sha256').update(bytes).digest('hex') !== sha256) {
        this.log(`legacy original ${sha256} does not match its name; left in place`);
        continue;
      }
      const { segment, location } = this.append(sha256, bytes);
      group.push({ entry: { sha256, ...location }, segment });
      groupBytes += bytes.length;
      if (groupBytes >= MOVE_GROUP_BYTES) await flush();
    }
    if (group.length > 0) await flush();
    return moved;
  }

  /** For MoveGroup. */
  relocate(moves: readonly BlobMove[]): Promise<number> {
    return this.index.relocate(moves);
  }
}

/** Copies made by a compaction, made durable and indexed a group at a time. */
class MoveGroup {
  private moves: BlobMove[] = [];
  private syncs = new Set<GroupSync>();
  private bytes = 0;

  constructor(
    private readonly store: SegmentBlobStore,
    private readonly onMove?: (moves: readonly BlobMove[]) => void,
  ) {}

  async add(from: IndexedBlob, appended: { segment: ActiveSegment; location: BlobLocation }): Promise<number> {
    this.moves.push({ sha256: from.sha256, from, to: appended.location });
    this.syncs.add(appended.segment.sync);
    this.bytes += from.length;
    return this.bytes >= MOVE_GROUP_BYTES ? this.flush() : 0;
  }

  async flush(): Promise<number> {
    if (this.moves.length === 0) return 0;
    const [moves, syncs] = [this.moves, this.syncs];
    this.moves = [];
    this.syncs = new Set();
    this.bytes = 0;
    for (const sync of syncs) await sync.sync();
    const moved = await this.store.relocate(moves);
    this.onMove?.(moves);
    return moved;
  }
}

function readHeader(fd: number, into: Buffer): void {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, got);
    if (n === 0) break;
    got += n;
  }
}

async function readPayload(handle: FileHandle, entry: IndexedBlob): Promise<Buffer> {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + entry.length);
  const { bytesRead } = await handle.read(record, 0, record.length, entry.offset);
  const payload = record.subarray(RECORD_HEADER_BYTES);
  if (bytesRead !== record.length || record.toString('hex', 8, 40) !== entry.sha256 || createHash('sha256').update(payload).digest('hex') !== entry.sha256) {
    throw new Error(`blob ${entry.sha256} at segment ${entry.segment} offset ${entry.offset} is damaged; the segment is kept`);
  }
  return payload;
}

/** writev at a position until every byte is written (short writes are legal). */
function writeFully(fd: number, buffers: Buffer[], position: number): void {
  let left = buffers.reduce((n, b) => n + b.length, 0);
  while (left > 0) {
    const written = writevSync(fd, buffers, position);
    left -= written;
    position += written;
    if (left > 0) {
      let skip = written;
      while (skip > 0 && buffers.length > 0) {
        if (buffers[0].length <= skip) {
          skip -= buffers[0].length;
          buffers.shift();
        } else {
          buffers[0] = buffers[0].subarray(skip);
          skip = 0;
        }
      }
    }
  }
}
