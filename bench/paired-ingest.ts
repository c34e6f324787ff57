/**
 * Two (or more) builds of the service under the same load at the same time: each build's
 * `serve` (on SQLite, or on a schema of its own in PostgreSQL with AB_PG=<url>) gets its own 8
 * keep-alive clients posting distinct 100×100 PNGs as raw image/png bodies, all at once, and the
 * service CPU per sample (user + sys from /proc) of each is printed per round, with its ratio to
 * the first build's (with AB_PG, also the CPU per sample of the server backends of each serve's
 * connections). On a shared machine the load moves CPU per sample more than most changes
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
import { join, resolve } from 'node:path';
import pg from 'pg';
import { serviceEnv, startServe, type Child } from './children.js';
import { BenchClient } from './http-client.js';
import { makePngs } from './images.js';
import { pngVariant } from './ingest.js';
import { processCpuMs, runPool } from './pool.js';
import { backendPids, postgresStatement } from './production.js';
import { createDataset, sampleCount, uploadPng } from './service-load.js';

const builds = process.argv.slice(2).map((mainJs) => resolve(mainJs));
const rounds = Number(process.env.AB_ROUNDS ?? 3);
const seconds = Number(process.env.AB_SECONDS ?? 8);
const postgresUrl = process.env.AB_PG;
const WARM_UPS = 300;

interface Run {
  readonly build: number;
  readonly tmp: string;
  readonly key: string;
  readonly child: Child;
  readonly client: BenchClient;
  /** The PostgreSQL schema of this serve, if on PostgreSQL. */
  readonly schema?: string;
}

/** A serve of one build on a fresh data dir (and, with AB_PG, a fresh schema). */
async function startRun(mainJs: string, build: number): Promise<Run> {
  const tmp = await mkdtemp(join(os.tmpdir(), 'par-'));
  const key = 'k'.repeat(40);
  const databaseEnv: Record<string, string> = {};
  let schema: string | undefined;
  if (postgresUrl) {
    schema = `par_${randomBytes(5).toString('hex')}`;
    await postgresStatement(postgresUrl, `CREATE SCHEMA ${schema}`);
    const url = new URL(postgresUrl);
    url.searchParams.set('options', `-c search_path=${schema}`);
    // Names the serve's connections, so that their server backends can be told apart.
    url.searchParams.set('application_name', schema);
    databaseEnv.SENSORY_DATABASE_URL = url.toString();
  }
  const env = await serviceEnv(join(tmp, 'data'), key, { SENSORY_LOG_LEVEL: 'info', ...databaseEnv });
  const child = await startServe({ name: `b${build}`, mainJs, nodeArgs: [], env, cwd: tmp, stdoutFile: join(tmp, 'out.log') });
  return { build, tmp, key, child, client: new BenchClient(), schema };
}

async function stopRun(run: Run): Promise<void> {
  await run.child.stop();
  await rm(run.tmp, { recursive: true, force: true });
  if (run.schema && postgresUrl) await postgresStatement(postgresUrl, `DROP SCHEMA IF EXISTS ${run.schema} CASCADE`);
}

/**
 * CPU time so far of the PostgreSQL backends serving this run's connections, by pid (the server
 * runs on this machine). The WAL writer and checkpointer, shared by all, are left out.
 */
async function backendCpuMs(run: Run): Promise<Map<number, number>> {
  const cpu = new Map<number, number>();
  if (!run.schema || !postgresUrl) return cpu;
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    for (const pid of await backendPids(client, run.schema)) {
      const ms = processCpuMs(pid);
      if (Number.isFinite(ms)) cpu.set(pid, ms);
    }
  } finally {
    await client.end();
  }
  return cpu;
}

/** CPU spent between two looks by backendCpuMs (a backend that ended meanwhile is lost). */
function backendCpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

function post(run: Run, png: Buffer, i: number): Promise<void> {
  return uploadPng(run.client, { port: run.child.port, key: run.key }, 'd', png, `c${i % 10}`);
}

const base = await makePngs(2, Number(process.env.AB_PNGS ?? 6000));
let set = 0;
const cpuPerSample: number[][] = builds.map(() => []);
const serverPerSample: number[][] = builds.map(() => []);
for (let round = 0; round < rounds; round++) {
  const runs = await Promise.all(builds.map((mainJs, build) => startRun(mainJs, build)));
  await Promise.all(
    runs.map(async (run) => {
      await createDataset(run.client, { port: run.child.port, key: run.key }, 'd');
      await runPool(base.slice(0, WARM_UPS).map((p) => pngVariant(p, `warm ${round}`)), 8, (png, i) => post(run, png, i));
    }),
  );
  // Rotate which build starts first.
  const order = runs.map((_, i) => runs[(i + round) % runs.length]);
  const until = performance.now() + seconds * 1000;
  const results = await Promise.all(
    order.map(async (run) => {
      const pngs = base.map((p) => pngVariant(p, `set ${++set}`));
      const serverBefore = await backendCpuMs(run);
      const cpuBefore = processCpuMs(run.child.process.pid!);
      const started = performance.now();
      const uploads = await runPool(pngs, 8, (png, i) => post(run, png, i), until);
      const secs = (performance.now() - started) / 1000;
      const cpu = (processCpuMs(run.child.process.pid!) - cpuBefore) / uploads;
      const server = backendCpuSince(serverBefore, await backendCpuMs(run)) / uploads;
      // Every upload answered 201 is there (with the warm-up's).
      const count = await sampleCount(run.client, { port: run.child.port, key: run.key }, 'd');
      if (count !== uploads + WARM_UPS) throw new Error(`build ${run.build}: ${count} samples, ${uploads + WARM_UPS} uploads answered 201`);
      return { build: run.build, rate: uploads / secs, cpu, server };
    }),
  );
  results.sort((a, b) => a.build - b.build);
  const line = results.map((r) => `b${r.build} ${r.rate.toFixed(0)}/s ${r.cpu.toFixed(3)} ms${postgresUrl ? ` + server ${r.server.toFixed(3)} ms` : ''}`).join(' | ');
  console.log(`round ${round}: ${line} load ${os.loadavg()[0].toFixed(1)}`);
  for (const r of results) {
    cpuPerSample[r.build].push(r.cpu);
    serverPerSample[r.build].push(r.server);
  }
  await Promise.all(runs.map(stopRun));
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log('median cpu ms/sample: ' + cpuPerSample.map((v, b) => `b${b} ${median(v).toFixed(3)}`).join(' '));
if (postgresUrl) {
  console.log('median PostgreSQL backend cpu ms/sample: ' + serverPerSample.map((v, b) => `b${b} ${median(v).toFixed(3)}`).join(' '));
  console.log('server ratios to b0 per round: ' + serverPerSample.slice(1).map((v, i) => `b${i + 1} ` + v.map((x, r) => (x / serverPerSample[0][r]).toFixed(3)).join(',')).join(' | '));
}
const ratios = cpuPerSample.slice(1).map((v, i) => `b${i + 1} ` + v.map((x, r) => (x / cpuPerSample[0][r]).toFixed(3)).join(','));
console.log('ratios to b0 per round: ' + ratios.join(' | '));
