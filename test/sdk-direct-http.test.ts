/**
 * The SDK's DirectHttp (answers read straight into their buffer through net's onread) against
 * a raw TCP server that writes exact bytes: the framings an HTTP/1.1 answer may have, answers
 * split at every awkward place, keep-alive reuse, and raw.connections cut mid-answer.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DirectHttp } from '../packages/client/src/direct-http.js';
import { SensoryConnectionError } from '../packages/client/src/errors.js';
import { startRawHttpServer, type RawHttpServer } from './support/raw-http-server.js';

describe('DirectHttp', () => {
  let raw: RawHttpServer;

  before(async () => {
    raw = await startRawHttpServer();
  });

  after(() => raw.close());

  /** Writes `bytes` in pieces of `piece` bytes (the first 2,000 bytes; 8 KiB pieces after them unless larger), a turn of the event loop apart. */
  const dribble = (socket: net.Socket, bytes: Buffer, piece: number, end = false) => {
    let at = 0;
    const next = () => {
      if (socket.destroyed) return;
      if (at >= bytes.length) {
        if (end) socket.end();
        return;
      }
      const size = at < 2000 ? piece : Math.max(piece, 8192);
      socket.write(bytes.subarray(at, at + size));
      at += size;
      setImmediate(next);
    };
    next();
  };
  const call = (direct: DirectHttp, body?: Buffer) => direct.request({ method: 'POST', path: '/x', headers: { host: 'test' }, body, timeoutMs: 5000 });
  const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 13) & 255));

  it('a content-length body, however the answer is split, on one kept-alive connection', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    let seen = '';
    for (const piece of [1, 7, 100, 65_536, 1_000_000]) {
      raw.answer = (socket, request) => {
        seen = request;
        dribble(socket, Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nX-Thing: a\r\n\r\n`), payload]), piece);
      };
      const before = raw.connections;
      const reply = await call(direct, Buffer.from('{"a":1}'));
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['x-thing'], 'a');
      assert.ok(reply.body.equals(payload));
      assert.equal(reply.body.byteOffset, 0, 'a buffer of its own, so typed views align');
      if (piece > 1) assert.equal(raw.connections, before, 'the connection is reused');
    }
    assert.match(seen, /^POST \/x HTTP\/1\.1\r\nhost: test\r\ncontent-length: 7\r\n\r\n\{"a":1\}$/);
    direct.close();
  });

  it('a chunked body, split anywhere, with and without trailers', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    const chunked = (trailer: string) =>
      Buffer.concat([
        Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
        Buffer.from(`${(70_000).toString(16)};ext=1\r\n`),
        payload.subarray(0, 70_000),
        Buffer.from(`\r\n${(payload.length - 70_000).toString(16)}\r\n`),
        payload.subarray(70_000),
        Buffer.from(`\r\n0\r\n${trailer}\r\n`),
      ]);
    for (const [piece, trailer] of [[1, ''], [3, 'X-T: 1\r\n'], [70_001, ''], [1_000_000, 'X-T: 1\r\n']] as const) {
      raw.answer = (socket) => dribble(socket, chunked(trailer), piece);
      const reply = await call(direct);
      assert.ok(reply.body.equals(payload), `pieces of ${piece}`);
    }
    direct.close();
  });

  it('a body without a length ends with the connection', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    raw.answer = (socket) => dribble(socket, Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), payload]), 50_000, true);
    const reply = await call(direct);
    assert.ok(reply.body.equals(payload));
    direct.close();
  });

  it('an answer cut mid-body, or a head that is not HTTP, is a SensoryConnectionError', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    raw.answer = (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      socket.write(payload.subarray(0, 1000));
      setTimeout(() => socket.destroy(), 5);
    };
    await assert.rejects(call(direct), (error: unknown) => error instanceof SensoryConnectionError && /after 1000 bytes/.test(error.message));
    raw.answer = (socket) => socket.write('SSH-2.0-nope\r\n\r\n');
    await assert.rejects(call(direct), (error: unknown) => error instanceof SensoryConnectionError && error.code === 'SENSORY_CONNECTION_ABORTED');
    raw.answer = (socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef`);
    await assert.rejects(call(direct), (error: unknown) => error instanceof SensoryConnectionError);
    direct.close();
  });

  it('a kept-alive connection the server closed while idle fails as stale; the next call opens a new one', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    let last: net.Socket | undefined;
    raw.answer = (socket) => {
      last = socket;
      socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n');
    };
    assert.equal((await call(direct)).status, 204);
    last!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await call(direct)).status, 204, 'the closed idle socket was dropped from the pool');
    direct.close();
  });

  it('no answer within the timeout is ETIMEDOUT', async () => {
    const direct = new DirectHttp('127.0.0.1', raw.port, 4);
    raw.answer = () => undefined;
    await assert.rejects(direct.request({ method: 'GET', path: '/', headers: {}, timeoutMs: 50 }), (error: unknown) => error instanceof SensoryConnectionError && error.code === 'ETIMEDOUT');
    direct.close();
  });
});
