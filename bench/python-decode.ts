/**
 * What decoding costs the Python client: a 1,000-sample 100×100×3 batch fetched by
 * the Python client (clients/python/sensory_client) and decoded into numpy arrays (`Client.batch`), against the
 * same batch's raw safetensors bytes fetched by the same client without decoding
 * (`Client.batch_raw`), in the same run: alternating, after a warm-up, medians of several
 * repetitions. Decoding itself (parse_safetensors on bytes already fetched) is timed on the same
 * bytes, since the difference of the two end-to-end medians is mostly the machine's noise.
 * Target: decoding adds less than 10 % to the transfer (parseMs / rawMs < 0.10).
 *
 *   import { benchPythonDecode } from './python-decode.js';
 *   const { decodeMs, rawMs, ratio } = await benchPythonDecode(url, key, 'small'); // a dataset of ≥ 1,000 samples at 100×100×3
 *
 * Run alone, it starts its own service on a temporary data dir and builds that dataset:
 *   npm run build && node --import tsx bench/python-decode.ts   (BENCH_PY_REPEATS, default 41)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SensoryClient } from '@sensory/client';
import { serviceEnv, startServe } from './children.js';
import { makePngs } from './images.js';
import { runPool } from './pool.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLIENT_DIR = join(REPO, 'clients', 'python');
const BATCH_SIZE = 1000;

export interface PythonDecodeFigures {
  /** Median ms of `Client.batch`: fetch + parse into numpy (N, 100, 100, 3) uint8 and (N,) int32. */
  readonly decodeMs: number;
  /** Median ms of `Client.batch_raw`: the same bytes fetched, not decoded. */
  readonly rawMs: number;
  /** Median decoded over median raw, as the other figures compare medians (target < 1.10). */
  readonly ratio: number;
  /** Median over the pairs (fetched back to back, same seed) of decoded/raw: noisier on a busy machine. */
  readonly pairRatio: number;
  /** Median ms of parsing alone (parse_safetensors on bytes already in memory). */
  readonly parseMs: number;
  readonly repeats: number;
  readonly bytes: number;
  readonly python: string;
}

/** The python3 on PATH when it has numpy, else /usr/bin/python3 when it has. */
export function pythonWithNumpy(): string | undefined {
  return ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0);
}

const SCRIPT = String.raw`
import json, statistics, sys, time
client_dir, url, key, dataset, size, repeats = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
sys.path.insert(0, client_dir)
from sensory_client import Client, parse_safetensors

client = Client(url, key)
def raw(seed):
    return client.batch_raw(dataset, size, seed=seed)
def decoded(seed):
    x, y = client.batch(dataset, size, seed=seed)
    assert x.shape[0] == size and x.ndim == 4 and y.shape == (size,), (x.shape, y.shape)
    return x
for seed in (1, 2):  # warm-up: connection, server caches, numpy import paths
    raw(seed)
    decoded(seed)
raw_ms, decode_ms, parse_ms = [], [], []
nbytes = 0
for r in range(repeats):
    seed = 1000 + r
    steps = [("raw", raw), ("decoded", decoded)]
    if r % 2:
        steps.reverse()
    for name, call in steps:
        t = time.perf_counter()
        value = call(seed)
        ms = (time.perf_counter() - t) * 1000
        if name == "raw":
            raw_ms.append(ms)
            nbytes = len(value)
            t = time.perf_counter()
            parse_safetensors(value)
            parse_ms.append((time.perf_counter() - t) * 1000)
        else:
            decode_ms.append(ms)
client.close()
pair_ratios = [d / r for d, r in zip(decode_ms, raw_ms)]
print(json.dumps({"rawMs": statistics.median(raw_ms), "decodeMs": statistics.median(decode_ms), "ratio": statistics.median(decode_ms) / statistics.median(raw_ms), "pairRatio": statistics.median(pair_ratios), "parseMs": statistics.median(parse_ms), "bytes": nbytes}))
`;

export async function benchPythonDecode(url: string, key: string, dataset: string, options: { repeats?: number; python?: string } = {}): Promise<PythonDecodeFigures> {
  const python = options.python ?? pythonWithNumpy();
  if (!python) throw new Error('no python3 with numpy: install numpy (apt-get install -y python3-numpy, or pip install numpy)');
  const repeats = options.repeats ?? 41;
  const child = spawn(python, ['-c', SCRIPT, CLIENT_DIR, url, key, dataset, String(BATCH_SIZE), String(repeats)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`the Python decode bench failed (${code}):\n${err}`);
  const figures = JSON.parse(out.trim().split('\n').at(-1)!) as { rawMs: number; decodeMs: number; ratio: number; pairRatio: number; parseMs: number; bytes: number };
  return { ...figures, repeats, python };
}

/** Standalone: a service on a temporary data dir, a dataset of 1,000 PNGs at 100×100×3, the figures. */
async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sensory-pybench-'));
  const key = 'bench-admin-key-0123456789';
  const server = await startServe({
    name: 'service',
    mainJs: join(REPO, 'dist', 'cli', 'main.js'),
    nodeArgs: [],
    env: await serviceEnv(join(dir, 'data'), key, { SENSORY_LOG_LEVEL: 'warn' }),
    cwd: REPO,
    stdoutFile: '/dev/null',
  });
  try {
    const url = `http://127.0.0.1:${server.port}`;
    const client = new SensoryClient({ url, key });
    await client.datasets.put('small', { width: 100, height: 100, channels: 3 });
    const pngs = await makePngs(1, BATCH_SIZE);
    await runPool(pngs, 8, async (png, i) => {
      await client.samples.upload('small', png, { category: `class${i % 10}` });
    });
    client.close();
    const repeats = Number(process.env.BENCH_PY_REPEATS ?? 41);
    const figures = await benchPythonDecode(url, key, 'small', { repeats });
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(`decoding adds ${((figures.parseMs / figures.rawMs) * 100).toFixed(2)} % to the transfer (target < 10 %); end to end ${figures.decodeMs.toFixed(1)} ms against ${figures.rawMs.toFixed(1)} ms raw\n`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
