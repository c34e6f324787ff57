/**
 * The PostgreSQL side of single uploads alone, for two (or more) builds one after the other: the
 * upload's lookup (findDatasetAndLiveSample) for each of a group of distinct samples at once,
 * then their group commit (addSamples), group after group. Prints per build and round the CPU
 * per sample of this process (the store's client side: the pg driver, the adapter) and of the
 * server backends of the store's own connections (found by application_name, so that other
 * clients of a shared server do not count; the WAL writer and checkpointer are left out).
 *
 *   node --import tsx bench/postgres-commit.ts <old build>/dist/adapters/postgres/postgres.metadata-store.js <new build>/dist/…
 *
 * Knobs: PGC_URL (postgres://postgres@127.0.0.1:5432/test; a schema per build and round, dropped
 * after), PGC_GROUP (6 samples per group commit), PGC_SAMPLES (3000 per round), PGC_ROUNDS (3).
 */
import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import pg from 'pg';
import type { MetadataStore, NewSample } from '../src/ports/metadata-store.js';
import { processCpuMs } from './pool.js';
import { backendPids } from './production.js';

const builds = process.argv.slice(2).map((path) => resolve(path));
const baseUrl = process.env.PGC_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const group = Number(process.env.PGC_GROUP ?? 6);
const samples = Number(process.env.PGC_SAMPLES ?? 3000);
const rounds = Number(process.env.PGC_ROUNDS ?? 3);

type StoreClass = new (url: string) => MetadataStore & { pool: pg.Pool };

async function measure(storePath: string, admin: pg.Client): Promise<{ client: number; server: number; rate: number }> {
  const { PostgresMetadataStore } = (await import(storePath)) as { PostgresMetadataStore: StoreClass };
  const schema = `pgc_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  url.searchParams.set('application_name', schema);
  const store = new PostgresMetadataStore(url.toString());
  try {
    await store.migrate();
    const { dataset } = await store.putDataset({ name: 'd', width: 100, height: 100, channels: 3, testPercent: 10 });
    let seq = 0;
    const prepare = async (): Promise<NewSample> => {
      const i = seq++;
      const sha256 = createHash('sha256').update(`${schema}:${i}`).digest('hex');
      const found = await store.findDatasetAndLiveSample('d', sha256);
      const newBlob = found.blobIndexed ? undefined : { sha256, segment: 1, offset: i * 20_000, length: 20_000 };
      return { sha256, category: `c${i % 10}`, mediaType: 'image/png', bytes: 20_000, pixelSlot: i, splitBucket: i % 100, perceptualHash: '0123456789abcdef', newBlob };
    };
    const run = async (count: number) => {
      for (let done = 0; done < count; done += group) {
        const items = await Promise.all(Array.from({ length: group }, prepare));
        for (const outcome of await store.addSamples(dataset.id, items)) if (outcome.kind !== 'added') throw new Error(`not added: ${outcome.kind}`);
      }
    };
    await run(300); // warm-up: connections opened, statements prepared
    const backends = await backendPids(admin, schema);
    const serverCpu = () =>
      backends.reduce((sum, pid) => {
        const ms = processCpuMs(pid);
        return sum + (Number.isFinite(ms) ? ms : 0);
      }, 0);
    const client0 = process.cpuUsage();
    const server0 = serverCpu();
    const started = performance.now();
    await run(samples);
    const client = process.cpuUsage(client0);
    return { client: (client.user + client.system) / 1000 / samples, server: (serverCpu() - server0) / samples, rate: samples / ((performance.now() - started) / 1000) };
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  }
}

const admin = new pg.Client({ connectionString: baseUrl });
await admin.connect();
try {
  for (let round = 0; round < rounds; round++) {
    const line: string[] = [];
    // Rotate which build goes first.
    for (let k = 0; k < builds.length; k++) {
      const b = (k + round) % builds.length;
      const m = await measure(builds[b], admin);
      line[b] = `b${b} ${m.rate.toFixed(0)}/s client ${m.client.toFixed(3)} ms + server ${m.server.toFixed(3)} ms`;
    }
    console.log(`round ${round} (group ${group}): ${line.join(' | ')}`);
  }
} finally {
  await admin.end();
}
