import { SqlWebhookStore } from '../sql/webhook-store.sql.js';
import type { SqliteDatabase } from './sqlite.database.js';
import { sqliteExecutor } from './sqlite.export-store.js';

/** Webhooks and their outbox in a SqliteDatabase (the metadata's). */
export class SqliteWebhookStore extends SqlWebhookStore {
  constructor(database: SqliteDatabase) {
    super(sqliteExecutor(database));
  }
}
