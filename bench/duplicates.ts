/**
 * Figures 13 and 13h: near-duplicates at scale, and what the perceptual hash costs an upload.
 *
 * 12: 1,000,000 synthetic 64-bit hashes (random, with 1% near copies of an earlier hash, up to 3
 *     bits apart) in the service's multi-index (src/domain/hamming-index.ts). One search (p50 of
 *     1,000) beside the reference, a linear popcount scan over the same typed arrays; the whole
 *     grouping of the million (what GET /duplicates computes once per revision and distance) on
 *     the worker thread the service uses, beside the scan's time multiplied out to a million
 *     searches; the memory of the index (bytes of its typed arrays, and this process's RSS rise).
 * 13h: an upload's service CPU (raw 100×100 PNG bodies, 8 clients, the serve child's
 *     /proc CPU per sample) beside the CPU of the hash alone on the same decoded pixels,
 *     measured in this process; target ≤ 5%.
 */
import sharp from 'sharp';
import { HammingIndex, linearNear } from '../src/domain/hamming-index.js';
import { perceptualHash } from '../src/domain/perceptual-hash.js';
import { componentsOffThread } from '../src/lib/hamming-components.js';
import type { BenchClient } from './http-client.js';
import type { Figure } from './figure.js';
import { CHANNELS, SIDE } from './images.js';
import { ownCpuMs, processCpuMs, summarize } from './pool.js';
import { apiRequest, createDataset, uploadRaw, type Service } from './service-load.js';

export const DUPLICATE_HASHES = 1_000_000;
export const HASH_COST_TARGET = 0.05;
const QUERIES = 1000;
const SCANS = 50;

/** Random hashes, every hundredth a copy of the one before with 1–3 bits flipped. */
function syntheticHashes(n: number): { hi: Uint32Array; lo: Uint32Array } {
  let s = 0x9e3779b9;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 100 === 99) {
      hi[i] = hi[i - 1];
      lo[i] = lo[i - 1];
      for (let b = 1 + (next() % 3); b > 0; b--) {
        const bit = next() % 64;
        if (bit < 32) hi[i] ^= 1 << bit;
        else lo[i] ^= 1 << (bit - 32);
      }
    } else {
      hi[i] = next();
      lo[i] = next();
    }
  }
  return { hi, lo };
}

const mib = (bytes: number) => bytes / 2 ** 20;
const ms = (from: number) => performance.now() - from;
const fixed = (n: number, digits = 1) => n.toFixed(digits);

export async function duplicateFigure(log: (line: string) => void, distances: readonly number[] = [3, 6]): Promise<Figure> {
  const rss0 = process.memoryUsage().rss;
  const { hi, lo } = syntheticHashes(DUPLICATE_HASHES);
  let t = performance.now();
  const index = new HammingIndex(hi, lo);
  const buildMs = ms(t);
  const rssRise = process.memoryUsage().rss - rss0;
  log(`figure 12: ${DUPLICATE_HASHES} hashes indexed in ${fixed(buildMs, 0)} ms, ${fixed(mib(index.bytes))} MiB of typed arrays (RSS +${fixed(mib(rssRise))} MiB with the hashes)`);

  const details: Record<string, unknown> = { hashes: DUPLICATE_HASHES, buildMs, indexMiB: mib(index.bytes), rssRiseMiB: mib(rssRise) };
  const rows: string[][] = [];
  let oursMain: number[] = [];
  let refMain: number[] = [];
  for (const distance of distances) {
    // Queries alternate with scans so that both see the same machine.
    const ours: number[] = [];
    const reference: number[] = [];
    for (let q = 0; q < QUERIES; q++) {
      const at = (q * 7919) % DUPLICATE_HASHES;
      let found = 0;
      t = performance.now();
      index.near(hi[at], lo[at], distance, () => found++);
      ours.push(ms(t));
      if (q % (QUERIES / SCANS) === 0) {
        let scanned = 0;
        t = performance.now();
        linearNear(hi, lo, hi[at], lo[at], distance, () => scanned++);
        reference.push(ms(t));
        if (scanned !== found) throw new Error(`search ${q} at distance ${distance}: the index found ${found}, the scan ${scanned}`);
      }
    }
    const o = summarize(ours);
    const r = summarize(reference);
    t = performance.now();
    const labels = await componentsOffThread(hi, lo, distance);
    const groupMs = ms(t);
    let grouped = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i] !== i) grouped++;
    details[`d${distance}`] = { searchP50Ms: o.median, scanP50Ms: r.median, groupAllMs: groupMs, scanAllEstimateMs: r.median * DUPLICATE_HASHES, samplesInGroupsBeyondFirst: grouped };
    log(`figure 12, D=${distance}: search p50 ${fixed(o.median, 3)} ms vs scan ${fixed(r.median, 2)} ms; all groups in ${fixed(groupMs / 1000, 2)} s (scan: ~${fixed((r.median * DUPLICATE_HASHES) / 1000 / 60, 0)} min)`);
    rows.push([
      `12 D=${distance}`,
      `near-duplicates among 1,000,000 hashes: one search p50; all groups (worker thread) ${fixed(groupMs / 1000, 2)} s`,
      `${fixed(o.median, 3)} ms`,
      `${fixed(r.median, 2)} ms (linear popcount scan; all: ~${fixed((r.median * DUPLICATE_HASHES) / 1000 / 60, 0)} min)`,
      fixed(o.median / r.median, 4),
      'all groups in seconds',
      groupMs < 60_000 ? 'PASS' : 'BELOW',
    ]);
    if (oursMain.length === 0) {
      oursMain = ours;
      refMain = reference;
    }
  }
  rows.push(['12 mem', `index memory at 1,000,000 hashes (typed arrays)`, `${fixed(mib(index.bytes))} MiB`, `RSS +${fixed(mib(rssRise))} MiB`, '', 'bounded', 'info']);
  return {
    id: '13',
    title: 'near-duplicate search among 1,000,000 hashes',
    unit: 'ms',
    ours: summarize(oursMain),
    reference: summarize(refMain),
    details,
    rows,
    runsLine: `  12: build ${fixed(buildMs, 0)} ms; ${distances.map((d) => `D=${d}: ${JSON.stringify(details[`d${d}`])}`).join('; ')}`,
  };
}

/** Figure 13h: the hash's CPU per sample beside an upload's service CPU per sample. */
export async function hashCostFigure(client: BenchClient, service: Service & { pid: number }, pngs: readonly Buffer[], categories: readonly string[], log: (line: string) => void): Promise<Figure> {
  await createDataset(client, service, 'hashcost');
  const cpu0 = processCpuMs(service.pid);
  const t = performance.now();
  await uploadRaw(client, service, 'hashcost', pngs, categories);
  const uploadCpuMs = (processCpuMs(service.pid) - cpu0) / pngs.length;
  const rate = pngs.length / (ms(t) / 1000);
  await client.expect(200, apiRequest(service, 'GET', '/v1/datasets/hashcost'));

  const pixels = await Promise.all(pngs.map(async (png) => new Uint8Array(await sharp(png).raw().toBuffer())));
  const shape = { width: SIDE, height: SIDE, channels: CHANNELS };
  // At ingest the hash reads pixels the decoder has just written (in cache): each image is copied
  // into one scratch record first, and the copy alone is measured too and taken off.
  const scratch = new Uint8Array(SIDE * SIDE * CHANNELS);
  const pass = (hash: boolean) => {
    const c = ownCpuMs();
    for (const p of pixels) {
      scratch.set(p);
      if (hash) perceptualHash(scratch, shape);
    }
    return (ownCpuMs() - c) / pixels.length;
  };
  // Warm up as the service is after its first thousand uploads (optimised code).
  for (let i = 0; i < 5; i++) pass(true);
  const rounds: number[] = [];
  for (let round = 0; round < 7; round++) {
    const copyOnly = pass(false);
    rounds.push(pass(true) - copyOnly);
  }
  const hashMs = summarize(rounds).median;
  const share = hashMs / uploadCpuMs;
  log(`figure 13h: hash ${fixed(hashMs * 1000, 0)} µs CPU per sample; upload ${fixed(uploadCpuMs, 2)} ms service CPU per sample (${fixed(rate, 0)} samples/s): ${fixed(share * 100, 1)}%`);
  return {
    id: '13h',
    title: 'perceptual hash at ingest',
    unit: 'ms CPU per sample',
    ours: summarize(rounds),
    details: { hashCpuMsPerSample: hashMs, uploadCpuMsPerSample: uploadCpuMs, uploadsPerSecond: rate, share },
    rows: [['13h', `perceptual hash of a 100×100×3 sample vs an upload's service CPU (${pngs.length} raw PNG uploads)`, `${fixed(hashMs * 1000, 0)} µs`, `${fixed(uploadCpuMs, 2)} ms per upload`, fixed(share, 3), `≤ ${HASH_COST_TARGET}`, share <= HASH_COST_TARGET ? 'PASS' : 'BELOW']],
    runsLine: `  13h: hash ${rounds.map((r) => fixed(r * 1000, 0)).join(' ')} µs per sample (in run order)`,
  };
}
