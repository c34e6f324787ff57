/**
 * Where a single upload's CPU goes, by thread: one `serve` of the given build on a fresh data
 * dir (SQLite), 8 keep-alive clients posting distinct 100×100 PNGs as raw image/png bodies (a
 * warm-up of 3,000 first), then AB_ROUNDS rounds of AB_SECONDS each; per round, the CPU per upload
 * (user + sys from /proc/PID/task/TID/stat) of the event loop (the main thread) and of each
 * other thread, in the order they were started. Node 20 leaves its threads unnamed: V8's platform
 * threads start first, then the libuv pool (four alike, at the first file operation), the decode
 * thread last.
 *
 *   node --import tsx bench/serve-threads.ts dist/cli/main.js
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { serviceEnv, startServe } from './children.js';
import { BenchClient } from './http-client.js';
import { makePngs } from './images.js';
import { pngVariant } from './ingest.js';
import { processCpuMs, runPool } from './pool.js';
import { createDataset, uploadPng } from './service-load.js';

const mainJs = resolve(process.argv[2] ?? 'dist/cli/main.js');
const rounds = Number(process.env.AB_ROUNDS ?? 2);
const seconds = Number(process.env.AB_SECONDS ?? 8);

/** CPU ms so far of each thread of `pid`, by thread id (a thread that ended meanwhile is left out). */
function threadCpuMs(pid: number): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    const ms = processCpuMs(pid, tid);
    if (Number.isFinite(ms)) cpu.set(tid, ms);
  }
  return cpu;
}

const tmp = await mkdtemp(join(os.tmpdir(), 'threads-'));
const key = 'k'.repeat(40);
const env = await serviceEnv(join(tmp, 'data'), key, { SENSORY_LOG_LEVEL: 'info' });
const child = await startServe({ name: 'serve', mainJs, nodeArgs: [], env, cwd: tmp, stdoutFile: join(tmp, 'out.log') });
try {
  const pid = child.process.pid!;
  const client = new BenchClient();
  const service = { port: child.port, key };
  await createDataset(client, service, 'd');
  const post = (png: Buffer, i: number) => uploadPng(client, service, 'd', png, `c${i % 10}`);
  const base = await makePngs(2, 6000);
  await runPool(base.slice(0, 3000).map((png) => pngVariant(png, 'warm-up')), 8, post);
  for (let round = 0; round < rounds; round++) {
    const pngs = base.map((png) => pngVariant(png, `round ${round}`));
    const before = threadCpuMs(pid);
    const started = performance.now();
    const uploads = await runPool(pngs, 8, post, started + seconds * 1000);
    const rate = uploads / ((performance.now() - started) / 1000);
    const spent = [...threadCpuMs(pid)].map(([tid, ms]) => ({ tid, ms: (ms - (before.get(tid) ?? 0)) / uploads }));
    const total = spent.reduce((sum, thread) => sum + thread.ms, 0);
    const main = spent.find((thread) => thread.tid === pid)?.ms ?? 0;
    const others = spent.filter((thread) => thread.tid !== pid && thread.ms > 0).sort((a, b) => a.tid - b.tid);
    console.log(
      `round ${round}: ${rate.toFixed(0)} uploads/s, ${total.toFixed(3)} ms per upload: event loop ${main.toFixed(3)}; ` +
        `others ${others.map((thread) => `${thread.tid} ${thread.ms.toFixed(3)}`).join(', ')} (load ${os.loadavg()[0].toFixed(1)})`,
    );
  }
} finally {
  await child.stop();
  await rm(tmp, { recursive: true, force: true });
}
