/**
 * Bulk uploads against a real `sensory serve` over real sockets: a 120 MB body streamed in
 * chunks keeps the service's memory flat, and a connection cut in the middle of a body keeps
 * exactly the items committed before the cut — each whole — while the same body sent again
 * stores the rest and nothing twice.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { call, ensureBuilt, killAll, removeTempDirs, sha256, startServer, stop, tempDir } from '../support/process.js';
import { tarOf } from '../support/tar.js';

const ADMIN = 'bulk-stream-admin-key-0123456789';
const SIDE = 100;

/** The base PNG with a tEXt chunk carrying `n` before IEND: a distinct, valid PNG per n, no encode needed. */
function variant(base: Buffer, n: number): Buffer {
  const text = Buffer.from(`Comment\0${n}`, 'latin1');
  const chunk = Buffer.alloc(12 + text.length);
  chunk.writeUInt32BE(text.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  text.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + text.length)), 8 + text.length);
  return Buffer.concat([base.subarray(0, base.length - 12), chunk, base.subarray(base.length - 12)]);
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** A tar of `count` members, made and sent a member at a time (never whole in memory). */
async function* streamedTar(base: Buffer, count: number, from = 0, onMember?: (sent: number) => void): AsyncGenerator<Buffer> {
  for (let i = from; i < from + count; i++) {
    onMember?.(i - from);
    const whole = await tarOf([{ name: `c${i % 4}/${i}.png`, data: variant(base, i) }]);
    yield whole.subarray(0, whole.length - 1024); // each without the end-of-archive blocks…
  }
  yield Buffer.alloc(1024); // …which go once, at the end
}

function postStream(url: string, body: AsyncIterable<Buffer>, cutAfterBytes?: number): Promise<{ status: number; body: Buffer } | 'cut'> {
  return new Promise((resolve, reject) => {
    const target = new URL('/v1/datasets/stream/samples/bulk', url);
    const request = http.request(target, { method: 'POST', headers: { 'api-access-key': ADMIN, 'content-type': 'application/x-tar' } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    request.on('error', (error) => (cutAfterBytes !== undefined ? resolve('cut') : reject(error)));
    void (async () => {
      let sent = 0;
      for await (const chunk of body) {
        if (!request.write(chunk)) await new Promise((ok) => request.once('drain', ok));
        sent += chunk.length;
        if (cutAfterBytes !== undefined && sent >= cutAfterBytes) {
          request.destroy();
          return;
        }
      }
      request.end();
    })().catch(reject);
  });
}

describe('bulk uploads over real sockets', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('a 120 MB body keeps memory flat; a cut connection keeps exactly what was committed, whole', async (t) => {
    const dataDir = tempDir('sensory-bulk-stream-');
    const server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_LOG_LEVEL: 'warn', SENSORY_MAX_BATCH_SAMPLES: '100000' });
    assert.equal((await call(server.url, ADMIN, 'PUT', '/v1/datasets/stream', { json: { width: SIDE, height: SIDE, channels: 3 } })).status, 201);
    const noise = Buffer.alloc(SIDE * SIDE * 3);
    let state = 1;
    for (let i = 0; i < noise.length; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      noise[i] = state >>> 24;
    }
    const base = await sharp(noise, { raw: { width: SIDE, height: SIDE, channels: 3 } }).png().toBuffer();
    const count = Math.ceil(120e6 / base.length);

    const pid = server.child.pid!;
    const rssBefore = rssBytes(pid);
    let peak = rssBefore;
    // The peak by the time a third of the body has been sent: serve's working set (items in
    // flight, pools, the collector's headroom) is reached by then; flat means the other two
    // thirds add little to it, however long the body.
    let peakAtThird: number | undefined;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
    const atMember = (sent: number) => {
      if (peakAtThird === undefined && sent >= count / 3) peakAtThird = Math.max(peak, rssBytes(pid));
    };
    const reply = await postStream(server.url, streamedTar(base, count, 0, atMember));
    clearInterval(sampler);
    assert.ok(reply !== 'cut' && reply.status === 201, reply === 'cut' ? 'cut' : reply.body.toString().slice(0, 300));
    const result = JSON.parse(reply.body.toString());
    assert.deepEqual([result.items, result.stored], [count, count]);
    const grew = peak - rssBefore;
    const grewLate = peak - peakAtThird!;
    const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
    t.diagnostic(`${count} items, ${mb(count * base.length)} MB streamed; serve RSS ${mb(rssBefore)} → ${mb(peakAtThird!)} at a third → peak ${mb(peak)} MB`);
    assert.ok(grewLate < 60e6, `serve grew by ${mb(grewLate)} MB while the last ${mb((count * base.length * 2) / 3)} MB streamed through it`);
    assert.ok(grew < 150e6, `serve grew by ${mb(grew)} MB while ${mb(count * base.length)} MB streamed through it`);

    // A body cut after 300 items' worth of bytes: what is visible is whole, the rest comes with a resend.
    const from = count;
    const cut = await postStream(server.url, streamedTar(base, 1000, from), 300 * (base.length + 600));
    assert.equal(cut, 'cut');
    // The items read before the cut are still committed after it (on a busy machine, for longer
    // than any fixed wait): the count is read once it has stayed the same for a second.
    const sampleCount = async () => (await call(server.url, ADMIN, 'GET', '/v1/datasets/stream')).json().sampleCount as number;
    let settled = await sampleCount();
    for (let same = 0; same < 4; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const now = await sampleCount();
      same = now === settled ? same + 1 : 0;
      settled = now;
    }
    const visible = settled - count;
    assert.ok(visible >= 0 && visible <= 300, `${visible} items of the cut body are visible`);
    const page = await call(server.url, ADMIN, 'GET', `/v1/datasets/stream/samples?limit=1000&cursor=${Buffer.from(`s${count}`).toString('base64url')}`);
    for (const sample of page.json().samples as { id: number; sha256: string }[]) {
      const content = await call(server.url, ADMIN, 'GET', `/v1/datasets/stream/samples/${sample.id}/content`);
      assert.equal(sha256(content.body), sample.sha256, `sample ${sample.id} of the cut body is whole`);
    }
    const resend = await postStream(server.url, streamedTar(base, 1000, from));
    assert.ok(resend !== 'cut' && resend.status === 201);
    const again = JSON.parse(resend.body.toString());
    assert.deepEqual([again.duplicates, again.stored], [visible, 1000 - visible]);
    assert.equal((await call(server.url, ADMIN, 'GET', '/v1/datasets/stream')).json().sampleCount, count + 1000);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  });
});
