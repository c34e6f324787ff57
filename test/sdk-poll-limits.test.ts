/**
 * The TypeScript SDK and the Python client at the service's bound on waiting polls: a poll refused with 429
 * SENSORY_ERR_TOO_MANY_POLLS took nothing, so the SDK sends it again after the answer's
 * Retry-After, and succeeds once a waiting place is free. (An app in this process, listening on
 * a free port, with no worker: every poll waits.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { SensoryApiError, SensoryClient, isTransient } from '@sensory/client';
import { KEYS, removeDir, seedDataset, startTestApp, type TestApp } from './support/harness.js';
import { ROOT } from './support/process.js';

/** A python3 with numpy (the Python client needs it); test/python-client.test.ts installs one under CI. */
const PYTHON = ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0);

/** Runs `code` with the client package on the path; resolves with its stdout once it exits 0. */
function runPython(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON!, ['-c', code], { cwd: ROOT, env: { ...process.env, PYTHONPATH: 'clients/python' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

describe('SDK polls at the waiting-poll bound', () => {
  let t: TestApp;
  let url: string;

  before(async () => {
    t = await startTestApp({ SENSORY_MAX_WAITING_POLLS_PER_KEY: '1', SENSORY_POLL_RECHECK_MS: '60000' });
    await seedDataset(t, 'sdk-limits', { width: 4, height: 4, channels: 1 }, 4, ['a']);
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  test('a poll refused for the bound is sent again after Retry-After and answered once a place is free', async () => {
    const client = new SensoryClient({ url, key: KEYS.read, retryDelayMs: 50 });
    try {
      const placed = await t.app.inject({ method: 'POST', url: '/v1/datasets/sdk-limits/orders', headers: t.auth('read'), payload: { size: 8, ranks: 2 } });
      assert.equal(placed.statusCode, 202, placed.body);
      const id = placed.json().id as string;
      // This key's one waiting place is taken for 1.5 s.
      const holder = t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: t.auth('read'), payload: { rank: 0, waitMs: 1500 } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const refused = await t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: t.auth('read'), payload: { rank: 1, waitMs: 100 } });
      assert.equal(refused.statusCode, 429);
      const started = Date.now();
      const polled = await client.poll(id, { rank: 1, waitMs: 100, max: 2 });
      const took = Date.now() - started;
      assert.equal(polled.slots.length, 0, 'nothing is produced (no worker)');
      assert.ok(took >= 900, `answered after ${took} ms: it was refused, then sent again after Retry-After (1 s)`);
      assert.equal((await holder).statusCode, 200);
    } finally {
      client.close();
    }
  });

  test('Python client: a poll refused with 429 SENSORY_ERR_TOO_MANY_POLLS is sent again after Retry-After', { skip: PYTHON || process.env.CI === 'true' ? false : 'no python3 with numpy' }, async () => {
    const placed = await t.app.inject({ method: 'POST', url: '/v1/datasets/sdk-limits/orders', headers: t.auth('read'), payload: { size: 8, ranks: 2 } });
    assert.equal(placed.statusCode, 202, placed.body);
    const id = placed.json().id as string;
    const holder = t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: t.auth('read'), payload: { rank: 0, waitMs: 1500 } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const out = await runPython(
      [
        'import json, time',
        'from sensory_client import Client',
        `client = Client(${JSON.stringify(url)}, ${JSON.stringify(KEYS.read)}, retry_delay=0.05)`,
        't0 = time.time()',
        `polled = client.poll(${JSON.stringify(id)}, max=2, wait_ms=100, rank=1)`,
        'print(json.dumps({"slots": len(polled.slots), "took": time.time() - t0}))',
      ].join('\n'),
    );
    const result = JSON.parse(out) as { slots: number; took: number };
    assert.equal(result.slots, 0);
    assert.ok(result.took >= 0.9, `answered after ${result.took} s: refused, then sent again after Retry-After (1 s)`);
    assert.equal((await holder).statusCode, 200);
  });

  test('isTransient: TOO_MANY_POLLS is worth another try, TOO_MANY_ORDERS is not', () => {
    assert.equal(isTransient(new SensoryApiError(429, 'SENSORY_ERR_TOO_MANY_POLLS', 'wait', undefined, 1000)), true);
    assert.equal(isTransient(new SensoryApiError(429, 'SENSORY_ERR_TOO_MANY_ORDERS', 'cancel one', undefined, 10_000)), false);
  });
});
