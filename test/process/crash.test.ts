/**
 * Crash safety with real processes: concurrent uploads, SIGKILL in the middle, restart on the
 * same data dir. Every upload that got a 2xx must be there, intact, pixels included; no half
 * sample may ever be visible; an unanswered upload may always be retried.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { parseSafetensors } from '@sensory/client';
import { patternPixels } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, sha256, startServer, stop, tempDir, within, type Reply } from '../support/process.js';

const ADMIN = 'crash-admin-key-0123456789';

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

describe('SIGKILL during concurrent uploads', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('every acknowledged upload survives a kill, intact, and nothing half-written is ever visible (two kill cycles)', async (t) => {
    const dataDir = tempDir('sensory-crash-');
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
