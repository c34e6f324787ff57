/**
 * Private PostgreSQL and RabbitMQ servers for fault tests: each runs in a temporary directory on
 * free loopback ports, owned by the test file that starts it, so a test may restart it, kill its
 * connections or stop it without disturbing the machine's shared servers (which other test files
 * and people use at the same time).
 *
 * - PostgreSQL: initdb + pg_ctl from /usr/lib/postgresql/<newest>/bin; as root they run as the
 *   `postgres` user (initdb refuses root). About 1 s to create, 0.2 s to restart.
 * - RabbitMQ: the installed rabbitmq-server with its own node name, ports, Mnesia and log
 *   directories and an empty environment file (the machine's /etc/rabbitmq/rabbitmq-env.conf
 *   names the shared node). About 3 s to start, 1 s to stop; durable queues survive a restart.
 *
 * `privateServersSkip()` says why they cannot run here (outside CI a fault suite skips with that
 * message; under CI it must run, so the reason becomes a failure).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port nobody listens on right now (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(base, versions[0], 'bin') : undefined;
}

/** The uid/gid to run PostgreSQL as: the `postgres` user when we are root, else ourselves. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, but there is no `postgres` user to run a private PostgreSQL as');
  return { uid, gid };
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown and start again (every connection is cut); resolves once it accepts connections. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** pg_terminate_backend on every connection but the caller's own; returns how many were cut. */
  terminateConnections(): Promise<number>;
  /** Stops the server and deletes its directory. Safe twice. */
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin');
  const user = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'sensory-private-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const run = (tool: string, args: string[]) => {
    const result = spawnSync(join(bin, tool), args, { cwd: dir, encoding: 'utf8', timeout: 60_000, ...(user ?? {}) });
    if (result.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=60`;
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let destroyed = false;
  const server: PrivatePostgres = {
    url,
    port,
    start: async () => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '60', 'start']),
    stop: async () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']),
    restart: async () => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-m', 'fast', '-w', '-t', '60', 'restart']),
    terminateConnections: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{ cut: number }>(
          "SELECT count(*)::int AS cut FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') t",
        );
        return rows[0].cut;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

const RABBITMQ_SERVER = ['/usr/lib/rabbitmq/bin/rabbitmq-server', '/usr/sbin/rabbitmq-server'].find((path) => existsSync(path));

export interface PrivateRabbit {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Stops the node (SIGTERM, clean shutdown: every connection is closed by the broker). */
  stop(): Promise<void>;
  /** Starts it again on the same port and Mnesia directory (durable queues are kept). */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the node and deletes its directory. Safe twice. */
  destroy(): Promise<void>;
}

export async function startPrivateRabbit(): Promise<PrivateRabbit> {
  if (!RABBITMQ_SERVER) throw new Error('rabbitmq-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'sensory-private-rabbit-'));
  const port = await freePort();
  const distPort = await freePort();
  const name = `sensoryfault${process.pid}x${port}@localhost`;
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  // guest may connect from 127.0.0.1 only by default, which is all we use.
  writeFileSync(join(dir, 'rabbitmq.conf'), 'log.console = false\n');
  mkdirSync(join(dir, 'log'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  let child: ChildProcess | undefined;
  let output = '';
  let destroyed = false;
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // The pid file names the Erlang VM; the script may or may not have exec'ed into it.
    const pid = existsSync(env.RABBITMQ_PID_FILE!) ? Number(readFileSync(env.RABBITMQ_PID_FILE!, 'utf8').trim()) : running.pid!;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      running.kill('SIGTERM');
    }
    await Promise.race([exited, sleep(30_000)]);
    if (running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
    rmSync(env.RABBITMQ_PID_FILE!, { force: true });
    await waitFor(async () => !(await accepts(port)), 10_000, 'the private RabbitMQ to close its port');
  };
  const start = async () => {
    output = '';
    const started = spawn(RABBITMQ_SERVER, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    started.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child = started;
    try {
      await waitFor(async () => {
        if (started.exitCode !== null) throw new Error(`the private RabbitMQ exited:\n${output.slice(-2000)}`);
        return accepts(port);
      }, 60_000, 'the private RabbitMQ to accept connections');
    } catch (error) {
      await stop();
      throw error;
    }
  };
  const server: PrivateRabbit = {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await start();
  return server;
}

// ---------------------------------------------------------------------------------------------
// tmpfs

/**
 * Mounts a tmpfs of `sizeMiB` at a new temporary directory (root only); undefined with the reason
 * when mounting is not allowed here. `unmount()` removes it.
 */
export function mountTmpfs(sizeMiB: number): { dir: string; unmount(): void } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: 'mounting a tmpfs needs root' };
  const dir = mkdtempSync(join(tmpdir(), 'sensory-tmpfs-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `mount -t tmpfs is not allowed here: ${(result.stderr || result.stdout).trim()}` };
  }
  return {
    dir,
    unmount: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why private servers cannot run here, or undefined when they can. */
export function privateServersSkip(): string | undefined {
  if (!postgresBin()) return 'PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)';
  if (!RABBITMQ_SERVER) return 'rabbitmq-server is not installed';
  return undefined;
}
