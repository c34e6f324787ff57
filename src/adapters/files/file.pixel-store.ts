import { closeSync, constants, fdatasync, mkdirSync, openSync, readSync, unlinkSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DatasetShape } from '../../domain/dataset-shape.js';
import { recordBytes } from '../../domain/dataset-shape.js';
import type { DurableWhen, PixelStore } from '../../ports/pixel-store.js';
import { GroupSync, fsyncDirectory } from './fsync.js';

const fdatasyncAsync = promisify(fdatasync);

interface OpenFile {
  readonly fd: number;
  readonly group: GroupSync;
  closed: boolean;
  /** Once closing: the last sync, which covers every write made before the close. */
  lastSync?: Promise<void>;
}

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException)?.code === code;
}

function checkSlots(slots: readonly number[]): void {
  for (const slot of slots) {
    if (!Number.isSafeInteger(slot) || slot < 0) throw new Error(`Invalid pixel slot: ${slot}`);
  }
}

/** Runs of consecutive slots, as [start index in `slots`, length], so each run is one syscall. */
function runs(slots: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < slots.length; ) {
    let n = 1;
    while (i + n < slots.length && slots[i + n] === slots[i] + n) n++;
    out.push([i, n]);
    i += n;
  }
  return out;
}

/**
 * One sparse file per dataset, `<root>/<datasetId>.u8`, record `slot` at `slot × recordBytes`.
 * I/O on the fds is synchronous (small page-cache copies); only fdatasync leaves the event loop.
 * writeDeferred() leaves the sync to its caller (the ingest's group commit); a close syncs first.
 */
export class FilePixelStore implements PixelStore {
  private readonly files = new Map<number, Promise<OpenFile>>();
  private rootReady = false;

  constructor(private readonly rootDir: string) {}

  async write(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<void> {
    await (await this.writeDeferred(datasetId, shape, slots, records))();
  }

  async writeDeferred(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<DurableWhen> {
    const size = recordBytes(shape);
    if (slots.length !== records.length) throw new Error(`${slots.length} slots for ${records.length} records`);
    checkSlots(slots);
    for (const record of records) {
      if (record.length !== size) throw new Error(`A record has ${record.length} bytes, not ${size}`);
    }
    if (slots.length === 0) return async () => undefined;
    const file = await this.open(datasetId, true);
    // Checked after the await and before the synchronous writes: a closed fd number may be reused.
    if (file.closed) throw new Error(`Pixel file of dataset ${datasetId} was closed`);
    for (const [start, n] of runs(slots)) {
      const buffers = records.slice(start, start + n);
      let position = slots[start] * size;
      let left = n * size;
      while (left > 0) {
        const written = writevSync(file.fd, buffers, position);
        left -= written;
        position += written;
        if (left > 0) dropPrefix(buffers, written);
      }
    }
    // A file closed meanwhile (its fd may be reused) was synced by its close.
    return () => (file.closed ? file.lastSync! : file.group.sync());
  }

  async read(datasetId: number, shape: DatasetShape, slots: readonly number[], target: Uint8Array, targetOffset: number): Promise<void> {
    const size = recordBytes(shape);
    checkSlots(slots);
    if (!Number.isSafeInteger(targetOffset) || targetOffset < 0 || targetOffset + slots.length * size > target.length) {
      throw new Error(`Target of ${target.length} bytes cannot hold ${slots.length} records at offset ${targetOffset}`);
    }
    if (slots.length === 0) return;
    const file = await this.open(datasetId, false);
    if (file.closed) throw new Error(`Pixel file of dataset ${datasetId} was closed`);
    for (const [start, n] of runs(slots)) {
      let offset = targetOffset + start * size;
      let position = slots[start] * size;
      let left = n * size;
      while (left > 0) {
        const got = readSync(file.fd, target, offset, left, position);
        if (got === 0) throw new Error(`Slot ${slots[start]}..${slots[start] + n - 1} of dataset ${datasetId} is beyond the end of its pixel file`);
        left -= got;
        offset += got;
        position += got;
      }
    }
  }

  async drop(datasetId: number): Promise<void> {
    const opening = this.files.get(datasetId);
    this.files.delete(datasetId);
    if (opening) await opening.then((file) => this.closeFile(file), () => undefined);
    try {
      unlinkSync(this.pathOf(datasetId));
    } catch (error) {
      if (!isCode(error, 'ENOENT')) throw error;
    }
  }

  async close(): Promise<void> {
    const opening = [...this.files.values()];
    this.files.clear();
    // A failed open is not a close failure; every file is closed even if one close fails.
    const results = await Promise.allSettled(opening.map((p) => p.then((file) => this.closeFile(file), () => undefined)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private pathOf(datasetId: number): string {
    if (!Number.isSafeInteger(datasetId) || datasetId < 0) throw new Error(`Invalid dataset id: ${datasetId}`);
    return join(this.rootDir, `${datasetId}.u8`);
  }

  private open(datasetId: number, create: boolean): Promise<OpenFile> {
    const cached = this.files.get(datasetId);
    if (cached) return cached;
    const opening = this.openFile(datasetId, create);
    this.files.set(datasetId, opening);
    opening.catch(() => {
      if (this.files.get(datasetId) === opening) this.files.delete(datasetId);
    });
    return opening;
  }

  private async openFile(datasetId: number, create: boolean): Promise<OpenFile> {
    const path = this.pathOf(datasetId);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (error) {
      if (!create || !isCode(error, 'ENOENT')) throw error;
      if (!this.rootReady) mkdirSync(this.rootDir, { recursive: true });
      this.rootReady = true;
      // O_EXCL is not needed: this Map entry is the only opener of the path in this process.
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
      try {
        await fsyncDirectory(this.rootDir);
      } catch (syncError) {
        closeSync(fd);
        throw syncError;
      }
    }
    return { fd, group: new GroupSync(() => fdatasyncAsync(fd)), closed: false };
  }

  private async closeFile(file: OpenFile): Promise<void> {
    if (file.closed) return;
    file.closed = true;
    // Writes whose sync was left to their caller are made durable before the fd goes.
    file.lastSync = file.group.sync();
    await file.lastSync.catch(() => undefined);
    await file.group.idle();
    closeSync(file.fd);
  }
}

/** Advances a writev buffer list past `bytes` already written (short writes are rare but legal). */
function dropPrefix(buffers: Uint8Array[], bytes: number): void {
  while (bytes > 0 && buffers.length > 0) {
    const first = buffers[0];
    if (first.length <= bytes) {
      bytes -= first.length;
      buffers.shift();
    } else {
      buffers[0] = first.subarray(bytes);
      bytes = 0;
    }
  }
}
