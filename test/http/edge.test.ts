/**
 * The edge of the HTTP service: router and parser errors in Sensory's error shape, a key in the
 * URL refused and never logged, and the security headers (no CORS) on the page and the API.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/app.js';
import { redactUrl, requestSerializer } from '../../src/http/log-redaction.js';
import { openServeRuntime, type ServeRuntime } from '../../src/runtime/serve.runtime.js';
import { KEYS, removeDir } from '../support/harness.js';
import { tempDir } from '../support/process.js';
import type { FastifyInstance } from 'fastify';

/** Sends raw bytes and returns everything the server answered before closing. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', () => undefined);
    socket.setTimeout(10_000, () => reject(new Error('no answer')));
    socket.connect(port, '127.0.0.1', () => socket.write(text));
  });
}

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

describe('the HTTP edge', () => {
  let app: FastifyInstance;
  let runtime: ServeRuntime;
  let dataDir: string;
  let port: number;
  const logged: string[] = [];

  before(async () => {
    dataDir = tempDir('sensory-edge-');
    const config = loadConfig({ SENSORY_DATA_DIR: dataDir, SENSORY_API_KEYS: `${KEYS.admin}:admin` });
    runtime = await openServeRuntime(config);
    const sink = new Writable({ write: (chunk, _encoding, done) => (logged.push(chunk.toString()), done()) });
    app = await buildApp(runtime.deps, pino({ level: 'info', serializers: { req: requestSerializer } }, sink));
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });

  after(async () => {
    await app.close();
    await runtime.close();
    removeDir(dataDir);
  });

  it('a key in the query string is refused (400) and never logged', async () => {
    for (const url of [`/v1/datasets?api_key=${KEYS.admin}`, `/v1/datasets?api-access-key=${KEYS.admin}`, `/health/ready?token=${KEYS.admin}`]) {
      const reply = await app.inject({ method: 'GET', url, headers: { 'api-access-key': KEYS.admin } });
      assert.equal(reply.statusCode, 400, url);
      assert.equal(reply.json().error.code, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(reply.json().error.message, /not be sent in the URL/);
    }
    await fetch(`http://127.0.0.1:${port}/v1/datasets?category=a&key=${KEYS.admin}`);
    assert.ok(logged.some((line) => line.includes('[REDACTED]')), 'the request was logged, redacted');
    assert.ok(!logged.some((line) => line.includes(KEYS.admin)), 'the key never reached the log');
    assert.equal(redactUrl('/v1/x?category=a&apiKey=s3cret&limit=2'), '/v1/x?category=a&apiKey=[REDACTED]&limit=2');
    assert.equal(redactUrl('/v1/x?category=a'), '/v1/x?category=a');
  });

  it('the access line and what a request logs itself carry its id, on one level and format; x-request-id answers it', async () => {
    const headers = { 'api-access-key': KEYS.admin, 'content-type': 'application/json' };
    const put = (width: number, id: string) =>
      fetch(`http://127.0.0.1:${port}/v1/datasets/logged-ids`, { method: 'PUT', headers: { ...headers, 'x-request-id': id }, body: JSON.stringify({ width, height: 4, channels: 3 }) });
    const created = await put(4, 'edge-created-1');
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('x-request-id'), 'edge-created-1');
    // A shape conflict carries details: the error handler logs them through request.log.
    const refused = await put(5, 'edge-refused-2');
    assert.equal(refused.status, 409);
    assert.equal(refused.headers.get('x-request-id'), 'edge-refused-2');
    const lines = () => logged.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((line) => JSON.parse(line) as Record<string, unknown>);
    const access = (id: string) => lines().find((line) => line.reqId === id && line.status !== undefined);
    for (let i = 0; i < 50 && !access('edge-refused-2'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      { ...access('edge-created-1'), time: 0, pid: 0, hostname: '', ms: 0, bytes: 0 },
      { level: 30, time: 0, pid: 0, hostname: '', reqId: 'edge-created-1', method: 'PUT', route: '/v1/datasets/:name', url: '/v1/datasets/logged-ids', status: 201, ms: 0, bytes: 0, key: 'key 1', msg: 'PUT /v1/datasets/:name 201' },
    );
    assert.equal(access('edge-refused-2')?.code, 'SENSORY_ERR_DATASET_SHAPE_CONFLICT');
    const detail = lines().find((line) => line.reqId === 'edge-refused-2' && line.details !== undefined);
    assert.ok(detail, 'the details of the refusal were logged with the request id');
    assert.equal(detail.level, 30);
    assert.equal(detail.code, 'SENSORY_ERR_DATASET_SHAPE_CONFLICT');
  });

  it('router errors come back in the error shape: malformed URL 400, over-long parameter 414, unknown route and method 404', async () => {
    const cases: [string, string, number, string][] = [
      ['GET', '/v1/datasets/%E0%A4%A', 400, 'SENSORY_ERR_BAD_REQUEST'],
      ['GET', `/v1/datasets/${'a'.repeat(120)}`, 414, 'SENSORY_ERR_URL_TOO_LONG'],
      ['GET', '/v1/nothing-here', 404, 'SENSORY_ERR_NOT_FOUND'],
      ['PATCH', '/v1/datasets', 404, 'SENSORY_ERR_NOT_FOUND'],
    ];
    for (const [method, url, status, code] of cases) {
      const response = await fetch(`http://127.0.0.1:${port}${url}`, { method });
      const body = await response.json();
      assert.equal(response.status, status, `${method} ${url}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, code, `${method} ${url}`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', `${method} ${url}`);
    }
  });

  it('broken HTTP is 400 and oversized headers 431, in the error shape', async () => {
    const broken = await raw(port, 'GET /v1/datasets HTTP/1.1\r\nHost x\r\n\r\n');
    assert.match(broken, /^HTTP\/1\.1 400/);
    assert.equal(bodyOf(broken).error.code, 'SENSORY_ERR_BAD_REQUEST');
    const huge = await raw(port, `GET /v1/datasets HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431/);
    assert.equal(bodyOf(huge).error.code, 'SENSORY_ERR_HEADERS_TOO_LARGE');
  });

  it('security headers on the API and the page; no CORS headers, not even for a preflight', async () => {
    const api = await app.inject({ method: 'GET', url: '/v1/datasets', headers: { 'api-access-key': KEYS.admin, origin: 'https://elsewhere.example' } });
    assert.equal(api.statusCode, 200);
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
    assert.equal(api.headers['referrer-policy'], 'no-referrer');
    assert.equal(api.headers['x-frame-options'], 'DENY');
    assert.match(String(api.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/);
    assert.equal(api.headers['access-control-allow-origin'], undefined);
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/, 'the page keeps its own CSP');
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/datasets',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    assert.equal(preflight.json().error.code, 'SENSORY_ERR_NOT_FOUND');
  });
});
