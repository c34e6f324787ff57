/**
 * What the file adapters promise beyond their ports (test/blob-store.contract.test.ts and
 * test/pixel-store.contract.test.ts run the ports' contracts on them): the layout on disk, the
 * temp-file sweep, the move from the older layout, and the group sync they share.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileBlobStore } from '../src/adapters/files/file.blob-store.js';
import { FilePixelStore } from '../src/adapters/files/file.pixel-store.js';
import { GroupSync } from '../src/adapters/files/fsync.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sensory-files-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let dirs = 0;
function freshDir(): string {
  return join(scratch, `d${++dirs}`);
}

function blob(n: number): { sha: string; bytes: Buffer } {
  const bytes = Buffer.from(`sample number ${n} `.repeat(n + 1));
  return { sha: createHash('sha256').update(bytes).digest('hex'), bytes };
}

describe('GroupSync', () => {
  it('coalesces 20 concurrent sync calls into at most 3 real syncs', async () => {
    let calls = 0;
    const group = new GroupSync(async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    });
    await Promise.all(Array.from({ length: 20 }, () => group.sync()));
    assert.ok(calls >= 1 && calls <= 3, `${calls} real syncs`);
  });

  it('settles a caller only with a flush that started after it called', async () => {
    const started: number[] = [];
    let calls = 0;
    const group = new GroupSync(async () => {
      started.push(++calls);
      await new Promise((resolve) => setTimeout(resolve, 5));
    });
    const first = group.sync();
    await new Promise((resolve) => setImmediate(resolve));
    const callsWhenSecondArrived = calls;
    await Promise.all([first, group.sync()]);
    assert.equal(callsWhenSecondArrived, 1);
    assert.equal(calls, 2);
  });

  it('rejects the callers of a failed flush, then recovers', async () => {
    let fail = true;
    const group = new GroupSync(async () => {
      if (fail) throw new Error('disk on fire');
    });
    await assert.rejects(group.sync(), /disk on fire/);
    fail = false;
    await group.sync();
    await group.idle();
  });
});

describe('FileBlobStore', () => {
  it('keeps a blob at <root>/<first hex digit>/<sha>, writes through <root>/tmp, and answers a missing one with ENOENT', async () => {
    const root = freshDir();
    const store = new FileBlobStore(root);
    const { sha, bytes } = blob(1);
    await store.put(sha, bytes);
    assert.ok(existsSync(join(root, sha.slice(0, 1), sha)));
    await store.remove(sha);
    await assert.rejects(store.get(sha), (error: NodeJS.ErrnoException) => error.code === 'ENOENT');
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
  });

  it('removes temp files a crash left behind, at start, and spares those of live writers here and elsewhere', async () => {
    const root = freshDir();
    await mkdir(join(root, 'tmp'), { recursive: true });
    const here = createHash('sha256').update(hostname()).digest('hex').slice(0, 12);
    const elsewhere = here === '0123456789ab' ? 'ba9876543210' : '0123456789ab';
    // Old enough to be a crash's leftovers: a dead pid here, this pid before this process, another host's, an unknown name.
    const leftovers = ['half-written', `${here}.${process.pid}.0123456789abcdef`, `${here}.999999999.fedcba9876543210`, `${elsewhere}.1.0123456789abcdef`];
    for (const name of leftovers) {
      await writeFile(join(root, 'tmp', name), 'partial');
      await utimes(join(root, 'tmp', name), new Date(0), new Date(0));
    }
    const store = new FileBlobStore(root);
    await store.init();
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    await store.ping();
    // Being written: by another instance in this process, by a live process here (pid 1), by a
    // replica on another host (whose pid means nothing here) — all recent.
    const live = [`${here}.${process.pid}.fedcba9876543210`, `${here}.1.fedcba9876543210`, `${elsewhere}.999999999.fedcba9876543210`].sort();
    for (const name of live) await writeFile(join(root, 'tmp', name), 'in flight');
    await new FileBlobStore(root).init();
    assert.deepEqual((await readdir(join(root, 'tmp'))).sort(), live);
  });

  it('moves originals of the older <two hex digits>/<sha256> layout into place at start', async () => {
    const root = freshDir();
    const old = [blob(1), blob(2), blob(3)];
    for (const { sha, bytes } of old) {
      await mkdir(join(root, sha.slice(0, 2)), { recursive: true });
      await writeFile(join(root, sha.slice(0, 2), sha), bytes);
    }
    const store = new FileBlobStore(root);
    await store.init();
    for (const { sha, bytes } of old) {
      assert.ok((await store.get(sha)).equals(bytes));
      assert.equal(await store.has(sha), true);
    }
    assert.deepEqual((await readdir(root)).filter((name) => name.length === 2), [], 'the two-digit folders are gone');
  });

  it('leaves no temp file after 50 concurrent puts (and duplicate puts)', async () => {
    const root = freshDir();
    const store = new FileBlobStore(root);
    const blobs = Array.from({ length: 50 }, (_, n) => blob(n));
    await Promise.all([...blobs, ...blobs.slice(0, 10)].map(({ sha, bytes }) => store.put(sha, bytes)));
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
  });
});

describe('FilePixelStore', () => {
  const shape: DatasetShape = { width: 4, height: 3, channels: 3 };
  const size = 4 * 3 * 3;
  const record = (slot: number) => Uint8Array.from({ length: size }, (_, i) => (slot * 31 + i + 1) & 255);

  it('keeps a dataset in one sparse file, <root>/<dataset id>.u8, record slot at slot × record size', async () => {
    const root = freshDir();
    const store = new FilePixelStore(root);
    const slots = [5, 0, 2, 3, 9];
    await store.write(7, shape, slots, slots.map(record));
    assert.equal((await stat(join(root, '7.u8'))).size, 10 * size);
    await assert.rejects(store.read(7, shape, [10], new Uint8Array(size), 0), /beyond the end/);
    await store.close();
  });

  it('drops a dataset by removing its file; a later write makes a new one', async () => {
    const root = freshDir();
    const store = new FilePixelStore(root);
    await store.write(3, shape, [4], [record(4)]);
    await store.drop(3);
    assert.equal(existsSync(join(root, '3.u8')), false);
    await store.write(3, shape, [0], [record(0)]);
    assert.equal((await stat(join(root, '3.u8'))).size, size);
    await store.close();
  });
});
