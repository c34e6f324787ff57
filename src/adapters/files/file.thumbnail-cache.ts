import { randomBytes } from 'node:crypto';
import { mkdir, opendir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ThumbnailCache } from '../../ports/thumbnail-cache.js';

const SHA256 = /^[0-9a-f]{64}$/;
const VARIANT = /^[a-z0-9]{1,8}-\d{1,5}$/;
const FILE = /^([0-9a-f]{64})-([a-z0-9]{1,8}-\d{1,5})\.webp$/;

/**
 * Previews as files under one directory (the data dir's `thumbnails/`): `<ab>/<sha256>-<variant>.webp`.
 * Written to a temporary name and renamed into place, so replicas sharing the volume never read
 * a partial file; not synced, since a preview lost in a crash is simply made again.
 */
export class FileThumbnailCache implements ThumbnailCache {
  constructor(private readonly root: string) {}

  private path(sha256: string, variant: string): string {
    if (!SHA256.test(sha256) || !VARIANT.test(variant)) throw new Error(`not a thumbnail key: ${sha256}/${variant}`);
    return join(this.root, sha256.slice(0, 2), `${sha256}-${variant}.webp`);
  }

  async get(sha256: string, variant: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(sha256, variant));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(sha256: string, variant: string, bytes: Buffer): Promise<void> {
    const path = this.path(sha256, variant);
    const dir = join(this.root, sha256.slice(0, 2));
    await mkdir(dir, { recursive: true });
    const temporary = join(dir, `.${sha256}-${variant}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFile(temporary, bytes);
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async *list(): AsyncIterable<{ sha256: string; variant: string }> {
    let top;
    try {
      top = await opendir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for await (const folder of top) {
      if (!folder.isDirectory() || !/^[0-9a-f]{2}$/.test(folder.name)) continue;
      for await (const entry of await opendir(join(this.root, folder.name))) {
        const match = FILE.exec(entry.name);
        if (entry.isFile() && match) yield { sha256: match[1], variant: match[2] };
      }
    }
  }

  async remove(sha256: string, variant: string): Promise<void> {
    await rm(this.path(sha256, variant), { force: true });
  }
}
