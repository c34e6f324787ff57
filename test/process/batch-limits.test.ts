/**
 * Small batches at their limits, against a real `sensory serve`: a batch of exactly
 * SENSORY_MAX_BATCH_SAMPLES in every form (many chunks each), and clients cutting responses off
 * midway: the serve process's memory stays flat over 1,000 cut responses, and it answers whole
 * batches correctly after them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { SensoryClient } from '@sensory/client';
import { makePng, patternPixels } from '../support/harness.js';
import { ensureBuilt, killAll, removeTempDirs, startServer, stop, tempDir, type Server } from '../support/process.js';
import { TRIM_AFTER_MS } from '../../src/lib/chunk-pool.js';

const KEY = 'limits-admin-key-0123456789';
const MAX = 400;
const SHAPE = { width: 96, height: 96, channels: 3 } as const;
const RECORD = SHAPE.width * SHAPE.height * SHAPE.channels;

/** Resident memory of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

/**
 * POSTs a batch over node:http and returns the whole body. A connection of its own each time:
 * checking a batch can take longer than the server's keep-alive timeout, and a request sent on
 * a kept-alive socket just as the server closes it would fail with a hang-up.
 */
function fetchBatch(url: string, body: Record<string, unknown>, accept: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const request = http.request(`${url}/v1/datasets/big/batches`, { method: 'POST', agent: false, headers: { 'api-access-key': KEY, accept, 'content-type': 'application/json', 'content-length': payload.length } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });
}

/** Asks for a batch on a raw socket, reads `keep` bytes of the answer, then drops the connection. */
function cutBatch(port: number, body: Record<string, unknown>, accept: string, keep: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/datasets/big/batches HTTP/1.1\r\nhost: x\r\napi-access-key: ${KEY}\r\naccept: ${accept}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n${payload}`);
    });
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= keep) socket.destroy();
    });
    socket.on('close', () => (got >= keep ? resolve() : reject(new Error(`only ${got} bytes came before the close`))));
    socket.on('error', () => undefined);
  });
}

describe('small batches at their limits (real serve)', () => {
  let server: Server;
  let port: number;
  const seedOf = new Map<number, number>();

  before(async () => {
    ensureBuilt();
    server = await startServer(tempDir('sensory-limits-'), { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_MAX_BATCH_SAMPLES: String(MAX), SENSORY_LOG_LEVEL: 'warn' });
    port = Number(new URL(server.url).port);
    const sdk = new SensoryClient({ url: server.url, key: KEY });
    await sdk.datasets.put('big', SHAPE);
    const seeds = Array.from({ length: MAX }, (_, i) => i + 1);
    for (let at = 0; at < seeds.length; at += 8) {
      await Promise.all(
        seeds.slice(at, at + 8).map(async (seed) => {
          const sample = await sdk.samples.upload('big', await makePng(SHAPE.width, SHAPE.height, SHAPE.channels, seed), { category: `c${seed % 5}` });
          seedOf.set(sample.id, seed);
        }),
      );
    }
    sdk.close();
  });

  after(async () => {
    if (server) await stop(server);
    await killAll();
    removeTempDirs();
  });

  test(`a batch of exactly SENSORY_MAX_BATCH_SAMPLES (${MAX}), in safetensors and JSON, every sample's pixels whole; one more is a 413`, async () => {
    const st = await fetchBatch(server.url, { size: MAX, seed: 5 }, 'application/x-safetensors');
    assert.equal(st.status, 200, st.body.subarray(0, 300).toString());
    assert.equal(Number(st.headers['content-length']), st.body.length);
    const file = parseSafetensors(st.body);
    const ids = JSON.parse(file.metadata.ids) as number[];
    assert.equal(new Set(ids).size, MAX, 'every sample once');
    ids.forEach((id, i) => assert.ok(file.tensors.data.data.subarray(i * RECORD, (i + 1) * RECORD).equals(patternPixels(SHAPE.width, SHAPE.height, SHAPE.channels, seedOf.get(id)!)), `pixels of sample ${id}`));

    const json = await fetchBatch(server.url, { size: MAX, seed: 5 }, 'application/json');
    assert.equal(json.status, 200);
    const parsed = JSON.parse(json.body.toString('utf8')) as { ids: number[]; data: number[][][][] };
    assert.deepEqual(parsed.ids, ids);
    let at = 0;
    for (const sample of parsed.data) for (const row of sample) for (const pixel of row) for (const value of pixel) assert.equal(value, file.tensors.data.data[at++]);
    assert.equal(at, MAX * RECORD);

    const over = await fetchBatch(server.url, { size: MAX + 1 }, 'application/x-safetensors');
    assert.equal(over.status, 413);
    assert.equal(JSON.parse(over.body.toString()).error.code, 'SENSORY_ERR_BATCH_TOO_LARGE');
  });

  test(`a batch of ${MAX} with noise 1, float32, channels first and int64 labels: the noise-1 uint8 batch converted`, async () => {
    const u8 = parseSafetensors((await fetchBatch(server.url, { size: MAX, seed: 8, noise: 1 }, 'application/x-safetensors')).body);
    const torch = parseSafetensors((await fetchBatch(server.url, { size: MAX, seed: 8, noise: 1, dtype: 'float32', layout: 'nchw', labelDtype: 'int64' }, 'application/x-safetensors')).body);
    assert.deepEqual(torch.tensors.data.shape, [MAX, 3, SHAPE.height, SHAPE.width]);
    assert.equal(torch.tensors.labels.dtype, 'I64');
    const floats = new Float32Array(Uint8Array.from(torch.tensors.data.data).buffer);
    const bytes = u8.tensors.data.data;
    const plane = SHAPE.width * SHAPE.height;
    for (let n = 0; n < MAX; n += 37) {
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < plane; p += 11) assert.equal(floats[n * RECORD + c * plane + p], Math.fround(bytes[n * RECORD + p * 3 + c] / 255));
      }
    }
  });

  test('1,000 responses cut off midway: the serve process stays flat in memory and answers whole batches after', async () => {
    const pid = server.child.pid!;
    const cut = (i: number) =>
      i % 2
        ? cutBatch(port, { size: MAX, seed: i, noise: i % 4 === 1 ? 1 : 0 }, 'application/x-safetensors', 64 * 1024 + ((i * 7919) % (4 << 20)))
        : cutBatch(port, { size: MAX, seed: i }, 'application/json', 1024 + ((i * 7919) % (8 << 20)));
    // Warm-up: the pool of chunk buffers and the heap reach their working size. Each reading is
    // taken once the pool has trimmed what a burst left idle beyond what it keeps for good
    // (TRIM_AFTER_MS after the last take), so both compare the same steady state.
    const settle = () => new Promise((resolve) => setTimeout(resolve, TRIM_AFTER_MS + 500));
    for (let i = 0; i < 100; i++) await cut(i);
    await settle();
    const before = rssOf(pid);
    let peak = before;
    for (let i = 100; i < 1100; i++) {
      await cut(i);
      if (i % 50 === 0) peak = Math.max(peak, rssOf(pid));
    }
    await settle();
    const afterCuts = rssOf(pid);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    process.stdout.write(`# serve RSS: ${mib(before)} MiB after the warm-up, ${mib(afterCuts)} MiB after 1,000 cut responses (peak ${mib(peak)} MiB)\n`);
    // A leak of 48 KiB or more per response crosses this line. The chunk pool's idle buffers stay
    // under it: the pool may keep a burst's buffers (up to 256 MiB) until TRIM_AFTER_MS after the
    // last take, and what it trims stays resident until the collector frees it.
    assert.ok(afterCuts - before < 48 * 2 ** 20, `RSS grew from ${mib(before)} to ${mib(afterCuts)} MiB over 1,000 cut responses`);

    const whole = await fetchBatch(server.url, { size: MAX, seed: 5 }, 'application/x-safetensors');
    const file = parseSafetensors(whole.body);
    const ids = JSON.parse(file.metadata.ids) as number[];
    ids.forEach((id, i) => assert.ok(file.tensors.data.data.subarray(i * RECORD, (i + 1) * RECORD).equals(patternPixels(SHAPE.width, SHAPE.height, SHAPE.channels, seedOf.get(id)!)), `pixels of sample ${id} after the cuts`));
  });
});
