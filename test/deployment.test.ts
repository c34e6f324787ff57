/**
 * The deployment files, checked without a Docker engine (this machine has only the client):
 *   1. compose.yaml — services, commands, the shared volume, settings that exist and agree with
 *      the config defaults, no credential written in it (each from the environment, interpolated
 *      here as compose does), AMQP and PostgreSQL URLs that match the broker's and database's
 *      accounts, RabbitMQ 4;
 *   2. deploy/rabbitmq/definitions.template.json, rendered by deploy/rabbitmq/entrypoint.sh with
 *      the account from the environment — vhost, topology, and an account limited by its regexes;
 *   3. the rendered definitions imported into the REAL RabbitMQ: the account runs an
 *      AmqpOrderQueue and is refused anything else (under CI=true this runs; elsewhere it is
 *      skipped when missing);
 *   4. the Dockerfile's steps run outside Docker: the build stage's COPY and RUN lines in a temp
 *      dir, the runtime stage laid out from its COPY --from lines, the service started with the
 *      image's ENV and ENTRYPOINT/CMD, and the HEALTHCHECK's command run against it;
 *   5. deploy/nginx/sensory.conf — the directives a streaming service needs, `nginx -t` on a test
 *      copy, and a request through a real nginx to a real Sensory (nginx required under CI=true).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { parse as parseYaml } from 'yaml';
import { AmqpOrderQueue } from '../src/adapters/queue/amqp.order-queue.js';
import { CONFIG_VARIABLES } from '../src/config/config.js';
import { PollBody } from '../src/http/schemas.js';
import { orderTasksOnly, resultQueueName, type OrderTask, type TaskOutcome } from '../src/ports/order-queue.js';
import { inCi } from './support/broker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

const DEFAULTS = new Map(CONFIG_VARIABLES.map(({ variable, fallback }) => [variable, fallback]));
const EXCHANGE = String(DEFAULTS.get('SENSORY_AMQP_EXCHANGE'));
const TASK_QUEUE = String(DEFAULTS.get('SENSORY_AMQP_TASK_QUEUE'));
const TASK_ROUTING_KEY = String(DEFAULTS.get('SENSORY_AMQP_TASK_ROUTING_KEY'));
const VHOST = 'sensory';
/** The credentials compose is given from the environment in these checks (compose.yaml writes none). */
const COMPOSE_ENV: Record<string, string> = {
  SENSORY_API_KEYS: 'deployment-compose-key:admin',
  RABBITMQ_USER: 'sensory',
  RABBITMQ_PASS: `pw-${randomUUID()}`,
  POSTGRES_PASSWORD: `pg-${randomUUID()}`,
};
/** The longest long-poll a client may ask for (POST /v1/orders/:id/poll waitMs), in seconds. */
const LONGEST_POLL_SECONDS = (PollBody.properties.waitMs.maximum ?? 20_000) / 1000;

// ---------------------------------------------------------------------------------------------
// Processes and temp dirs: everything started here is stopped here, by its own handle.

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sensory-deploy-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/**
 * Registered inside each suite that starts processes or makes temp dirs (a top-level after()
 * runs too early in a module with top-level await).
 */
async function cleanUp(): Promise<void> {
  for (const child of children) child.kill('SIGKILL');
  await sleep(children.size > 0 ? 200 : 0);
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/** Runs a command to its end (killed after timeoutMs), stdout and stderr together. */
function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; input?: string }): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    children.add(child);
    if (options.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(options.input);
    }
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => (output += `\n[${error.message}]`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, output });
    });
  });
}

const tail = (text: string, lines = 40) => text.trimEnd().split('\n').slice(-lines).join('\n');

/** The path of an executable on PATH (or in the sbin dirs root's PATH has), or undefined. */
function which(name: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${name} || ls /usr/sbin/${name} /usr/local/sbin/${name} 2>/dev/null`], { encoding: 'utf8' });
  const found = result.stdout.trim().split('\n')[0];
  return found === '' ? undefined : found;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port, timeout: 2000 });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The test run's environment without any SENSORY_* setting or npm/test-runner variable. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('SENSORY_') || name.startsWith('npm_') || ['NODE_ENV', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'INIT_CWD'].includes(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

/** Durations as compose and nginx write them: 30s, 1m30s, 500ms, 5m; a bare number is seconds. */
function seconds(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  let rest = trimmed;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/.exec(rest);
    assert.ok(match, `not a duration: ${JSON.stringify(text)}`);
    total += Number(match[1]) * units[match[2]];
    rest = rest.slice(match[0].length);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// compose.yaml and definitions.json, as data.

interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly command?: string | string[];
  readonly environment?: Record<string, string | number | boolean | null> | string[];
  readonly volumes?: (string | { type?: string; source?: string; target?: string })[];
  readonly healthcheck?: { disable?: boolean; test?: unknown };
  readonly depends_on?: Record<string, { condition?: string }> | string[];
  readonly stop_grace_period?: string;
  readonly entrypoint?: string | string[];
  readonly ports?: unknown[];
}
interface ComposeFile {
  readonly services: Record<string, ComposeService>;
  readonly volumes?: Record<string, unknown>;
}

interface Mount {
  readonly kind: 'volume' | 'bind';
  readonly source: string;
  readonly target: string;
}

/**
 * Compose's interpolation of `text` with `env`: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}` and `${VAR?message}` (an error naming VAR when unset), `$$` for a dollar.
 */
function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, name, colon, kind, word, bare) => {
    if (match === '$$') return '$';
    if (bare) return env[bare] ?? '';
    const value = env[name];
    const missing = value === undefined || (colon === ':' && value === '');
    if (!missing) return value;
    if (kind === '?') throw new Error(`compose refuses to start: ${name} ${word || 'is not set'}`);
    return kind === '-' ? word : '';
  });
}

function loadCompose(env: Record<string, string | undefined> = COMPOSE_ENV): ComposeFile {
  // merge: the services share their settings through a YAML merge key (<<: *sensory).
  return parseYaml(interpolate(read('compose.yaml'), env), { merge: true }) as ComposeFile;
}

function environmentOf(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(service.environment)) {
    for (const entry of service.environment) {
      const eq = entry.indexOf('=');
      env[eq < 0 ? entry : entry.slice(0, eq)] = eq < 0 ? '' : entry.slice(eq + 1);
    }
  } else {
    for (const [name, value] of Object.entries(service.environment ?? {})) env[name] = value === null ? '' : String(value);
  }
  return env;
}

function commandOf(service: ComposeService): string[] {
  if (service.command === undefined) return [];
  return typeof service.command === 'string' ? service.command.trim().split(/\s+/) : service.command;
}

function mountsOf(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((entry) => {
    if (typeof entry === 'string') {
      const [source, target] = entry.split(':');
      return { kind: /^[./~]/.test(source) ? 'bind' : 'volume', source, target };
    }
    return { kind: entry.type === 'bind' ? 'bind' : 'volume', source: entry.source ?? '', target: entry.target ?? '' };
  });
}

interface Definitions {
  readonly users: { name: string; password?: string; password_hash?: string; tags: string[] | string }[];
  readonly vhosts: { name: string }[];
  readonly permissions: { user: string; vhost: string; configure: string; write: string; read: string }[];
  readonly exchanges: { name: string; vhost: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: object }[];
  readonly queues: { name: string; vhost: string; durable: boolean; auto_delete: boolean; arguments: object }[];
  readonly bindings: { source: string; vhost: string; destination: string; destination_type: string; routing_key: string; arguments: object }[];
}

const TEMPLATE_PATH = 'deploy/rabbitmq/definitions.template.json';
const ENTRYPOINT_PATH = 'deploy/rabbitmq/entrypoint.sh';

/** Runs the rabbitmq service's entrypoint as compose would, but only to write the definitions; returns them. */
function renderDefinitions(user: string | undefined, password: string | undefined): { code: number | null; output: string; definitions?: Definitions; mode?: number } {
  const dir = mkdtempSync(join(tmpdir(), 'sensory-deploy-defs-'));
  try {
    const out = join(dir, 'definitions.json');
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, RENDER_ONLY: '1', DEFINITIONS_TEMPLATE: join(ROOT, TEMPLATE_PATH), DEFINITIONS_OUT: out };
    if (user !== undefined) env.RABBITMQ_USER = user;
    if (password !== undefined) env.RABBITMQ_PASS = password;
    const result = spawnSync('sh', [join(ROOT, ENTRYPOINT_PATH)], { env, encoding: 'utf8', timeout: 10_000 });
    const output = `${result.stdout}${result.stderr}`;
    if (result.status !== 0) return { code: result.status, output };
    return { code: 0, output, definitions: JSON.parse(readFileSync(out, 'utf8')), mode: statSync(out).mode & 0o777 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The definitions as compose's rabbitmq would load them, with COMPOSE_ENV's account. */
const loadDefinitions = (): Definitions => {
  const rendered = renderDefinitions(COMPOSE_ENV.RABBITMQ_USER, COMPOSE_ENV.RABBITMQ_PASS);
  assert.equal(rendered.code, 0, `${ENTRYPOINT_PATH} failed:\n${rendered.output}`);
  return rendered.definitions!;
};

/** The one account of the definitions (and its permissions on the vhost). */
function serviceAccount(definitions: Definitions) {
  assert.equal(definitions.users.length, 1, 'the definitions should define exactly one user, the service account');
  const user = definitions.users[0];
  const permissions = definitions.permissions.filter((entry) => entry.user === user.name);
  assert.equal(permissions.length, 1, `${user.name} should have permissions on exactly one vhost`);
  return { user, permissions: permissions[0] };
}

// ---------------------------------------------------------------------------------------------
// 1. compose.yaml

describe('compose.yaml', () => {
  const compose = loadCompose();
  const services = compose.services;
  const API = ['api1', 'api2'];
  const WORKERS = ['worker1', 'worker2'];
  const SENSORY = [...API, ...WORKERS];

  it('parses and has the production shape: rabbitmq, postgres, two API replicas, two workers, nginx', () => {
    for (const name of ['rabbitmq', 'postgres', ...SENSORY, 'nginx']) assert.ok(services[name], `service ${name} is missing`);
    for (const name of API) assert.equal(commandOf(services[name])[0], 'serve', `${name} should run sensory serve`);
    for (const name of WORKERS) assert.equal(commandOf(services[name])[0], 'worker', `${name} should run sensory worker`);
    const images = new Set(SENSORY.map((name) => services[name].image));
    assert.equal(images.size, 1, `all Sensory services should run one image, got ${[...images].join(', ')}`);
    for (const name of SENSORY) assert.ok(services[name].build !== undefined || services[name].image, `${name}: no build or image`);
  });

  it('mounts one named volume at SENSORY_DATA_DIR in every Sensory service', () => {
    const sources = new Set<string>();
    for (const name of SENSORY) {
      const dataDir = environmentOf(services[name]).SENSORY_DATA_DIR;
      assert.ok(dataDir, `${name} does not set SENSORY_DATA_DIR`);
      const mount = mountsOf(services[name]).find((entry) => entry.target === dataDir);
      assert.ok(mount, `${name} mounts nothing at SENSORY_DATA_DIR=${dataDir}`);
      assert.equal(mount.kind, 'volume', `${name}: the data dir should be a named volume, not a bind mount`);
      assert.ok(compose.volumes && mount.source in compose.volumes, `volume ${mount.source} is not declared under volumes:`);
      sources.add(mount.source);
    }
    assert.equal(sources.size, 1, `the Sensory services mount different volumes: ${[...sources].join(', ')}`);
  });

  it('names only SENSORY_* variables the configuration knows', () => {
    const known = new Set(DEFAULTS.keys());
    const named = new Set(read('compose.yaml').match(/\bSENSORY_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
    for (const service of Object.values(services)) for (const variable of Object.keys(environmentOf(service))) if (variable.startsWith('SENSORY_')) named.add(variable);
    assert.ok(named.size >= 5, `found only ${named.size} SENSORY_* variables in compose.yaml`);
    const unknown = [...named].filter((variable) => !known.has(variable));
    assert.deepEqual(unknown, [], `compose.yaml names variables src/config/config.ts does not read: ${unknown.join(', ')}`);
  });

  it('gives every Sensory service the same settings: the default AMQP names, the broker account, the database', () => {
    const definitions = loadDefinitions();
    const { user } = serviceAccount(definitions);
    const postgres = environmentOf(services.postgres);
    const rabbitmq = environmentOf(services.rabbitmq);
    for (const name of SENSORY) {
      const env = environmentOf(services[name]);
      assert.equal(env.SENSORY_AMQP_EXCHANGE ?? EXCHANGE, EXCHANGE, `${name}: SENSORY_AMQP_EXCHANGE`);
      assert.equal(env.SENSORY_AMQP_TASK_QUEUE ?? TASK_QUEUE, TASK_QUEUE, `${name}: SENSORY_AMQP_TASK_QUEUE`);
      assert.equal(env.SENSORY_AMQP_TASK_ROUTING_KEY ?? TASK_ROUTING_KEY, TASK_ROUTING_KEY, `${name}: SENSORY_AMQP_TASK_ROUTING_KEY`);

      assert.ok(env.SENSORY_AMQP_URL, `${name}: SENSORY_AMQP_URL is not set`);
      const amqpUrl = new URL(env.SENSORY_AMQP_URL);
      assert.equal(amqpUrl.protocol, 'amqp:');
      assert.equal(amqpUrl.hostname, 'rabbitmq', `${name}: the broker is the rabbitmq service`);
      assert.equal(decodeURIComponent(amqpUrl.pathname.slice(1)), VHOST, `${name}: the AMQP URL's vhost`);
      assert.equal(decodeURIComponent(amqpUrl.username), user.name, `${name}: the AMQP user is the definitions' user`);
      assert.equal(decodeURIComponent(amqpUrl.username), rabbitmq.RABBITMQ_USER, `${name}: the AMQP user is the one rabbitmq is given`);
      assert.equal(decodeURIComponent(amqpUrl.password), user.password, `${name}: the AMQP URL's password is the definitions' password`);
      assert.equal(decodeURIComponent(amqpUrl.password), rabbitmq.RABBITMQ_PASS, `${name}: the AMQP password is the one rabbitmq is given`);

      assert.ok(env.SENSORY_DATABASE_URL, `${name}: SENSORY_DATABASE_URL is not set`);
      const dbUrl = new URL(env.SENSORY_DATABASE_URL);
      assert.match(dbUrl.protocol, /^postgres(ql)?:$/);
      assert.equal(dbUrl.hostname, 'postgres', `${name}: the database is the postgres service`);
      assert.equal(decodeURIComponent(dbUrl.username), postgres.POSTGRES_USER, `${name}: database user`);
      assert.equal(decodeURIComponent(dbUrl.password), postgres.POSTGRES_PASSWORD, `${name}: database password`);
      assert.equal(decodeURIComponent(dbUrl.pathname.slice(1)), postgres.POSTGRES_DB ?? postgres.POSTGRES_USER, `${name}: database name`);

      assert.ok(env.SENSORY_API_KEYS, `${name}: every replica must accept the same SENSORY_API_KEYS`);
      const dependsOn = services[name].depends_on;
      assert.ok(dependsOn && !Array.isArray(dependsOn), `${name}: should wait for healthy rabbitmq and postgres`);
      assert.equal(dependsOn.rabbitmq?.condition, 'service_healthy', `${name}: depends_on rabbitmq`);
      assert.equal(dependsOn.postgres?.condition, 'service_healthy', `${name}: depends_on postgres`);
    }
  });

  it('lets a replica finish its longest request when stopped, and disables the HTTP healthcheck for workers', () => {
    for (const name of SENSORY) {
      const grace = services[name].stop_grace_period;
      assert.ok(grace, `${name}: no stop_grace_period (the default 10 s cuts a ${LONGEST_POLL_SECONDS} s long-poll short)`);
      assert.ok(seconds(grace) > LONGEST_POLL_SECONDS, `${name}: stop_grace_period ${grace} is not longer than the longest long-poll`);
    }
    // The image's HEALTHCHECK asks /health/live over HTTP; a worker serves no HTTP.
    for (const name of WORKERS) assert.equal(services[name].healthcheck?.disable, true, `${name}: the image's HTTP healthcheck would mark it unhealthy`);
  });

  it('renders the definitions at each start and loads them at boot, the way rabbitmq.conf says', () => {
    const mounts = mountsOf(services.rabbitmq);
    const conf = read('deploy/rabbitmq/rabbitmq.conf');
    const load = /^\s*load_definitions\s*=\s*(\S+)\s*$/m.exec(conf);
    assert.ok(load, 'rabbitmq.conf has no load_definitions line');
    const script = read(ENTRYPOINT_PATH);
    const templateDefault = /template=\$\{DEFINITIONS_TEMPLATE:-([^}]+)\}/.exec(script)?.[1];
    const outDefault = /out=\$\{DEFINITIONS_OUT:-([^}]+)\}/.exec(script)?.[1];
    assert.ok(templateDefault && outDefault, `${ENTRYPOINT_PATH} names where it reads the template and writes the definitions`);
    assert.equal(outDefault, load[1], 'the entrypoint writes the definitions where rabbitmq.conf loads them from');
    assert.ok(!outDefault.startsWith('/var/lib/rabbitmq'), 'the rendered definitions (with the password) are not written to the volume');
    const entrypointMount = mounts.find((mount) => mount.source.replace(/^\.\//, '') === ENTRYPOINT_PATH);
    assert.ok(entrypointMount, `rabbitmq does not mount ./${ENTRYPOINT_PATH}`);
    const entrypoint = services.rabbitmq.entrypoint;
    assert.ok(Array.isArray(entrypoint) && entrypoint.includes(entrypointMount.target), `rabbitmq's entrypoint runs ${entrypointMount.target}`);
    assert.deepEqual(commandOf(services.rabbitmq), ['rabbitmq-server'], "rabbitmq's command is the image's");
    const templateMount = mounts.find((mount) => mount.source.replace(/^\.\//, '') === TEMPLATE_PATH);
    assert.ok(templateMount, `rabbitmq does not mount ./${TEMPLATE_PATH}`);
    assert.equal(templateMount.target, templateDefault, 'the template is mounted where the entrypoint reads it');
    const confMount = mounts.find((mount) => mount.source.replace(/^\.\//, '') === 'deploy/rabbitmq/rabbitmq.conf');
    assert.ok(confMount, 'rabbitmq does not mount ./deploy/rabbitmq/rabbitmq.conf');
    assert.match(confMount.target, /^\/etc\/rabbitmq\/(rabbitmq\.conf|conf\.d\/[^/]+\.conf)$/, 'rabbitmq.conf is mounted where RabbitMQ reads configuration');
    assert.match(conf, /^deprecated_features\.permit\.transient_nonexcl_queues = true$/m, 'result queues are transient and non-exclusive: RabbitMQ 4.3+ refuses them unless permitted');
    assert.ok(services.rabbitmq.healthcheck?.test, 'rabbitmq needs a healthcheck (the Sensory services wait for service_healthy)');
    assert.ok(services.postgres.healthcheck?.test, 'postgres needs a healthcheck (the Sensory services wait for service_healthy)');
  });

  it('runs a supported RabbitMQ: 4.x', () => {
    const image = services.rabbitmq.image ?? '';
    const version = /^rabbitmq:(\d+)\.(\d+)(?:\.\d+)?(?:-management)?$/.exec(image);
    assert.ok(version, `rabbitmq's image should be pinned to a minor version: ${image}`);
    assert.ok(Number(version[1]) >= 4, `RabbitMQ ${version[1]}.${version[2]} is out of support: ${image}`);
  });

  it('writes no credential: every password and key comes from the environment, and compose refuses to start without it', () => {
    const raw = parseYaml(read('compose.yaml'), { merge: true }) as ComposeFile;
    const fromEnv = (value: string | undefined, variable: string) => new RegExp(`^\\$\\{${variable}:\\?[^}]+\\}$`).test(value ?? '');
    const rabbitmq = environmentOf(raw.services.rabbitmq);
    assert.ok(fromEnv(rabbitmq.RABBITMQ_USER, 'RABBITMQ_USER') && fromEnv(rabbitmq.RABBITMQ_PASS, 'RABBITMQ_PASS'), 'rabbitmq: RABBITMQ_USER and RABBITMQ_PASS from the environment');
    assert.ok(fromEnv(environmentOf(raw.services.postgres).POSTGRES_PASSWORD, 'POSTGRES_PASSWORD'), 'postgres: POSTGRES_PASSWORD from the environment');
    for (const name of SENSORY) {
      const env = environmentOf(raw.services[name]);
      assert.ok(fromEnv(env.SENSORY_API_KEYS, 'SENSORY_API_KEYS'), `${name}: SENSORY_API_KEYS from the environment`);
      assert.match(env.SENSORY_AMQP_URL, /^amqp:\/\/\$\{RABBITMQ_USER:\?[^}]+\}:\$\{RABBITMQ_PASS:\?[^}]+\}@/, `${name}: the AMQP URL's credentials from the environment`);
      assert.match(env.SENSORY_DATABASE_URL, /^postgres:\/\/[^:]+:\$\{POSTGRES_PASSWORD:\?[^}]+\}@/, `${name}: the database URL's password from the environment`);
    }
    for (const word of ['change-me', 'guest:guest', 'password:']) assert.ok(!read('compose.yaml').includes(word), `compose.yaml mentions ${word}`);
    for (const variable of Object.keys(COMPOSE_ENV)) {
      assert.throws(() => loadCompose({ ...COMPOSE_ENV, [variable]: undefined }), new RegExp(`refuses to start: ${variable}`), `without ${variable}`);
      assert.throws(() => loadCompose({ ...COMPOSE_ENV, [variable]: '' }), new RegExp(`refuses to start: ${variable}`), `with an empty ${variable}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. deploy/rabbitmq/definitions.template.json, rendered by deploy/rabbitmq/entrypoint.sh

describe('the RabbitMQ definitions rendered from the environment', () => {
  const definitions = loadDefinitions();
  const someResultQueue = resultQueueName({ orderId: randomUUID(), generation: 3, stream: 7 });

  it('declares the vhost, the topic exchange, the durable task queue and their binding with the config defaults', () => {
    assert.ok(definitions.vhosts.some((vhost) => vhost.name === VHOST), `no vhost ${VHOST}`);
    const exchange = definitions.exchanges.find((entry) => entry.name === EXCHANGE && entry.vhost === VHOST);
    assert.ok(exchange, `no exchange ${EXCHANGE} on vhost ${VHOST}`);
    // What AmqpOrderQueue asserts must be equivalent, or its declaration fails with 406.
    assert.equal(exchange.type, 'topic');
    assert.equal(exchange.durable, true);
    assert.equal(exchange.auto_delete, false);
    assert.equal(exchange.internal, false);
    assert.deepEqual(exchange.arguments, {});
    const queue = definitions.queues.find((entry) => entry.name === TASK_QUEUE && entry.vhost === VHOST);
    assert.ok(queue, `no queue ${TASK_QUEUE} on vhost ${VHOST}`);
    assert.equal(queue.durable, true);
    assert.equal(queue.auto_delete, false);
    assert.deepEqual(queue.arguments, {});
    const binding = definitions.bindings.find((entry) => entry.source === EXCHANGE && entry.destination === TASK_QUEUE && entry.vhost === VHOST);
    assert.ok(binding, `no binding ${EXCHANGE} → ${TASK_QUEUE}`);
    assert.equal(binding.destination_type, 'queue');
    assert.equal(binding.routing_key, TASK_ROUTING_KEY);
  });

  it('has one account, the one from the environment, no tags, with permissions on the sensory vhost only', () => {
    const { user, permissions } = serviceAccount(definitions);
    assert.equal(permissions.vhost, VHOST);
    assert.equal(user.name, COMPOSE_ENV.RABBITMQ_USER);
    assert.equal(user.password, COMPOSE_ENV.RABBITMQ_PASS);
    assert.equal(user.password_hash, undefined);
    const tags = Array.isArray(user.tags) ? user.tags : user.tags.split(',').filter((tag) => tag !== '');
    assert.deepEqual(tags, [], 'the service account needs no management or administrator tag');
  });

  it('writes any user and password as JSON strings (quotes, backslashes, & and | included), readable by its owner only', () => {
    for (const [name, password] of [
      ['sensory', 'a"b\\c&d|e$f`g'],
      ['svc.user-1', "it's /a/ p@ss:word"],
    ]) {
      const rendered = renderDefinitions(name, password);
      assert.equal(rendered.code, 0, rendered.output);
      const { user, permissions } = serviceAccount(rendered.definitions!);
      assert.equal(user.name, name);
      assert.equal(user.password, password);
      assert.equal(permissions.user, name);
      assert.equal(rendered.mode, 0o600, 'the rendered file holds a password');
    }
    const template = read(TEMPLATE_PATH);
    assert.ok(!/password_hash|change-me/.test(template), 'the template holds no password');
  });

  it('refuses to render without RABBITMQ_USER or RABBITMQ_PASS, naming the missing one', () => {
    for (const [user, password, missing] of [
      [undefined, 'x', 'RABBITMQ_USER'],
      ['sensory', undefined, 'RABBITMQ_PASS'],
      ['sensory', '', 'RABBITMQ_PASS'],
    ] as const) {
      const rendered = renderDefinitions(user, password);
      assert.notEqual(rendered.code, 0);
      assert.match(rendered.output, new RegExp(missing));
    }
    assert.notEqual(renderDefinitions('sensory', 'two\nlines').code, 0, 'a password of two lines is refused');
  });

  // RabbitMQ matches a permission regex anywhere in the name (re:run), as RegExp#test does.
  const NEEDED = {
    configure: [EXCHANGE, TASK_QUEUE, someResultQueue],
    write: [EXCHANGE, TASK_QUEUE, someResultQueue, 'amq.default'],
    read: [EXCHANGE, TASK_QUEUE, someResultQueue],
  };
  const REFUSED = ['other.queue', 'amq.topic', 'amq.direct', 'sensory.exchangeX', `${TASK_QUEUE}.x`, `x${EXCHANGE}`, 'sensory.order', 'sensory.other'];

  for (const kind of ['configure', 'write', 'read'] as const) {
    it(`allows ${kind} on what the service needs and on nothing else`, () => {
      const pattern = new RegExp(serviceAccount(definitions).permissions[kind]);
      for (const name of NEEDED[kind]) assert.ok(pattern.test(name), `${kind} /${pattern.source}/ should match ${name}`);
      const refused = kind === 'write' ? REFUSED : [...REFUSED, 'amq.default'];
      for (const name of refused) assert.ok(!pattern.test(name), `${kind} /${pattern.source}/ should not match ${name}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// 3. The definitions on the real RabbitMQ

const BROKER_HOST = '127.0.0.1';
const BROKER_PORT = 5672;

async function brokerProblem(): Promise<string | undefined> {
  if (!which('rabbitmqctl')) return 'rabbitmqctl is not installed';
  if (!(await tcpOpen(BROKER_HOST, BROKER_PORT))) return `no RabbitMQ listens on ${BROKER_HOST}:${BROKER_PORT}`;
  return undefined;
}

const brokerMissing = await brokerProblem();

describe(
  'the definitions on the real RabbitMQ',
  { skip: brokerMissing && !inCi() ? `${brokerMissing}: skipped outside CI (with CI=true this fails)` : false },
  () => {
    const requireBroker = () => assert.ok(!brokerMissing, `CI is set but ${brokerMissing}: these checks must run under CI`);
    // An account of its own, so that the broker's other users are left as they are.
    const account = { user: 'sensory-deploy-check', password: `check-${randomUUID()}` };
    const rendered = renderDefinitions(account.user, account.password);
    const definitions = rendered.definitions!;
    const url = (vhost: string) => `amqp://${encodeURIComponent(account.user)}:${encodeURIComponent(account.password)}@${BROKER_HOST}:${BROKER_PORT}/${encodeURIComponent(vhost)}`;
    const orderId = randomUUID();
    const ref = { orderId, generation: 0, stream: 1 };
    let imported = false;

    after(async () => {
      if (!imported) return;
      // The result queue expires by itself (x-expires); delete it now in case a check stopped early.
      await run('rabbitmqctl', ['delete_queue', '-p', VHOST, resultQueueName(ref)], { timeoutMs: 30_000 });
    });

    it('imports with rabbitmqctl import_definitions', async () => {
      requireBroker();
      // On standard input: the broker node (another OS user) need not be able to read the checkout.
      assert.equal(rendered.code, 0, rendered.output);
      const result = await run('rabbitmqctl', ['import_definitions', '--format', 'json'], { timeoutMs: 60_000, input: JSON.stringify(definitions) });
      assert.equal(result.code, 0, `rabbitmqctl import_definitions failed:\n${tail(result.output)}`);
      // An import from standard input finishes asynchronously: wait until the broker lists it all.
      const { permissions } = serviceAccount(definitions);
      const expected = {
        list_permissions: `${permissions.user}\t${permissions.configure}\t${permissions.write}\t${permissions.read}`,
        list_exchanges: `${EXCHANGE}\ttopic\ttrue`,
        list_queues: `${TASK_QUEUE}\ttrue`,
        list_bindings: `${EXCHANGE}\t${TASK_QUEUE}\t${TASK_ROUTING_KEY}`,
      };
      const columns: Record<string, string[]> = {
        list_permissions: [],
        list_exchanges: ['name', 'type', 'durable'],
        list_queues: ['name', 'durable'],
        list_bindings: ['source_name', 'destination_name', 'routing_key'],
      };
      const deadline = performance.now() + 30_000;
      for (const [command, line] of Object.entries(expected)) {
        for (;;) {
          const listed = await run('rabbitmqctl', ['-q', '--no-table-headers', command, '-p', VHOST, ...columns[command]], { timeoutMs: 30_000 });
          if (listed.code === 0 && listed.output.split('\n').includes(line)) break;
          assert.ok(performance.now() < deadline, `after the import, rabbitmqctl ${command} -p ${VHOST} does not list ${JSON.stringify(line)}:\n${tail(listed.output)}`);
          await sleep(250);
        }
      }
      imported = true;
    });

    it('lets the account run an AmqpOrderQueue with the default names: tasks, result queues, results', { timeout: 60_000 }, async () => {
      requireBroker();
      assert.ok(imported, 'the definitions were not imported');
      const warnings: string[] = [];
      const queue = new AmqpOrderQueue({ url: url(VHOST), exchange: EXCHANGE, taskQueue: TASK_QUEUE, taskRoutingKey: TASK_ROUTING_KEY }, (message) => warnings.push(message));
      try {
        await queue.start();
        await queue.ping();

        assert.equal(await queue.ensureResultQueue(ref, { maxMessages: 10, maxBytes: 1 << 20 }, 120), true, 'the result queue should be new');
        assert.equal(await queue.ensureResultQueue(ref, { maxMessages: 10, maxBytes: 1 << 20 }, 120), false, 'declaring it again finds it');

        // A worker's half: the task published on the exchange reaches the task queue's consumer.
        const MARKER_STREAM = 900_001;
        let resolveTask!: (task: OrderTask) => void;
        const received = new Promise<OrderTask>((resolve) => (resolveTask = resolve));
        const consumer = await queue.consumeTasks(20, orderTasksOnly(async (task): Promise<TaskOutcome> => {
          if (task.data.orderId === orderId) {
            resolveTask(task);
            return 'ack';
          }
          // Left over by an earlier run of this test that stopped early; anything else goes back.
          return task.kind === 'produce' && task.data.stream === MARKER_STREAM ? 'drop' : 'requeue';
        }));
        const task: OrderTask = { kind: 'produce', version: 2, data: { orderId, generation: 0, stream: MARKER_STREAM, taskId: orderId } };
        await queue.publishTasks([task]);
        const arrived = await Promise.race([received, sleep(10_000, 'timed out' as const, { ref: false })]);
        assert.notEqual(arrived, 'timed out', 'the published task did not reach the consumer within 10 s');
        assert.deepEqual(arrived, task);
        await consumer.close();

        // The API's half: results published to the order's queue and taken back.
        const body = Buffer.from(`deployment check ${orderId}`);
        assert.equal(await queue.publishResult(ref, body), 'published');
        let taken = await queue.takeResults(ref, 10);
        for (let attempt = 0; taken.length === 0 && attempt < 20; attempt++) {
          await sleep(50);
          taken = await queue.takeResults(ref, 10);
        }
        assert.equal(taken.length, 1, 'takeResults should return the published result');
        assert.deepEqual(taken[0].body, body);
        taken[0].ack();
        assert.deepEqual(await queue.takeResults(ref, 10), [], 'nothing else in the queue');

        await queue.deleteResultQueue(ref);
        assert.deepEqual(await queue.takeResults(ref, 10), [], 'the deleted queue yields nothing');
      } finally {
        await queue.close();
      }
    });

    it('refuses the account anything else: other queues and exchanges (403), other vhosts', { timeout: 30_000 }, async () => {
      requireBroker();
      assert.ok(imported, 'the definitions were not imported');
      const connection = await amqp.connect(url(VHOST), { timeout: 5000 });
      connection.on('error', () => undefined);
      try {
        const refused = async (what: string, operation: (channel: amqp.Channel) => Promise<unknown>) => {
          const channel = await connection.createChannel();
          channel.on('error', () => undefined);
          await assert.rejects(operation(channel), (error: { code?: number; message?: string }) => {
            assert.equal(error.code, 403, `${what}: expected 403 ACCESS_REFUSED, got ${error.message}`);
            assert.match(String(error.message), /ACCESS_REFUSED/);
            return true;
          });
        };
        await refused('declaring other.queue', (channel) => channel.assertQueue('other.queue', { durable: false, autoDelete: true }));
        await refused('declaring sensory.exchangeX', (channel) => channel.assertExchange('sensory.exchangeX', 'topic', { durable: false, autoDelete: true }));
        await refused('binding the task queue to amq.topic', (channel) => channel.bindQueue(TASK_QUEUE, 'amq.topic', '#'));

        // Publishing to amq.topic: the broker closes the channel with 403.
        const confirm = await connection.createConfirmChannel();
        const closed = new Promise<{ code?: number; message?: string }>((resolve) => confirm.on('error', resolve));
        confirm.publish('amq.topic', 'anything', Buffer.from('x'));
        await confirm.waitForConfirms().catch(() => undefined);
        const error = await Promise.race([closed, sleep(5000, { code: undefined, message: 'no channel error within 5 s' }, { ref: false })]);
        assert.equal(error.code, 403, `publishing to amq.topic: expected 403, got ${error.message}`);
      } finally {
        await connection.close().catch(() => undefined);
      }
      // The same credentials that opened vhost sensory above: the broker closes the handshake.
      await assert.rejects(amqp.connect(url('/'), { timeout: 5000 }), /vhost|NOT_ALLOWED|ACCESS_REFUSED|ConnectionClose/, 'the account must not open the default vhost');
    });
  },
);

// ---------------------------------------------------------------------------------------------
// 4. The Dockerfile, step by step, outside Docker

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions as Docker reads them: comments dropped, `\`-continued lines joined. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let buffer = '';
  let start = 0;
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    if (raw.trim().startsWith('#') || (raw.trim() === '' && buffer === '')) continue;
    if (buffer === '') start = index + 1;
    if (/\\\s*$/.test(raw)) {
      buffer += raw.replace(/\\\s*$/, '');
      continue;
    }
    buffer += raw;
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buffer);
    assert.ok(match, `Dockerfile line ${start}: cannot read ${JSON.stringify(buffer)}`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: start });
    buffer = '';
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [from, as, name] = instruction.args.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** Shell-like words: quotes and backslashes as in the Dockerfile's ENV lines. */
function words(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let started = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) out.push(current);
      current = '';
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (started) out.push(current);
  return out;
}

/** Exec form (a JSON array) or shell form (run by /bin/sh -c). */
function commandForm(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
}

function parseEnv(args: string): Record<string, string> {
  const tokens = words(args);
  if (tokens.length > 0 && !tokens[0].includes('=')) return { [tokens[0]]: args.slice(args.indexOf(tokens[0]) + tokens[0].length).trim() };
  return Object.fromEntries(tokens.map((token) => [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)]));
}

function parseCopy(args: string): { flags: Record<string, string>; sources: string[]; destination: string } {
  const tokens = words(args);
  const flags: Record<string, string> = {};
  while (tokens[0]?.startsWith('--')) {
    const [name, value = 'true'] = tokens.shift()!.slice(2).split('=');
    flags[name] = value;
  }
  const paths = tokens[0]?.startsWith('[') ? (JSON.parse(tokens.join(' ')) as string[]) : tokens;
  assert.ok(paths.length >= 2, `COPY ${args}: needs a source and a destination`);
  return { flags, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** .dockerignore as Docker applies it: patterns from the context root, the last match wins. */
function dockerIgnore(): (path: string) => boolean {
  const path = join(ROOT, '.dockerignore');
  const rules = (existsSync(path) ? readFileSync(path, 'utf8') : '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = posix.normalize((negate ? line.slice(1) : line).replace(/^\/+/, ''));
      const source = pattern
        .split(/(\*\*|\*|\?)/)
        .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return { negate, regex: new RegExp(`^${source}(/.*)?$`) };
    });
  return (relativePath) => {
    let ignored = false;
    for (const rule of rules) if (rule.regex.test(relativePath)) ignored = !rule.negate;
    return ignored;
  };
}

/** Copies like COPY: a directory's contents into the destination, a file into a dir or as a file. */
function copyLikeDocker(from: string, destination: string, intoDirectory: boolean, filter?: (path: string) => boolean): void {
  if (statSync(from).isDirectory()) {
    cpSync(from, destination, { recursive: true, verbatimSymlinks: true, filter });
  } else {
    const target = intoDirectory ? join(destination, basename(from)) : destination;
    mkdirSync(dirname(target), { recursive: true });
    cpSync(from, target);
  }
}

/** A RUN that only installs system packages with apt-get (and cleans apt's lists). */
function onlyAptGet(command: string): boolean {
  const steps = command.split(/&&|;/).map((step) => step.trim()).filter((step) => step !== '');
  return steps.length > 0 && steps.every((step) => /^(apt-get|apt)\s/.test(step) || /^rm -rf \/var\/lib\/apt\/lists/.test(step));
}

function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
    request.end();
  });
}

interface Server {
  readonly child: ChildProcess;
  output(): string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startProcess(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Server {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (error) => (output += `\n[${error.message}]`));
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, output: () => output, exit };
}

/** Waits until GET url answers 200; fails early with the process's output if it exits. */
async function waitForHttp(server: Server, url: string, timeoutMs: number): Promise<void> {
  let exited = false;
  void server.exit.then(() => (exited = true));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (exited) assert.fail(`the process exited before answering ${url}:\n${tail(server.output())}`);
    try {
      if ((await httpGet(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) assert.fail(`${url} did not answer 200 within ${timeoutMs} ms:\n${tail(server.output())}`);
    await sleep(100);
  }
}

/** Waits until something listens on 127.0.0.1:port; fails early with the process's output if it exits. */
async function waitForPort(server: Server, port: number, timeoutMs: number): Promise<void> {
  let exited = false;
  void server.exit.then(() => (exited = true));
  const deadline = performance.now() + timeoutMs;
  while (!(await tcpOpen('127.0.0.1', port))) {
    if (exited) assert.fail(`the process exited before listening on ${port}:\n${tail(server.output())}`);
    if (performance.now() > deadline) assert.fail(`nothing listens on ${port} after ${timeoutMs} ms:\n${tail(server.output())}`);
    await sleep(50);
  }
}

async function stop(server: Server, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill('SIGTERM');
  const exit = await Promise.race([server.exit, sleep(timeoutMs, undefined, { ref: false })]);
  if (exit) return exit;
  server.child.kill('SIGKILL');
  return assert.fail(`the process did not stop within ${timeoutMs} ms of SIGTERM:\n${tail(server.output())}`);
}

describe('Dockerfile', () => {
  after(cleanUp);
  const stages = parseDockerfile(read('Dockerfile'));
  const runtime = stages.at(-1)!;
  const referenced = new Set(
    runtime.instructions.filter((entry) => entry.keyword === 'COPY').map((entry) => parseCopy(entry.args).flags.from).filter((from) => from !== undefined),
  );
  const lastOf = (stage: Stage, keyword: string) => stage.instructions.filter((entry) => entry.keyword === keyword).at(-1);
  const envOf = (stage: Stage) => Object.assign({}, ...stage.instructions.filter((entry) => entry.keyword === 'ENV').map((entry) => parseEnv(entry.args))) as Record<string, string>;

  it('has a build stage and a runtime stage: non-root USER, EXPOSE 8002, a VOLUME at the data dir, a HEALTHCHECK', () => {
    assert.equal(referenced.size, 1, `the runtime stage should copy from one build stage, got ${[...referenced].join(', ')}`);
    assert.ok(stages.some((stage) => stage.name === [...referenced][0]), `no stage named ${[...referenced][0]}`);
    const env = envOf(runtime);
    assert.equal(env.SENSORY_PORT, '8002');
    assert.equal(env.SENSORY_HOST, '0.0.0.0', 'in a container the service must listen on every interface');
    assert.equal(env.NODE_ENV, 'production');

    const user = lastOf(runtime, 'USER')?.args;
    assert.ok(user, 'the runtime stage sets no USER: it would run as root');
    assert.ok(!/^(root|0)(:.*)?$/.test(user), `USER ${user} is root`);
    const setup = runtime.instructions.filter((entry) => entry.keyword === 'RUN').map((entry) => entry.args).join('\n');
    if (!/^\d+(:\d+)?$/.test(user)) assert.match(setup, new RegExp(`useradd[^\\n]*\\b${user}\\b`), `the runtime stage does not create the user ${user}`);

    const exposed = runtime.instructions.filter((entry) => entry.keyword === 'EXPOSE').flatMap((entry) => words(entry.args)).map((port) => port.split('/')[0]);
    assert.ok(exposed.includes('8002'), `EXPOSE ${exposed.join(' ')} does not include 8002`);

    const volumes = runtime.instructions.filter((entry) => entry.keyword === 'VOLUME').flatMap((entry) => (entry.args.startsWith('[') ? (JSON.parse(entry.args) as string[]) : words(entry.args)));
    assert.ok(volumes.includes(env.SENSORY_DATA_DIR), `no VOLUME at SENSORY_DATA_DIR=${env.SENSORY_DATA_DIR} (VOLUME ${volumes.join(' ')})`);
    // A named volume takes the owner of the image's directory: the non-root user must own it.
    assert.match(setup, new RegExp(`mkdir -p ${env.SENSORY_DATA_DIR}\\b`), `the runtime stage does not create ${env.SENSORY_DATA_DIR}`);
    assert.match(setup, new RegExp(`chown[^\\n]*\\b${user}\\b[^\\n]*${env.SENSORY_DATA_DIR}\\b`), `${env.SENSORY_DATA_DIR} is not owned by ${user}: the volume would not be writable`);

    assert.ok(lastOf(runtime, 'HEALTHCHECK'), 'no HEALTHCHECK');
    const entrypoint = commandForm(lastOf(runtime, 'ENTRYPOINT')?.args ?? '[]');
    const cmd = commandForm(lastOf(runtime, 'CMD')?.args ?? '[]');
    assert.deepEqual([...entrypoint, ...cmd], ['node', 'dist/cli/main.js', 'serve'], 'the image runs sensory serve by default; `worker` as its command runs a worker');

    const compose = loadCompose();
    assert.equal(environmentOf(compose.services.api1).SENSORY_DATA_DIR ?? env.SENSORY_DATA_DIR, env.SENSORY_DATA_DIR, 'compose mounts the volume where the image declares it');
  });

  it('builds and serves outside Docker: build-stage COPY and RUN lines, the runtime layout, the HEALTHCHECK', { timeout: 40 * 60_000 }, async (t: TestContext) => {
    const build = stages.find((stage) => stage.name === [...referenced][0]);
    assert.ok(build, 'no build stage');
    const imageNode = /^node:(\d+)/.exec(build.from)?.[1];
    if (imageNode !== undefined && imageNode !== process.versions.node.split('.')[0]) {
      t.diagnostic(`the image uses Node ${imageNode}, this machine runs Node ${process.versions.node}: native modules are built for the latter here`);
    }

    // The build stage, in a fresh temp dir standing for its WORKDIR.
    const buildDir = tempDir('build');
    const ignored = dockerIgnore();
    let buildWorkdir: string | undefined;
    let workdir = '/';
    const buildEnv = cleanEnv();
    const hostPath = (root: string, base: string | undefined, containerPath: string) => {
      assert.ok(base, 'a COPY or RUN before the stage sets its WORKDIR');
      const inside = posix.relative(base, containerPath);
      assert.ok(!inside.startsWith('..'), `${containerPath} lies outside the stage's WORKDIR ${base}: this check cannot lay it out`);
      return join(root, inside);
    };
    for (const instruction of build.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, instruction.args);
          buildWorkdir ??= workdir;
          mkdirSync(hostPath(buildDir, buildWorkdir, workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(buildEnv, parseEnv(instruction.args));
          break;
        case 'COPY': {
          const { flags, sources, destination } = parseCopy(instruction.args);
          assert.equal(flags.from, undefined, `line ${instruction.line}: COPY --from in the build stage is not handled here`);
          const target = hostPath(buildDir, buildWorkdir, posix.resolve(workdir, destination));
          const intoDirectory = destination.endsWith('/') || destination === '.' || sources.length > 1;
          for (const source of sources) {
            assert.ok(!/[*?[]/.test(source), `line ${instruction.line}: glob sources are not handled here`);
            const normalized = posix.normalize(source).replace(/\/$/, '');
            assert.ok(existsSync(join(ROOT, normalized)), `line ${instruction.line}: COPY ${source} — not in the build context, docker build would fail`);
            assert.ok(!ignored(normalized), `line ${instruction.line}: COPY ${source} — excluded by .dockerignore, docker build would fail`);
            copyLikeDocker(join(ROOT, normalized), target, intoDirectory, (path) => !ignored(relative(ROOT, path)));
          }
          break;
        }
        case 'RUN': {
          if (onlyAptGet(instruction.args)) {
            const packages = words(/apt-get\s+install\s+([^&;]*)/.exec(instruction.args)?.[1] ?? '').filter((word) => !word.startsWith('-'));
            const present = packages.map((name) => `${name}: ${which(name) ? 'present' : 'missing'}`);
            t.diagnostic(`skipped line ${instruction.line}, RUN apt-get …: it installs the build tools for native modules, which this machine has (${present.join(', ')})`);
            break;
          }
          const started = Date.now();
          const [command, ...args] = commandForm(instruction.args);
          const result = await run(command === '/bin/sh' ? 'sh' : command, args, { cwd: hostPath(buildDir, buildWorkdir, workdir), env: buildEnv, timeoutMs: 20 * 60_000 });
          assert.equal(result.code, 0, `line ${instruction.line}: RUN ${instruction.args} failed:\n${tail(result.output)}`);
          t.diagnostic(`line ${instruction.line}: RUN ${instruction.args} — ${((Date.now() - started) / 1000).toFixed(1)} s`);
          break;
        }
        default:
          t.diagnostic(`line ${instruction.line}: ${instruction.keyword} not used outside Docker`);
      }
    }

    // The runtime stage: what its COPY --from lines take from the build stage.
    const runtimeDir = tempDir('runtime');
    let runtimeWorkdir: string | undefined;
    workdir = '/';
    for (const instruction of runtime.instructions) {
      if (instruction.keyword === 'WORKDIR') {
        workdir = posix.resolve(workdir, instruction.args);
        runtimeWorkdir ??= workdir;
      } else if (instruction.keyword === 'COPY') {
        const { flags, sources, destination } = parseCopy(instruction.args);
        assert.ok(flags.from, `line ${instruction.line}: the runtime stage should take everything from the build stage (COPY --from=…)`);
        const target = hostPath(runtimeDir, runtimeWorkdir, posix.resolve(workdir, destination));
        const intoDirectory = destination.endsWith('/') || destination === '.' || sources.length > 1;
        for (const source of sources) {
          const from = hostPath(buildDir, buildWorkdir, posix.resolve('/', source));
          assert.ok(existsSync(from), `line ${instruction.line}: COPY --from=${flags.from} ${source} — the build stage did not produce it`);
          copyLikeDocker(from, target, intoDirectory);
        }
      } else if (instruction.keyword === 'RUN') {
        t.diagnostic(`skipped line ${instruction.line}, RUN in the runtime stage: it creates the system user and the volume dir; the test runs as the current user with a temp data dir`);
      }
    }
    for (const needed of ['package.json', 'node_modules', 'dist/cli/main.js', 'web']) {
      assert.ok(existsSync(join(runtimeDir, needed)), `the runtime layout lacks ${needed}`);
    }
    const devDependencies = Object.keys((JSON.parse(read('package.json')) as { devDependencies?: object }).devDependencies ?? {});
    for (const name of ['typescript', 'tsx', 'playwright-core'].filter((entry) => devDependencies.includes(entry))) {
      assert.ok(!existsSync(join(runtimeDir, 'node_modules', name)), `the runtime image carries the devDependency ${name} (npm prune --omit=dev)`);
    }

    // The service, started as the image starts it, with the image's ENV.
    const port = await freePort();
    const dataDir = tempDir('data');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: runtimeDir,
      ...envOf(runtime),
      SENSORY_PORT: String(port),
      SENSORY_DATA_DIR: dataDir,
      SENSORY_HOST: '127.0.0.1',
      SENSORY_API_KEYS: 'deployment-test-key:admin',
      SENSORY_LOG_LEVEL: 'warn',
    };
    const [command, ...args] = [...commandForm(lastOf(runtime, 'ENTRYPOINT')!.args), ...commandForm(lastOf(runtime, 'CMD')!.args)];
    const executable = command === 'node' ? process.execPath : command;
    const server = startProcess(executable, args, runtimeDir, env);
    await waitForHttp(server, `http://127.0.0.1:${port}/health/live`, 60_000);
    const ready = await httpGet(`http://127.0.0.1:${port}/health/ready`);
    assert.equal(ready.status, 200, `/health/ready: ${ready.body}`);
    const page = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200, 'the web page (web/ in the image) is served at /');
    assert.match(String(page.headers['content-type']), /text\/html/);

    // The HEALTHCHECK, run the way Docker runs it: inside the container, with its environment.
    const healthcheck = /^((?:--\S+\s+)*)CMD\s+([\s\S]+)$/i.exec(lastOf(runtime, 'HEALTHCHECK')!.args);
    assert.ok(healthcheck, 'HEALTHCHECK has no CMD');
    const options = Object.fromEntries(words(healthcheck[1]).map((option) => option.slice(2).split('=') as [string, string]));
    const [checkCommand, ...checkArgs] = commandForm(healthcheck[2].trim());
    const checkTimeoutMs = Math.max(10_000, seconds(options.timeout ?? '30s') * 1000);
    const probe = () => run(checkCommand === 'node' ? process.execPath : checkCommand === '/bin/sh' ? 'sh' : checkCommand, checkArgs, { cwd: runtimeDir, env, timeoutMs: checkTimeoutMs });
    const healthy = await probe();
    assert.equal(healthy.code, 0, `the HEALTHCHECK command failed against a running service:\n${tail(healthy.output)}`);
    t.diagnostic(`HEALTHCHECK ${Object.entries(options).map(([name, value]) => `--${name}=${value}`).join(' ')}: exit 0 against the running service`);

    // SIGTERM (what docker stop and a rolling update send): a clean exit; then the check fails.
    const exit = await stop(server, 30_000);
    assert.equal(exit.code, 0, `SIGTERM should end the service cleanly, got ${JSON.stringify(exit)}:\n${tail(server.output())}`);
    const unhealthy = await probe();
    assert.notEqual(unhealthy.code, 0, 'the HEALTHCHECK command must fail when nothing answers');
  });
});

// ---------------------------------------------------------------------------------------------
// 5. nginx in front

const NGINX_CONF = 'deploy/nginx/sensory.conf';

/** The configuration without comments. */
function nginxText(): string {
  return read(NGINX_CONF).replace(/#[^\n]*/g, '');
}

/** The values of every `directive …;` in the configuration. */
function directives(text: string, name: string): string[] {
  return [...text.matchAll(new RegExp(`(?:^|[\\s;{}])${name}\\s+([^;]*);`, 'g'))].map((match) => match[1].trim());
}

function certificateMount(): Mount {
  const mount = mountsOf(loadCompose().services.nginx).find((entry) => entry.source.replace(/^\.\//, '') === 'deploy/nginx/certs');
  assert.ok(mount, 'the nginx service does not mount ./deploy/nginx/certs');
  return mount;
}

describe('deploy/nginx/sensory.conf', () => {
  after(cleanUp);
  const text = nginxText();

  it('streams both ways, leaves body limits to the service, terminates TLS, and outlasts the longest long-poll', () => {
    assert.deepEqual(directives(text, 'proxy_request_buffering'), ['off'], 'uploads should stream to the service (proxy_request_buffering off)');
    assert.deepEqual(directives(text, 'proxy_buffering'), ['off'], 'batches should stream back (proxy_buffering off)');
    assert.deepEqual(directives(text, 'client_max_body_size'), ['0'], 'nginx should not cap bodies (client_max_body_size 0): the service answers 413 itself');
    assert.ok(directives(text, 'listen').some((value) => /^(\S+:)?443\s+ssl\b/.test(value)), 'no `listen 443 ssl`');
    const certificates = [...directives(text, 'ssl_certificate'), ...directives(text, 'ssl_certificate_key')];
    assert.equal(certificates.length, 2, 'ssl_certificate and ssl_certificate_key should each appear once');
    const mount = certificateMount();
    for (const path of certificates) assert.ok(path.startsWith(`${mount.target}/`), `${path} is not under ${mount.target}, where compose mounts deploy/nginx/certs`);

    const upstream = /upstream\s+(\S+)\s*\{([^}]*)\}/.exec(text);
    assert.ok(upstream, 'no upstream block');
    const servers = directives(upstream[2], 'server').map((value) => value.split(/\s+/)[0]);
    for (const replica of ['api1:8002', 'api2:8002']) assert.ok(servers.includes(replica), `the upstream lacks ${replica}`);
    assert.ok(directives(text, 'proxy_pass').includes(`http://${upstream[1]}`), `no proxy_pass http://${upstream[1]}`);
    if (directives(upstream[2], 'keepalive').length > 0) {
      assert.deepEqual(directives(text, 'proxy_http_version'), ['1.1'], 'upstream keepalive needs proxy_http_version 1.1');
      assert.ok(directives(text, 'proxy_set_header').some((value) => /^Connection\s+""$/.test(value)), 'upstream keepalive needs proxy_set_header Connection ""');
    }
    for (const name of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const values = directives(text, name);
      const effective = values.length === 0 ? 60 : Math.min(...values.map(seconds)); // nginx's default is 60 s
      assert.ok(effective >= LONGEST_POLL_SECONDS, `${name} ${values.join(', ')} is shorter than the longest long-poll (${LONGEST_POLL_SECONDS} s)`);
    }
    const image = loadCompose().services.nginx.image ?? '';
    const version = /:(\d+)\.(\d+)/.exec(image);
    if (directives(text, 'http2').includes('on') && version) {
      const [major, minor] = [Number(version[1]), Number(version[2])];
      assert.ok(major > 1 || minor >= 25, `\`http2 on\` needs nginx ≥ 1.25.1; compose runs ${image}`);
    }
  });

  const nginx = which('nginx');
  const openssl = which('openssl');
  const missing = !nginx ? 'nginx is not installed (apt-get install -y nginx-light)' : !openssl ? 'openssl is not installed' : undefined;
  const skip = missing && !inCi() ? `${missing}: skipped outside CI (with CI=true this fails)` : false;
  const requireNginx = () => assert.ok(!missing, `CI is set but ${missing}: .ci/run installs nginx-light`);

  /** The nginx version here, e.g. [1, 22, 1]. */
  function nginxVersion(): number[] {
    const output = spawnSync(nginx!, ['-v'], { encoding: 'utf8' });
    const match = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${output.stdout}${output.stderr}`);
    assert.ok(match, `cannot read nginx -v: ${output.stderr}`);
    return [Number(match[1]), Number(match[2]), Number(match[3])];
  }

  /**
   * A test copy: api1/api2 → the given address, the certificate dir → a temp dir with a fresh
   * self-signed certificate, optionally other listen ports; `http2 on` dropped on an nginx older
   * than 1.25.1 (the compose image is newer; older ones spell it `listen … http2`).
   */
  async function testSetup(t: TestContext, replicas: string, listen?: { http: number; https: number }): Promise<{ dir: string; wrapper: string; certificate: string }> {
    const dir = tempDir('nginx');
    const certs = join(dir, 'certs');
    mkdirSync(certs);
    const mount = certificateMount();
    const certificate = join(certs, basename(directives(text, 'ssl_certificate')[0]));
    const key = join(certs, basename(directives(text, 'ssl_certificate_key')[0]));
    const generated = await run(
      openssl!,
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', certificate, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { timeoutMs: 60_000 },
    );
    assert.equal(generated.code, 0, `openssl req failed:\n${tail(generated.output)}`);

    let copy = read(NGINX_CONF).replace(/\b(server\s+)api[12]:8002\b/g, `$1${replicas}`).replaceAll(`${mount.target}/`, `${certs}/`);
    const [major, minor, patch] = nginxVersion();
    if (major === 1 && (minor < 25 || (minor === 25 && patch < 1)) && /^\s*http2\s+on;/m.test(copy)) {
      copy = copy.replace(/^\s*http2\s+on;.*$/m, '');
      t.diagnostic(`nginx ${major}.${minor}.${patch} here predates \`http2 on\` (1.25.1): the test copy leaves it out; compose runs ${loadCompose().services.nginx.image}`);
    }
    if (listen) {
      copy = copy.replace(/\blisten\s+80\s*;/g, `listen 127.0.0.1:${listen.http};`).replace(/\blisten\s+443\s+ssl/g, `listen 127.0.0.1:${listen.https} ssl`);
    }
    writeFileSync(join(dir, 'sensory.conf'), copy);
    // The nginx image includes conf.d/*.conf inside its http block: so does this wrapper.
    const wrapper = join(dir, 'nginx.conf');
    writeFileSync(
      wrapper,
      [
        `pid ${dir}/nginx.pid;`,
        'events {}',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${dir}/client_body;`,
        `  proxy_temp_path ${dir}/proxy;`,
        `  include ${dir}/sensory.conf;`,
        '}',
        '',
      ].join('\n'),
    );
    return { dir, wrapper, certificate };
  }

  it('passes nginx -t with api1/api2 mapped to 127.0.0.1 and a self-signed certificate', { skip, timeout: 120_000 }, async (t: TestContext) => {
    requireNginx();
    const { dir, wrapper } = await testSetup(t, '127.0.0.1:8002');
    const result = await run(nginx!, ['-t', '-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', wrapper], { timeoutMs: 60_000 });
    assert.equal(result.code, 0, `nginx -t failed:\n${result.output}`);
    assert.match(result.output, /test is successful/);
  });

  it('carries requests through a real nginx to a real Sensory: TLS, redirect, request id, large bodies reach the service', { skip, timeout: 180_000 }, async (t: TestContext) => {
    requireNginx();
    const servicePort = await freePort();
    const listen = { http: await freePort(), https: await freePort() };
    const { dir, wrapper, certificate } = await testSetup(t, `127.0.0.1:${servicePort}`, listen);
    const apiKey = 'deployment-nginx-key';
    const MiB = 1024 * 1024;
    const service = startProcess(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'serve'],
      ROOT,
      cleanEnv({
        SENSORY_PORT: String(servicePort),
        SENSORY_HOST: '127.0.0.1',
        SENSORY_DATA_DIR: tempDir('nginx-data'),
        SENSORY_API_KEYS: `${apiKey}:admin`,
        SENSORY_MAX_SAMPLE_BYTES: String(4 * MiB),
        SENSORY_LOG_LEVEL: 'warn',
      }),
    );
    await waitForHttp(service, `http://127.0.0.1:${servicePort}/health/live`, 60_000);
    // In the foreground, one process: stopped below by its own handle.
    const proxy = startProcess(nginx!, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', wrapper, '-g', 'daemon off; master_process off;'], dir, process.env);
    try {
      await waitForPort(proxy, listen.https, 15_000);
      const ca = readFileSync(certificate);
      const call = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) =>
        new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
          let answered = false;
          // agent: false, one connection per call: a connection whose upload was cut must not go back to a pool.
          const request = httpsRequest({ host: '127.0.0.1', port: listen.https, servername: 'localhost', ca, method, path, headers, timeout: 30_000, agent: false }, (response) => {
            answered = true;
            let text = '';
            response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
          });
          request.on('timeout', () => request.destroy(new Error('timeout')));
          // An early answer (413) may cut the rest of an upload off: the answer is what counts.
          request.on('error', (error) => (answered ? undefined : reject(error)));
          // The write of the cut-off rest fails (EPIPE) on the socket itself, possibly after the answer ended.
          request.on('socket', (socket) => socket.on('error', () => undefined));
          request.end(body);
        });

      const redirect = await httpGet(`http://127.0.0.1:${listen.http}/health/live`);
      assert.equal(redirect.status, 301, 'plain HTTP redirects to HTTPS');
      assert.match(String(redirect.headers.location), /^https:\/\//);

      const live = await call('GET', '/health/live');
      assert.equal(live.status, 200, live.body);
      assert.deepEqual(JSON.parse(live.body), { status: 'ok' });
      assert.match(String(live.headers['x-request-id']), /^[0-9a-f]{32}$/, "the service answers with nginx's $request_id (proxy_set_header X-Request-Id)");

      // 2 MiB is over nginx's default 1 MiB limit: with client_max_body_size 0 it reaches the service.
      const headers = { 'api-access-key': apiKey, 'content-type': 'image/png' };
      const passed = await call('POST', '/v1/datasets/deploy-check/samples?category=a', headers, Buffer.alloc(2 * MiB, 1));
      assert.equal(passed.status, 404, `a 2 MiB upload should reach the service (no such dataset), got ${passed.status}: ${passed.body.slice(0, 200)}`);
      assert.match(JSON.parse(passed.body).error.code, /^SENSORY_ERR_/);
      // Over SENSORY_MAX_SAMPLE_BYTES: the service's own 413, in its error shape, not nginx's page.
      const tooLarge = await call('POST', '/v1/datasets/deploy-check/samples?category=a', headers, Buffer.alloc(8 * MiB, 1));
      assert.equal(tooLarge.status, 413, tooLarge.body.slice(0, 200));
      assert.match(JSON.parse(tooLarge.body).error.code, /^SENSORY_ERR_.*TOO_LARGE$/, 'the 413 comes from the service');
    } finally {
      proxy.child.kill('SIGQUIT');
      await Promise.race([proxy.exit, sleep(5000, undefined, { ref: false })]);
      await stop(service, 30_000);
    }
  });
});
