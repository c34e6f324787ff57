import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDirectory } from './fsync.js';

/** Bytes gathered before one write: large writes, few system calls. */
const FLUSH_BYTES = 4 * 1024 * 1024;

/**
 * One export file, written as `<path>.partial` and renamed into place once whole and on disk:
 * a file under its final name is always complete. Buffers are gathered and written with one
 * writev per few MiB; `append` resolves once the caller may reuse nothing (buffers are kept until
 * written, never copied).
 */
export class ExportFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<ExportFileWriter> {
    return new ExportFileWriter(path, await open(`${path}.partial`, 'w'));
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.written + this.pendingBytes;
  }

  /** Queues the buffers; writes when enough are gathered. The buffers must not change afterwards. */
  async append(...buffers: Buffer[]): Promise<void> {
    for (const buffer of buffers) {
      if (buffer.length === 0) continue;
      this.pending.push(buffer);
      this.pendingBytes += buffer.length;
    }
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    let buffers = this.pending;
    let bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    // writev takes at most IOV_MAX (1024) buffers at once, and may write fewer bytes than asked.
    while (buffers.length > 0) {
      const batch = buffers.slice(0, 1024);
      const { bytesWritten } = await this.handle.writev(batch, this.written);
      this.written += bytesWritten;
      bytes -= bytesWritten;
      let skip = bytesWritten;
      let i = 0;
      while (i < buffers.length && skip >= buffers[i].length) skip -= buffers[i++].length;
      buffers = buffers.slice(i);
      if (skip > 0) buffers[0] = buffers[0].subarray(skip);
    }
  }

  /** Writes the rest, syncs, renames into place and syncs the directory; returns the file's size. */
  async finish(): Promise<number> {
    await this.flush();
    await this.handle.datasync();
    await this.handle.close();
    await rename(`${this.path}.partial`, this.path);
    await fsyncDirectory(dirname(this.path));
    return this.written;
  }

  /** Closes without renaming: the partial file is left to be overwritten by the next attempt. */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}
