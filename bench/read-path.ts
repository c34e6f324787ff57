/**
 * Figures 9–11 of `npm run bench`: the read path as a trainer sees it, on the running embedded
 * service of figures 1–2 (dataset `small`: 1,000 samples at 100×100×3).
 *
 *   9. augmentation: batches of 1,000 with noise 1 (every sample rotated and rescaled) beside
 *      the same batches with noise 0, alternating: samples/s and service CPU per batch;
 *  10. the clients' own reading rate: one 1,000-sample safetensors batch read by the Python
 *      client (reuse=True) and by the TypeScript SDK ({reuse: true}; and, for information, with
 *      memory of its own per batch), from a bare node:http server sending the same bytes and
 *      from the service, beside curl reading it from the bare server;
 *  11. the user's alternative: a Python trainer reading the same images from a local
 *      ImageFolder with PIL, beside the same trainer through the Python client (batches), at
 *      100×100 PNGs and at 224×224 JPEGs (q90): images/s per trainer process and CPU per image.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startChild, type Child } from './children.js';
import type { Figure } from './figure.js';
import type { BenchClient, RequestOptions } from './http-client.js';
import { makeJpegs } from './images.js';
import { median, processCpuMs, summarize } from './pool.js';
import { apiRequest, uploadRaw } from './service-load.js';

export interface ReadPathContext {
  readonly client: BenchClient;
  readonly service: { readonly port: number; readonly key: string; readonly pid: number };
  readonly repo: string;
  readonly tmp: string;
  readonly children: Child[];
  readonly log: (line: string) => void;
  readonly repeats: number;
  readonly trainerRounds: number;
  /** The 1,000 PNGs of dataset `small`, in upload order (category i % 10). */
  readonly pngs: readonly Buffer[];
  readonly categories: readonly string[];
}

const BATCH = 1000;
/** Figure 9: noise-1 throughput at least this share of noise-0. */
export const NOISE_TARGET = 0.7;
/** Figure 10: a client reads at least this many bytes/s, at most this CPU per 30 KB sample. */
export const CLIENT_RATE_TARGET = 1e9;
export const CLIENT_CPU_TARGET_MS = 0.03;
/** Figure 11: Sensory at least this many times the local PIL loader, per process and per core. */
export const TRAINER_TARGET = 3;

const fixed = (n: number, digits = 1) => n.toFixed(digits);

// ---------------------------------------------------------------- figure 9

export async function augmentationFigure(ctx: ReadPathContext): Promise<Figure> {
  const request = (noise: number, seed: number): RequestOptions =>
    apiRequest(ctx.service, 'POST', '/v1/datasets/small/batches', { size: BATCH, seed, noise }, { accept: 'application/x-safetensors' });
  await ctx.client.expect(200, request(1, 1));
  await ctx.client.expect(200, request(0, 1));
  const rates: Record<'0' | '1', number[]> = { '0': [], '1': [] };
  const cpu: Record<'0' | '1', number> = { '0': 0, '1': 0 };
  for (let i = 0; i < ctx.repeats; i++) {
    for (const noise of i % 2 ? (['1', '0'] as const) : (['0', '1'] as const)) {
      const before = processCpuMs(ctx.service.pid);
      const reply = await ctx.client.expect(200, request(Number(noise), 300 + i));
      cpu[noise] += processCpuMs(ctx.service.pid) - before;
      rates[noise].push((BATCH / reply.ms) * 1000);
    }
  }
  const ours = summarize(rates['1']);
  const reference = summarize(rates['0']);
  const ratio = ours.median / reference.median;
  const perBatch = (ms: number) => fixed(ms / ctx.repeats);
  const verdict = ratio >= NOISE_TARGET ? 'PASS' : 'BELOW';
  return {
    id: '9',
    title: `augmentation: batch ${BATCH} with noise 1 vs noise 0`,
    unit: 'samples/s',
    ours,
    reference,
    ratio,
    target: NOISE_TARGET,
    verdict,
    details: { cpuMsPerBatch: { noise1: Number(perBatch(cpu['1'])), noise0: Number(perBatch(cpu['0'])) } },
    rows: [
      [
        '9',
        `augmentation: batch ${BATCH} safetensors, noise 1 (rotate + rescale every sample), ×${ctx.repeats}`,
        `${fixed(ours.median, 0)} samples/s`,
        `noise 0: ${fixed(reference.median, 0)} samples/s`,
        fixed(ratio, 2),
        `≥ ${NOISE_TARGET}`,
        verdict,
      ],
    ],
    cpuLine: `  9: service CPU per batch: noise 1 ${perBatch(cpu['1'])} ms, noise 0 ${perBatch(cpu['0'])} ms (${fixed((cpu['1'] - cpu['0']) / ctx.repeats / BATCH * 1000)} µs of warp per sample)`,
  };
}

// ---------------------------------------------------------------- python

const hasModules = (python: string, modules: string) => spawnSync(python, ['-c', `import ${modules}`], { stdio: 'ignore', timeout: 30_000 }).status === 0;

/** A python3 that imports `modules`; when none does and apt-get can run, Debian's packages are installed first. */
export function pythonWith(modules: string, debianPackages: readonly string[], log: (line: string) => void): string | undefined {
  const pick = () => ['python3', '/usr/bin/python3'].find((python) => hasModules(python, modules));
  const found = pick();
  if (found || process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return found;
  log(`no python3 imports ${modules}: apt-get install -y ${debianPackages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...debianPackages], { stdio: 'ignore', env, timeout: 600_000 });
  return pick();
}

interface TrainerRun {
  readonly images: number;
  readonly bytes?: number;
  readonly walls: number[];
  readonly cpus: number[];
  readonly python: string;
}

async function runTrainer(python: string, repo: string, args: readonly string[]): Promise<TrainerRun> {
  const child = spawn(python, [join(repo, 'bench', 'trainer_alternative.py'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`trainer_alternative.py ${args[0]} failed (${code}):\n${err}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as TrainerRun;
}

/** Median images/s and CPU ms per image over a run's rounds. */
function trainerRates(run: TrainerRun): { perSecond: number; cpuMsPerImage: number } {
  return { perSecond: median(run.walls.map((wall) => run.images / wall)), cpuMsPerImage: median(run.cpus.map((cpu) => (cpu * 1000) / run.images)) };
}

// ---------------------------------------------------------------- figure 10

/** A bare node:http server (another child) sending `body` for every request. */
async function bareServer(ctx: ReadPathContext, name: string, body: Buffer): Promise<Child> {
  const file = join(ctx.tmp, `${name}.reference`);
  await writeFile(file, body);
  const child = await startChild({
    name: `reference server (${name})`,
    args: [join(ctx.repo, 'bench', 'reference-server.js')],
    env: { ...process.env, PORT: String(await freePort()), REF_FILE: file },
    cwd: ctx.repo,
    stdoutFile: join(ctx.tmp, 'reference.log'),
    ready: /listening on http:\/\/[^\s]*:(\d+)/,
  });
  ctx.children.push(child);
  return child;
}

function curlRate(url: string, rounds: number): number | undefined {
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const run = spawnSync('curl', ['-s', '-o', '/dev/null', '-X', 'POST', '-w', '%{speed_download}', url], { encoding: 'utf8', timeout: 30_000 });
    if (run.status !== 0) return undefined;
    rates.push(Number(run.stdout));
  }
  return median(rates);
}

/** bench/sdk-read.ts in a node process of its own: median bytes/s and CPU per sample. */
async function sdkRead(repo: string, url: string, key: string, rounds: number, bytes: number, mode: 'reuse' | 'fresh'): Promise<{ rate: number; cpuMsPerSample: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'bench', 'sdk-read.ts'), url, key, String(BATCH), String(rounds), mode], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`bench/sdk-read.ts failed (${code}):\n${err}`);
  const run = JSON.parse(out.trim().split('\n').at(-1)!) as { walls: number[]; cpus: number[] };
  return { rate: median(run.walls.map((wall) => bytes / wall)), cpuMsPerSample: (median(run.cpus) * 1000) / BATCH };
}

export async function clientReadFigure(ctx: ReadPathContext, python: string | undefined): Promise<Figure> {
  const first = await ctx.client.expect(200, { ...apiRequest(ctx.service, 'POST', '/v1/datasets/small/batches', { size: BATCH, seed: 1 }, { accept: 'application/x-safetensors' }), keepBody: true });
  const bare = await bareServer(ctx, 'client-read', first.body!);
  const serviceUrl = `http://127.0.0.1:${ctx.service.port}`;
  const bareUrl = `http://127.0.0.1:${bare.port}`;
  const rounds = Math.max(ctx.repeats, 9);
  try {
    const curl = curlRate(`${bareUrl}/`, rounds);
    const rows: string[][] = [];
    const details: Record<string, unknown> = { bytes: first.bytes, curlFromBareServer: curl };
    let allPass = true;
    const row = (label: string, rate: number, cpuMsPerSample: number, judged: boolean) => {
      const pass = rate >= CLIENT_RATE_TARGET && cpuMsPerSample <= CLIENT_CPU_TARGET_MS;
      if (judged) allPass &&= pass;
      rows.push([
        '10',
        label,
        `${fixed(rate / 1e9, 3)} GB/s, ${fixed(cpuMsPerSample, 4)} ms CPU/sample`,
        curl === undefined ? 'curl missing' : `curl ← bare: ${fixed(curl / 1e9, 3)} GB/s`,
        curl === undefined ? '–' : fixed(rate / curl, 2),
        judged ? `≥ 1 GB/s, ≤ ${CLIENT_CPU_TARGET_MS} ms` : 'info',
        judged ? (pass ? 'PASS' : 'BELOW') : 'info',
      ]);
    };
    if (python) {
      for (const [label, url, judged] of [
        ['Python client (reuse=True) ← bare server, same bytes', bareUrl, true],
        ['Python client (reuse=True) ← Sensory', serviceUrl, false],
      ] as const) {
        const run = await runTrainer(python, ctx.repo, ['read', url, ctx.service.key, 'small', String(BATCH), String(rounds)]);
        const rate = median(run.walls.map((wall) => run.bytes! / wall));
        const cpu = median(run.cpus) * 1000;
        details[label] = { rate, cpuMsPerSample: cpu / BATCH, run };
        row(`${label}, batch ${BATCH}`, rate, cpu / BATCH, judged);
      }
    } else {
      ctx.log('figure 10: no python3 with numpy: the Python client rows are skipped');
    }
    for (const [label, url, judged, mode] of [
      ['TypeScript SDK ({reuse: true}) ← bare server, same bytes', bareUrl, true, 'reuse'],
      ['TypeScript SDK ({reuse: true}) ← Sensory', serviceUrl, false, 'reuse'],
      ['TypeScript SDK (memory of its own per batch) ← bare server', bareUrl, false, 'fresh'],
    ] as const) {
      const sdk = await sdkRead(ctx.repo, url, ctx.service.key, rounds, first.bytes, mode);
      details[label] = sdk;
      row(`${label}, batch ${BATCH}`, sdk.rate, sdk.cpuMsPerSample, judged);
    }
    const verdict = allPass ? 'PASS' : 'BELOW';
    return {
      id: '10',
      title: 'clients reading a batch',
      unit: 'bytes/s',
      ours: summarize([0]),
      verdict,
      details,
      rows,
      runsLine: `  10: client rates are medians of ${rounds} reads after a warm-up; CPU is the client process's own (user + sys)`,
    };
  } finally {
    await bare.stop();
  }
}

// ---------------------------------------------------------------- figure 11

async function writeImageFolder(root: string, images: readonly Buffer[], categories: readonly string[], extension: string): Promise<void> {
  for (const category of categories) await mkdir(join(root, category), { recursive: true });
  await Promise.all(images.map((image, i) => writeFile(join(root, categories[i % categories.length], `${String(i).padStart(5, '0')}.${extension}`), image)));
}

export async function trainerFigure(ctx: ReadPathContext, python: string): Promise<Figure> {
  const side224 = 224;
  const jpegCount = 500;
  const jpegs = await makeJpegs(7, jpegCount, side224, 90);
  const created = await ctx.client.expect(201, { ...apiRequest(ctx.service, 'PUT', '/v1/datasets/jpeg224', { width: side224, height: side224, channels: 3 }), keepBody: true });
  if (!created.body) throw new Error('dataset jpeg224 was not created');
  await uploadRaw(ctx.client, ctx.service, 'jpeg224', jpegs, ctx.categories);
  const cases = [
    { label: `${ctx.pngs.length} 100×100 PNGs`, folder: join(ctx.tmp, 'imagefolder-png'), images: ctx.pngs, extension: 'png', dataset: 'small', batch: BATCH, count: ctx.pngs.length },
    { label: `${jpegCount} 224×224 JPEGs (q90)`, folder: join(ctx.tmp, 'imagefolder-jpeg'), images: jpegs, extension: 'jpg', dataset: 'jpeg224', batch: jpegCount, count: jpegCount },
  ];
  const rows: string[][] = [];
  const cpuLines: string[] = [];
  const details: Record<string, unknown> = {};
  let allPass = true;
  for (const c of cases) {
    await writeImageFolder(c.folder, c.images, ctx.categories, c.extension);
    const pilRuns: TrainerRun[] = [];
    const sensoryRuns: TrainerRun[] = [];
    let serviceCpuMs = 0;
    for (let round = 0; round < 2; round++) {
      pilRuns.push(await runTrainer(python, ctx.repo, ['pil', c.folder, String(ctx.trainerRounds)]));
      const before = processCpuMs(ctx.service.pid);
      sensoryRuns.push(await runTrainer(python, ctx.repo, ['sensory', `http://127.0.0.1:${ctx.service.port}`, ctx.service.key, c.dataset, String(c.batch), String(c.count), String(ctx.trainerRounds)]));
      serviceCpuMs += processCpuMs(ctx.service.pid) - before;
    }
    // The service's CPU over both runs, warm-up epochs included.
    const serviceCpuMsPerImage = serviceCpuMs / (2 * (ctx.trainerRounds + 1) * Math.floor(c.count / c.batch) * c.batch);
    const merge = (runs: TrainerRun[]): TrainerRun => ({ ...runs[0], walls: runs.flatMap((r) => r.walls), cpus: runs.flatMap((r) => r.cpus) });
    const pil = trainerRates(merge(pilRuns));
    const ours = trainerRates(merge(sensoryRuns));
    const perProcess = ours.perSecond / pil.perSecond;
    const perCore = pil.cpuMsPerImage / ours.cpuMsPerImage;
    const pass = perProcess >= TRAINER_TARGET && perCore >= TRAINER_TARGET;
    allPass &&= pass;
    details[c.label] = { pil, sensory: ours, perProcess, perCore, serviceCpuMsPerImage, pilRuns, sensoryRuns };
    cpuLines.push(`  11: ${c.label}: trainer CPU per image: Sensory ${fixed(ours.cpuMsPerImage, 4)} ms (+ ${fixed(serviceCpuMsPerImage, 4)} ms in the service), PIL ${fixed(pil.cpuMsPerImage, 4)} ms`);
    rows.push(
      [
        '11',
        `trainer process, ${c.label}: Sensory batches of ${c.batch} vs local ImageFolder + PIL`,
        `${fixed(ours.perSecond, 0)} img/s`,
        `PIL ${fixed(pil.perSecond, 0)} img/s`,
        `×${fixed(perProcess, 2)}`,
        `≥ ×${TRAINER_TARGET}`,
        perProcess >= TRAINER_TARGET ? 'PASS' : 'BELOW',
      ],
      [
        '11c',
        `  trainer CPU per image (per core: images per CPU-second)`,
        `${fixed(ours.cpuMsPerImage, 4)} ms (${fixed(1000 / ours.cpuMsPerImage, 0)}/s)`,
        `PIL ${fixed(pil.cpuMsPerImage, 4)} ms (${fixed(1000 / pil.cpuMsPerImage, 0)}/s)`,
        `×${fixed(perCore, 2)}`,
        `≥ ×${TRAINER_TARGET}`,
        perCore >= TRAINER_TARGET ? 'PASS' : 'BELOW',
      ],
    );
  }
  return {
    id: '11',
    title: "the user's alternative: local PIL decode vs Sensory batches",
    unit: 'images/s',
    ours: summarize([0]),
    verdict: allPass ? 'PASS' : 'BELOW',
    details: { ...details, python, servicePid: ctx.service.pid },
    rows,
    runsLine: `  11: ${ctx.trainerRounds} timed epochs per trainer run after a warm-up epoch, two runs each, alternating (PIL, Sensory, PIL, Sensory); python ${python}`,
    cpuLine: cpuLines.join('\n'),
  };
}
