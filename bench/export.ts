import { createWriteStream, readFileSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import type { Figure } from './figure.js';
import type { BenchClient } from './http-client.js';
import { makePngs } from './images.js';
import { processCpuMs, summarize } from './pool.js';
import { apiRequest, createDataset, uploadRaw } from './service-load.js';

/** Figure 12's target: the export job's rate over a bare tar writer's rate for the same bytes. */
const TARGET = 0.5;
/** The absolute target for 100×100 PNGs. */
const ABSOLUTE_TARGET_MBPS = 200;

export interface ExportFigureContext {
  readonly client: BenchClient;
  readonly service: { port: number; key: string; pid: number };
  readonly samples: number;
  readonly rounds: number;
  readonly categories: readonly string[];
  /** A directory on the data dir's disk, for the reference's tar. */
  readonly tmp: string;
  readonly log: (line: string) => void;
}

interface ExportView {
  id: string;
  status: string;
  createdAt: string;
  finishedAt: string | null;
  files: { bytes: number }[];
  error?: string;
}

/**
 * Figure 12: a WebDataset export job of `samples` 100×100 PNGs (one shard), from POST to the
 * job's finishedAt (queue, reads of the originals from the segment files, tar headers, the write
 * and its fsync), beside a bare tar-stream writer packing the same members (the same PNG bytes,
 * a .cls and a .json each) from memory into a file on the same disk, with one fsync at the end.
 * Rounds alternate (reference, ours, …) and medians are compared.
 */
export async function exportFigure(ctx: ExportFigureContext): Promise<Figure> {
  const { client, service, log } = ctx;
  const pngs = await makePngs(0x5000, ctx.samples);
  await createDataset(client, service, 'exports');
  const t0 = performance.now();
  await uploadRaw(client, service, 'exports', pngs, ctx.categories);
  log(`figure 12 setup: ${pngs.length} raw uploads in ${((performance.now() - t0) / 1000).toFixed(1)} s (not timed)`);

  const ours: number[] = [];
  const reference: number[] = [];
  const oursCpu: number[] = [];
  const rssGrowth: number[] = [];
  let bytes = 0;
  for (let round = 0; round < ctx.rounds; round++) {
    const ref = await bareTar(pngs, ctx.categories, join(ctx.tmp, `reference-${round}.tar`));
    reference.push(ref.bytes / ref.seconds);
    const cpuBefore = processCpuMs(service.pid);
    const rssBefore = rssBytes(service.pid);
    let rssPeak = rssBefore;
    const job = await runExport(client, service, () => (rssPeak = Math.max(rssPeak, rssBytes(service.pid))));
    rssGrowth.push(rssPeak - rssBefore);
    const seconds = (Date.parse(job.finishedAt!) - Date.parse(job.createdAt)) / 1000;
    oursCpu.push(processCpuMs(service.pid) - cpuBefore);
    bytes = job.files.reduce((sum, file) => sum + file.bytes, 0);
    ours.push(bytes / seconds);
    await client.expect(200, apiRequest(service, 'DELETE', `/v1/exports/${job.id}`));
  }
  const oursSummary = summarize(ours);
  const refSummary = summarize(reference);
  const ratio = oursSummary.median / refSummary.median;
  const mbps = (v: number) => `${(v / 1e6).toFixed(0)} MB/s`;
  const verdict = ratio >= TARGET && oursSummary.median / 1e6 >= ABSOLUTE_TARGET_MBPS ? 'PASS' : 'BELOW';
  return {
    id: '12',
    title: `export job, webdataset, ${ctx.samples} 100×100 PNGs`,
    unit: 'bytes/s',
    ours: oursSummary,
    reference: refSummary,
    ratio,
    target: TARGET,
    verdict,
    details: { bytes, samples: ctx.samples, oursCpuMs: oursCpu, rssGrowthBytes: rssGrowth },
    rows: [
      ['12', `export job, webdataset (${(bytes / 1e6).toFixed(1)} MB, ${ctx.samples} PNGs), ×${ctx.rounds}`, mbps(oursSummary.median), mbps(refSummary.median), ratio.toFixed(2), `≥ ${TARGET} and ≥ ${ABSOLUTE_TARGET_MBPS} MB/s`, verdict],
    ],
    runsLine: `  12: ours ${ours.map((v) => (v / 1e6).toFixed(0)).join(' ')}; bare tar-stream writer ${reference.map((v) => (v / 1e6).toFixed(0)).join(' ')} (MB/s, in run order)`,
    cpuLine: `  12: service CPU per export job ${oursCpu.map((v) => v.toFixed(0)).join(' ')} ms; service RSS growth while it ran ${rssGrowth.map((v) => (v / 2 ** 20).toFixed(0)).join(' ')} MiB (the export is ${(bytes / 2 ** 20).toFixed(0)} MiB)`,
  };
}

/** Resident memory of a process now (VmRSS), in bytes; NaN when unreadable. */
function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function runExport(client: BenchClient, service: { port: number; key: string }, sample: () => void): Promise<ExportView> {
  const created = await client.expect(202, { ...apiRequest(service, 'POST', '/v1/datasets/exports/exports', { format: 'webdataset', shardSize: 1_000_000 }), keepBody: true });
  const { id } = JSON.parse(created.body!.toString()) as ExportView;
  for (;;) {
    const reply = await client.expect(200, { ...apiRequest(service, 'GET', `/v1/exports/${id}`), keepBody: true });
    const view = JSON.parse(reply.body!.toString()) as ExportView;
    if (view.status === 'failed') throw new Error(`export job failed: ${view.error}`);
    sample();
    if (view.status === 'complete') return view;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The reference: tar-stream packing the same members from memory into a file, synced. */
async function bareTar(pngs: readonly Buffer[], categories: readonly string[], path: string): Promise<{ bytes: number; seconds: number }> {
  const started = performance.now();
  const archive = pack();
  const out = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  archive.pipe(out);
  for (let i = 0; i < pngs.length; i++) {
    const key = String(i + 1).padStart(12, '0');
    const cls = Buffer.from(String(i % categories.length));
    const json = Buffer.from(JSON.stringify({ id: i + 1, category: categories[i % categories.length], categoryIndex: i % categories.length }));
    archive.entry({ name: `${key}.png` }, pngs[i]);
    archive.entry({ name: `${key}.cls` }, cls);
    archive.entry({ name: `${key}.json` }, json);
  }
  archive.finalize();
  await done;
  const handle = await open(path, 'r+');
  await handle.datasync();
  await handle.close();
  const seconds = (performance.now() - started) / 1000;
  const { size } = await stat(path);
  await rm(path);
  return { bytes: size, seconds };
}
