/**
 * Clients that hang up in the middle of a small batch, on real sockets against a listening app
 * (real SQLite and files): every pooled chunk of the cut responses comes back to the pool, and
 * the pool makes no new buffers for them after the first ones — so memory stays flat however
 * many responses are cut.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { chunkPoolStats } from '../../src/lib/chunk-pool.js';
import { KEYS, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';
import { sleep } from '../support/process.js';

const log = (line: string) => process.stderr.write(`# faults/cut-batches: ${line}\n`);

/** Asks for a batch and destroys the socket once `cutAfter` bytes of the answer have arrived; resolves with the bytes seen. */
function cutBatch(port: number, accept: string, size: number, cutAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let received = 0;
    const body = JSON.stringify({ size });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= cutAfter) socket.destroy();
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/datasets/cut/batches HTTP/1.1\r\nHost: x\r\napi-access-key: ${KEYS.read}\r\nAccept: ${accept}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
  });
}

/** Waits (bounded) until no pooled chunk is lent out: the server sees a cut socket a moment after the client. */
async function settled(): Promise<number> {
  for (let i = 0; i < 100 && chunkPoolStats().lentBytes > 0; i++) await sleep(50);
  return chunkPoolStats().lentBytes;
}

describe('clients cut off in the middle of a batch', () => {
  let t: TestApp;
  let port: number;
  const samples = 20;

  before(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
    // 200×200×3: 5 samples per chunk of JSON text, so a batch of 20 is 4 chunks (and ~10 MB).
    await seedDataset(t, 'cut', { width: 200, height: 200, channels: 3 }, samples, ['a', 'b']);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  for (const accept of ['application/json', 'application/x-safetensors']) {
    test(`${accept}: 40 responses cut at different points give every pooled chunk back and make no new buffers`, { timeout: 120_000 }, async () => {
      // One whole answer first: the pool's buffers for this shape exist from then on.
      const whole = await t.app.inject({ method: 'POST', url: '/v1/datasets/cut/batches', headers: { ...t.auth('read'), accept }, payload: { size: samples } });
      assert.equal(whole.statusCode, 200);
      const total = whole.rawPayload.length;
      assert.equal(await settled(), 0);
      const made = chunkPoolStats().madeBuffers;
      const rssBefore = process.memoryUsage().rss;
      for (let i = 0; i < 40; i++) {
        const seen = await cutBatch(port, accept, samples, Math.floor((total * (i + 1)) / 45));
        assert.ok(seen < total, `cut ${i} saw ${seen} of ${total} bytes`);
      }
      assert.equal(await settled(), 0, 'pooled bytes still lent out after every cut response closed');
      const madeAfter = chunkPoolStats().madeBuffers - made;
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      log(`${accept}: ${total} bytes a batch; 40 cut: ${madeAfter} pooled buffers made, RSS ${(rssGrowth / 1e6).toFixed(1)} MB more`);
      // Two cuts may overlap a new request by a moment (the server sees a close after the client),
      // so a couple more buffers may be made; one per cut response would be a leak.
      assert.ok(madeAfter <= 4, `${madeAfter} pooled buffers made for 40 cut responses`);
      const after = await t.app.inject({ method: 'POST', url: '/v1/datasets/cut/batches', headers: { ...t.auth('read'), accept }, payload: { size: samples, seed: 7 } });
      assert.equal(after.statusCode, 200);
      // The reused chunks make whole answers after the cuts.
      if (accept === 'application/json') assert.equal((after.json() as { data: unknown[] }).data.length, samples);
      else assert.equal(parseSafetensors(after.rawPayload).tensors.data.data.length, samples * 200 * 200 * 3);
    });
  }
});
