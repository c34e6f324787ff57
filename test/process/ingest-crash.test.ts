/**
 * SIGKILL during 8-client single and bulk uploads, five times over, on the segment store: every
 * upload answered 2xx and every item a bulk receipt names is there after the restart, its
 * original byte-identical and its pixels exact; nothing a client was not told about is half
 * visible (every visible sample is whole); an unanswered upload or bulk body sent again stores
 * nothing twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { parseSafetensors } from '@sensory/client';
import { patternPixels } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, sha256, startServer, stop, tempDir, within, type Reply } from '../support/process.js';
import { tarOf } from '../support/tar.js';

const ADMIN = 'ingest-crash-admin-key-0123456789';
const SIDE = 16;
const CHANNELS = 3;
const SINGLE_CLIENTS = 4;
const BULK_CLIENTS = 4;
const ITEMS_PER_BULK = 20;
const CYCLES = 5;

interface Attempt {
  readonly seed: number;
  readonly sha256: string;
  readonly category: string;
  readonly png: Buffer;
  readonly pixels: Buffer;
}

async function attemptFor(seed: number): Promise<Attempt> {
  const pixels = patternPixels(SIDE, SIDE, CHANNELS, seed % 4096);
  pixels.writeUInt32LE(seed, 0);
  const png = await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: CHANNELS } }).png().toBuffer();
  return { seed, sha256: sha256(png), category: `c${seed % 5}`, png, pixels };
}

async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const bulkBody = (batch: readonly Attempt[]) => tarOf(batch.map((a) => ({ name: `${a.category}/${a.seed}.png`, data: a.png })));
const postBulk = async (url: string, batch: readonly Attempt[]) =>
  call(url, ADMIN, 'POST', '/v1/datasets/crash/samples/bulk', { bytes: await bulkBody(batch), type: 'application/x-tar', timeoutMs: 30_000 });

describe('SIGKILL during 8-client single and bulk uploads', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test(`every acknowledged or receipted sample survives ${CYCLES} kills, whole and pixel-exact`, async (t) => {
    const dataDir = tempDir('sensory-ingest-crash-');
    // Bulk items hashed and decoded on a worker thread: killed with the process like the rest.
    const env = { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_MAX_BATCH_SAMPLES: '1000000', SENSORY_LOG_LEVEL: 'warn', SENSORY_SEGMENT_BYTES: String(1024 * 1024), SENSORY_INGEST_THREADS: '1' };
    const attempts = new Map<string, Attempt>();
    const acknowledged = new Map<number, Attempt>();
    let nextSeed = 1;
    let server = await startServer(dataDir, env);
    assert.equal((await call(server.url, ADMIN, 'PUT', '/v1/datasets/crash', { json: { width: SIDE, height: SIDE, channels: CHANNELS } })).status, 201);

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      let killed = false;
      const unexpected: string[] = [];
      const counts = { single: 0, receipted: 0 };
      const unanswered: Attempt[][] = [];
      const single = async (clientNo: number) => {
        while (!killed) {
          const attempt = await attemptFor(nextSeed++);
          attempts.set(attempt.sha256, attempt);
          let reply: Reply;
          try {
            reply = await (clientNo % 2
              ? call(server.url, ADMIN, 'POST', `/v1/datasets/crash/samples?category=${attempt.category}`, { bytes: attempt.png })
              : call(server.url, ADMIN, 'POST', '/v1/datasets/crash/samples', { json: { category: attempt.category, data: attempt.png.toString('base64') } }));
          } catch (error) {
            if (killed) return unanswered.push([attempt]);
            throw error;
          }
          if (reply.status !== 201) unexpected.push(`${reply.status} ${reply.body.toString('utf8').slice(0, 200)}`);
          else {
            acknowledged.set(reply.json().id, attempt);
            counts.single++;
          }
        }
      };
      const bulk = async () => {
        while (!killed) {
          const batch: Attempt[] = [];
          for (let i = 0; i < ITEMS_PER_BULK; i++) batch.push(await attemptFor(nextSeed++));
          for (const attempt of batch) attempts.set(attempt.sha256, attempt);
          let reply: Reply;
          try {
            reply = await postBulk(server.url, batch);
          } catch (error) {
            if (killed) return unanswered.push(batch);
            throw error;
          }
          if (reply.status !== 201) {
            unexpected.push(`bulk ${reply.status} ${reply.body.toString('utf8').slice(0, 200)}`);
            continue;
          }
          const receipts = reply.json().receipts as { status: string; sampleId: number; sha256: string }[];
          assert.equal(receipts.length, batch.length);
          for (const [i, receipt] of receipts.entries()) {
            assert.equal(receipt.status, 'stored');
            assert.equal(receipt.sha256, batch[i].sha256);
            acknowledged.set(receipt.sampleId, batch[i]);
            counts.receipted++;
          }
        }
      };
      const clients = [...Array.from({ length: SINGLE_CLIENTS }, (_, i) => single(i)), ...Array.from({ length: BULK_CLIENTS }, bulk)];
      await new Promise((resolve) => setTimeout(resolve, 800 + cycle * 250));
      killed = true;
      server.child.kill('SIGKILL');
      assert.equal((await within(server.exit, 10_000, 'exit after SIGKILL')).signal, 'SIGKILL');
      await within(Promise.all(clients), 30_000, 'clients to notice the kill');
      assert.deepEqual(unexpected, [], 'nothing was refused before the kill');
      assert.ok(counts.single >= 8 && counts.receipted >= ITEMS_PER_BULK, `uploads were answered before the kill (${JSON.stringify(counts)})`);
      t.diagnostic(`cycle ${cycle}: ${counts.single} single uploads and ${counts.receipted} bulk items acknowledged before SIGKILL`);

      server = await startServer(dataDir, env);
      await verify(server.url, attempts, acknowledged);

      // What was never answered is sent again: stored or duplicate, never twice.
      for (const batch of unanswered) {
        const reply = batch.length === 1 && batch[0].seed % 7 !== 0
          ? await call(server.url, ADMIN, 'POST', `/v1/datasets/crash/samples?category=${batch[0].category}`, { bytes: batch[0].png })
          : await postBulk(server.url, batch);
        assert.ok(reply.status === 200 || reply.status === 201, `retry answered ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`);
        const body = reply.json();
        const receipts = body.receipts ?? [{ status: body.duplicate ? 'duplicate' : 'stored', sampleId: body.id }];
        for (const [i, receipt] of (receipts as { status: string; sampleId: number }[]).entries()) {
          assert.ok(['stored', 'duplicate'].includes(receipt.status));
          acknowledged.set(receipt.sampleId, batch[i]);
        }
      }
    }
    await verify(server.url, attempts, acknowledged);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  });
});

/** The restarted service against everything the clients sent and were told. */
async function verify(url: string, attempts: Map<string, Attempt>, acknowledged: Map<number, Attempt>): Promise<void> {
  const listed: { id: number; sha256: string; category: string; bytes: number }[] = [];
  let cursor: string | undefined;
  do {
    const reply = await call(url, ADMIN, 'GET', `/v1/datasets/crash/samples?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(reply.status, 200);
    listed.push(...reply.json().samples);
    cursor = reply.json().nextCursor;
  } while (cursor);
  assert.equal(new Set(listed.map((sample) => sample.sha256)).size, listed.length, 'no bytes stored twice');
  const byId = new Map(listed.map((sample) => [sample.id, sample]));
  for (const [id, attempt] of acknowledged) {
    const sample = byId.get(id);
    assert.ok(sample, `acknowledged sample ${id} (seed ${attempt.seed}) is there`);
    assert.equal(sample.sha256, attempt.sha256);
  }
  for (const sample of listed) {
    const attempt = attempts.get(sample.sha256);
    assert.ok(attempt, `sample ${sample.id} is something a client sent`);
    assert.equal(sample.category, attempt.category);
  }
  // Every visible sample is whole: its original byte-identical…
  await eachLimit(listed, 16, async (sample) => {
    const reply = await call(url, ADMIN, 'GET', `/v1/datasets/crash/samples/${sample.id}/content`);
    assert.equal(reply.status, 200, `content of ${sample.id}`);
    assert.ok(reply.body.equals(attempts.get(sample.sha256)!.png), `original of ${sample.id} is byte-identical`);
  });
  // …and its pixel record exactly its image.
  const batch = await call(url, ADMIN, 'POST', '/v1/datasets/crash/batches', { json: { size: listed.length, seed: 1 }, accept: 'application/x-safetensors', timeoutMs: 60_000 });
  assert.equal(batch.status, 200, batch.body.toString('utf8').slice(0, 300));
  const parsed = parseSafetensors(batch.body);
  const ids = JSON.parse(parsed.metadata.ids) as number[];
  const record = SIDE * SIDE * CHANNELS;
  for (const [i, id] of ids.entries()) {
    const attempt = attempts.get(byId.get(id)!.sha256)!;
    assert.ok(parsed.tensors.data.data.subarray(i * record, (i + 1) * record).equals(attempt.pixels), `pixels of sample ${id} (seed ${attempt.seed})`);
  }
}
