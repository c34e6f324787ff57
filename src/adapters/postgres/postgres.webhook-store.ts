import type pg from 'pg';
import { SqlWebhookStore } from '../sql/webhook-store.sql.js';
import { postgresExecutor } from './postgres.export-store.js';

/** Webhooks and their outbox in PostgreSQL, on the metadata store's pool. */
export class PostgresWebhookStore extends SqlWebhookStore {
  constructor(pool: pg.Pool) {
    super(postgresExecutor(pool));
  }
}
