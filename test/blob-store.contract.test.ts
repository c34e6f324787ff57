/**
 * The BlobStore contract: one suite, run against every implementation in BLOB_STORES
 * (test/support/blob-stores.ts). It uses only the interface, and the store's directory only as
 * a whole (removed, or made unwritable).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { BLOB_STORES } from './support/blob-stores.js';
import { ROOT, removeTempDirs, sha256, tempDir } from './support/process.js';

const WRITER = fileURLToPath(new URL('./support/blob-writer.child.ts', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

after(removeTempDirs);
/** A directory for one store, not made yet: the store makes it. */
const freshDir = () => join(tempDir('sensory-blobs-'), 'store');

/** Sets the mode of `directory` and of every directory below it. */
function chmodTree(directory: string, mode: number): void {
  for (const entry of readdirSync(directory, { withFileTypes: true })) if (entry.isDirectory()) chmodTree(join(directory, entry.name), mode);
  chmodSync(directory, mode);
}

function blob(n: number): { sha: string; bytes: Buffer } {
  const bytes = Buffer.from(`sample number ${n} `.repeat(n + 1));
  return { sha: sha256(bytes), bytes };
}

interface KilledWriter {
  /** Blobs whose put had started. */
  readonly started: string[];
  /** Blobs whose put had returned. */
  readonly finished: string[];
}

/** Runs the writer process on `directory` and SIGKILLs it `delayMs` after it has started its `puts`-th put. */
async function killWriterDuringPut(implementation: string, directory: string, puts: number, delayMs: number): Promise<KilledWriter> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, implementation, directory], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const started: string[] = [];
  const finished: string[] = [];
  let stderr = '';
  let pending = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('close', () => reject(new Error(`the writer exited before its put number ${puts}:\n${stderr}`)));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [word, sha] = line.split(' ');
        if (word === 'done') finished.push(sha);
        if (word !== 'put') continue;
        started.push(sha);
        if (started.length === puts) setTimeout(() => child.kill('SIGKILL') && resolve(), delayMs);
      }
    });
  });
  await exited;
  return { started, finished };
}

for (const implementation of BLOB_STORES) {
  describe(`BlobStore contract: ${implementation.name}`, () => {
    it('puts, gets, has and removes a blob; a put of bytes already there changes nothing', async () => {
      const store = implementation.open(freshDir());
      const { sha, bytes } = blob(1);
      assert.equal(await store.has(sha), false);
      await store.put(sha, bytes);
      assert.equal(await store.has(sha), true);
      assert.ok((await store.get(sha)).equals(bytes));
      await store.put(sha, bytes);
      assert.ok((await store.get(sha)).equals(bytes));
      await store.remove(sha);
      await store.remove(sha);
      assert.equal(await store.has(sha), false);
      await assert.rejects(store.get(sha));
    });

    it('refuses a malformed SHA-256', async () => {
      const store = implementation.open(freshDir());
      for (const bad of ['', 'ABCDEF'.padEnd(64, '0'), '../'.padEnd(64, 'a'), 'a'.repeat(63)]) {
        await assert.rejects(store.put(bad, Buffer.from('x')));
        await assert.rejects(store.get(bad));
      }
    });

    it('keeps one copy of bytes put many times at once: one remove removes it', async () => {
      const store = implementation.open(freshDir());
      const { sha, bytes } = blob(7);
      await Promise.all(Array.from({ length: 10 }, () => store.put(sha, bytes)));
      assert.ok((await store.get(sha)).equals(bytes));
      await store.remove(sha);
      assert.equal(await store.has(sha), false);
    });

    it('stores 50 concurrent puts (and duplicate puts) readable, by a new instance too', async () => {
      const directory = freshDir();
      const store = implementation.open(directory);
      const blobs = Array.from({ length: 50 }, (_, n) => blob(n));
      await Promise.all([...blobs, ...blobs.slice(0, 10)].map(({ sha, bytes }) => store.put(sha, bytes)));
      for (const { sha, bytes } of blobs) assert.ok((await store.get(sha)).equals(bytes));
      const again = implementation.open(directory);
      for (const { sha, bytes } of blobs) assert.ok((await again.get(sha)).equals(bytes));
    });

    it('takes concurrent writers on one directory (as replicas sharing a volume), of the same and of different blobs', async () => {
      const directory = freshDir();
      const [first, second] = [implementation.open(directory), implementation.open(directory)];
      const shared = Array.from({ length: 20 }, (_, n) => blob(100 + n));
      const own = Array.from({ length: 20 }, (_, n) => blob(200 + n));
      await Promise.all([
        ...shared.flatMap(({ sha, bytes }) => [first.put(sha, bytes), second.put(sha, bytes)]),
        ...own.map(({ sha, bytes }, i) => (i % 2 === 0 ? first : second).put(sha, bytes)),
      ]);
      const reader = implementation.open(directory);
      for (const { sha, bytes } of [...shared, ...own]) assert.ok((await reader.get(sha)).equals(bytes));
    });

    it('leaves each blob whole or absent when its writer is SIGKILLed in the middle of puts; finished puts stay', { timeout: 120_000 }, async () => {
      const directory = freshDir();
      const started = new Set<string>();
      const finished = new Set<string>();
      let interrupted = 0;
      // Kills at several moments of a put (a blob takes some milliseconds to write), until
      // enough have landed inside one: the writer is then between its `put` and `done` lines.
      for (let round = 0; round < 30 && interrupted < 8; round++) {
        const killed = await killWriterDuringPut(implementation.name, directory, 1 + (round % 2), [0, 1, 2, 4, 8][round % 5]);
        killed.started.forEach((sha) => started.add(sha));
        killed.finished.forEach((sha) => finished.add(sha));
        if (killed.started.length > killed.finished.length) interrupted++;
      }
      assert.ok(interrupted >= 8, `only ${interrupted} kill(s) in 30 landed inside a put`);
      const store = implementation.open(directory);
      for (const sha of finished) assert.equal(await store.has(sha), true, `finished put ${sha} is gone`);
      for (const sha of started) {
        if (!(await store.has(sha))) {
          await assert.rejects(store.get(sha));
          continue;
        }
        assert.equal(sha256(await store.get(sha)), sha, `blob ${sha} is there, but not whole`);
      }
      await store.ping();
      const { sha, bytes } = blob(3);
      await store.put(sha, bytes);
      assert.ok((await store.get(sha)).equals(bytes));
    });

    it('ping passes on a fresh directory, and fails once the directory is gone or a file stands in its place', async () => {
      const directory = freshDir();
      const store = implementation.open(directory);
      await store.ping();
      await rm(directory, { recursive: true });
      await assert.rejects(store.ping());
      await writeFile(directory, 'not a directory');
      await assert.rejects(store.ping());
      await assert.rejects(implementation.open(directory).ping());
    });

    it('ping fails on a directory without write permission', { skip: IS_ROOT && 'root writes whatever the permissions say' }, async () => {
      const directory = freshDir();
      await implementation.open(directory).ping();
      chmodTree(directory, 0o500);
      try {
        await assert.rejects(implementation.open(directory).ping());
      } finally {
        chmodTree(directory, 0o700);
      }
    });
  });
}
