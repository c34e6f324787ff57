/**
 * The ingest figures (bench/run.ts), each with the service's CPU per sample (user + sys of the
 * `serve` process, all threads, from /proc) beside its rate, and references measured in the
 * same rounds:
 *
 *   - the physical floor: the same PNG bytes SHA-256'd, decoded (the lean PNG path) and appended
 *     with their pixels to one file, one fdatasync per group of concurrent writers, 8 async loops
 *     in this process, no HTTP, no database;
 *   - the per-file design of release 0.1.0: sharp decode, original written to a temp file,
 *     fsynced, renamed, its folder fsynced, pixel record pwritten and fdatasynced, per sample;
 *   - for 3r, the floor over HTTP: the floor's work behind a bare node:http server in a child
 *     process of its own (ingest-floor-server.ts) taking the same raw uploads from the same 8
 *     clients, its CPU per sample beside the service's.
 *
 *   3.  single uploads, JSON {category, data: base64}, 8 keep-alive clients (as in 0.1.0);
 *   3r. single uploads, raw image/png bodies, 8 keep-alive clients. Targets: ≥ 1,500 samples/s
 *       and ≤ 0.6 ms of service CPU per sample;
 *   3b. bulk uploads: each round one request carrying every PNG of the round as a tar. Target:
 *       ≥ 5,000 samples/s;
 *   3i. `sensory import` of a folder of 10,000 PNG files (BENCH_IMPORT_FILES) into a fresh
 *       dataset: samples/s of the whole command, service CPU per sample.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { pack } from 'tar-stream';
import { freePort, startChild, type Child } from './children.js';
import type { Figure } from './figure.js';
import type { BenchClient } from './http-client.js';
import { SIDE } from './images.js';
import { FloorAppender } from './ingest-floor.js';
import { referenceIngest } from './ingest-reference.js';
import { ownCpuMs, processCpuMs, runPool, summarize, type Summary } from './pool.js';
import { createDataset, ingest, jsonBodies, sampleCount, type Service } from './service-load.js';

export const SINGLE_TARGET = { samplesPerSecond: 1500, cpuMsPerSample: 0.6 };
export const BULK_TARGET = 5000;

export interface IngestContext {
  readonly figures: ReadonlySet<string>;
  readonly rounds: number;
  readonly concurrency: number;
  readonly ingestSeconds: number;
  /** Distinct PNG sets, one per round and kind of run (never the same bytes twice in a dataset). */
  readonly pngSets: (set: number) => Promise<Buffer[]>;
  readonly importFiles: number;
  readonly categories: readonly string[];
  readonly client: BenchClient;
  readonly service: Service & { pid: number; url: string };
  readonly tmp: string;
  readonly mainJs: string;
  readonly log: (line: string) => void;
}

interface Run {
  readonly samples: number;
  readonly seconds: number;
  /** CPU per sample, ms: the service's (ours) or this process's (references). */
  readonly cpuMs: number;
}

const rate = (run: Run) => run.samples / run.seconds;
const perSample = (ms: number, samples: number) => ms / Math.max(1, samples);
const fixed = (n: number, digits = 1) => n.toFixed(digits);

/** The floor (ingest-floor.ts) in this process: `concurrency` async loops over one file. */
export async function floorReference(pngs: readonly Buffer[], path: string, concurrency: number, deadline: number): Promise<Run> {
  const fd = openSync(path, 'w');
  const floor = new FloorAppender(fd);
  const cpu0 = ownCpuMs();
  const started = performance.now();
  try {
    const samples = await runPool(pngs, concurrency, async (png) => void (await floor.store(png)), deadline);
    const seconds = (performance.now() - started) / 1000;
    return { samples, seconds, cpuMs: perSample(ownCpuMs() - cpu0, samples) };
  } finally {
    await floor.idle();
    closeSync(fd);
  }
}

/** The floor behind a bare HTTP server (ingest-floor-server.ts), a child process of its own. */
async function startFloorServer(ctx: IngestContext): Promise<Child> {
  return startChild({
    name: 'floor server',
    args: ['--import', 'tsx', fileURLToPath(new URL('./ingest-floor-server.ts', import.meta.url))],
    env: { ...process.env, PORT: String(await freePort()), FLOOR_FILE: join(ctx.tmp, 'floor-server.bin') },
    // The checkout, where tsx resolves.
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdoutFile: join(ctx.tmp, 'floor-server.log'),
    ready: /listening on http:\/\/[^\s]*:(\d+)/,
  });
}

async function perFileReference(pngs: readonly Buffer[], root: string, concurrency: number, deadline: number): Promise<Run> {
  const cpu0 = ownCpuMs();
  const { done, seconds } = await referenceIngest(pngs, root, concurrency, deadline);
  const cpuMs = perSample(ownCpuMs() - cpu0, done);
  await rm(root, { recursive: true, force: true });
  return { samples: done, seconds, cpuMs };
}

/** Posts each PNG as a raw image/png body from `concurrency` clients; every one must answer 201. */
async function postRaw(ctx: IngestContext, port: number, pid: number, path: (i: number) => string, headers: Record<string, string>, pngs: readonly Buffer[]): Promise<Run> {
  const cpu0 = processCpuMs(pid);
  const started = performance.now();
  const samples = await runPool(
    pngs,
    ctx.concurrency,
    async (png, i) => {
      await ctx.client.expect(201, { port, method: 'POST', path: path(i), headers: { ...headers, 'content-type': 'image/png' }, body: png });
    },
    started + ctx.ingestSeconds * 1000,
  );
  const seconds = (performance.now() - started) / 1000;
  return { samples, seconds, cpuMs: perSample(processCpuMs(pid) - cpu0, samples) };
}

/** Single raw uploads into the service; every one answered 201 must be in the dataset. */
async function rawUploads(ctx: IngestContext, dataset: string, pngs: readonly Buffer[]): Promise<Run> {
  const { client, service } = ctx;
  const path = (i: number) => `/v1/datasets/${dataset}/samples?category=${ctx.categories[i % ctx.categories.length]}`;
  const run = await postRaw(ctx, service.port, service.pid, path, { 'api-access-key': service.key }, pngs);
  const count = await sampleCount(client, service, dataset);
  if (count !== run.samples) throw new Error(`dataset ${dataset} has ${count} samples, ${run.samples} uploads were answered 201`);
  return run;
}

async function jsonUploads(ctx: IngestContext, dataset: string, pngs: readonly Buffer[]): Promise<Run> {
  const bodies = jsonBodies(pngs, ctx.categories);
  const cpu0 = processCpuMs(ctx.service.pid);
  const { done, seconds } = await ingest(ctx.client, [ctx.service], dataset, bodies, ctx.concurrency, ctx.ingestSeconds);
  return { samples: done, seconds, cpuMs: perSample(processCpuMs(ctx.service.pid) - cpu0, done) };
}

async function tarOf(pngs: readonly Buffer[], categories: readonly string[]): Promise<Buffer> {
  const archive = pack();
  pngs.forEach((png, i) => archive.entry({ name: `${categories[i % categories.length]}/${i}.png`, size: png.length }, png));
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One bulk request carrying every PNG; every item must come back stored. */
async function bulkUpload(ctx: IngestContext, dataset: string, body: Buffer, items: number): Promise<Run> {
  const cpu0 = processCpuMs(ctx.service.pid);
  const reply = await ctx.client.expect(201, {
    port: ctx.service.port,
    method: 'POST',
    path: `/v1/datasets/${dataset}/samples/bulk`,
    headers: { 'api-access-key': ctx.service.key, 'content-type': 'application/x-tar' },
    body,
    keepBody: true,
  });
  const cpuMs = perSample(processCpuMs(ctx.service.pid) - cpu0, items);
  const result = JSON.parse(reply.body!.toString('utf8')) as { stored: number; items: number };
  if (result.stored !== items || result.items !== items) throw new Error(`bulk upload stored ${result.stored} of ${items}`);
  return { samples: items, seconds: reply.ms / 1000, cpuMs };
}

/** `node cli/main.js import <dir>` into a fresh dataset: the whole command, wall time. */
async function cliImport(ctx: IngestContext, dir: string, dataset: string, files: number): Promise<Run> {
  const cpu0 = processCpuMs(ctx.service.pid);
  const started = performance.now();
  const args = [ctx.mainJs, 'import', dir, '--dataset', dataset, '--width', String(SIDE), '--height', String(SIDE), '--url', ctx.service.url, '--key', ctx.service.key];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`sensory import exited ${code}: ${stderr.slice(-2000)}`))));
  });
  const seconds = (performance.now() - started) / 1000;
  const report = JSON.parse(out.trim().split('\n').at(-1)!) as { stored: number };
  if (report.stored !== files) throw new Error(`sensory import stored ${report.stored} of ${files}`);
  return { samples: files, seconds, cpuMs: perSample(processCpuMs(ctx.service.pid) - cpu0, files) };
}

/** `count` distinct PNG files under `<dir>/<category>/`: the sets' PNGs, and copies made distinct by a tEXt chunk. */
async function writeImportTree(dir: string, pngs: readonly Buffer[], count: number, categories: readonly string[]): Promise<void> {
  for (const category of categories) await mkdir(join(dir, category), { recursive: true });
  await runPool(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      const base = pngs[i % pngs.length];
      const bytes = i < pngs.length ? base : withText(base, `copy ${i}`);
      await writeFile(join(dir, categories[i % categories.length], `${String(i).padStart(6, '0')}.png`), bytes);
    },
  );
}

/** The PNG with a tEXt chunk carrying `text` before IEND: new bytes, the same pixels. */
export function pngVariant(png: Buffer, text: string): Buffer {
  return withText(png, text);
}

function withText(png: Buffer, text: string): Buffer {
  const data = Buffer.from(`Comment\0${text}`, 'latin1');
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, png.length - 12), chunk, png.subarray(png.length - 12)]);
}

function cpuLine(id: string, label: string, ours: readonly Run[], refs: Record<string, readonly Run[]>): string {
  const med = (runs: readonly Run[]) => fixed(summarize(runs.map((r) => r.cpuMs)).median, 3);
  const references = Object.entries(refs)
    .filter(([, runs]) => runs.length > 0)
    .map(([name, runs]) => `${name} ${med(runs)} ms`)
    .join(', ');
  return `  ${id}: per sample: service ${med(ours)} ms (${label})${references ? `; references (CPU of this process unless named): ${references}` : ''}`;
}

function figureOf(id: string, title: string, ours: readonly Run[], floor: readonly Run[], extra: Record<string, unknown>, target?: { rate?: number; cpuMs?: number }): Figure {
  const oursRate: Summary = summarize(ours.map(rate));
  const floorRate = floor.length ? summarize(floor.map(rate)) : undefined;
  const cpu = summarize(ours.map((r) => r.cpuMs));
  const meets = (target?.rate === undefined || oursRate.median >= target.rate) && (target?.cpuMs === undefined || cpu.median <= target.cpuMs);
  const targetText = [target?.rate ? `≥ ${target.rate}/s` : '', target?.cpuMs ? `≤ ${target.cpuMs} ms CPU` : ''].filter(Boolean).join(', ') || '–';
  return {
    id,
    title,
    unit: 'samples/s',
    ours: oursRate,
    reference: floorRate,
    ratio: floorRate ? oursRate.median / floorRate.median : undefined,
    target: target?.rate,
    verdict: target ? (meets ? 'PASS' : 'BELOW') : 'info',
    details: { ...extra, cpuMsPerSample: cpu, rounds: ours.map((r) => ({ ...r })) },
    rows: [
      [
        id,
        `${title}, ×${ours.length}`,
        `${fixed(oursRate.median, 0)} samples/s, ${fixed(cpu.median, 3)} ms CPU`,
        floorRate ? `floor ${fixed(floorRate.median, 0)} samples/s` : '–',
        floorRate ? fixed(oursRate.median / floorRate.median, 2) : '–',
        targetText,
        target ? (meets ? 'PASS' : 'BELOW') : 'info',
      ],
    ],
    runsLine: `  ${id}: ours ${ours.map((r) => fixed(rate(r), 0)).join(' ')}${floor.length ? `; floor ${floor.map((r) => fixed(rate(r), 0)).join(' ')}` : ''} (samples/s, in run order)`,
  };
}

/** Figures 3, 3r, 3b and 3i on the running embedded service. */
export async function ingestFigures(ctx: IngestContext): Promise<Figure[]> {
  const wants = (id: string) => ctx.figures.has(id);
  const figures: Figure[] = [];
  let set = 100;
  if (wants('3') || wants('3r')) {
    const floor: Run[] = [];
    const perFile: Run[] = [];
    const json: Run[] = [];
    const raw: Run[] = [];
    const floorHttp: Run[] = [];
    const floorServer = wants('3r') ? await startFloorServer(ctx) : undefined;
    // Like the service, whose JIT the dataset creations and the rounds before have warmed.
    if (floorServer) await postRaw(ctx, floorServer.port, floorServer.process.pid!, () => '/upload', {}, (await ctx.pngSets(++set)).slice(0, 500));
    for (let round = 1; round <= ctx.rounds; round++) {
      const deadline = () => performance.now() + ctx.ingestSeconds * 1000;
      floor.push(await floorReference(await ctx.pngSets(++set), join(ctx.tmp, `floor-${round}.bin`), ctx.concurrency, deadline()));
      await rm(join(ctx.tmp, `floor-${round}.bin`), { force: true });
      perFile.push(await perFileReference(await ctx.pngSets(++set), join(ctx.tmp, `per-file-${round}`), ctx.concurrency, deadline()));
      if (wants('3')) {
        await createDataset(ctx.client, ctx.service, `ingest-json-${round}`);
        json.push(await jsonUploads(ctx, `ingest-json-${round}`, await ctx.pngSets(++set)));
      }
      if (wants('3r')) {
        await createDataset(ctx.client, ctx.service, `ingest-raw-${round}`);
        raw.push(await rawUploads(ctx, `ingest-raw-${round}`, await ctx.pngSets(++set)));
        floorHttp.push(await postRaw(ctx, floorServer!.port, floorServer!.process.pid!, () => '/upload', {}, await ctx.pngSets(++set)));
      }
      const last = (runs: Run[]) => (runs.length ? `${fixed(rate(runs.at(-1)!), 0)}/s ${fixed(runs.at(-1)!.cpuMs, 3)} ms` : '–');
      ctx.log(`ingest round ${round}: floor ${last(floor)}, per-file ${last(perFile)}, JSON ${last(json)}, raw ${last(raw)}, floor over HTTP ${last(floorHttp)} (load ${os.loadavg()[0].toFixed(2)})`);
    }
    await floorServer?.stop();
    const refs = { floor, 'per-file 0.1.0': perFile };
    const perFileRate = summarize(perFile.map(rate)).median;
    if (wants('3')) {
      const figure = figureOf('3', `single uploads, JSON base64, ${ctx.concurrency} clients`, json, floor, { perFileReference: perFile, perFileRate });
      figure.cpuLine = cpuLine('3', 'JSON', json, refs);
      figures.push(figure);
    }
    if (wants('3r')) {
      const floorHttpRate = summarize(floorHttp.map(rate)).median;
      const figure = figureOf('3r', `single uploads, raw image/png, ${ctx.concurrency} clients`, raw, floor, { perFileReference: perFile, perFileRate, floorOverHttp: floorHttp, floorOverHttpRate: floorHttpRate }, { rate: SINGLE_TARGET.samplesPerSecond, cpuMs: SINGLE_TARGET.cpuMsPerSample });
      figure.cpuLine = cpuLine('3r', 'raw', raw, { ...refs, 'floor over HTTP (its server)': floorHttp });
      figure.runsLine += `; floor over HTTP ${floorHttp.map((r) => fixed(rate(r), 0)).join(' ')}`;
      figures.push(figure);
    }
    ctx.log(`per-file design of 0.1.0 (reference): ${fixed(perFileRate, 0)} samples/s`);
  }
  if (wants('3b')) {
    const floor: Run[] = [];
    const bulk: Run[] = [];
    for (let round = 1; round <= ctx.rounds; round++) {
      floor.push(await floorReference(await ctx.pngSets(++set), join(ctx.tmp, `floor-b${round}.bin`), ctx.concurrency, Infinity));
      await rm(join(ctx.tmp, `floor-b${round}.bin`), { force: true });
      const pngs = [...(await ctx.pngSets(++set)), ...(await ctx.pngSets(++set))];
      const body = await tarOf(pngs, ctx.categories);
      await createDataset(ctx.client, ctx.service, `bulk-${round}`);
      bulk.push(await bulkUpload(ctx, `bulk-${round}`, body, pngs.length));
      ctx.log(`bulk round ${round}: floor ${fixed(rate(floor.at(-1)!), 0)}/s, bulk ${fixed(rate(bulk.at(-1)!), 0)}/s ${fixed(bulk.at(-1)!.cpuMs, 3)} ms (${pngs.length} items, ${fixed(body.length / 1e6)} MB; load ${os.loadavg()[0].toFixed(2)})`);
    }
    const figure = figureOf('3b', 'bulk upload, one streamed tar per round', bulk, floor, {}, { rate: BULK_TARGET });
    figure.cpuLine = cpuLine('3b', 'bulk', bulk, { floor });
    figures.push(figure);
  }
  if (wants('3i')) {
    const runs: Run[] = [];
    const dir = join(ctx.tmp, 'import-tree');
    await writeImportTree(dir, [...(await ctx.pngSets(++set)), ...(await ctx.pngSets(++set))], ctx.importFiles, ctx.categories);
    for (let round = 1; round <= ctx.rounds; round++) {
      runs.push(await cliImport(ctx, dir, `import-${round}`, ctx.importFiles));
      ctx.log(`import round ${round}: ${ctx.importFiles} files in ${fixed(runs.at(-1)!.seconds, 2)} s = ${fixed(rate(runs.at(-1)!), 0)}/s (load ${os.loadavg()[0].toFixed(2)})`);
    }
    await rm(dir, { recursive: true, force: true });
    const figure = figureOf('3i', `sensory import of ${ctx.importFiles} files`, runs, [], {});
    figure.cpuLine = cpuLine('3i', 'import', runs, {});
    figures.push(figure);
  }
  return figures;
}
