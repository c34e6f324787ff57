/**
 * A full disk with a real process: `sensory serve` (embedded shape: SQLite and files) on a data
 * dir that is a small tmpfs, filled up by a file of ours while clients upload. The rules: no exit;
 * every failed upload is 507 SENSORY_ERR_DISK_FULL (never a 500); once the space is freed,
 * uploads work again without a restart; every acknowledged upload is kept with its bytes.
 *
 * Mounting needs root: outside CI the file skips with a message when it cannot mount; under CI
 * it must run, so there the failure to mount fails it.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inCi } from '../support/broker.js';
import { mountTmpfs } from '../support/private-servers.js';
import { call as callWithKey, ensureBuilt, killAll, sleep, startServer, type Server } from '../support/process.js';
import { UploadLedger } from '../support/upload-ledger.js';

const KEY = 'faults-disk-admin-key-0123456789';
const DATASET = 'cramped';
const log = (line: string) => process.stderr.write(`# faults/disk-full: ${line}\n`);

const mount = mountTmpfs(48);
const skip = 'reason' in mount ? (inCi() ? false : `${mount.reason}; skipped outside CI`) : false;

/** Fills the file system of `dir` with `path` until `leaveBytes` (or less) are free. */
function fill(path: string, leaveBytes: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 7);
  try {
    for (;;) {
      const stats = statfsSync(path);
      const free = stats.bavail * stats.bsize;
      if (free <= leaveBytes) break;
      writeSync(fd, chunk, 0, Math.min(chunk.length, free - leaveBytes));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

describe('the data dir\'s disk fills up under uploads, then space is freed', { skip }, () => {
  let server: Server;
  let dataDir: string;

  before(async () => {
    if ('reason' in mount) assert.fail(`CI must be able to mount a tmpfs: ${mount.reason}`);
    ensureBuilt();
    dataDir = join(mount.dir, 'data');
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_LOG_LEVEL: 'warn' });
    const put = await callWithKey(server.url, KEY, 'PUT', `/v1/datasets/${DATASET}`, { json: { width: 8, height: 8, channels: 1 } });
    assert.equal(put.status, 201, put.body.toString());
  });

  after(async () => {
    await killAll();
    if (!('reason' in mount)) mount.unmount();
  });

  test('507 SENSORY_ERR_DISK_FULL while full, no exit, recovery after freeing space, nothing acknowledged lost', { timeout: 120_000 }, async () => {
    const ledger = new UploadLedger(KEY, DATASET, 9);
    const traffic = ledger.run([server.url], 4);
    await sleep(500);
    const filler = join('reason' in mount ? '' : mount.dir, 'filler');
    fill(filler, 0);
    const deadline = performance.now() + 30_000;
    while (ledger.count(507) < 20 && performance.now() < deadline) await sleep(100);
    await ledger.stop(traffic);
    log(`full: ${ledger.summary()}`);
    assert.ok(ledger.count(507) >= 20, `uploads on a full disk were answered 507 (${ledger.summary()}): ${ledger.errors.slice(-3).join(' | ')}`);
    assert.equal(server.child.exitCode ?? server.child.signalCode, null, `serve exited:\n${server.stderr().slice(-2000)}`);
    ledger.assertOnly([201, 507], 'SENSORY_ERR_DISK_FULL');

    const ready = await callWithKey(server.url, undefined, 'GET', '/health/ready');
    log(`ready while full: ${ready.status} ${ready.body.toString()}`);

    rmSync(filler);
    await ledger.assertRecovers([server.url]);
    await ledger.assertAllKept(server.url);
    log(`after freeing: ${ledger.summary()}`);
  });
});
