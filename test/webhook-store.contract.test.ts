/**
 * The WebhookStore contract: one suite, run against every backend (narrowed by
 * SENSORY_TEST_BACKENDS). Each backend gets a database of its own (a SQLite file, a PostgreSQL
 * schema dropped after; CI=true: PostgreSQL must run).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { PostgresWebhookStore } from '../src/adapters/postgres/postgres.webhook-store.js';
import { SqliteDatabase } from '../src/adapters/sqlite/sqlite.database.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { SqliteWebhookStore } from '../src/adapters/sqlite/sqlite.webhook-store.js';
import type { Webhook, WebhookEvent } from '../src/domain/webhook.js';
import type { MetadataStore } from '../src/ports/metadata-store.js';
import type { NewEvent, WebhookStore } from '../src/ports/webhook-store.js';
import { dropSchemas, postgresSkip, requirePostgresInCi, selectBackends, uniqueSchema, useSchema } from './support/postgres.js';

const TMP = mkdtempSync(join(tmpdir(), 'sensory-webhooks-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
after(dropSchemas);

interface Backend {
  readonly name: string;
  readonly skip: false | string;
  readonly open: () => Promise<{ hooks: WebhookStore; owner: MetadataStore }>;
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const database = new SqliteDatabase(join(TMP, 'webhooks.db'));
      const owner = new SqliteMetadataStore(database);
      await owner.migrate();
      return { owner, hooks: new SqliteWebhookStore(database) };
    },
  },
  {
    name: 'postgres',
    skip: await postgresSkip(),
    open: async () => {
      const owner = new PostgresMetadataStore(await useSchema(uniqueSchema('webhooks')));
      await owner.migrate();
      return { owner, hooks: new PostgresWebhookStore(owner.pool) };
    },
  },
];

const selected = selectBackends(BACKENDS);
if (selected.some((b) => b.name === 'postgres')) await requirePostgresInCi();

const RUN = randomBytes(4).toString('hex');
let seq = 0;

function hook(events: WebhookEvent[], createdAt = `2026-01-01T00:00:0${seq % 10}.000Z`): Webhook {
  return { id: `hook-${RUN}-${++seq}`, url: `https://example.com/${seq}`, events, secret: `whsec_${seq}`, createdAt };
}

function event(type: WebhookEvent, key: string, now = 1000): NewEvent {
  return { event: type, eventKey: key, body: (id) => JSON.stringify({ id, type }), createdAt: new Date(now).toISOString(), now };
}

for (const backend of selected) {
  describe(`WebhookStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let hooks: WebhookStore;
    let owner: MetadataStore;
    it('opens', async () => {
      ({ hooks, owner } = await backend.open());
    });
    after(async () => owner?.close());

    it('hooks: create, get, list oldest first, delete (with their deliveries)', async () => {
      const a = hook(['order.completed'], '2026-01-01T00:00:01.000Z');
      const b = hook(['export.completed', 'order.failed'], '2026-01-01T00:00:02.000Z');
      await hooks.createHook(b);
      await hooks.createHook(a);
      assert.deepEqual(await hooks.getHook(b.id), b);
      assert.equal(await hooks.getHook('nope'), undefined);
      const ids = (await hooks.listHooks()).map((h) => h.id);
      assert.ok(ids.indexOf(a.id) < ids.indexOf(b.id));
      await hooks.enqueue(event('order.completed', `k-${RUN}-del`));
      assert.equal((await hooks.listDeliveries(a.id, 10)).length, 1);
      assert.equal(await hooks.deleteHook(a.id), true);
      assert.equal(await hooks.deleteHook(a.id), false);
      assert.deepEqual(await hooks.listDeliveries(a.id, 10), []);
      await hooks.deleteHook(b.id);
    });

    it('enqueue: one delivery per subscribed hook, once per event key, each with its id in its body', async () => {
      const subscribed = hook(['order.completed']);
      const other = hook(['export.completed']);
      await hooks.createHook(subscribed);
      await hooks.createHook(other);
      const key = `order.completed:${RUN}-1`;
      assert.equal(await hooks.enqueue(event('order.completed', key)), 1);
      assert.equal(await hooks.enqueue(event('order.completed', key)), 0, 'reported twice: written once');
      const [delivery] = await hooks.listDeliveries(subscribed.id, 10);
      assert.equal(delivery.status, 'pending');
      assert.equal(delivery.attempts, 0);
      assert.equal(delivery.event, 'order.completed');
      assert.equal(JSON.parse(delivery.body).id, delivery.id);
      assert.deepEqual(await hooks.listDeliveries(other.id, 10), []);
      await hooks.deleteHook(subscribed.id);
      await hooks.deleteHook(other.id);
    });

    it('countDeliveriesByStatus counts the outbox by status', async () => {
      const count = async () => Object.fromEntries(await hooks.countDeliveriesByStatus()) as Record<string, number>;
      const before = await count();
      const h = hook(['order.failed']);
      await hooks.createHook(h);
      for (let i = 0; i < 3; i++) await hooks.enqueue(event('order.failed', `${RUN}-count-${i}`, 3000));
      const [first] = await hooks.claimDue(3000, 1000, 1);
      await hooks.recordAttempt(first.id, { status: 'delivered', attempts: 1, nextAt: 3001, lastStatus: 200, lastError: null, deliveredAt: '2026-01-01T00:00:03.001Z' });
      const now = await count();
      const delta = (status: string) => (now[status] ?? 0) - (before[status] ?? 0);
      assert.deepEqual([delta('pending'), delta('delivered'), delta('failed')], [2, 1, 0]);
      await hooks.deleteHook(h.id);
      assert.deepEqual(await count(), before, 'a hook deleted takes its deliveries with it');
    });

    it('claimDue takes due deliveries once until their lease runs out; recordAttempt settles them', async () => {
      const h = hook(['export.failed']);
      await hooks.createHook(h);
      for (let i = 0; i < 3; i++) await hooks.enqueue(event('export.failed', `${RUN}-due-${i}`, 5000 + i));
      assert.deepEqual(await hooks.claimDue(4999, 1000, 10), [], 'none due yet');
      const first = await hooks.claimDue(5010, 1000, 2);
      assert.equal(first.length, 2);
      const second = await hooks.claimDue(5010, 1000, 10);
      assert.equal(second.length, 1, 'the claimed ones are skipped');
      assert.equal(new Set([...first, ...second].map((d) => d.id)).size, 3);
      await hooks.recordAttempt(first[0].id, { status: 'delivered', attempts: 1, nextAt: 5020, lastStatus: 204, lastError: null, deliveredAt: '2026-01-01T00:00:05.020Z' });
      await hooks.recordAttempt(first[1].id, { status: 'pending', attempts: 1, nextAt: 9000, lastStatus: 503, lastError: 'answered 503', deliveredAt: null });
      await hooks.recordAttempt(second[0].id, { status: 'failed', attempts: 12, nextAt: 5020, lastStatus: null, lastError: 'ECONNREFUSED', deliveredAt: null });
      assert.deepEqual(await hooks.claimDue(8999, 1000, 10), [], 'the retry is not due yet; the lease of none else matters');
      const retried = await hooks.claimDue(9000, 1000, 10);
      assert.deepEqual(retried.map((d) => d.id), [first[1].id]);
      assert.equal(retried[0].attempts, 1);
      assert.equal(retried[0].lastError, 'answered 503');
      const log = await hooks.listDeliveries(h.id, 10);
      assert.deepEqual(log.map((d) => d.status).sort(), ['delivered', 'failed', 'pending']);
      assert.equal(log.find((d) => d.status === 'delivered')?.lastStatus, 204);
      assert.equal((await hooks.listDeliveries(h.id, 1)).length, 1);
      await hooks.deleteHook(h.id);
    });

    it('concurrent claims: each delivery goes to one claimer', async () => {
      const h = hook(['order.failed']);
      await hooks.createHook(h);
      for (let i = 0; i < 10; i++) await hooks.enqueue(event('order.failed', `${RUN}-c-${i}`, 7000));
      const claims = await Promise.all(Array.from({ length: 4 }, () => hooks.claimDue(7000, 60_000, 10)));
      const ids = claims.flat().map((d) => d.id);
      assert.equal(ids.length, 10);
      assert.equal(new Set(ids).size, 10);
      await hooks.deleteHook(h.id);
    });

    it('the revision cursor moves by compare-and-set', async () => {
      const dataset = 1_000_000 + seq++;
      assert.equal(await hooks.advanceRevisionCursor(dataset, undefined, 3), true);
      assert.equal(await hooks.advanceRevisionCursor(dataset, undefined, 4), false, 'it exists already');
      assert.equal(await hooks.advanceRevisionCursor(dataset, 2, 5), false, 'not from 2');
      assert.equal(await hooks.advanceRevisionCursor(dataset, 3, 5), true);
      assert.equal((await hooks.revisionCursors()).get(dataset), 5);
      const racing = await Promise.all([hooks.advanceRevisionCursor(dataset, 5, 6), hooks.advanceRevisionCursor(dataset, 5, 7)]);
      assert.equal(racing.filter(Boolean).length, 1);
    });
  });
}
