/**
 * SensoryClient.batch() and poll() over plain http (DirectHttp: answers read straight into their
 * buffer) against a raw TCP server writing exact safetensors answers: answers split into tiny
 * TCP writes or exactly at the safetensors header's edges, a connection cut mid-body, keep-alive
 * reuse across reads, a 30 MB batch, and `{reuse: true}` (the client's own receive buffer).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SensoryApiError, SensoryClient, SensoryConnectionError } from '@sensory/client';
import { safetensorsLayout } from '../src/formats/safetensors.js';
import { startRawHttpServer, type RawHttpServer } from './support/raw-http-server.js';

interface Served {
  readonly bytes: Buffer;
  /** Offset of the tensor bytes (after the length prefix and the JSON header). */
  readonly dataAt: number;
  readonly pixels: Buffer;
  readonly labels: Int32Array;
  readonly ids: number[];
}

/** A batch answer as the service writes it: `count` samples of side×side×3 uint8, int32 labels. */
function safetensorsBatch(count: number, side: number, salt: number): Served {
  const ids = Array.from({ length: count }, (_, i) => 1000 + salt * 7 + i * 3);
  const { head, totalBytes } = safetensorsLayout(
    [
      { name: 'data', dtype: 'U8', shape: [count, side, side, 3] },
      { name: 'labels', dtype: 'I32', shape: [count] },
    ],
    { ids: JSON.stringify(ids), revision: '4', seed: String(salt), categories: JSON.stringify({ a: 0, b: 1, c: 2 }), dataset: 'd', layout: 'nhwc' },
  );
  const bytes = Buffer.alloc(totalBytes);
  head.copy(bytes);
  const pixels = bytes.subarray(head.length, head.length + count * side * side * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + salt * 17 + (i >>> 12)) & 255;
  const labels = new Int32Array(count).map((_, i) => (i + salt) % 3);
  Buffer.from(labels.buffer).copy(bytes, head.length + pixels.length);
  return { bytes, dataAt: head.length, pixels: Buffer.from(pixels), labels, ids };
}

function httpAnswer(body: Buffer, status = '200 OK', type = 'application/x-safetensors'): Buffer {
  return Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
}

/** Writes the pieces of `bytes` cut at `cuts` (ascending offsets), a turn of the event loop apart. */
function writeCut(socket: net.Socket, bytes: Buffer, cuts: readonly number[]): void {
  const edges = [0, ...cuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length];
  let at = 0;
  const next = () => {
    if (socket.destroyed || at + 1 >= edges.length) return;
    socket.write(bytes.subarray(edges[at], edges[at + 1]));
    at++;
    setImmediate(next);
  };
  next();
}

function assertBatch(batch: Awaited<ReturnType<SensoryClient['batch']>>, served: Served, count: number, side: number): void {
  assert.equal(batch.dtype, 'uint8');
  assert.deepEqual(batch.shape, [count, side, side, 3]);
  assert.deepEqual(batch.ids, served.ids);
  assert.ok(batch.labels instanceof Int32Array);
  assert.deepEqual(Array.from(batch.labels), Array.from(served.labels));
  assert.ok(Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.length).equals(served.pixels), 'the pixels as sent');
  assert.deepEqual(batch.categories, { a: 0, b: 1, c: 2 });
}

describe('SensoryClient reading batches over plain http', () => {
  let raw: RawHttpServer;

  before(async () => {
    raw = await startRawHttpServer();
  });

  beforeEach(() => raw.cutAll());

  after(() => raw.close());

  it('an answer split into tiny TCP writes, or exactly at the edges of the safetensors header, decodes the same', async () => {
    const client = new SensoryClient({ url: raw.url, key: 'k', retries: 0 });
    const served = safetensorsBatch(20, 8, 1);
    const whole = httpAnswer(served.bytes);
    const headEnd = whole.length - served.bytes.length;
    const splits: Record<string, number[]> = {
      'one byte at a time': Array.from({ length: whole.length - 1 }, (_, i) => i + 1),
      'pieces of 7 bytes': Array.from({ length: Math.ceil(whole.length / 7) }, (_, i) => (i + 1) * 7),
      'after the HTTP head, inside the 8-byte length prefix, after it, before the tensors': [headEnd, headEnd + 3, headEnd + 8, headEnd + served.dataAt],
      'inside the JSON header': [headEnd + 9, headEnd + Math.floor(served.dataAt / 2), headEnd + served.dataAt - 1],
      'just after the tensors begin, and before the last byte': [headEnd + served.dataAt + 1, whole.length - 1],
    };
    try {
      for (const reuse of [false, true]) {
        for (const [name, cuts] of Object.entries(splits)) {
          raw.answer = (socket) => writeCut(socket, whole, cuts);
          const batch = await client.batch('d', { size: 20, seed: 1 }, { reuse });
          assertBatch(batch, served, 20, 8);
          assert.equal(batch.data.byteOffset % 8, 0, `${name}: aligned views`);
        }
      }
    } finally {
      client.close();
    }
  });

  it('a connection cut mid-body is a SensoryConnectionError (no hang, retried when allowed), and the next read works', async () => {
    const client = new SensoryClient({ url: raw.url, key: 'k', retries: 0 });
    const served = safetensorsBatch(50, 16, 2);
    const whole = httpAnswer(served.bytes);
    try {
      for (const reuse of [false, true]) {
        raw.answer = (socket) => {
          socket.write(whole.subarray(0, 5000));
          setTimeout(() => socket.destroy(), 5);
        };
        await assert.rejects(client.batch('d', { size: 50 }, { reuse }), (error: unknown) => error instanceof SensoryConnectionError && /closed after \d+ bytes/.test(error.message));
        raw.answer = (socket) => socket.write(whole);
        assertBatch(await client.batch('d', { size: 50 }, { reuse }), served, 50, 16);
      }
    } finally {
      client.close();
    }
    // Retried: the second attempt is answered whole.
    const retrying = new SensoryClient({ url: raw.url, key: 'k', retries: 2, retryDelayMs: 1 });
    let attempts = 0;
    raw.answer = (socket) => {
      if (++attempts === 1) {
        socket.write(whole.subarray(0, whole.length - 10));
        setTimeout(() => socket.destroy(), 5);
      } else {
        socket.write(whole);
      }
    };
    try {
      assertBatch(await retrying.batch('d', { size: 50 }, { reuse: true }), served, 50, 16);
      assert.equal(attempts, 2);
    } finally {
      retrying.close();
    }
  });

  it('reads on one kept-alive connection; {reuse: true} reads into the same memory each time, other reads into their own', async () => {
    const client = new SensoryClient({ url: raw.url, key: 'k', retries: 0 });
    const first = safetensorsBatch(30, 10, 3);
    const second = safetensorsBatch(30, 10, 4);
    try {
      raw.answer = (socket) => socket.write(httpAnswer(first.bytes));
      const before = raw.connections;
      const a = await client.batch('d', { size: 30 }, { reuse: true });
      assertBatch(a, first, 30, 10);
      raw.answer = (socket) => socket.write(httpAnswer(second.bytes));
      const b = await client.batch('d', { size: 30 }, { reuse: true });
      assertBatch(b, second, 30, 10);
      assert.equal(b.data.buffer, a.data.buffer, 'the same receive buffer');
      assert.deepEqual(Array.from(a.labels), Array.from(second.labels), 'the earlier batch was read over, as documented');
      const own = await client.batch('d', { size: 30 });
      assertBatch(own, second, 30, 10);
      assert.notEqual(own.data.buffer, b.data.buffer, 'without reuse, memory of its own');
      raw.answer = (socket) => socket.write(httpAnswer(first.bytes));
      assertBatch(await client.batch('d', { size: 30 }, { reuse: true }), first, 30, 10);
      assertBatch(own, second, 30, 10);
      assert.equal(raw.connections, before + 1, 'every read on one connection');
    } finally {
      client.close();
    }
  });

  it('an error answer never goes into the reused buffer; two reuse reads at once get separate memory', async () => {
    const client = new SensoryClient({ url: raw.url, key: 'k', retries: 0 });
    const first = safetensorsBatch(10, 6, 5);
    const second = safetensorsBatch(10, 6, 6);
    try {
      raw.answer = (socket) => socket.write(httpAnswer(first.bytes));
      const kept = await client.batch('d', { size: 10 }, { reuse: true });
      const refusal = Buffer.from(JSON.stringify({ error: { code: 'SENSORY_ERR_NOT_ENOUGH_SAMPLES', message: 'x'.repeat(first.bytes.length / 2), requestId: 'r1' } }));
      raw.answer = (socket) => socket.write(httpAnswer(refusal, '422 Unprocessable Entity', 'application/json'));
      await assert.rejects(client.batch('d', { size: 10 }, { reuse: true }), (error: unknown) => error instanceof SensoryApiError && error.status === 422 && error.code === 'SENSORY_ERR_NOT_ENOUGH_SAMPLES');
      assertBatch(kept, first, 10, 6);

      let served = 0;
      raw.answer = (socket) => writeCut(socket, httpAnswer(served++ % 2 === 0 ? first.bytes : second.bytes), [100, 1000, 2000]);
      const [x, y] = await Promise.all([client.batch('d', { size: 10 }, { reuse: true }), client.batch('d', { size: 10 }, { reuse: true })]);
      assert.notEqual(x.data.buffer, y.data.buffer);
      const [one, two] = x.ids[0] === first.ids[0] ? [x, y] : [y, x];
      assertBatch(one, first, 10, 6);
      assertBatch(two, second, 10, 6);
    } finally {
      client.close();
    }
  });

  it('a 30 MB batch (1,000 samples of 100×100×3), in the TCP pieces the kernel makes; the reused buffer grows to it and serves a smaller one after', async () => {
    const client = new SensoryClient({ url: raw.url, key: 'k', retries: 0 });
    const large = safetensorsBatch(1000, 100, 7);
    const small = safetensorsBatch(5, 100, 8);
    try {
      for (const reuse of [false, true]) {
        raw.answer = (socket) => socket.write(httpAnswer(small.bytes));
        const before = await client.batch('d', { size: 5 }, { reuse });
        assertBatch(before, small, 5, 100);
        raw.answer = (socket) => socket.write(httpAnswer(large.bytes));
        const batch = await client.batch('d', { size: 1000 }, { reuse });
        assertBatch(batch, large, 1000, 100);
        assert.equal(batch.data.length, 30_000_000);
        raw.answer = (socket) => socket.write(httpAnswer(small.bytes));
        const after = await client.batch('d', { size: 5 }, { reuse });
        assertBatch(after, small, 5, 100);
        if (reuse) assert.equal(after.data.buffer, batch.data.buffer, 'the grown buffer is kept');
      }
    } finally {
      client.close();
    }
  });
});
