import type pg from 'pg';
import { SqlExportStore, type SqlExecutor } from '../sql/export-store.sql.js';

/** `?` placeholders numbered as PostgreSQL's `$1, $2, …`. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Statements on the pool, each one committed on return. */
export function postgresExecutor(pool: pg.Pool): SqlExecutor {
  return {
    byteOrder: 'COLLATE "C"',
    skipLocked: 'FOR UPDATE SKIP LOCKED',
    query: async (sql, params) => (await pool.query(numbered(sql), params as unknown[])).rows as Record<string, unknown>[],
  };
}

/** Export jobs in PostgreSQL, on the metadata store's pool; every change is one committed statement. */
export class PostgresExportStore extends SqlExportStore {
  constructor(pool: pg.Pool) {
    super(postgresExecutor(pool));
  }
}
