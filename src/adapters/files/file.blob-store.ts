import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { BlobStore } from '../../ports/blob-store.js';
import { GroupSync, fsyncDirectory } from './fsync.js';

const SHA256 = /^[0-9a-f]{64}$/;
const PROCESS_STARTED_MS = Date.now() - process.uptime() * 1000;
/**
 * Replicas in other containers or on other hosts share `tmp/` on a shared volume, and their pids
 * mean nothing here: their temp files are told apart by a tag of the host name, and removed only
 * once this old (a write takes seconds; older is what a crash left).
 */
const FOREIGN_TEMP_MAX_AGE_MS = 60 * 60 * 1000;
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 12);
/** Before 16 folders, originals were at `<first two hex digits>/<sha256>`: moved at start. */
const TWO_DIGIT_FOLDER = /^[0-9a-f]{2}$/;

function checkSha(sha256: string): void {
  if (!SHA256.test(sha256)) throw new Error(`Not a lowercase hex SHA-256: ${JSON.stringify(sha256).slice(0, 80)}`);
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Content-addressed files at `<root>/<first hex digit>/<sha256>`, written to `<root>/tmp` then
 * renamed in. Sixteen folders, not more, so that concurrent writers often share one folder fsync.
 */
export class FileBlobStore implements BlobStore {
  readonly indexed = false;
  private readonly tmpDir: string;
  private ready: Promise<void> | undefined;
  private readonly shardDirs = new Map<string, Promise<void>>();
  private readonly dirSyncs = new Map<string, GroupSync>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly rootDir: string) {
    this.tmpDir = join(rootDir, 'tmp');
  }

  /** Creates the store and removes temp files a crash left behind; every method awaits it. */
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
    // A concurrent put of the same blob may have renamed but not yet synced the directory.
    const running = this.inFlight.get(sha256);
    if (running) return running;
    const writing = this.write(sha256, bytes).finally(() => this.inFlight.delete(sha256));
    this.inFlight.set(sha256, writing);
    return writing;
  }

  async get(sha256: string): Promise<Buffer> {
    checkSha(sha256);
    return readFile(this.pathOf(sha256));
  }

  async has(sha256: string): Promise<boolean> {
    checkSha(sha256);
    try {
      return (await stat(this.pathOf(sha256))).isFile();
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async remove(sha256: string): Promise<void> {
    checkSha(sha256);
    await unlink(this.pathOf(sha256)).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }

  /** The SHA-256 of every original stored, folder by folder. */
  async *list(): AsyncGenerator<string> {
    const folders = await readdir(this.rootDir).catch((error) => (isNotFound(error) ? [] : Promise.reject(error)));
    for (const folder of folders) {
      if (!/^[0-9a-f]$/.test(folder)) continue;
      const names = await readdir(join(this.rootDir, folder)).catch((error) => (isNotFound(error) ? [] : Promise.reject(error)));
      for (const name of names) if (SHA256.test(name) && name.startsWith(folder)) yield name;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.inFlight.values()].map((writing) => writing.catch(() => undefined)));
  }

  async ping(): Promise<void> {
    await this.init();
    const probe = join(this.tmpDir, `${this.tempName()}.ping`);
    await writeFile(probe, 'ping', { flag: 'wx' });
    await unlink(probe);
  }

  private pathOf(sha256: string): string {
    return join(this.rootDir, sha256.slice(0, 1), sha256);
  }

  // Host tag and pid let a start-up sweep spare temp files of other live processes sharing the directory.
  private tempName(): string {
    return `${HOST_TAG}.${process.pid}.${randomBytes(8).toString('hex')}`;
  }

  private async start(): Promise<void> {
    const created = await mkdir(this.rootDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    if (created) await fsyncDirectory(dirname(this.rootDir));
    for (const name of await readdir(this.tmpDir)) await this.sweepTemp(name);
    await this.moveTwoDigitFolders();
  }

  /** Removes a temp file a crash left behind, sparing those other live processes are writing. */
  private async sweepTemp(name: string): Promise<void> {
    const path = join(this.tmpDir, name);
    const [host, pidText] = name.split('.');
    const info = await stat(path).catch(() => undefined);
    if (!info) return;
    if (host === HOST_TAG) {
      const pid = Number(pidText);
      const mine = pid === process.pid;
      if (Number.isInteger(pid) && pid > 0 && !mine && isAlive(pid)) return;
      // Same pid: an earlier incarnation (containers reuse pids) only if older than this process.
      if (mine && info.mtimeMs >= PROCESS_STARTED_MS) return;
    } else if (Date.now() - info.mtimeMs < FOREIGN_TEMP_MAX_AGE_MS) {
      return;
    }
    await unlink(path).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }

  /**
   * Moves originals from the older `<aa>/<sha256>` layout into `<a>/<sha256>`. Each rename is
   * atomic, so a crash (or another replica doing the same) leaves every file in one place or the
   * other, and the next start finishes the move.
   */
  private async moveTwoDigitFolders(): Promise<void> {
    for (const folder of await readdir(this.rootDir)) {
      if (!TWO_DIGIT_FOLDER.test(folder)) continue;
      const from = join(this.rootDir, folder);
      const names = await readdir(from).catch((error) => (isNotFound(error) ? [] : Promise.reject(error)));
      if (names.length > 0) {
        const shard = join(this.rootDir, folder.slice(0, 1));
        await this.ensureShard(shard);
        for (const name of names) {
          if (!SHA256.test(name)) continue;
          await rename(join(from, name), join(shard, name)).catch((error) => {
            if (!isNotFound(error)) throw error;
          });
        }
        await this.dirSync(shard).sync();
      }
      await rmdir(from).catch(() => undefined);
    }
  }

  private async write(sha256: string, bytes: Buffer): Promise<void> {
    const target = this.pathOf(sha256);
    if (await this.has(sha256)) return;
    const shard = dirname(target);
    await this.ensureShard(shard);
    const temp = join(this.tmpDir, this.tempName());
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await this.dirSync(shard).sync();
  }

  private ensureShard(shard: string): Promise<void> {
    let ready = this.shardDirs.get(shard);
    if (!ready) {
      // The root is synced on first use even when the shard existed: a crashed run may have
      // created it without syncing, and this costs at most 16 shared syncs per process.
      ready = mkdir(shard, { recursive: true }).then(() => this.dirSync(this.rootDir).sync());
      ready.catch(() => this.shardDirs.delete(shard));
      this.shardDirs.set(shard, ready);
    }
    return ready;
  }

  private dirSync(dir: string): GroupSync {
    let group = this.dirSyncs.get(dir);
    if (!group) {
      group = new GroupSync(() => fsyncDirectory(dir));
      this.dirSyncs.set(dir, group);
    }
    return group;
  }
}
