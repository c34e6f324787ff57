/**
 * Two (or more) builds of the service under the same load at the same time: each build's
 * `serve` (on SQLite, or on a schema of its own in PostgreSQL with AB_PG=<url>) gets its own 8
 * keep-alive clients posting distinct 100×100 PNGs as raw image/png bodies, all at once, and the
 * service CPU per sample (user + sys from /proc) of each is printed per round, with its ratio to
 * the first build's. On a shared machine the load moves CPU per sample more than most changes
 * do between alternating runs; builds measured side by side see the same load.
 *
 *   node --import tsx bench/paired-ingest.ts <old build>/dist/cli/main.js <new build>/dist/cli/main.js
 *
 * A build is a copy of `dist` with the package.json beside it (what `serve` reads its version
 * from), inside the checkout so that node_modules resolve. Knobs: AB_ROUNDS (3), AB_SECONDS (8),
 * AB_PNGS (6000 per round and build), AB_PG (a PostgreSQL URL; a schema per serve, dropped after).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serviceEnv, startServe } from './children.js';
import { BenchClient } from './http-client.js';
import { makePngs } from './images.js';
import { pngVariant } from './ingest.js';
import { processCpuMs, runPool } from './pool.js';
import { createDataset, sampleCount } from './service-load.js';

async function pgq(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const builds = process.argv.slice(2);
const rounds = Number(process.env.AB_ROUNDS ?? 3);
const seconds = Number(process.env.AB_SECONDS ?? 8);
const base = await makePngs(2, Number(process.env.AB_PNGS ?? 6000));
let set = 0;
const sums: number[][] = builds.map(() => []);
for (let r = 0; r < rounds; r++) {
  const runs = await Promise.all(builds.map(async (mainJs, b) => {
    const tmp = await mkdtemp(join(os.tmpdir(), 'par-'));
    const key = 'k'.repeat(40);
    const pgBase = process.env.AB_PG; let schema = '';
    const dbEnv: Record<string, string> = {};
    if (pgBase) { schema = `par_${randomBytes(5).toString('hex')}`; await pgq(pgBase, `CREATE SCHEMA ${schema}`); const u = new URL(pgBase); u.searchParams.set('options', `-c search_path=${schema}`); dbEnv.SENSORY_DATABASE_URL = u.toString(); }
    const env = await serviceEnv(join(tmp, 'data'), key, { SENSORY_LOG_LEVEL: 'info', ...dbEnv });
    const child = await startServe({ name: `b${b}`, mainJs, nodeArgs: [], env, cwd: tmp, stdoutFile: join(tmp, 'out.log') });
    return { tmp, key, child, client: new BenchClient(), b, schema };
  }));
  const post = (run: (typeof runs)[number], png: Buffer, i: number) =>
    run.client.expect(201, { port: run.child.port, method: 'POST', path: `/v1/datasets/d/samples?category=c${i % 10}`, headers: { 'api-access-key': run.key, 'content-type': 'image/png' }, body: png });
  await Promise.all(runs.map(async (run) => {
    await createDataset(run.client, { port: run.child.port, key: run.key }, 'd');
    await runPool(base.slice(0, 300).map((p) => pngVariant(p, `warm ${r}`)), 8, (png, i) => post(run, png, i).then(() => undefined));
  }));
  // Rotate which build starts first.
  const order = runs.map((_, i) => runs[(i + r) % runs.length]);
  const t0 = performance.now();
  const results = await Promise.all(order.map(async (run) => {
    const pngs = base.map((p) => pngVariant(p, `set ${++set}`));
    const c0 = processCpuMs(run.child.process.pid!);
    const started = performance.now();
    const n = await runPool(pngs, 8, (png, i) => post(run, png, i).then(() => undefined), t0 + seconds * 1000);
    const secs = (performance.now() - started) / 1000;
    const cpu = (processCpuMs(run.child.process.pid!) - c0) / n;
    // Every upload answered 201 is there (300 of the warm-up before).
    const count = await sampleCount(run.client, { port: run.child.port, key: run.key }, 'd');
    if (count !== n + 300) throw new Error(`build ${run.b}: ${count} samples, ${n + 300} uploads answered 201`);
    return { b: run.b, n, rate: n / secs, cpu };
  }));
  results.sort((a, b) => a.b - b.b);
  console.log(`round ${r}: ` + results.map((x) => `b${x.b} ${x.rate.toFixed(0)}/s ${x.cpu.toFixed(3)} ms`).join(' | ') + ` load ${os.loadavg()[0].toFixed(1)}`);
  for (const x of results) sums[x.b].push(x.cpu);
  await Promise.all(runs.map(async (run) => { await run.child.stop(); await rm(run.tmp, { recursive: true, force: true }); if (run.schema) await pgq(process.env.AB_PG!, `DROP SCHEMA IF EXISTS ${run.schema} CASCADE`); }));
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log('median cpu ms/sample: ' + sums.map((v, b) => `b${b} ${med(v).toFixed(3)}`).join(' '));
console.log('ratios to b0 per round: ' + sums.slice(1).map((v, i) => `b${i + 1} ` + v.map((x, r) => (x / sums[0][r]).toFixed(3)).join(',')).join(' | '));
