/**
 * The production shape's figures (bench/run.ts figures 6 and 7):
 *
 *   6. PostgreSQL beside SQLite: ingest (100×100 PNGs as JSON base64, 8 clients) and small
 *      batches (1,000 × 100×100×3 safetensors), one `sensory serve` on each metadata store,
 *      alternating run by run; the ratio is PostgreSQL's figure over SQLite's.
 *   7. Two replicas beside one: two `sensory serve` processes on one PostgreSQL schema and one
 *      data dir, the 8 clients sending upload i to replica i mod 2 (round robin), against the
 *      same clients on one replica, alternating.
 *
 * Every service runs the in-process queue (no AMQP URL): these figures are about the metadata
 * store and the replicas, not orders. The schema is made for the run and dropped after it.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serviceEnv, startServe, type Child } from './children.js';
import type { Figure } from './figure.js';
import type { BenchClient } from './http-client.js';
import { RECORD_BYTES } from './images.js';
import { processCpuMs, summarize } from './pool.js';
import { createDataset, ingest, jsonBodies, safetensorsBatch, uploadRaw, type Service } from './service-load.js';

/** PostgreSQL's ingest rate as a share of SQLite's, at least. */
export const POSTGRES_INGEST_TARGET = 0.8;
/** PostgreSQL's small-batch rate as a share of SQLite's, at least (below it, the docs explain why). */
export const POSTGRES_BATCH_TARGET = 0.7;

export interface ProductionContext {
  readonly figures: ReadonlySet<string>;
  readonly databaseUrl: string;
  readonly rounds: number;
  readonly batchRepeats: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly ingestSeconds: number;
  /** Distinct PNG sets, one per ingest run of a round (reused across backends: datasets differ). */
  readonly ingestSets: readonly Buffer[][];
  /** The PNGs of the small-batch dataset. */
  readonly batchPngs: readonly Buffer[];
  readonly categories: readonly string[];
  readonly client: BenchClient;
  readonly tmp: string;
  readonly repo: string;
  readonly mainJs: string;
  readonly serverNodeArgs: readonly string[];
  readonly children: Child[];
  readonly cleanups: (() => Promise<void>)[];
  readonly log: (line: string) => void;
}

/** true, or why PostgreSQL could not be reached. */
export async function postgresReachable(url: string): Promise<true | string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return true;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function postgresStatement(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Every process named `postgres` on this machine (the server runs here, beside the service: its
 * backends, WAL writer and checkpointer), by pid, with its CPU time so far (user + system) and
 * its command line.
 */
export function postgresProcesses(): Map<number, { cpuMs: number; cmd: string }> {
  const found = new Map<number, { cpuMs: number; cmd: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const cpuMs = processCpuMs(Number(entry));
      if (Number.isFinite(cpuMs)) found.set(Number(entry), { cpuMs, cmd });
    } catch {
      continue;
    }
  }
  return found;
}

/** CPU time so far of every postgres process on this machine (postgresProcesses), summed. */
function postgresServerCpuMs(): number {
  let total = 0;
  for (const { cpuMs } of postgresProcesses().values()) total += cpuMs;
  return total;
}

/** The pids of the server backends of the connections named `applicationName` (their application_name). */
export async function backendPids(client: pg.Client, applicationName: string): Promise<number[]> {
  return (await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName])).rows.map((r) => r.pid);
}

const rate = (n: number) => `${n.toFixed(0)} samples/s`;
const gbps = (bytesPerSecond: number) => `${(bytesPerSecond / 1e9).toFixed(3)} GB/s`;
const verdictOf = (ratio: number, target: number): 'PASS' | 'BELOW' => (ratio >= target ? 'PASS' : 'BELOW');

export async function productionFigures(ctx: ProductionContext): Promise<Figure[]> {
  const schema = `sensory_bench_${randomBytes(6).toString('hex')}`;
  const schemaUrl = new URL(ctx.databaseUrl);
  schemaUrl.searchParams.set('options', `-c search_path=${schema}`);
  await postgresStatement(ctx.databaseUrl, `CREATE SCHEMA ${schema}`);
  const dropSchema = () => postgresStatement(ctx.databaseUrl, `DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch((error: Error) => ctx.log(`could not drop schema ${schema}: ${error.message}`));
  ctx.cleanups.push(dropSchema);
  const started: Child[] = [];
  const key = `bench-${randomBytes(12).toString('hex')}`;

  const serve = async (name: string, dataDir: string, databaseUrl?: string): Promise<Service & { child: Child }> => {
    await mkdir(dataDir, { recursive: true });
    const child = await startServe({
      name,
      mainJs: ctx.mainJs,
      nodeArgs: ctx.serverNodeArgs,
      env: await serviceEnv(dataDir, key, databaseUrl ? { SENSORY_DATABASE_URL: databaseUrl } : {}),
      cwd: ctx.repo,
      stdoutFile: join(ctx.tmp, `${name}.log`),
    });
    ctx.children.push(child);
    started.push(child);
    ctx.log(`${name}: pid ${child.process.pid}, port ${child.port}, data ${dataDir}${databaseUrl ? `, PostgreSQL schema ${schema}` : ', SQLite'}`);
    return { port: child.port, key, child };
  };

  const figures: Figure[] = [];
  try {
    const sqlite = await serve('serve-sqlite', join(ctx.tmp, 'production-sqlite'));
    const postgres = await serve('serve-postgres-a', join(ctx.tmp, 'production-shared'), schemaUrl.toString());
    const backends = [
      { name: 'sqlite', service: sqlite },
      { name: 'postgres', service: postgres },
    ] as const;
    const bodies = ctx.ingestSets.map((pngs) => jsonBodies(pngs, ctx.categories));

    if (ctx.figures.has('6')) {
      // Ingest: each round a fresh dataset on both, the order of the two alternating.
      const rates = { sqlite: [] as number[], postgres: [] as number[] };
      const cpuMsPerSample = { sqlite: [] as number[], postgres: [] as number[] };
      // Backends of ended connections take their CPU time with them: a lower bound.
      const serverCpuMsPerSample = { sqlite: [] as number[], postgres: [] as number[] };
      for (let round = 0; round < ctx.rounds; round++) {
        const order = round % 2 === 0 ? [...backends] : [...backends].reverse();
        for (const { name, service } of order) {
          const dataset = `ingest-${round + 1}`;
          await createDataset(ctx.client, service, dataset);
          const cpu0 = processCpuMs(service.child.process.pid!);
          const server0 = postgresServerCpuMs();
          const run = await ingest(ctx.client, [service], dataset, bodies[round % bodies.length], ctx.concurrency, ctx.ingestSeconds);
          cpuMsPerSample[name].push((processCpuMs(service.child.process.pid!) - cpu0) / run.done);
          serverCpuMsPerSample[name].push(Math.max(0, postgresServerCpuMs() - server0) / run.done);
          rates[name].push(run.done / run.seconds);
          ctx.log(`ingest round ${round + 1} on ${name}: ${rate(run.done / run.seconds)} (${run.done} in ${run.seconds.toFixed(2)} s)`);
        }
      }
      const ingestRatio = summarize(rates.postgres).median / summarize(rates.sqlite).median;

      // Small batches: the same 1,000 PNGs on both, then alternating fetches.
      for (const { service } of backends) {
        await createDataset(ctx.client, service, 'small');
        await uploadRaw(ctx.client, service, 'small', ctx.batchPngs, ctx.categories);
        await safetensorsBatch(ctx.client, service, 'small', ctx.batchSize, 1);
      }
      const batchRates = { sqlite: [] as number[], postgres: [] as number[] };
      const batchMs = { sqlite: [] as number[], postgres: [] as number[] };
      for (let i = 0; i < ctx.batchRepeats; i++) {
        for (const { name, service } of i % 2 === 0 ? backends : [...backends].reverse()) {
          const reply = await safetensorsBatch(ctx.client, service, 'small', ctx.batchSize, 100 + i);
          if (reply.bytes < ctx.batchSize * RECORD_BYTES) throw new Error(`a batch from ${name} had only ${reply.bytes} bytes`);
          batchRates[name].push((reply.bytes / reply.ms) * 1000);
          batchMs[name].push(reply.ms);
        }
      }
      const batchRatio = summarize(batchRates.postgres).median / summarize(batchRates.sqlite).median;
      const med = (values: number[]) => summarize(values).median;
      figures.push({
        id: '6',
        title: 'PostgreSQL beside SQLite: ingest and small batches',
        unit: 'samples/s',
        ours: summarize(rates.postgres),
        reference: summarize(rates.sqlite),
        ratio: ingestRatio,
        target: POSTGRES_INGEST_TARGET,
        verdict: ingestRatio >= POSTGRES_INGEST_TARGET && batchRatio >= POSTGRES_BATCH_TARGET ? 'PASS' : 'BELOW',
        details: { ingest: rates, ingestCpuMsPerSample: cpuMsPerSample, postgresServerCpuMsPerSample: serverCpuMsPerSample, batchBytesPerSecond: batchRates, batchMs, batchRatio, schema },
        rows: [
          ['6', `ingest on PostgreSQL, 8 clients JSON base64, ×${ctx.rounds}`, rate(med(rates.postgres)), `SQLite ${rate(med(rates.sqlite))}`, ingestRatio.toFixed(2), `≥ ${POSTGRES_INGEST_TARGET}`, verdictOf(ingestRatio, POSTGRES_INGEST_TARGET)],
          [
            '6',
            `small batch ${ctx.batchSize} safetensors U8 on PostgreSQL, ×${ctx.batchRepeats}`,
            `${gbps(med(batchRates.postgres))} (${med(batchMs.postgres).toFixed(1)} ms)`,
            `SQLite ${gbps(med(batchRates.sqlite))} (${med(batchMs.sqlite).toFixed(1)} ms)`,
            batchRatio.toFixed(2),
            `≥ ${POSTGRES_BATCH_TARGET}`,
            verdictOf(batchRatio, POSTGRES_BATCH_TARGET),
          ],
        ],
        runsLine: `  6: ingest PostgreSQL ${rates.postgres.map((r) => r.toFixed(0)).join(' ')}; SQLite ${rates.sqlite.map((r) => r.toFixed(0)).join(' ')} (samples/s); batch ms PostgreSQL ${batchMs.postgres.map((ms) => ms.toFixed(0)).join(' ')}; SQLite ${batchMs.sqlite.map((ms) => ms.toFixed(0)).join(' ')}`,
        cpuLine: `  6: ingest per sample: service on PostgreSQL ${med(cpuMsPerSample.postgres).toFixed(2)} ms + the PostgreSQL server ${med(serverCpuMsPerSample.postgres).toFixed(2)} ms; service on SQLite ${med(cpuMsPerSample.sqlite).toFixed(2)} ms (the PostgreSQL server meanwhile ${med(serverCpuMsPerSample.sqlite).toFixed(2)} ms); the machine has ${os.availableParallelism()} cores`,
      });
    }

    if (ctx.figures.has('7')) {
      const second = await serve('serve-postgres-b', join(ctx.tmp, 'production-shared'), schemaUrl.toString());
      const setups = [
        { name: 'one', services: [postgres] },
        { name: 'two', services: [postgres, second] },
      ] as const;
      const rates = { one: [] as number[], two: [] as number[] };
      for (let round = 0; round < ctx.rounds; round++) {
        for (const { name, services } of round % 2 === 0 ? setups : [...setups].reverse()) {
          const dataset = `replicas-${name}-${round + 1}`;
          await createDataset(ctx.client, services[0], dataset);
          const run = await ingest(ctx.client, services, dataset, bodies[round % bodies.length], ctx.concurrency, ctx.ingestSeconds);
          rates[name].push(run.done / run.seconds);
          ctx.log(`ingest round ${round + 1} on ${name} replica(s): ${rate(run.done / run.seconds)} (${run.done} in ${run.seconds.toFixed(2)} s)`);
        }
      }
      const ratio = summarize(rates.two).median / summarize(rates.one).median;
      figures.push({
        id: '7',
        title: 'two replicas beside one (PostgreSQL, one data dir)',
        unit: 'samples/s',
        ours: summarize(rates.two),
        reference: summarize(rates.one),
        ratio,
        verdict: 'info',
        details: { ingest: rates, balancing: 'client-side round robin: upload i to replica i mod 2', cores: os.availableParallelism() },
        rows: [
          [
            '7',
            `ingest through 2 replicas (round robin), 8 clients, ×${ctx.rounds}`,
            rate(summarize(rates.two).median),
            `1 replica ${rate(summarize(rates.one).median)}`,
            ratio.toFixed(2),
            '–',
            'info',
          ],
        ],
        runsLine: `  7: two replicas ${rates.two.map((r) => r.toFixed(0)).join(' ')}; one ${rates.one.map((r) => r.toFixed(0)).join(' ')} (samples/s, in run order)`,
      });
    }
  } finally {
    await Promise.allSettled(started.map((child) => child.stop(15_000)));
    await dropSchema();
  }
  return figures;
}
