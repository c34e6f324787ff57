/**
 * Where the PostgreSQL server's CPU of single uploads goes: one `serve` on a schema of its own,
 * 8 keep-alive clients posting distinct raw PNGs into a fresh dataset (300 warm-ups, then
 * PROBE_PNGS, 3000), and per upload: the CPU of each postgres process on this machine (the
 * backends of the serve's connections apart from the rest: WAL writer, checkpointer, other
 * clients), the WAL written (bytes, records, full-page images, syncs), and, where the server
 * loads pg_stat_statements (a private cluster started with shared_preload_libraries =
 * 'pg_stat_statements' and pg_stat_statements.track = all), each statement's calls and time per
 * upload, nested ones included.
 *
 *   PROBE_PG=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/pg-probe.ts <build>/dist/cli/main.js
 *
 * PROBE_PERF=<file>: `perf record -g` of the serve's backends meanwhile. PROBE_KEEP=1 keeps the
 * schema (for EXPLAIN afterwards). Nothing is reset: figures are differences of two looks.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { serviceEnv, startServe } from './children.js';
import { BenchClient } from './http-client.js';
import { makePngs } from './images.js';
import { pngVariant } from './ingest.js';
import { backendPids, postgresProcesses } from './production.js';
import { processCpuMs, runPool } from './pool.js';
import { createDataset, sampleCount, uploadPng } from './service-load.js';

const mainJs = resolve(process.argv[2]);
const url = process.env.PROBE_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const count = Number(process.env.PROBE_PNGS ?? 3000);
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const schema = `probe_${randomBytes(5).toString('hex')}`;
await admin.query(`CREATE SCHEMA ${schema}`);
const serveUrl = new URL(url);
serveUrl.searchParams.set('options', `-c search_path=${schema}`);
serveUrl.searchParams.set('application_name', schema);
const tmp = await mkdtemp(join(os.tmpdir(), 'probe-'));
const key = 'k'.repeat(40);
const env = await serviceEnv(join(tmp, 'data'), key, { SENSORY_LOG_LEVEL: 'info', SENSORY_DATABASE_URL: serveUrl.toString() });
const child = await startServe({ name: 'probe', mainJs, nodeArgs: [], env, cwd: tmp, stdoutFile: join(tmp, 'out.log') });
const client = new BenchClient();
const service = { port: child.port, key };
const post = (png: Buffer, i: number) => uploadPng(client, service, 'd', png, `c${i % 10}`);

try {
  const base = await makePngs(3, count + 300);
  await createDataset(client, service, 'd');
  await runPool(base.slice(0, 300).map((p) => pngVariant(p, 'warm')), 8, post);
  const hasPss = (await admin.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`)).rowCount! > 0;
  const statements = async () =>
    hasPss
      ? (await admin.query<{ queryid: string; calls: string; ms: number; rows: string; toplevel: boolean; query: string }>(
          `SELECT queryid, toplevel, calls, total_exec_time + total_plan_time AS ms, rows, regexp_replace(left(query, 160), '\\s+', ' ', 'g') AS query
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )).rows
      : [];
  const walStats = async () => (await admin.query<{ records: string; fpi: string; syncs: string }>('SELECT wal_records AS records, wal_fpi AS fpi, wal_sync AS syncs FROM pg_stat_wal')).rows[0];
  const statements0 = await statements();
  const wal0 = await walStats();
  const lsn0 = (await admin.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
  const backends = new Set(await backendPids(admin, schema));
  const perf = process.env.PROBE_PERF ? spawn('perf', ['record', '-F', '2000', '-g', '-o', process.env.PROBE_PERF, '-p', [...backends].join(',')], { stdio: 'ignore' }) : undefined;
  if (perf) await new Promise((r) => setTimeout(r, 500));
  const procs0 = postgresProcesses();
  const serve0 = processCpuMs(child.process.pid!);
  const t0 = performance.now();
  const pngs = base.slice(300).map((p) => pngVariant(p, 'run'));
  const done = await runPool(pngs, 8, post);
  const secs = (performance.now() - t0) / 1000;
  const serveCpu = processCpuMs(child.process.pid!) - serve0;
  const procs1 = postgresProcesses();
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf.once('exit', r));
  }
  const lsn1 = (await admin.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
  const walBytes = Number((await admin.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn) AS bytes', [lsn0, lsn1])).rows[0].bytes);
  const wal1 = await walStats();
  const statements1 = await statements();
  const backends1 = new Set(await backendPids(admin, schema));
  const n = await sampleCount(client, service, 'd');
  console.log(`${done} uploads in ${secs.toFixed(2)} s (${(done / secs).toFixed(0)}/s), dataset has ${n}; serve CPU ${(serveCpu / done).toFixed(3)} ms/upload; backends ${[...backends].join(',')} (after: ${[...backends1].join(',')})`);
  let backendCpu = 0;
  let otherCpu = 0;
  const rows: string[] = [];
  for (const [pid, p1] of procs1) {
    const p0 = procs0.get(pid);
    const delta = p1.cpuMs - (p0?.cpuMs ?? 0);
    if (delta <= 0) continue;
    if (backends.has(pid)) backendCpu += delta;
    else otherCpu += delta;
    rows.push(`  ${pid} ${(delta / done).toFixed(3)} ms/upload ${p1.cmd}${backends.has(pid) ? ' [serve backend]' : ''}`);
  }
  console.log(`postgres CPU per upload: serve backends ${(backendCpu / done).toFixed(3)} ms, others ${(otherCpu / done).toFixed(3)} ms`);
  console.log(rows.join('\n'));
  const walDelta = (key: 'records' | 'fpi' | 'syncs') => Number(wal1[key]) - Number(wal0[key]);
  console.log(
    `WAL per upload (the whole server's): ${(walBytes / done).toFixed(0)} bytes, ${(walDelta('records') / done).toFixed(1)} records, ${(walDelta('fpi') / done).toFixed(2)} full-page images; ${walDelta('syncs')} syncs (${(done / Math.max(1, walDelta('syncs'))).toFixed(1)} uploads per sync)`,
  );
  if (hasPss) {
    const before = new Map(statements0.map((st) => [`${st.queryid}/${st.toplevel}`, st]));
    const deltas = statements1
      .map((st) => {
        const b = before.get(`${st.queryid}/${st.toplevel}`);
        return { ...st, calls: Number(st.calls) - Number(b?.calls ?? 0), ms: st.ms - (b?.ms ?? 0) };
      })
      .filter((st) => st.calls > 0)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 25);
    for (const st of deltas) console.log(`  ${(st.calls / done).toFixed(3)} calls/upload ${((st.ms * 1000) / done).toFixed(1)} µs/upload ${st.toplevel ? 'top' : 'nested'}: ${st.query}`);
  }
} finally {
  await child.stop();
  await rm(tmp, { recursive: true, force: true });
  if (!process.env.PROBE_KEEP) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  else console.log(`kept schema ${schema}`);
  await admin.end();
}
