/**
 * Slow and greedy clients on real sockets against a listening app (real SQLite and files): headers
 * or a body sent a byte at a time, a response read by nobody, an idle keep-alive connection, and
 * more connections from one address than the cap. Each is cut after its documented time with an
 * answer in Sensory's error shape where the socket still takes one.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { makePng, removeDir, startTestApp, type TestApp, KEYS } from '../support/harness.js';
import { sleep } from '../support/process.js';

const log = (line: string) => process.stderr.write(`# faults/slow-clients: ${line}\n`);

interface Exchange {
  /** Everything the server sent before it closed. */
  readonly received: Buffer;
  /** Milliseconds from connecting to the server's close. */
  readonly closedAfterMs: number;
}

/** Opens a socket, runs `drive` on it, and resolves when the server closes it (or after `limitMs`). */
function exchange(port: number, drive: (socket: Socket) => Promise<void> | void, limitMs: number, read = true): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const chunks: Buffer[] = [];
    const start = Date.now();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(limit);
      resolve({ received: Buffer.concat(chunks), closedAfterMs: Date.now() - start });
    };
    const limit = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open past ${limitMs} ms`));
    }, limitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.connect(port, '127.0.0.1', () => {
      if (!read) socket.pause();
      Promise.resolve(drive(socket)).catch(() => undefined);
    });
  });
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
async function drip(socket: Socket, text: string, everyMs: number): Promise<void> {
  for (const byte of Buffer.from(text)) {
    if (socket.destroyed || !socket.writable) return;
    socket.write(Buffer.from([byte]));
    await sleep(everyMs);
  }
}

function statusOf(received: Buffer): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(received.toString('latin1'))?.[1] ?? 0);
}

function errorCodeOf(received: Buffer): string | undefined {
  const text = received.toString('utf8');
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  try {
    return JSON.parse(body).error?.code;
  } catch {
    return undefined;
  }
}

const HEADERS_MS = 1500;
const REQUEST_MS = 3000;
const RESPONSE_MS = 3000;
const KEEP_ALIVE_MS = 1000;
/** Node checks header and request deadlines once a second; allow that plus a loaded machine. */
const SLACK_MS = 2500;

describe('slow clients are cut after their documented times', () => {
  let t: TestApp;
  let port: number;

  before(async () => {
    t = await startTestApp({
      SENSORY_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      SENSORY_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
      SENSORY_RESPONSE_TIMEOUT_MS: String(RESPONSE_MS),
      SENSORY_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
      SENSORY_MAX_SAMPLE_BYTES: String(1024 * 1024),
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  test('headers sent a byte at a time: 408 SENSORY_ERR_REQUEST_TIMEOUT and closed after SENSORY_HEADERS_TIMEOUT_MS', { timeout: 20_000 }, async () => {
    const result = await exchange(port, (socket) => drip(socket, `GET /v1/datasets HTTP/1.1\r\nHost: x\r\napi-access-key: ${KEYS.admin}\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`, 100), HEADERS_MS + SLACK_MS + 2000);
    log(`slow headers closed after ${result.closedAfterMs} ms`);
    assert.equal(statusOf(result.received), 408, result.received.toString());
    assert.equal(errorCodeOf(result.received), 'SENSORY_ERR_REQUEST_TIMEOUT');
    assert.ok(result.closedAfterMs < HEADERS_MS + SLACK_MS, `closed after ${result.closedAfterMs} ms`);
  });

  test('a body sent a byte at a time: cut after SENSORY_REQUEST_TIMEOUT_MS, nothing stored', { timeout: 20_000 }, async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/datasets/slow', headers: t.auth(), payload: { width: 4, height: 4, channels: 1 } });
    const head = `POST /v1/datasets/slow/samples?category=a HTTP/1.1\r\nHost: x\r\napi-access-key: ${KEYS.admin}\r\nContent-Type: image/png\r\nContent-Length: 50000\r\n\r\n`;
    const result = await exchange(port, async (socket) => {
      socket.write(head);
      await drip(socket, 'x'.repeat(50_000), 50);
    }, REQUEST_MS + SLACK_MS + 2000);
    log(`slow body closed after ${result.closedAfterMs} ms: ${result.received.toString('utf8').split('\r\n')[0]}`);
    assert.ok(result.closedAfterMs < REQUEST_MS + SLACK_MS, `closed after ${result.closedAfterMs} ms`);
    if (result.received.length > 0) assert.equal(statusOf(result.received), 408, result.received.toString());
    const dataset = await t.app.inject({ method: 'GET', url: '/v1/datasets/slow', headers: t.auth() });
    assert.equal(dataset.json().sampleCount, 0);
  });

  test('a response nobody reads: the connection is closed after SENSORY_RESPONSE_TIMEOUT_MS', { timeout: 60_000 }, async () => {
    const side = 256;
    await t.app.inject({ method: 'PUT', url: '/v1/datasets/big', headers: t.auth(), payload: { width: side, height: side, channels: 3 } });
    for (let seed = 0; seed < 24; seed++) {
      const reply = await t.app.inject({ method: 'POST', url: '/v1/datasets/big/samples?category=a', headers: { ...t.auth(), 'content-type': 'image/png' }, payload: await makePng(side, side, 3, seed) });
      assert.equal(reply.statusCode, 201, reply.body);
    }
    const body = JSON.stringify({ size: 24 });
    const request = `POST /v1/datasets/big/batches HTTP/1.1\r\nHost: x\r\napi-access-key: ${KEYS.admin}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // About 24 × 196,608 values as JSON numbers (~15 MB): more than loopback's socket buffers hold.
    // A paused socket does not see the server's close: read nothing until the deadline has
    // passed, then read what was buffered and expect the end of a cut (unfinished) response.
    const result = await exchange(port, async (socket) => {
      socket.write(request);
      await sleep(RESPONSE_MS + SLACK_MS);
      socket.resume();
    }, RESPONSE_MS + SLACK_MS + 10_000, false);
    const text = result.received.toString('latin1');
    log(`unread response: ${result.received.length} bytes, closed after ${result.closedAfterMs} ms`);
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.ok(!text.endsWith('\r\n0\r\n\r\n') && !text.endsWith(']}'), 'the response was cut, not finished');
    assert.ok(result.closedAfterMs < RESPONSE_MS + SLACK_MS + 5000, `closed after ${result.closedAfterMs} ms`);
  });

  test('an idle keep-alive connection is closed after SENSORY_KEEP_ALIVE_TIMEOUT_MS', { timeout: 20_000 }, async () => {
    const result = await exchange(port, (socket) => void socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n'), KEEP_ALIVE_MS + SLACK_MS + 5000);
    log(`idle keep-alive closed after ${result.closedAfterMs} ms`);
    assert.equal(statusOf(result.received), 200);
    assert.ok(result.closedAfterMs >= KEEP_ALIVE_MS - 100 && result.closedAfterMs < KEEP_ALIVE_MS + SLACK_MS, `closed after ${result.closedAfterMs} ms`);
  });
});

describe('connections per client address are capped', () => {
  let t: TestApp;
  let port: number;
  const CAP = 4;

  before(async () => {
    t = await startTestApp({ SENSORY_MAX_CONNECTIONS_PER_IP: String(CAP), SENSORY_KEEP_ALIVE_TIMEOUT_MS: '60000' });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  /** A keep-alive connection that has had one answer; resolves with the socket and that answer. */
  function held(): Promise<{ socket: Socket; answer: string }> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      socket.once('error', reject);
      socket.once('data', (chunk: Buffer) => resolve({ socket, answer: chunk.toString('utf8') }));
      socket.connect(port, '127.0.0.1', () => socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n'));
    });
  }

  test(`connection ${CAP + 1} from one address: 429 SENSORY_ERR_TOO_MANY_CONNECTIONS and closed; a slot freed is usable again`, { timeout: 20_000 }, async () => {
    const open = [];
    for (let i = 0; i < CAP; i++) open.push(await held());
    for (const { answer } of open) assert.match(answer, /^HTTP\/1\.1 200/);
    const refused = await exchange(port, (socket) => void socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n'), 5000);
    assert.equal(statusOf(refused.received), 429, refused.received.toString());
    assert.equal(errorCodeOf(refused.received), 'SENSORY_ERR_TOO_MANY_CONNECTIONS');
    open.pop()!.socket.destroy();
    await sleep(200);
    const again = await held();
    assert.match(again.answer, /^HTTP\/1\.1 200/);
    for (const { socket } of [...open, again]) socket.destroy();
  });
});
