/**
 * The log of real `sensory serve` and `sensory worker` processes, read from their stdout: one
 * access line per request (method, route, status, ms, bytes, the key's name and never the key,
 * the error code of a failure); a warning when the database or the broker stops answering and an
 * info line when it is back. The outages use private PostgreSQL and RabbitMQ servers
 * (test/support/private-servers.ts), never the shared ones.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { inCi } from '../support/broker.js';
import { makePng } from '../support/harness.js';
import { privateServersSkip, startPrivatePostgres, startPrivateRabbit, type PrivatePostgres, type PrivateRabbit } from '../support/private-servers.js';
import { call, ensureBuilt, killAll, removeTempDirs, sleep, startServer, startWorker, stop, tempDir, type Run } from '../support/process.js';

const ADMIN = 'logs-admin-key-0123456789';
const WRITER = 'logs-writer-key-0123456789';

/** The JSON lines a process wrote to stdout so far. */
function logLines(run: Run): any[] {
  return run
    .stdout()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** Waits (up to `ms`) for a log line matching `match`, and returns it. */
async function waitForLine(run: Run, match: (line: any) => boolean, what: string, ms = 30_000): Promise<any> {
  const deadline = performance.now() + ms;
  for (;;) {
    const found = logLines(run).find(match);
    if (found) return found;
    assert.ok(performance.now() < deadline, `no log line ${what} in:\n${run.stdout().slice(-3000)}`);
    await sleep(100);
  }
}

describe('logs of real processes', () => {
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('one access line per request, with route, status, ms, bytes, the key name and the error code; never the key', async () => {
    ensureBuilt();
    const server = await startServer(tempDir('sensory-logs-'), { SENSORY_API_KEYS: `${ADMIN}:admin;${WRITER}:write` });
    const requests: { id: string; expect: Record<string, unknown> }[] = [];
    const send = async (key: string | undefined, method: string, path: string, options = {}, expect: Record<string, unknown> = {}) => {
      const reply = await call(server.url, key, method, path, options);
      requests.push({ id: reply.headers.get('x-request-id')!, expect: { method, status: reply.status, ...expect } });
      return reply;
    };
    await send(undefined, 'GET', '/health/live', {}, { route: '/health/live', key: null });
    await send(ADMIN, 'PUT', '/v1/datasets/logged', { json: { width: 8, height: 8, channels: 3 } }, { route: '/v1/datasets/:name', key: 'key 1', status: 201 });
    const png = await makePng(8, 8, 3, 1);
    await send(WRITER, 'POST', '/v1/datasets/logged/samples?category=a', { bytes: png }, { route: '/v1/datasets/:name/samples', key: 'key 2', status: 201 });
    await send(WRITER, 'POST', '/v1/datasets/logged/samples?category=a', { bytes: Buffer.from('not an image') }, { key: 'key 2', status: 415, code: 'SENSORY_ERR_NOT_AN_IMAGE' });
    await send('wrong-key-0123456789', 'GET', '/v1/datasets', {}, { key: null, status: 401, code: 'SENSORY_ERR_UNAUTHORIZED' });
    await send(WRITER, 'DELETE', '/v1/datasets/logged', {}, { key: 'key 2', status: 403, code: 'SENSORY_ERR_FORBIDDEN' });
    await send(ADMIN, 'GET', '/v1/datasets/missing', {}, { route: '/v1/datasets/:name', status: 404, code: 'SENSORY_ERR_DATASET_NOT_FOUND' });
    await send(ADMIN, 'GET', '/no/such/route', {}, { route: null, status: 404, code: 'SENSORY_ERR_NOT_FOUND' });
    await send(ADMIN, 'POST', '/v1/datasets/logged/batches', { json: { size: 1, split: 'validation' } }, { status: 400, code: 'SENSORY_ERR_BAD_REQUEST' });
    const batch = await send(ADMIN, 'POST', '/v1/datasets/logged/batches', { json: { size: 1 } }, { route: '/v1/datasets/:name/batches', status: 200 });

    // Lines are written off the request path, flushed every second.
    const last = requests[requests.length - 1].id;
    await waitForLine(server, (line) => line.reqId === last && line.status !== undefined, `for request ${last}`, 10_000);
    const lines = logLines(server);
    for (const { id, expect } of requests) {
      const mine = lines.filter((line) => line.reqId === id);
      assert.equal(mine.length, 1, `one line for request ${id} (${JSON.stringify(expect)}), got:\n${mine.map((line) => JSON.stringify(line)).join('\n')}`);
      const [line] = mine;
      for (const [field, value] of Object.entries(expect)) assert.deepEqual(line[field], value, `${field} of ${JSON.stringify(line)}`);
      if (!('code' in expect)) assert.equal(line.code, undefined, `a success carries no code: ${JSON.stringify(line)}`);
      assert.equal(typeof line.ms, 'number');
      assert.ok(line.bytes > 0, `bytes sent: ${JSON.stringify(line)}`);
      assert.match(line.msg, new RegExp(`^${expect.method} \\S+ ${expect.status}$`));
    }
    const batchLine = lines.find((line) => line.reqId === requests[requests.length - 1].id);
    assert.ok(batchLine.bytes >= batch.body.length, 'the bytes of a streamed answer are counted');
    assert.ok(!server.stdout().includes(ADMIN) && !server.stdout().includes(WRITER) && !server.stdout().includes('wrong-key-0123456789'), 'no key in the log');
    assert.ok(!lines.some((line) => line.msg === 'incoming request' || line.msg === 'request completed'), "Fastify's own request lines are off");
    await stop(server);
  });

  const skip = inCi() ? false : (privateServersSkip() ?? false);

  describe('outages', { skip }, () => {
    let db: PrivatePostgres | undefined;
    let rabbit: PrivateRabbit | undefined;
    after(async () => {
      await killAll();
      await db?.destroy();
      await rabbit?.destroy();
    });

    test('a warning when the database or the broker stops answering, an info line when it is back: in serve and in worker', { timeout: 240_000 }, async () => {
      ensureBuilt();
      [db, rabbit] = await Promise.all([startPrivatePostgres(), startPrivateRabbit()]);
      const env = { SENSORY_DATABASE_URL: db.url, SENSORY_AMQP_URL: rabbit.url, SENSORY_API_KEYS: `${ADMIN}:admin` };
      const dataDir = tempDir('sensory-logs-outage-');
      const server = await startServer(dataDir, env);
      const worker = await startWorker({ ...env, SENSORY_DATA_DIR: dataDir }, 1);
      const down = (name: string) => (line: any) => line.level === 40 && line.dependency === name && /connection lost/.test(line.msg);
      const back = (name: string) => (line: any) => line.level === 30 && line.dependency === name && /connection is back after/.test(line.msg);

      await db.stop();
      for (const run of [server, worker]) {
        const line = await waitForLine(run, down('database'), 'saying the database is lost');
        assert.ok(typeof line.reason === 'string' && line.reason !== '');
        assert.ok(!line.msg.includes('postgres://'), 'no URL in the line');
      }
      await db.start();
      for (const run of [server, worker]) {
        const line = await waitForLine(run, back('database'), 'saying the database is back');
        assert.ok(line.downSeconds > 0);
      }

      await rabbit.stop();
      for (const run of [server, worker]) await waitForLine(run, down('broker'), 'saying the broker is lost', 60_000);
      await rabbit.start();
      for (const run of [server, worker]) await waitForLine(run, back('broker'), 'saying the broker is back', 90_000);

      // One warning and one info line per outage, not one per check.
      for (const run of [server, worker]) {
        const lines = logLines(run);
        for (const name of ['database', 'broker']) {
          assert.equal(lines.filter(down(name)).length, 1, `one ${name} warning`);
          assert.equal(lines.filter(back(name)).length, 1, `one ${name} info line`);
        }
      }
      await Promise.all([stop(server), stop(worker)]);
    });
  });
});
