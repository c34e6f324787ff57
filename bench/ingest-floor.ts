/**
 * The physical floor of ingest (figures 3, 3r and 3b): the same PNG bytes SHA-256'd, decoded
 * (the lean PNG path) and appended with their pixels to one file, one fdatasync per group of
 * concurrent writers. Used in this process (floorReference) and behind a bare HTTP server
 * (ingest-floor-server.ts).
 */
import { createHash } from 'node:crypto';
import { fdatasync, writevSync } from 'node:fs';
import { promisify } from 'node:util';
import { GroupSync } from '../src/adapters/files/fsync.js';
import { decodePng } from '../src/adapters/imaging/png.decoder.js';
import { CHANNELS, SIDE } from './images.js';

const fdatasyncAsync = promisify(fdatasync);
const SHAPE = { width: SIDE, height: SIDE, channels: CHANNELS as 3 };

/** Appends samples to one open file: a 40-byte header (length, SHA-256), the PNG, its pixels. */
export class FloorAppender {
  private size = 0;
  private readonly group: GroupSync;

  constructor(private readonly fd: number) {
    this.group = new GroupSync(() => fdatasyncAsync(fd));
  }

  /** Settles once an fdatasync that began after the append has ended; gives the SHA-256. */
  async store(png: Buffer): Promise<Buffer> {
    const digest = createHash('sha256').update(png).digest();
    const pixels = decodePng(png, SHAPE);
    if (!pixels) throw new Error('the floor decodes only what the lean path decodes');
    const header = Buffer.alloc(40);
    header.writeUInt32BE(png.length, 4);
    digest.copy(header, 8);
    const at = this.size;
    this.size += header.length + png.length + pixels.length;
    writevSync(this.fd, [header, png, pixels], at);
    await this.group.sync();
    return digest;
  }

  /** Settles once no fdatasync is running or queued. */
  idle(): Promise<void> {
    return this.group.idle();
  }
}
