/**
 * The Python client (the package clients/python/sensory_client, standard library + numpy) under
 * a real python3 against a real `sensory serve`: decoded batches, uploads, errors, a full order,
 * an order resumed after the trainer process is SIGKILLed, a poll answer cut by a TCP proxy, the
 * Keras/PyTorch-shaped adapters without either framework, and the package installed with pip
 * offline. The driver is clients/python/tests/check_client.py.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { SensoryClient } from '@sensory/client';
import { CuttingProxy } from './support/cutting-proxy.js';
import { makePng } from './support/harness.js';
import { startServer, stop, type Server } from './support/process.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DRIVER = join(ROOT, 'clients', 'python', 'tests', 'check_client.py');
const ADMIN = 'py-admin-key-0123456789';
const READER = 'py-read-key-0123456789';

// ---------------------------------------------------------------------------------------------
// A python3 with numpy.

const hasNumpy = (python: string) => spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0;

/**
 * The python3 on PATH when it has numpy (a pyenv one often does), else /usr/bin/python3, after
 * `apt-get install -y python3-numpy` when needed and possible. Undefined when none has numpy.
 */
function findPython(): string | undefined {
  const candidates = ['python3', '/usr/bin/python3'];
  const found = candidates.find(hasNumpy);
  if (found) return found;
  if (existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/python3') && process.getuid?.() === 0) {
    const apt = (...args: string[]) => spawnSync('apt-get', args, { stdio: 'ignore', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (apt('install', '-y', 'python3-numpy').status !== 0) {
      apt('update'); // a fresh container has no package lists yet
      apt('install', '-y', 'python3-numpy');
    }
    if (hasNumpy('/usr/bin/python3')) return '/usr/bin/python3';
  }
  return undefined;
}

const PYTHON = findPython();
const MYPY = ['/usr/bin/python3', 'python3'].find((python) => spawnSync(python, ['-c', 'import mypy, numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0);
if (!MYPY && process.env.CI === 'true') throw new Error('no python3 with mypy: .ci/run installs python3-mypy');
/** A python3 that builds the package offline without build isolation (setuptools and wheel). */
const PIP = ['/usr/bin/python3', 'python3'].find((python) => spawnSync(python, ['-c', 'import setuptools, wheel, numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0);
if (!PYTHON && process.env.CI === 'true') throw new Error('no python3 with numpy (tried python3 on PATH and /usr/bin/python3, and apt-get install python3-numpy)');

// ---------------------------------------------------------------------------------------------
// The Python driver's processes

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('close', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface PythonRun {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<number | null>;
}

const running = new Set<ChildProcess>();

function runDriver(args: string[]): PythonRun {
  const child = spawn(PYTHON!, [DRIVER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Runs the driver to its end and parses its last line. */
async function drive(args: string[], timeoutMs = 120_000): Promise<any> {
  const run = runDriver(args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const code = await run.exit;
  clearTimeout(timer);
  assert.equal(code, 0, `check_client.py ${args[0]} exited ${code}:\n${run.stderr()}`);
  const lines = run.stdout().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function slotsIn(file: string): number[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

function assertExact(slots: number[], size: number): void {
  const sorted = [...slots].sort((a, b) => a - b);
  assert.equal(sorted.length, size, `${sorted.length} slots for an order of ${size}`);
  sorted.forEach((slot, i) => assert.equal(slot, i, `slot ${i} exactly once`));
}

describe('Python client against a real service', { skip: PYTHON ? false : 'no python3 with numpy (set CI=true to make this a failure)' }, () => {
  let workDir: string;
  let service: Server;
  let sdk: SensoryClient;
  const args = (mode: string, key = READER, dataset = 'pets') => [mode, service.url, key, dataset];

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'sensory-py-'));
    service = await startServer(join(workDir, 'data'), { SENSORY_LOG_LEVEL: 'warn', SENSORY_API_KEYS: `${ADMIN}:admin;${READER}:read` });
    sdk = new SensoryClient({ url: service.url, key: ADMIN });
    await sdk.datasets.put('pets', { width: 16, height: 16, channels: 3 });
    for (let i = 0; i < 9; i++) await sdk.samples.upload('pets', await makePng(20 + i, 18, 3, i), { category: ['cat', 'dog', 'bird'][i % 3] });
  });

  after(async () => {
    await Promise.all([...running].map((child) => stopChild(child, 'SIGKILL')));
    sdk?.close();
    if (service) await stop(service);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('batch: numpy arrays with the right shapes, dtypes and labels, the same pixels the SDK decodes; torch-ready and reused buffers', async () => {
    const result = await drive([...args('batch'), '--size', '6', '--seed', '42']);
    const reference = await sdk.batch('pets', { size: 6, seed: 42 });
    assert.deepEqual(result.uint8.shape, [6, 16, 16, 3]);
    assert.equal(result.uint8.dtype, 'uint8');
    assert.equal(result.uint8.labelsDtype, 'int32');
    assert.deepEqual(result.uint8.labels, Array.from(reference.labels));
    const { createHash } = await import('node:crypto');
    assert.equal(result.uint8.sha256, createHash('sha256').update(reference.data).digest('hex'));
    assert.deepEqual(result.float32.shape, [6, 16, 16, 3]);
    assert.equal(result.float32.dtype, 'float32');
    assert.deepEqual(result.float32.labelsShape, [6, 3]);
    assert.equal(result.float32.labelsDtype, 'uint8');
    assert.deepEqual(result.torch.shape, [6, 3, 16, 16]);
    assert.equal(result.torch.labelsDtype, 'int64');
  });

  test('upload from a path: stored, then a duplicate of the same sample', async () => {
    const file = join(workDir, 'fish.png');
    writeFileSync(file, await makePng(30, 30, 3, 77));
    await sdk.datasets.put('uploads', { width: 16, height: 16, channels: 3 });
    const result = await drive(['upload', service.url, ADMIN, 'uploads', '--file', file, '--category', 'fish']);
    assert.equal(result.first.category, 'fish');
    assert.equal(result.first.duplicate, undefined);
    assert.equal(result.second.duplicate, true);
    assert.equal(result.second.id, result.first.id);
    assert.equal((await sdk.datasets.get('uploads')).sampleCount, 1);
  });

  test('bulk upload: a receipt per item in order, and the same items again store nothing twice', async () => {
    const dir = join(workDir, 'bulk');
    mkdirSync(dir);
    for (let i = 0; i < 12; i++) writeFileSync(join(dir, `img-${String(i).padStart(2, '0')}.png`), await makePng(16, 16, 3, 500 + i));
    await sdk.datasets.put('bulk', { width: 16, height: 16, channels: 3 });
    const result = await drive(['bulk', service.url, ADMIN, 'bulk', '--dir', dir]);
    assert.deepEqual([result.first.stored, result.first.duplicates, result.first.rejected], [12, 0, 1]);
    assert.deepEqual(result.first.receipts.map((r: { path: string }) => r.path).slice(0, 2), ['c0/img-00.png', 'c1/img-01.png']);
    assert.equal(result.first.receipts[12].error.code, 'SENSORY_ERR_NOT_AN_IMAGE');
    assert.deepEqual([result.second.stored, result.second.duplicates], [0, 12]);
    assert.deepEqual(
      result.second.receipts.slice(0, 12).map((r: { sampleId: number }) => r.sampleId),
      result.first.receipts.slice(0, 12).map((r: { sampleId: number }) => r.sampleId),
    );
    assert.equal((await sdk.datasets.get('bulk')).sampleCount, 12);
  });

  test('feedback from a trainer (numpy numbers and arrays, sent in chunks), the review queue and a decision', async () => {
    await sdk.datasets.put('reviewed', { width: 16, height: 16, channels: 3 });
    for (let i = 0; i < 7; i++) await sdk.samples.upload('reviewed', await makePng(24, 24, 3, 900 + i * 37), { category: ['cat', 'dog', 'bird'][i % 3] });
    const result = await drive(['feedback', service.url, ADMIN, 'reviewed']);
    assert.equal(result.sent.stored, 7);
    assert.equal(result.sent.results.length, 8);
    assert.deepEqual(result.sent.results[7], { id: 999999, status: 'not_found' });
    assert.equal(result.queue.items[0].id, result.first);
    assert.equal(result.queue.items[0].suggested, 'dog');
    assert.equal(result.decided.decision, 'confirm');
    assert.ok(!result.after.items.some((item: { id: number }) => item.id === result.first));
    assert.deepEqual([result.wrong.status, result.wrong.code], [400, 'SENSORY_ERR_BAD_REQUEST']);
  });

  test('errors: an exception with the status and the SENSORY_ERR_* code', async () => {
    const result = await drive(args('errors'));
    assert.deepEqual([result.missingDataset.status, result.missingDataset.code], [404, 'SENSORY_ERR_DATASET_NOT_FOUND']);
    assert.deepEqual([result.wrongKey.status, result.wrongKey.code], [401, 'SENSORY_ERR_UNAUTHORIZED']);
    assert.deepEqual([result.tooMany.status, result.tooMany.code], [413, 'SENSORY_ERR_BATCH_TOO_LARGE']);
    assert.deepEqual([result.missingOrder.status, result.missingOrder.code], [404, 'SENSORY_ERR_ORDER_NOT_FOUND']);
    assert.ok(result.missingDataset.requestId, 'the request id comes along');
  });

  test('a full order iterated to the end: every slot exactly once', async () => {
    const slots = join(workDir, 'full.slots');
    const result = await drive([...args('order'), '--size', '100', '--max', '16', '--shard-size', '25', '--slots', slots]);
    assert.equal(result.samples, 100);
    assert.equal(result.remaining, 0);
    assertExact(slotsIn(slots), 100);
    const order = await sdk.getOrder(result.orderId);
    assert.equal(order.status, 'complete');
    assert.deepEqual(order.samples, { produced: 100, delivered: 100 });
  });

  test('the trainer is SIGKILLed mid-order and restarted from its checkpoint: nothing lost, nothing doubled', async () => {
    const slots = join(workDir, 'resume.slots');
    const checkpoint = join(workDir, 'resume.checkpoint');
    const first = runDriver([...args('order'), '--size', '300', '--max', '20', '--shard-size', '70', '--slots', slots, '--checkpoint', checkpoint, '--stop-after', '3']);
    await waitFor(() => first.stdout().includes('paused') || first.child.exitCode !== null, 60_000, 'the first run pauses after 3 chunks');
    assert.ok(first.stdout().includes('paused'), first.stderr());
    const orderId = /^order (\S+)$/m.exec(first.stdout())![1];
    first.child.kill('SIGKILL');
    await first.exit;
    const before = slotsIn(slots);
    assert.ok(before.length > 0 && before.length <= 60, `${before.length} slots before the kill`);
    const killed = await sdk.getOrder(orderId);
    assert.equal(killed.status, 'running');
    assert.equal(killed.samples.delivered, before.length - 20, 'the chunk being trained on was not acknowledged');

    const second = await drive([...args('order'), '--order-id', orderId, '--max', '20', '--slots', slots, '--checkpoint', checkpoint]);
    assert.equal(second.orderId, orderId);
    assert.equal(second.samples, 300 - before.length);
    assertExact(slotsIn(slots), 300);
    const order = await sdk.getOrder(orderId);
    assert.deepEqual([order.status, order.samples.delivered], ['complete', 300]);
  });

  test('restarted with the order id alone, the trainer gets back the chunk it had not acknowledged', async () => {
    const slots = join(workDir, 'again.slots');
    const first = runDriver([...args('order'), '--size', '100', '--max', '10', '--slots', slots, '--stop-after', '2']);
    await waitFor(() => first.stdout().includes('paused') || first.child.exitCode !== null, 60_000, 'the first run pauses after 2 chunks');
    const orderId = /^order (\S+)$/m.exec(first.stdout())![1];
    first.child.kill('SIGKILL');
    await first.exit;
    const before = slotsIn(slots);
    assert.equal(before.length, 20);
    const second = await drive([...args('order'), '--order-id', orderId, '--max', '10', '--slots', slots]);
    assert.equal(second.samples, 90, 'everything after the acknowledged first chunk');
    const all = slotsIn(slots);
    assert.deepEqual(all.slice(20, 30), before.slice(10, 20), 'the unacknowledged chunk, again');
    assertExact([...before.slice(0, 10), ...all.slice(20)], 100);
    assert.equal((await sdk.getOrder(orderId)).status, 'complete');
  });

  test('a poll answer cut in its middle by a proxy: the client polls again and the total is exact', async () => {
    await sdk.datasets.put('big', { width: 128, height: 128, channels: 3 });
    for (let i = 0; i < 6; i++) await sdk.samples.upload('big', await makePng(128, 128, 3, 60 + i), { category: `c${i % 2}` });
    const size = 1536;
    // Placed with the key that polls it: an order belongs to the key that placed it.
    const owner = new SensoryClient({ url: service.url, key: READER });
    const { id } = await owner.createOrder('big', { size, shardSize: 256, seed: 5 });
    owner.close();
    // Everything produced first, so that each poll answer is a full 512 × 48 KiB.
    const deadline = performance.now() + 60_000;
    while ((await sdk.getOrder(id)).samples.produced < size) {
      assert.ok(performance.now() < deadline, 'the worker produces the order');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const target = new URL(service.url);
    const proxy = new CuttingProxy({ host: target.hostname, port: Number(target.port) }, 1024 * 1024, { nth: 2 });
    const url = await proxy.listen();
    try {
      const slots = join(workDir, 'cut.slots');
      const result = await drive(['order', url, READER, 'big', '--order-id', id, '--max', '512', '--slots', slots]);
      assert.equal(proxy.cuts, 1, 'the second long answer was cut');
      assert.equal(result.samples, size);
      assertExact(slotsIn(slots), size);
      assert.deepEqual((await sdk.getOrder(id)).samples, { produced: size, delivered: size });
    } finally {
      await proxy.close();
    }
  });

  test('the package installs offline with pip (no build isolation, no dependency fetched) and is typed', { skip: PIP ? false : 'no python3 with setuptools and wheel' }, () => {
    // A copy, so that the build's own files (build/, *.egg-info) stay out of the repository.
    const source = join(workDir, 'package-source');
    const target = join(workDir, 'package-target');
    cpSync(join(ROOT, 'clients', 'python'), source, { recursive: true, filter: (path) => !/__pycache__|\/tests$|\.egg-info|\/build$/.test(path) });
    const install = spawnSync(PIP!, ['-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index', '--target', target, source], { encoding: 'utf8', timeout: 180_000 });
    assert.equal(install.status, 0, install.stderr + install.stdout);
    const check = spawnSync(
      PIP!,
      ['-c', 'import json, os, sys, sensory_client; print(json.dumps({"file": sensory_client.__file__, "typed": os.path.exists(os.path.join(os.path.dirname(sensory_client.__file__), "py.typed")), "torch": "torch" in sys.modules, "client": hasattr(sensory_client, "Client")}))'],
      { encoding: 'utf8', cwd: workDir, env: { ...process.env, PYTHONPATH: target }, timeout: 60_000 },
    );
    assert.equal(check.status, 0, check.stderr);
    const result = JSON.parse(check.stdout);
    assert.ok(result.file.startsWith(target), `imported from the installed package: ${result.file}`);
    assert.deepEqual([result.typed, result.torch, result.client], [true, false, true], 'py.typed shipped; importing the client imports no torch');
    assert.ok(existsSync(join(target, 'sensory_client', 'torch.py')), 'the torch module is installed beside it');
  });

  test('the package type-checks with mypy (its annotations are what py.typed promises)', { skip: MYPY ? false : 'no python3 with mypy (Debian: python3-mypy)' }, () => {
    const check = spawnSync(MYPY!, ['-m', 'mypy', '--ignore-missing-imports', '--cache-dir', '/dev/null', 'sensory_client'], { encoding: 'utf8', cwd: join(ROOT, 'clients', 'python'), timeout: 300_000 });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test('adapters: a Sequence of repeatable batches and an IterableDataset over one order, importing neither framework', async () => {
    const result = await drive([...args('adapters'), '--size', '20']);
    assert.equal(result.sequenceLength, 3);
    assert.deepEqual(result.sequenceShapes, [
      [4, 16, 16, 3],
      [4, 16, 16, 3],
      [4, 16, 16, 3],
    ]);
    assert.equal(result.sequenceRepeatable, true);
    assert.deepEqual(result.iterableBatches, [
      [[8, 16, 16, 3], [8]],
      [[8, 16, 16, 3], [8]],
      [[4, 16, 16, 3], [4]],
    ]);
    assert.equal((await sdk.getOrder(result.iterableOrderId)).status, 'complete');
    assert.deepEqual(result.frameworksImported, []);
  });
});
