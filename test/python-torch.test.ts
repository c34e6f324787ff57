/**
 * Data-parallel training with PyTorch (Debian's python3-torch, CPU, gloo) over a real
 * `sensory serve`: the README's DDP script (clients/python/tests/ddp_trainer.py) run as real
 * rank processes, as torchrun starts them, each with 2 DataLoader workers. Checked from the
 * trainers' logs and the service: equal, disjoint parts whose union is the order, epochs in step,
 * the same seed giving every rank the same samples, a rank SIGKILLed mid-epoch and the job
 * restarted from its checkpoint, and reshapes 2 → 1 and 1 → 3 ranks at a restart. Also a plain
 * DataLoader with workers and no order id (one order), and the dataset's own state_dict (the
 * per-worker form StatefulDataLoader calls). The driver of the last two is check_torch.py.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { SensoryClient } from '@sensory/client';
import { makePng } from './support/harness.js';
import { startServer, stop, type Server } from './support/process.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TESTS = join(ROOT, 'clients', 'python', 'tests');
const ADMIN = 'torch-admin-key-0123456789';
const TRAINER = 'torch-train-key-0123456789';
const SAMPLES = 48;

// ---------------------------------------------------------------------------------------------
// A python3 with torch: Debian's python3-torch is for /usr/bin/python3.

const hasTorch = (python: string) => spawnSync(python, ['-c', 'import numpy, torch, torch.distributed'], { stdio: 'ignore', timeout: 60_000 }).status === 0;

function findPython(): string | undefined {
  const found = ['/usr/bin/python3', 'python3'].find(hasTorch);
  if (found) return found;
  if (existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/python3') && process.getuid?.() === 0) {
    const apt = (...args: string[]) => spawnSync('apt-get', args, { stdio: 'ignore', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (apt('install', '-y', '--no-install-recommends', 'python3-torch').status !== 0) {
      apt('update');
      apt('install', '-y', '--no-install-recommends', 'python3-torch');
    }
    if (hasTorch('/usr/bin/python3')) return '/usr/bin/python3';
  }
  return undefined;
}

const PYTHON = findPython();
if (!PYTHON && process.env.CI === 'true') throw new Error('no python3 with torch (tried /usr/bin/python3 and python3, and apt-get install python3-torch)');

// ---------------------------------------------------------------------------------------------
// Rank processes, as torchrun starts them

interface Rank {
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

const running = new Set<ChildProcess>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function spawnPython(args: string[], env: Record<string, string> = {}): Rank {
  const child = spawn(PYTHON!, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1', ...env } });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, exit, stdout: () => out, stderr: () => err };
}

/** Starts `world` ranks of the DDP trainer. */
async function launch(world: number, args: string[]): Promise<Rank[]> {
  const port = await freePort();
  return Array.from({ length: world }, (_, rank) =>
    spawnPython([join(TESTS, 'ddp_trainer.py'), ...args], { RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }),
  );
}

async function finish(ranks: Rank[], timeoutMs = 180_000): Promise<void> {
  const timer = setTimeout(() => ranks.forEach((rank) => rank.child.kill('SIGKILL')), timeoutMs);
  const codes = await Promise.all(ranks.map((rank) => rank.exit));
  clearTimeout(timer);
  codes.forEach((code, i) => assert.equal(code, 0, `rank ${i} exited ${code}:\n${ranks[i].stderr().slice(-3000)}`));
}

async function kill(rank: Rank): Promise<void> {
  if (rank.child.exitCode === null && rank.child.signalCode === null) rank.child.kill('SIGKILL');
  await rank.exit;
}

async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ---------------------------------------------------------------------------------------------
// The trainers' logs

interface Step {
  readonly step: number;
  readonly epoch: number;
  readonly slots: number[];
  readonly ids: number[];
}

interface RankLog {
  readonly steps: Step[];
  /** Per epoch: this rank's batches, and every rank's together (an all_reduce). */
  readonly epochs: { epoch: number; batches: number; all: number }[];
}

function readLog(prefix: string, rank: number): RankLog {
  const log: RankLog = { steps: [], epochs: [] };
  const file = `${prefix}.rank${rank}`;
  if (!existsSync(file)) return log;
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const fields = line.split(' ');
    if (fields[0] === 'epoch') log.epochs.push({ epoch: Number(fields[1]), batches: Number(fields[2]), all: Number(fields[3]) });
    else log.steps.push({ step: Number(fields[0]), epoch: Number(fields[1]), slots: fields[2].split(',').map(Number), ids: fields[3].split(',').map(Number) });
  }
  return log;
}

const slotsOf = (steps: Step[]) => steps.flatMap((step) => step.slots);

function assertExact(slots: number[], size: number, what: string): void {
  const sorted = [...slots].sort((a, b) => a - b);
  const doubled = sorted.filter((slot, i) => i > 0 && sorted[i - 1] === slot);
  assert.deepEqual(doubled, [], `${what}: slots trained on twice`);
  assert.equal(sorted.length, size, `${what}: ${sorted.length} slots of ${size}`);
  sorted.forEach((slot, i) => assert.equal(slot, i, `${what}: slot ${i} exactly once`));
}

/** Every rank of a run trained on as many samples as the others, and each epoch ended in step. */
function assertEqualRanks(logs: RankLog[], what: string): void {
  const counts = logs.map((log) => slotsOf(log.steps).length);
  assert.ok(counts.every((count) => count === counts[0]), `${what}: samples per rank ${counts}`);
  const steps = logs.map((log) => log.steps.length);
  assert.ok(steps.every((count) => count === steps[0]), `${what}: steps per rank ${steps}`);
  for (const log of logs) {
    for (const epoch of log.epochs) assert.equal(epoch.all, epoch.batches * logs.length, `${what}: epoch ${epoch.epoch} has as many batches on every rank`);
  }
}

// ---------------------------------------------------------------------------------------------

describe('PyTorch DDP over an order with ranks', { skip: PYTHON ? false : 'no python3 with torch (set CI=true to make this a failure)' }, () => {
  let workDir: string;
  let service: Server;
  let sdk: SensoryClient;
  const trainer = (log: string, ...extra: string[]) => [service.url, TRAINER, 'shapes', '--log', join(workDir, log), '--checkpoint', join(workDir, `${log}.pt`), ...extra];

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'sensory-torch-'));
    service = await startServer(join(workDir, 'data'), { SENSORY_LOG_LEVEL: 'warn', SENSORY_API_KEYS: `${ADMIN}:admin;${TRAINER}:read` });
    sdk = new SensoryClient({ url: service.url, key: ADMIN });
    await sdk.datasets.put('shapes', { width: 8, height: 8, channels: 3 });
    for (let i = 0; i < SAMPLES; i++) await sdk.samples.upload('shapes', await makePng(10 + (i % 5), 9, 3, 100 + i), { category: ['disc', 'square', 'cross'][i % 3] });
  });

  after(async () => {
    await Promise.all([...running].map((child) => (child.kill('SIGKILL'), new Promise((resolve) => child.once('close', resolve)))));
    sdk?.close();
    if (service) await stop(service);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const orderOf = (ranks: Rank[]) => /^order (\S+)$/m.exec(ranks[0].stdout())![1];

  test('2 ranks × 2 DataLoader workers: equal, disjoint parts whose union is the order, epochs in step; the same seed gives every rank the same samples', async () => {
    const first = await launch(2, trainer('seed-a', '--epochs', '2', '--seed', '11'));
    await finish(first);
    const second = await launch(2, trainer('seed-b', '--epochs', '2', '--seed', '11'));
    await finish(second);
    const a = [0, 1].map((rank) => readLog(join(workDir, 'seed-a'), rank));
    const b = [0, 1].map((rank) => readLog(join(workDir, 'seed-b'), rank));

    const order = await sdk.getOrder(orderOf(first));
    assert.deepEqual([order.status, order.ranks, order.slots, order.samples.delivered], ['complete', 4, 2 * SAMPLES, 2 * SAMPLES], 'one order of 4 ranks (2 × 2 workers), delivered whole');
    assertEqualRanks(a, 'run a');
    assertExact([...slotsOf(a[0].steps), ...slotsOf(a[1].steps)], 2 * SAMPLES, 'run a');
    assert.deepEqual(a[0].epochs.map((e) => e.epoch), [0, 1], 'two epochs, validated at each end');
    // Epoch 0 is a permutation of the dataset: every sample id once.
    const firstEpoch = a.flatMap((log) => log.steps.filter((step) => step.epoch === 0).flatMap((step) => step.ids));
    assert.equal(new Set(firstEpoch).size, SAMPLES, 'every sample once in epoch 0');

    assert.notEqual(orderOf(second), orderOf(first), 'another run, another order');
    for (const rank of [0, 1]) {
      assert.deepEqual(b[rank].steps.map((step) => step.ids), a[rank].steps.map((step) => step.ids), `rank ${rank}: the same samples in the same batches`);
    }
  });

  test('a rank SIGKILLed mid-epoch: the job restarts from its checkpoint and nothing is lost or trained on twice', async () => {
    const log = join(workDir, 'kill');
    const first = await launch(2, trainer('kill', '--epochs', '2', '--seed', '12', '--checkpoint-every', '3', '--pause-after', '4', '--pause-rank', '1'));
    await waitFor(() => first[1].stdout().includes('paused') || first[1].child.exitCode !== null, 90_000, 'rank 1 pauses at step 4');
    assert.ok(first[1].stdout().includes('paused'), first[1].stderr());
    const orderId = orderOf(first);
    await kill(first[1]);
    // Rank 0 cannot go on without it (its next all-reduce fails or waits): the launcher stops the job.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await kill(first[0]);
    const trained = [0, 1].map((rank) => readLog(log, rank).steps.filter((step) => step.step <= 3));
    assert.equal(trained[0].length, 3, 'rank 0 trained 3 steps before the checkpoint');

    const second = await launch(2, trainer('kill-resumed', '--epochs', '2', '--checkpoint', join(workDir, 'kill.pt'), '--resume'));
    await finish(second);
    assert.equal(orderOf(second), orderId, 'the same order');
    const resumed = [0, 1].map((rank) => readLog(join(workDir, 'kill-resumed'), rank));
    assertEqualRanks(resumed, 'the resumed run');
    assert.equal(resumed[0].steps[0].step, 4, 'the resumed run starts after the checkpoint');
    assertExact([...slotsOf(trained[0]), ...slotsOf(trained[1]), ...slotsOf(resumed[0].steps), ...slotsOf(resumed[1].steps)], 2 * SAMPLES, 'checkpoint + resumed run');
    const order = await sdk.getOrder(orderId);
    assert.deepEqual([order.status, order.samples.delivered], ['complete', 2 * SAMPLES]);
  });

  for (const [from, to] of [
    [2, 1],
    [1, 3],
  ] as const) {
    test(`reshape ${from} → ${to} ranks at a restart mid-order: every slot delivered exactly once, equal counts per rank`, async () => {
      const name = `reshape-${from}-${to}`;
      const first = await launch(from, trainer(name, '--epochs', '2', '--seed', String(13 + to), '--checkpoint-every', '3', '--pause-after', '5'));
      await waitFor(() => first.every((rank) => rank.stdout().includes('paused') || rank.child.exitCode !== null), 90_000, 'every rank pauses at step 5');
      first.forEach((rank, i) => assert.ok(rank.stdout().includes('paused'), `rank ${i}: ${rank.stderr().slice(-2000)}`));
      const orderId = orderOf(first);
      await Promise.all(first.map(kill));
      const logs = Array.from({ length: from }, (_, rank) => readLog(join(workDir, name), rank));
      assertEqualRanks(logs.map((log) => ({ steps: log.steps.filter((step) => step.step <= 3), epochs: [] })), 'before the checkpoint');
      const trained = logs.flatMap((log) => slotsOf(log.steps.filter((step) => step.step <= 3)));

      const second = await launch(to, trainer(`${name}-resumed`, '--epochs', '2', '--checkpoint', join(workDir, `${name}.pt`), '--resume'));
      await finish(second);
      const resumed = Array.from({ length: to }, (_, rank) => readLog(join(workDir, `${name}-resumed`), rank));
      assertEqualRanks(resumed, `the run on ${to} rank(s)`);
      const order = await sdk.getOrder(orderId);
      assert.deepEqual([order.status, order.generation, order.ranks], ['complete', 1, to * 2], 'reshaped once, to 2 workers per rank');
      assertExact([...trained, ...resumed.flatMap((log) => slotsOf(log.steps))], order.slots, `${from} → ${to}`);
      assert.equal(order.samples.delivered, order.slots);
    });
  }

  test('a plain DataLoader with 2 workers and no order id places one order (so does the legacy .torch()); torch-ready batches', async () => {
    const run = spawnPython([join(TESTS, 'check_torch.py'), 'plain', service.url, TRAINER, 'shapes', '--size', '40', '--batch', '6', '--workers', '2']);
    await finish([run], 120_000);
    const result = JSON.parse(run.stdout().trim().split('\n').pop()!);
    assert.equal(result.placed.length, 1, 'one order for both workers');
    assert.deepEqual(result.placed[0], { id: result.placed[0].id, ranks: 2, status: 'complete', delivered: 40 });
    assert.equal(result.samples, 40);
    for (const [shape, dtype, labels] of result.batches) {
      assert.deepEqual(shape.slice(1), [3, 8, 8], 'channels first');
      assert.deepEqual([dtype, labels], ['torch.uint8', 'torch.int64']);
    }
    assert.deepEqual(result.legacyPlaced, [{ ranks: 2, status: 'complete', delivered: 40 }], 'the legacy adapter: one order too');
    assert.equal(result.legacySamples, 40);
    assert.deepEqual(result.legacyShape, [6, 8, 8, 3], 'the legacy adapter keeps the service\'s layout');
  });

  test('the dataset\'s own state_dict (StatefulDataLoader\'s per-worker form): a new dataset resumes exactly after it', async () => {
    const run = spawnPython([join(TESTS, 'check_torch.py'), 'stateful', service.url, TRAINER, 'shapes', '--size', '30', '--batch', '4', '--stop-after', '3']);
    await finish([run], 120_000);
    const result = JSON.parse(run.stdout().trim().split('\n').pop()!);
    assert.equal(result.before.length, 12);
    assertExact([...result.before, ...result.after], 30, 'before and after the state');
    const order = await sdk.getOrder(result.order);
    assert.deepEqual([order.status, order.samples.delivered], ['complete', 30]);
  });
});
