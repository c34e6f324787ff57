/**
 * Figures 1 and 2: a small batch from the service beside a bare node:http server (another child
 * process) sending the very same bytes, alternating (reference, ours, reference, ours, …), with
 * the CPU each server spends per batch (user + sys from /proc, all threads).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startChild, type Child } from './children.js';
import type { Figure } from './figure.js';
import type { BenchClient, Reply, RequestOptions } from './http-client.js';
import { processCpuMs, ownCpuMs, summarize, type Summary } from './pool.js';

export interface SmallBatchContext {
  readonly client: BenchClient;
  readonly servicePid: number;
  readonly repo: string;
  readonly tmp: string;
  readonly children: Child[];
  readonly repeats: number;
}

export interface PairedBatches {
  readonly bytes: number;
  readonly ours: Summary;
  readonly reference: Summary;
  readonly oursMs: Summary;
  readonly referenceMs: Summary;
  /** CPU per batch, ms. */
  readonly cpu: { readonly service: number; readonly referenceServer: number; readonly clientOurs: number; readonly clientReference: number };
}

/**
 * `request(seed)` asks the service for a batch; its first answer (seed 1) is what the reference
 * server sends for every request after. Every answer must have that many bytes (within 0.1 %
 * unless `exactLength`).
 */
export async function pairedBatches(ctx: SmallBatchContext, name: string, request: (seed: number) => RequestOptions, seedBase: number, exactLength = true): Promise<PairedBatches> {
  const first = await ctx.client.expect(200, { ...request(1), keepBody: true });
  const file = join(ctx.tmp, `${name}.reference`);
  await writeFile(file, first.body!);
  const reference = await startChild({
    name: `reference server (${name})`,
    args: [join(ctx.repo, 'bench', 'reference-server.js')],
    env: { ...process.env, PORT: String(await freePort()), REF_FILE: file },
    cwd: ctx.repo,
    stdoutFile: join(ctx.tmp, 'reference.log'),
    ready: /listening on http:\/\/[^\s]*:(\d+)/,
  });
  ctx.children.push(reference);
  try {
    const refRequest = (): RequestOptions => ({ ...request(1), port: reference.port });
    await ctx.client.expect(200, refRequest());
    await ctx.client.expect(200, request(2));
    const ours: Reply[] = [];
    const refs: Reply[] = [];
    const cpu = { service: 0, referenceServer: 0, clientOurs: 0, clientReference: 0 };
    // /proc reports CPU in 10 ms ticks: over a run the sum of one process's differences is off by
    // at most one tick, which for a few batches of a bare server (about 6 ms each) was a quarter
    // of its total and swung the CPU ratio between ×2.4 and ×4.5 from run to run. So the rounds go
    // on until the reference server has spent REFERENCE_CPU_MS (the ratio then within about 2 %).
    let rounds = 0;
    for (let i = 0; i < ctx.repeats || (cpu.referenceServer < REFERENCE_CPU_MS && i < MAX_ROUNDS); i++) {
      rounds++;
      let server = processCpuMs(reference.process.pid!);
      let own = ownCpuMs();
      refs.push(await ctx.client.expect(200, refRequest()));
      cpu.referenceServer += processCpuMs(reference.process.pid!) - server;
      cpu.clientReference += ownCpuMs() - own;
      server = processCpuMs(ctx.servicePid);
      own = ownCpuMs();
      ours.push(await ctx.client.expect(200, request(seedBase + i)));
      cpu.service += processCpuMs(ctx.servicePid) - server;
      cpu.clientOurs += ownCpuMs() - own;
    }
    // JSON answers differ by a few bytes from seed to seed (the seed and the ids are text).
    const tolerance = exactLength ? 0 : first.bytes / 1000;
    for (const reply of [...ours, ...refs]) {
      if (Math.abs(reply.bytes - first.bytes) > tolerance) throw new Error(`${name}: a reply had ${reply.bytes} bytes, expected ${first.bytes}`);
    }
    const perBatch = (ms: number) => Math.round((ms / rounds) * 10) / 10;
    return {
      bytes: first.bytes,
      ours: summarize(ours.map((r) => (r.bytes / r.ms) * 1000)),
      reference: summarize(refs.map((r) => (r.bytes / r.ms) * 1000)),
      oursMs: summarize(ours.map((r) => r.ms)),
      referenceMs: summarize(refs.map((r) => r.ms)),
      cpu: { service: perBatch(cpu.service), referenceServer: perBatch(cpu.referenceServer), clientOurs: perBatch(cpu.clientOurs), clientReference: perBatch(cpu.clientReference) },
    };
  } finally {
    await reference.stop();
  }
}

/** CPU the reference server must have spent before the rounds stop (see pairedBatches). */
const REFERENCE_CPU_MS = 500;
const MAX_ROUNDS = 150;

/** Service CPU per batch at most this many times the bare server's for the same bytes. */
export const CPU_RATIO_TARGET = 3;
/** Throughput at least this share of the bare server's. */
export const RATE_TARGET = 0.5;

/** The report rows of a paired figure: bytes/s beside the reference, then CPU per batch beside it. */
export function pairedFigure(id: string, title: string, paired: PairedBatches, reference: string): Figure {
  const rate = paired.ours.median / paired.reference.median;
  const cpuRatio = paired.cpu.service / paired.cpu.referenceServer;
  const gbps = (v: number) => `${(v / 1e9).toFixed(3)} GB/s`;
  return {
    id,
    title,
    unit: 'bytes/s',
    ours: paired.ours,
    reference: paired.reference,
    ratio: rate,
    target: RATE_TARGET,
    verdict: cpuRatio <= CPU_RATIO_TARGET && rate >= RATE_TARGET ? 'PASS' : 'BELOW',
    details: { ...paired, cpuRatio, reference },
    rows: [
      [id, `${title} (${(paired.bytes / 1e6).toFixed(2)} MB), ×${paired.ours.runs.length}`, `${gbps(paired.ours.median)} (${paired.oursMs.median.toFixed(1)} ms)`, `${gbps(paired.reference.median)} (${paired.referenceMs.median.toFixed(1)} ms)`, rate.toFixed(2), `≥ ${RATE_TARGET}`, rate >= RATE_TARGET ? 'PASS' : 'BELOW'],
      [`${id}c`, `  service CPU per batch vs ${reference}`, `${paired.cpu.service} ms`, `${paired.cpu.referenceServer} ms`, `×${cpuRatio.toFixed(2)}`, `≤ ×${CPU_RATIO_TARGET}`, cpuRatio <= CPU_RATIO_TARGET ? 'PASS' : 'BELOW'],
    ],
    cpuLine: `  ${id}: per batch: service ${paired.cpu.service} ms, reference server ${paired.cpu.referenceServer} ms (×${cpuRatio.toFixed(2)}); client ${paired.cpu.clientOurs} / ${paired.cpu.clientReference} ms`,
  };
}
