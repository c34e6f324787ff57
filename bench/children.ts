import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly port: number;
  /** The tail of its stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();

// Last resort: whatever happens to this process, its children do not outlive it.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface StartOptions {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** stdout goes to this file (the service logs a JSON line per request). */
  readonly stdoutFile: string;
  /** Matches the line on stderr that says it listens; group 1 is the port. */
  readonly ready: RegExp;
  readonly timeoutMs?: number;
}

export async function startChild(options: StartOptions): Promise<Child> {
  const out = openSync(options.stdoutFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', out, 'pipe'] });
  } finally {
    closeSync(out);
  }
  live.add(child);
  let tail = '';
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
  });
  const stderrTail = () => tail.slice(-4000);
  const stop = async (graceMs = 5000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name} did not start within ${options.timeoutMs ?? 30_000} ms:\n${stderrTail()}`)), options.timeoutMs ?? 30_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      tail = (tail + text).slice(-16_000);
      const match = options.ready.exec(tail);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${code}) before listening:\n${stderrTail()}`));
    });
  }).catch(async (error) => {
    await stop(1000);
    throw error;
  });
  return { name: options.name, process: child, port, stderrTail, stop };
}

/**
 * The environment of a bench service: this process's without any SENSORY_* setting, on
 * 127.0.0.1 and a free port, with `dataDir`, `key` as its admin key, and `extra`.
 */
export async function serviceEnv(dataDir: string, key: string, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SENSORY_')));
  return Object.assign(env, {
    SENSORY_HOST: '127.0.0.1',
    SENSORY_PORT: String(await freePort()),
    SENSORY_DATA_DIR: dataDir,
    SENSORY_API_KEYS: `${key}:admin`,
    ...extra,
  });
}

/** Starts `node [nodeArgs] <mainJs> serve` with `env`; resolves once it listens. */
export function startServe(options: { name: string; mainJs: string; nodeArgs: readonly string[]; env: NodeJS.ProcessEnv; cwd: string; stdoutFile: string }): Promise<Child> {
  const { name, mainJs, nodeArgs, env, cwd, stdoutFile } = options;
  return startChild({ name, args: [...nodeArgs, mainJs, 'serve'], env, cwd, stdoutFile, ready: /listening on http:\/\/[^\s]*:(\d+)/ });
}
