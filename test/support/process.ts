/**
 * Helpers for tests that run Sensory as real processes: `node dist/cli/main.js serve|worker|…`,
 * built from src/ when dist/ is stale, with a clean SENSORY_* environment, and HTTP calls to it.
 *
 * The runner loads every test file in a process of its own, so the set of children and the list
 * of temporary directories below belong to the one file that imports this module.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled CLI the processes run. */
export const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Rejects with `timed out after <ms> ms: <what>` when `promise` has not settled by then. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

// ---------------------------------------------------------------------------------------------
// Building

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiles the client package and src/ to their dist/ when dist is missing or older than any source file. */
export function ensureBuilt(): void {
  const sources = Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'packages', 'client', 'src')));
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= sources) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const project of [join('packages', 'client', 'tsconfig.json'), 'tsconfig.build.json']) {
    const result = spawnSync(process.execPath, [tsc, '-p', project], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) throw new Error(`build of ${project} failed:\n${result.stdout}${result.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/** The environment of the test run without any SENSORY_* setting, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('SENSORY_')) env[name] = value;
  return { ...env, ...extra };
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Run {
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout so far. */
  stdout(): string;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Settles once the process has exited and its output is closed. */
  readonly exit: Promise<Exit>;
}

const children = new Set<ChildProcess>();

/** Starts `sensory <args>` with the clean environment plus `env`, collecting its output. */
export function runCli(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Starts `sensory <args>` and resolves once its stderr matches `ready` (20 s at most). */
export async function startUntil(args: string[], env: Record<string, string>, ready: RegExp, what: string): Promise<Run> {
  const run = runCli(args, env);
  const deadline = performance.now() + 20_000;
  let exited = false;
  void run.exit.then(() => (exited = true));
  for (;;) {
    if (ready.test(run.stderr())) return run;
    if (exited) throw new Error(`${what} exited before it was ready:\n${run.stderr()}`);
    if (performance.now() > deadline) throw new Error(`${what} was not ready in time:\n${run.stderr()}`);
    await sleep(20);
  }
}

export interface Server extends Run {
  readonly url: string;
}

/**
 * Starts `sensory serve` on 127.0.0.1 and a free port with `dataDir` (plus `env`), and resolves
 * once it has printed its URL and where its keys come from.
 */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const run = await startUntil(
    ['serve'],
    { SENSORY_DATA_DIR: dataDir, SENSORY_HOST: '127.0.0.1', SENSORY_PORT: '0', ...env },
    /listening on http:\/\/\S+[\s\S]*(admin API key|API keys:)/,
    'sensory serve',
  );
  return { ...run, url: /listening on (http:\/\/\S+)/.exec(run.stderr())![1] };
}

/** Starts `sensory worker --concurrency <n>` and resolves once it says it is taking shards. */
export function startWorker(env: Record<string, string>, concurrency: number): Promise<Run> {
  return startUntil(['worker', '--concurrency', String(concurrency)], env, /Sensory worker:/, 'sensory worker');
}

/** Sends `signal` (unless the process has exited already) and waits up to 15 s for the exit. */
export async function stop(run: Run, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill(signal);
  return within(run.exit, 15_000, `exit after ${signal}`);
}

/** SIGKILLs every process this file started that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('close', resolve)));
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const dirs: string[] = [];

/** A new directory under the system's temporary directory; removeTempDirs() deletes it. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Deletes every directory tempDir() made. */
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface Reply {
  readonly status: number;
  /** The content-type header ('' without one). */
  readonly type: string;
  readonly headers: Headers;
  readonly body: Buffer;
  json(): any;
}

export interface CallOptions {
  /** A JSON body. */
  readonly json?: unknown;
  /** A binary body, sent as `type` (image/png unless told). */
  readonly bytes?: Buffer;
  readonly type?: string;
  readonly form?: FormData;
  readonly accept?: string;
  /** Send the key as `Authorization: Bearer` instead of `api-access-key`. */
  readonly bearer?: boolean;
  /** How long the whole exchange may take (15 s unless told). */
  readonly timeoutMs?: number;
}

/** One request to the server at `url`, with `key` (none when undefined); the whole body is read. */
export async function call(url: string, key: string | undefined, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
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
  const response = await fetch(new URL(path, url), { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 15_000) });
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    headers: response.headers,
    body: bytes,
    json: () => JSON.parse(bytes.toString('utf8')),
  };
}
