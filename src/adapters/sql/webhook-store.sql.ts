import { randomUUID } from 'node:crypto';
import type { Delivery, DeliveryStatus, Webhook, WebhookEvent } from '../../domain/webhook.js';
import type { AttemptOutcome, NewEvent, WebhookStore } from '../../ports/webhook-store.js';
import type { SqlExecutor } from './sql-executor.js';

const HOOK_COLUMNS = 'id, url, events, secret, created_at';
const DELIVERY_COLUMNS = 'id, hook_id, event, event_key, body, status, attempts, next_at, last_status, last_error, created_at, delivered_at';

function hookOf(row: Record<string, unknown>): Webhook {
  return { id: row.id as string, url: row.url as string, events: JSON.parse(row.events as string) as WebhookEvent[], secret: row.secret as string, createdAt: row.created_at as string };
}

function deliveryOf(row: Record<string, unknown>): Delivery {
  return {
    id: row.id as string,
    hookId: row.hook_id as string,
    event: row.event as WebhookEvent,
    eventKey: row.event_key as string,
    body: row.body as string,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAt: Number(row.next_at),
    lastStatus: row.last_status === null || row.last_status === undefined ? null : Number(row.last_status),
    lastError: (row.last_error as string | null) ?? null,
    createdAt: row.created_at as string,
    deliveredAt: (row.delivered_at as string | null) ?? null,
  };
}

/** The WebhookStore on SQL, shared by the SQLite and PostgreSQL adapters. */
export class SqlWebhookStore implements WebhookStore {
  constructor(private readonly sql: SqlExecutor) {}

  async createHook(hook: Webhook): Promise<void> {
    await this.sql.query('INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?)', [hook.id, hook.url, JSON.stringify(hook.events), hook.secret, hook.createdAt]);
  }

  async getHook(id: string): Promise<Webhook | undefined> {
    const [row] = await this.sql.query(`SELECT ${HOOK_COLUMNS} FROM webhooks WHERE id = ?`, [id]);
    return row && hookOf(row);
  }

  async listHooks(): Promise<Webhook[]> {
    return (await this.sql.query(`SELECT ${HOOK_COLUMNS} FROM webhooks ORDER BY created_at ${this.sql.byteOrder}, id ${this.sql.byteOrder}`, [])).map(hookOf);
  }

  async deleteHook(id: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM webhooks WHERE id = ? RETURNING id', [id])).length > 0;
  }

  async enqueue(event: NewEvent): Promise<number> {
    let added = 0;
    for (const hook of await this.listHooks()) {
      if (!hook.events.includes(event.event)) continue;
      const id = randomUUID();
      const rows = await this.sql.query(
        `INSERT INTO webhook_deliveries (id, hook_id, event, event_key, body, status, attempts, next_at, created_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
         ON CONFLICT (hook_id, event_key) DO NOTHING RETURNING id`,
        [id, hook.id, event.event, event.eventKey, event.body(id), event.now, event.createdAt],
      );
      added += rows.length;
    }
    return added;
  }

  async claimDue(now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    const rows = await this.sql.query(
      // The pick is a CTE, evaluated once: as an IN subquery PostgreSQL may run its LIMIT again per row.
      `WITH picked AS (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ? ${this.sql.skipLocked})
       UPDATE webhook_deliveries SET next_at = ?
       WHERE id IN (SELECT id FROM picked) AND status = 'pending' AND next_at <= ?
       RETURNING ${DELIVERY_COLUMNS}`,
      [now, limit, now + leaseMs, now],
    );
    return rows.map(deliveryOf);
  }

  async recordAttempt(id: string, outcome: AttemptOutcome): Promise<void> {
    await this.sql.query(
      'UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ? RETURNING id',
      [outcome.status, outcome.attempts, outcome.nextAt, outcome.lastStatus, outcome.lastError, outcome.deliveredAt, id],
    );
  }

  async listDeliveries(hookId: string, limit: number): Promise<Delivery[]> {
    const rows = await this.sql.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE hook_id = ? ORDER BY created_at ${this.sql.byteOrder} DESC, id ${this.sql.byteOrder} DESC LIMIT ?`,
      [hookId, limit],
    );
    return rows.map(deliveryOf);
  }

  async countDeliveriesByStatus(): Promise<Map<DeliveryStatus, number>> {
    const rows = await this.sql.query('SELECT status, COUNT(*) AS deliveries FROM webhook_deliveries GROUP BY status', []);
    return new Map(rows.map((row) => [row.status as DeliveryStatus, Number(row.deliveries)]));
  }

  async advanceRevisionCursor(datasetId: number, from: number | undefined, to: number): Promise<boolean> {
    const rows = from === undefined
      ? await this.sql.query('INSERT INTO webhook_revision_cursors (dataset_id, revision) VALUES (?, ?) ON CONFLICT (dataset_id) DO NOTHING RETURNING dataset_id', [datasetId, to])
      : await this.sql.query('UPDATE webhook_revision_cursors SET revision = ? WHERE dataset_id = ? AND revision = ? RETURNING dataset_id', [to, datasetId, from]);
    return rows.length > 0;
  }

  async revisionCursors(): Promise<Map<number, number>> {
    const rows = await this.sql.query('SELECT dataset_id, revision FROM webhook_revision_cursors', []);
    return new Map(rows.map((row) => [Number(row.dataset_id), Number(row.revision)]));
  }
}
