/**
 * Crash safety with real processes: concurrent uploads, SIGKILL in the middle, restart on the
 * same data dir. Every upload that got a 2xx must be there, intact, pixels included; no half
 * sample may ever be visible; an unanswered upload may always be retried.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { parseSafetensors } from '../../src/domain/safetensors.js';
import { patternPixels } from '../support/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const ADMIN = 'crash-admin-key-0123456789';

// ---------------------------------------------------------------------------------------------
// Process helpers (each process file carries its own: the runner loads files in isolation).

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiles src/ to dist/ when dist is missing or older than any source file. */
function ensureBuilt(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`build failed:\n${result.stdout}${result.stderr}`);
}

/** The environment of the test run without any SENSORY_* setting, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('SENSORY_')) env[name] = value;
  return { ...env, ...extra };
}

interface Run {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

function runCli(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Server extends Run {
  readonly url: string;
}

/** Starts `sensory serve` on a free port and resolves once it prints its URL. */
async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const run = runCli(['serve'], { SENSORY_DATA_DIR: dataDir, SENSORY_HOST: '127.0.0.1', SENSORY_PORT: '0', ...env });
  const deadline = Date.now() + 20_000;
  let exited = false;
  void run.exit.then(() => (exited = true));
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(run.stderr());
    if (match && /admin API key|API keys:/.test(run.stderr())) return { ...run, url: match[1] };
    if (exited) throw new Error(`serve exited before listening:\n${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`serve did not print its URL in time:\n${run.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stop(server: Run, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill(signal);
  return within(server.exit, 15_000, `exit after ${signal}`);
}

async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('close', resolve)));
    }),
  );
}

interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body: Buffer;
  json(): any;
}

async function call(
  url: string,
  key: string | undefined,
  method: string,
  path: string,
  options: { json?: unknown; bytes?: Buffer; type?: string; accept?: string; form?: FormData; bearer?: boolean } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (key !== undefined) {
    if (options.bearer) headers.authorization = `Bearer ${key}`;
    else headers['api-access-key'] = key;
  }
  if (options.accept) headers.accept = options.accept;
  let body: string | Blob | FormData | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.bytes) {
    headers['content-type'] = options.type ?? 'image/png';
    body = new Blob([new Uint8Array(options.bytes)]);
  } else if (options.form) {
    body = options.form;
  }
  const response = await fetch(new URL(path, url), { method, headers, body, signal: AbortSignal.timeout(15_000) });
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: bytes,
    json: () => JSON.parse(bytes.toString('utf8')),
  };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');



const WIDTH = 16;
const HEIGHT = 16;
const CHANNELS = 3;
const CLIENTS = 8;
const RUN_MS = 1500;

interface Attempt {
  readonly seed: number;
  readonly sha256: string;
  readonly category: string;
  readonly png: Buffer;
  readonly pixels: Buffer;
}

interface Acknowledged extends Attempt {
  readonly id: number;
}

/** Distinct pixels for every seed (the seed is written into the first four bytes). */
async function attemptFor(seed: number): Promise<Attempt> {
  const pixels = patternPixels(WIDTH, HEIGHT, CHANNELS, seed % 4096);
  pixels.writeUInt32LE(seed, 0);
  const png = await sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: CHANNELS } }).png().toBuffer();
  return { seed, sha256: sha256(png), category: `c${seed % 5}`, png, pixels };
}

function upload(url: string, attempt: Attempt, asJson: boolean): Promise<Reply> {
  return asJson
    ? call(url, ADMIN, 'POST', '/v1/datasets/crash/samples', { json: { category: attempt.category, data: attempt.png.toString('base64') } })
    : call(url, ADMIN, 'POST', `/v1/datasets/crash/samples?category=${attempt.category}`, { bytes: attempt.png });
}

async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const dirs: string[] = [];

describe('SIGKILL during concurrent uploads', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('every acknowledged upload survives a kill, intact, and nothing half-written is ever visible (two kill cycles)', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sensory-crash-'));
    dirs.push(dataDir);
    const env = { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_MAX_BATCH_SAMPLES: '1000000', SENSORY_LOG_LEVEL: 'warn' };
    const attempts = new Map<string, Attempt>();
    const acknowledged = new Map<number, Acknowledged>();
    let nextSeed = 1;

    let server = await startServer(dataDir, env);
    assert.equal((await call(server.url, ADMIN, 'PUT', '/v1/datasets/crash', { json: { width: WIDTH, height: HEIGHT, channels: CHANNELS } })).status, 201);

    for (let cycle = 1; cycle <= 2; cycle++) {
      // 8 clients upload distinct images until the server is killed under them.
      let killed = false;
      const unexpected: string[] = [];
      let acknowledgedThisCycle = 0;
      const client = async (clientNo: number) => {
        while (!killed) {
          const attempt = await attemptFor(nextSeed++);
          attempts.set(attempt.sha256, attempt);
          let reply: Reply;
          try {
            reply = await upload(server.url, attempt, clientNo % 2 === 0);
          } catch (error) {
            if (killed) return;
            throw error;
          }
          if (reply.status !== 201) {
            unexpected.push(`${reply.status} ${reply.body.toString('utf8').slice(0, 200)}`);
            continue;
          }
          const sample = reply.json();
          assert.equal(sample.sha256, attempt.sha256);
          acknowledged.set(sample.id, { ...attempt, id: sample.id });
          acknowledgedThisCycle++;
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
      await new Promise((resolve) => setTimeout(resolve, RUN_MS));
      killed = true;
      server.child.kill('SIGKILL');
      const exit = await within(server.exit, 10_000, 'exit after SIGKILL');
      assert.equal(exit.signal, 'SIGKILL');
      await within(Promise.all(clients), 20_000, 'clients to notice the kill');
      assert.deepEqual(unexpected, [], 'no upload was refused before the kill');
      assert.ok(acknowledgedThisCycle >= 20, `enough uploads were acknowledged before the kill (${acknowledgedThisCycle})`);

      t.diagnostic(`cycle ${cycle}: ${acknowledgedThisCycle} uploads acknowledged before SIGKILL, ${attempts.size} sent in all`);
      server = await startServer(dataDir, env);
      await verify(server.url, attempts, acknowledged);

      // A client that never saw its answer retries: the same bytes give the sample, never an error.
      const seen = new Set([...acknowledged.values()].map((sample) => sample.sha256));
      const unanswered = [...attempts.values()].filter((attempt) => !seen.has(attempt.sha256));
      assert.ok(unanswered.length <= CLIENTS, `at most one unanswered upload per client (${unanswered.length})`);
      for (const attempt of unanswered) {
        const reply = await upload(server.url, attempt, attempt.seed % 2 === 0);
        assert.ok(reply.status === 200 || reply.status === 201, `retry answered ${reply.status}: ${reply.body.toString('utf8')}`);
        assert.equal(reply.json().duplicate === true, reply.status === 200);
        assert.equal(reply.json().category, attempt.category);
        acknowledged.set(reply.json().id, { ...attempt, id: reply.json().id });
      }
    }
    await verify(server.url, attempts, acknowledged);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  });
});

/** Checks the restarted service against everything the clients sent and were told. */
async function verify(url: string, attempts: Map<string, Attempt>, acknowledged: Map<number, Acknowledged>): Promise<void> {
  const info = (await call(url, ADMIN, 'GET', '/v1/datasets/crash')).json();
  assert.ok(info.sampleCount >= acknowledged.size, `sampleCount ${info.sampleCount} ≥ ${acknowledged.size} acknowledged`);

  // Every listed sample is one the clients sent, under its category, listed once.
  const listed: { id: number; sha256: string; category: string; bytes: number }[] = [];
  let cursor: string | undefined;
  do {
    const reply = await call(url, ADMIN, 'GET', `/v1/datasets/crash/samples?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(reply.status, 200);
    listed.push(...reply.json().samples);
    cursor = reply.json().nextCursor;
  } while (cursor);
  assert.equal(listed.length, info.sampleCount, 'the list agrees with sampleCount');
  assert.equal(new Set(listed.map((sample) => sample.sha256)).size, listed.length, 'no bytes stored twice');
  for (const sample of listed) {
    const attempt = attempts.get(sample.sha256);
    assert.ok(attempt, `sample ${sample.id} is something a client sent`);
    assert.equal(sample.category, attempt.category);
    assert.equal(sample.bytes, attempt.png.length);
  }

  // Every acknowledged sample, by id.
  await eachLimit([...acknowledged.values()], 16, async (expected) => {
    const reply = await call(url, ADMIN, 'GET', `/v1/datasets/crash/samples/${expected.id}`);
    assert.equal(reply.status, 200, `acknowledged sample ${expected.id} is there`);
    assert.equal(reply.json().sha256, expected.sha256);
    assert.equal(reply.json().category, expected.category);
  });

  // Every listed sample's original bytes are whole.
  await eachLimit(listed, 16, async (sample) => {
    const reply = await call(url, ADMIN, 'GET', `/v1/datasets/crash/samples/${sample.id}/content`);
    assert.equal(reply.status, 200, `content of ${sample.id}`);
    assert.equal(sha256(reply.body), sample.sha256, `content of ${sample.id} hashes to its sha256`);
  });

  // A batch of all samples reads every pixel record, and each record is the sample's pixels.
  const batch = await call(url, ADMIN, 'POST', '/v1/datasets/crash/batches', { json: { size: listed.length, seed: 1 }, accept: 'application/x-safetensors' });
  assert.equal(batch.status, 200, batch.body.toString('utf8'));
  const parsed = parseSafetensors(batch.body);
  const ids = JSON.parse(parsed.metadata.ids) as number[];
  const map = JSON.parse(parsed.metadata.categories) as Record<string, number>;
  assert.deepEqual(parsed.tensors.data.shape, [listed.length, HEIGHT, WIDTH, CHANNELS]);
  assert.deepEqual([...ids].sort((a, b) => a - b), listed.map((sample) => sample.id).sort((a, b) => a - b));
  const byId = new Map(listed.map((sample) => [sample.id, sample]));
  const record = HEIGHT * WIDTH * CHANNELS;
  const labels = parsed.tensors.labels.data;
  for (const [i, id] of ids.entries()) {
    const attempt = attempts.get(byId.get(id)!.sha256)!;
    const pixels = parsed.tensors.data.data.subarray(i * record, (i + 1) * record);
    assert.ok(pixels.equals(attempt.pixels), `pixel record of sample ${id} (seed ${attempt.seed}) is its image`);
    assert.equal(labels.readInt32LE(i * 4), map[attempt.category]);
  }
}
