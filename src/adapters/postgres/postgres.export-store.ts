import type pg from 'pg';
import { SqlExportStore } from '../sql/export-store.sql.js';

/** `?` placeholders numbered as PostgreSQL's `$1, $2, …`. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Export jobs in PostgreSQL, on the metadata store's pool; every change is one committed statement. */
export class PostgresExportStore extends SqlExportStore {
  constructor(pool: pg.Pool) {
    super({
      byteOrder: 'COLLATE "C"',
      skipLocked: 'FOR UPDATE SKIP LOCKED',
      query: async (sql, params) => (await pool.query(numbered(sql), params as unknown[])).rows as Record<string, unknown>[],
    });
  }
}
