/**
 * `sensory serve` as a real process: the generated key, configuration errors, SIGTERM with
 * requests in flight, and a restart on the same data dir.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, runCli, sha256, startServer, stop, tempDir, within } from '../support/process.js';

const ADMIN = 'process-admin-key-0123456789';
const READER = 'process-read-key-0123456789';

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

describe('sensory serve as a real process', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('the first start generates an admin key, prints it once, keeps it 0600; later starts only say where it is; logs never carry it', async () => {
    const dataDir = join(tempDir('sensory-serve-'), 'data');
    const first = await startServer(dataDir);
    const keyPath = join(dataDir, 'api-key');
    const key = readFileSync(keyPath, 'utf8').trim();
    assert.ok(key.length >= 16, 'a generated key of real length');
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.match(first.stderr(), /^Sensory \S+ listening on http:\/\/127\.0\.0\.1:\d+/m);
    assert.equal(count(first.stderr(), key), 1, 'the new key is printed exactly once');
    assert.ok(first.stderr().includes(keyPath), 'the message says where the key is kept');

    assert.equal((await call(first.url, key, 'GET', '/v1/datasets')).status, 200);
    assert.equal((await call(first.url, undefined, 'GET', '/v1/datasets')).status, 401);
    assert.deepEqual(await stop(first, 'SIGINT'), { code: 0, signal: null }, 'SIGINT shuts down cleanly too');
    assert.ok(!first.stdout().includes(key), 'the key is not in the JSON logs');
    assert.equal(count(first.stderr(), key), 1, 'nothing after start-up repeats the key');

    // Second start, most verbose logging, requests made with the key in every form.
    const second = await startServer(dataDir, { SENSORY_LOG_LEVEL: 'trace' });
    assert.ok(second.stderr().includes(keyPath), 'says where the key is');
    assert.ok(!second.stderr().includes(key), 'does not print the key again');
    assert.equal(readFileSync(keyPath, 'utf8').trim(), key, 'the key file is kept as it was');
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);

    const png = await makePng(8, 8, 3, 1);
    assert.equal((await call(second.url, key, 'PUT', '/v1/datasets/keys', { json: { width: 8, height: 8, channels: 3 } })).status, 201);
    assert.equal((await call(second.url, key, 'POST', '/v1/datasets/keys/samples?category=a', { bytes: png })).status, 201);
    assert.equal((await call(second.url, key, 'POST', '/v1/datasets/keys/samples', { json: { category: 'a', data: png.toString('base64') } })).status, 200);
    assert.equal((await call(second.url, key, 'GET', '/v1/datasets/keys', { bearer: true })).status, 200);
    assert.equal((await call(second.url, key, 'POST', '/v1/datasets/keys/samples?category=a', { bytes: Buffer.from('not an image') })).status, 415);
    assert.equal((await call(second.url, key, 'GET', '/v1/no-such-route')).status, 404);
    assert.equal((await call(second.url, `${key}x`, 'GET', '/v1/datasets')).status, 401);
    assert.equal((await call(second.url, key, 'POST', '/v1/datasets/keys/batches', { json: { size: 1, seed: 1 } })).status, 200);
    assert.deepEqual(await stop(second), { code: 0, signal: null });

    const lines = second.stdout().split('\n').filter((line) => line.trim() !== '');
    assert.ok(lines.length >= 8, `requests were logged (${lines.length} lines)`);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON log line: ${line.slice(0, 200)}`);
    assert.ok(lines.some((line) => /"reqId"/.test(line)), 'log lines carry a request id');
    assert.ok(!second.stdout().includes(key), 'the key is never in the JSON logs');
    assert.ok(!second.stderr().includes(key), 'nor on stderr');
  });

  test('an invalid configuration stops the start with one line naming every bad variable, never echoing a secret', async () => {
    const bad = { SENSORY_PORT: 'abc', SENSORY_SHARD_SIZE: '0', SENSORY_API_KEYS: 'secretsecret:bogus' };
    const viaEnv = runCli(['serve'], { SENSORY_DATA_DIR: join(tempDir('sensory-serve-'), 'data'), ...bad });
    const viaFlags = runCli(['serve', '--port', 'abc', '--shard-size', '0', '--api-keys', 'secretsecret:bogus'], {
      SENSORY_DATA_DIR: join(tempDir('sensory-serve-'), 'data'),
    });
    for (const run of [viaEnv, viaFlags]) {
      const { code } = await within(run.exit, 15_000, 'exit on a bad configuration');
      assert.notEqual(code, 0);
      const lines = run.stderr().split('\n').filter((line) => line.trim() !== '');
      assert.equal(lines.length, 1, `one line, got:\n${run.stderr()}`);
      for (const variable of Object.keys(bad)) assert.ok(lines[0].includes(variable), `names ${variable}: ${lines[0]}`);
      assert.ok(!run.stderr().includes('secretsecret') && !run.stdout().includes('secretsecret'), 'the key is never echoed');
      assert.ok(!/listening/.test(run.stderr()), 'never listened');
    }
  });

  test('SIGTERM: requests in flight are answered, new ones are not taken, the process exits 0 and what it acknowledged is kept', async () => {
    const dataDir = tempDir('sensory-serve-');
    const env = { SENSORY_API_KEYS: `${ADMIN}:admin` };
    const server = await startServer(dataDir, env);
    assert.equal((await call(server.url, ADMIN, 'PUT', '/v1/datasets/term', { json: { width: 16, height: 16, channels: 3 } })).status, 201);

    // An idle keep-alive connection must not hold the shutdown up.
    const keepAlive = new http.Agent({ keepAlive: true });
    const idle = await rawRequest(server.url, '/health/live', { method: 'GET', agent: keepAlive });
    assert.equal(idle.status, 200);

    // Requests whose headers and half of their body reached the server before the signal.
    const inFlight: PartialRequest[] = [];
    for (let i = 0; i < 6; i++) {
      const png = await makePng(16, 16, 3, 100 + i);
      const asJson = i % 2 === 1;
      const body = asJson ? Buffer.from(JSON.stringify({ category: `c${i % 3}`, data: png.toString('base64') })) : png;
      const path = asJson ? '/v1/datasets/term/samples' : `/v1/datasets/term/samples?category=c${i % 3}`;
      inFlight.push(partialRequest(server.url, path, { 'api-access-key': ADMIN, 'content-type': asJson ? 'application/json' : 'image/png' }, body, png));
    }
    await within(Promise.all(inFlight.map((request) => request.started)), 10_000, 'the server to take the requests');
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(server.child.exitCode, null, 'still running while requests are in flight');

    // New connections are not taken any more (refused, or answered 503).
    const late = await rawRequest(server.url, '/health/live', { method: 'GET' }).catch((error: NodeJS.ErrnoException) => error);
    if (late instanceof Error) assert.equal((late as NodeJS.ErrnoException).code, 'ECONNREFUSED', String(late));
    else assert.equal(late.status, 503);

    for (const request of inFlight) request.finish();
    const answers = await within(Promise.all(inFlight.map((request) => request.response)), 15_000, 'in-flight answers');
    for (const answer of answers) assert.equal(answer.status, 201, answer.body.toString('utf8'));
    assert.deepEqual(await within(server.exit, 10_000, 'exit after the in-flight requests'), { code: 0, signal: null });
    keepAlive.destroy();

    const again = await startServer(dataDir, env);
    for (const [i, answer] of answers.entries()) {
      const sample = JSON.parse(answer.body.toString('utf8'));
      const stored = await call(again.url, ADMIN, 'GET', `/v1/datasets/term/samples/${sample.id}`);
      assert.equal(stored.status, 200);
      assert.equal(stored.json().sha256, sha256(inFlight[i].image));
      const content = await call(again.url, ADMIN, 'GET', `/v1/datasets/term/samples/${sample.id}/content`);
      assert.ok(content.body.equals(inFlight[i].image));
    }
    assert.equal((await call(again.url, ADMIN, 'GET', '/v1/datasets/term')).json().sampleCount, 6);
    assert.deepEqual(await stop(again), { code: 0, signal: null });
  });

  test('a restart on the same data dir keeps datasets, samples, categories, revisions and byte-identical seeded batches', async () => {
    const dataDir = tempDir('sensory-serve-');
    const env = { SENSORY_API_KEYS: `${ADMIN}:admin;${READER}:read` };
    const first = await startServer(dataDir, env);
    const url = first.url;
    assert.equal((await call(url, ADMIN, 'PUT', '/v1/datasets/animals', { json: { width: 16, height: 16, channels: 3, testPercent: 25 } })).status, 201);
    assert.equal((await call(url, ADMIN, 'PUT', '/v1/datasets/grey', { json: { width: 8, height: 8, channels: 1 } })).status, 201);
    const categories = ['cats', 'dogs', 'birds'];
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) {
      const png = await makePng(20, 12, 3, 500 + i);
      const category = categories[i % 3];
      const reply =
        i % 2 === 0
          ? await call(url, ADMIN, 'POST', `/v1/datasets/animals/samples?category=${category}`, { bytes: png })
          : await call(url, ADMIN, 'POST', '/v1/datasets/animals/samples', { json: { category, data: png.toString('base64') } });
      assert.equal(reply.status, 201, reply.body.toString('utf8'));
      ids.push(reply.json().id);
    }
    const form = new FormData();
    form.append('category', 'zebra');
    form.append('file', new Blob([new Uint8Array(await makePng(16, 16, 3, 600))], { type: 'image/png' }), 'a.png');
    form.append('file', new Blob([new Uint8Array(await makePng(16, 16, 3, 601))], { type: 'image/png' }), 'b.png');
    assert.equal((await call(url, ADMIN, 'POST', '/v1/datasets/animals/samples', { form })).status, 201);
    for (let i = 0; i < 3; i++) {
      assert.equal((await call(url, ADMIN, 'POST', '/v1/datasets/grey/samples?category=g', { bytes: await makePng(8, 8, 1, 700 + i) })).status, 201);
    }
    assert.equal((await call(url, ADMIN, 'PATCH', `/v1/datasets/animals/samples/${ids[1]}`, { json: { category: 'fish' } })).status, 200);
    assert.equal((await call(url, ADMIN, 'DELETE', `/v1/datasets/animals/samples/${ids[2]}`)).status, 200);

    const before = await snapshot(url);
    assert.equal(before.animals.sampleCount, 13);
    assert.equal(before.animals.revision, 16, '14 adds, a relabel and a delete');
    assert.deepEqual(await stop(first), { code: 0, signal: null });

    const second = await startServer(dataDir, env);
    const afterRestart = await snapshot(second.url);
    assert.deepEqual(afterRestart.json, before.json);
    for (const [name, bytes] of Object.entries(before.binary)) {
      assert.ok(afterRestart.binary[name].equals(bytes), `${name} is byte-identical after the restart`);
    }

    // Counters carry on where they were: revision, ids, category indices.
    const next = await call(second.url, ADMIN, 'POST', '/v1/datasets/animals/samples?category=newcomer', { bytes: await makePng(16, 16, 3, 900) });
    assert.equal(next.status, 201);
    assert.equal(next.json().revision, 17);
    assert.ok(next.json().id > Math.max(...before.animalSamples.map((sample: { id: number }) => sample.id)));
    const map = (await call(second.url, READER, 'GET', '/v1/datasets/animals/categories')).json().map;
    assert.equal(map.newcomer, Math.max(...Object.values(before.categoryMap as Record<string, number>)) + 1);
    assert.deepEqual(await stop(second), { code: 0, signal: null });
  });
});

/** Everything a client can read back, as JSON, plus the binary answers. */
async function snapshot(url: string) {
  const get = async (path: string) => {
    const reply = await call(url, READER, 'GET', path);
    assert.equal(reply.status, 200, `${path}: ${reply.body.toString('utf8')}`);
    return reply.json();
  };
  const animalSamples: any[] = [];
  let cursor: string | undefined;
  do {
    const page = await get(`/v1/datasets/animals/samples?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    animalSamples.push(...page.samples);
    cursor = page.nextCursor;
  } while (cursor);
  const binary: Record<string, Buffer> = {};
  const batch = async (name: string, body: unknown, accept: string) => {
    const reply = await call(url, READER, 'POST', '/v1/datasets/animals/batches', { json: body, accept });
    assert.equal(reply.status, 200, reply.body.toString('utf8'));
    binary[name] = reply.body;
  };
  await batch('safetensors seed 7', { size: 8, seed: 7, noise: 0.5 }, 'application/x-safetensors');
  await batch('safetensors seed 7 onehot float32', { size: 13, seed: 7, noise: 0.8, dtype: 'float32', labels: 'onehot' }, 'application/x-safetensors');
  await batch('safetensors pinned to revision 10', { size: 6, seed: 3, noise: 0.5, revision: 10 }, 'application/x-safetensors');
  await batch('json seed 11, train split', { size: 4, seed: 11, noise: 1, split: 'train' }, 'application/json');
  for (const sample of animalSamples) {
    binary[`content of ${sample.id}`] = (await call(url, READER, 'GET', `/v1/datasets/animals/samples/${sample.id}/content`)).body;
  }
  const animals = await get('/v1/datasets/animals');
  const categoriesReply = await get('/v1/datasets/animals/categories');
  const json = {
    list: await get('/v1/datasets'),
    animals,
    grey: await get('/v1/datasets/grey'),
    categories: categoriesReply,
    greyCategories: await get('/v1/datasets/grey/categories'),
    animalSamples,
    greySamples: (await get('/v1/datasets/grey/samples')).samples,
    one: await get(`/v1/datasets/animals/samples/${animalSamples[0].id}`),
  };
  return { json, binary, animals, animalSamples, categoryMap: categoriesReply.map };
}

interface PartialRequest {
  readonly image: Buffer;
  /** Settles once the server has parsed the headers (it answered `100 Continue`) and half of the body is sent. */
  readonly started: Promise<void>;
  finish(): void;
  readonly response: Promise<{ status: number; body: Buffer }>;
}

/**
 * A POST whose headers go now with `Expect: 100-continue`; once the server has taken the request
 * (its 100 Continue proves it), the first half of the body follows; the rest on finish().
 */
function partialRequest(url: string, path: string, headers: Record<string, string>, body: Buffer, image: Buffer): PartialRequest {
  const request = http.request(new URL(path, url), {
    method: 'POST',
    agent: false,
    headers: { ...headers, 'content-length': String(body.length), expect: '100-continue' },
  });
  const response = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
  });
  response.catch(() => undefined);
  const half = Math.floor(body.length / 2);
  const started = new Promise<void>((resolve, reject) => {
    request.on('continue', () => request.write(body.subarray(0, half), (error) => (error ? reject(error) : resolve())));
    request.on('error', reject);
  });
  started.catch(() => undefined);
  request.flushHeaders();
  return { image, started, finish: () => request.end(body.subarray(half)), response };
}

function rawRequest(url: string, path: string, options: http.RequestOptions): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(new URL(path, url), { agent: false, timeout: 10_000, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('request timed out')));
    request.on('error', reject);
    request.end();
  });
}
