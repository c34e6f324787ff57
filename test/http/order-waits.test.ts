import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertError, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

/**
 * Waiting polls in the embedded shape (in-process queue), with the safety re-check set far away
 * (60 s): a waiting poll answers as soon as its order is signalled — results from the worker, a
 * cancel — in both poll modes; and a poll that would wait past SENSORY_MAX_WAITING_POLLS_PER_KEY
 * is 429 SENSORY_ERR_TOO_MANY_POLLS with Retry-After, while polls that find samples are not.
 */

describe('waiting polls wake on signals (in-process queue)', () => {
  let t: TestApp;

  before(async () => {
    // No worker yet: every poll waits until the test starts one.
    t = await startTestApp({ SENSORY_POLL_RECHECK_MS: '60000', SENSORY_MAX_WAITING_POLLS_PER_KEY: '3' });
    await seedDataset(t, 'waiting', { width: 4, height: 4, channels: 1 }, 4, ['a', 'b']);
  });

  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const place = async (payload: Record<string, unknown>): Promise<string> => {
    const reply = await t.app.inject({ method: 'POST', url: '/v1/datasets/waiting/orders', headers: t.auth('read'), payload });
    assert.equal(reply.statusCode, 202, reply.body);
    return reply.json().id;
  };
  const poll = (id: string, payload: Record<string, unknown>, kind: 'read' | 'readWrite' = 'read') =>
    t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: t.auth(kind), payload });

  it('a waiting poll past SENSORY_MAX_WAITING_POLLS_PER_KEY is 429 SENSORY_ERR_TOO_MANY_POLLS with Retry-After; another key still waits', async () => {
    const id = await place({ size: 8, ranks: 4 });
    const started = Date.now();
    const waiting = [0, 1, 2].map((rank) => poll(id, { rank, max: 2, waitMs: 1500 }));
    await sleep(200);
    const scrape = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(scrape, /^sensory_order_polls_waiting 3$/m, 'the waiting polls are a gauge of /metrics');
    const refused = await poll(id, { rank: 3, max: 2, waitMs: 1500 });
    const body = assertError(refused, 429, 'SENSORY_ERR_TOO_MANY_POLLS');
    assert.match(body.error.message, /SENSORY_MAX_WAITING_POLLS_PER_KEY/);
    assert.equal(refused.headers['retry-after'], '1');
    assert.ok(Date.now() - started < 1000, 'refused at once, not after waiting');
    // A poll with waitMs 0 never waits, so it is never refused.
    assert.equal((await poll(id, { rank: 3, max: 2, waitMs: 0 })).statusCode, 200);
    for (const answer of await Promise.all(waiting)) {
      assert.equal(answer.statusCode, 200);
      assert.equal(answer.json().ids.length, 0, 'nothing was produced');
    }
    // Their places are given back: polls may wait again.
    const again = await poll(id, { rank: 3, max: 2, waitMs: 100 });
    assert.equal(again.statusCode, 200, again.body);
  });

  it('a waiting cursor poll answers as soon as its order is cancelled', async () => {
    const id = await place({ size: 8 });
    const started = Date.now();
    const waiting = poll(id, { cursor: 'start', max: 4, waitMs: 15_000 });
    await sleep(300);
    const cancel = await t.app.inject({ method: 'DELETE', url: `/v1/orders/${id}`, headers: t.auth('read') });
    assert.equal(cancel.statusCode, 200, cancel.body);
    const answer = await waiting;
    const took = Date.now() - started;
    assert.equal(answer.statusCode, 200, answer.body);
    assert.equal(answer.json().done, true);
    assert.equal(answer.json().status, 'cancelled');
    assert.ok(took < 3000, `the poll answered ${took} ms after it came, cancelled after 300 ms`);
  });

  it('waiting polls of both modes answer as soon as the worker publishes results', async () => {
    const shared = await place({ size: 8, seed: 1 });
    const cursor = await place({ size: 8, seed: 2 });
    const started = Date.now();
    const waiting = [poll(shared, { max: 8, waitMs: 15_000 }), poll(cursor, { cursor: 'start', max: 8, waitMs: 15_000 })];
    await sleep(500);
    await t.runtime.startWorker(2);
    const answers = await Promise.all(waiting);
    const took = Date.now() - started;
    for (const answer of answers) {
      assert.equal(answer.statusCode, 200, answer.body);
      assert.ok(answer.json().ids.length > 0, answer.body.slice(0, 200));
    }
    assert.ok(took < 5000, `the polls answered ${took} ms after they came, the worker started after 500 ms`);
  });
});
