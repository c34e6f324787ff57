import type Database from 'better-sqlite3';
import { SqlExportStore, type SqlExecutor } from '../sql/export-store.sql.js';
import type { SqliteDatabase } from './sqlite.database.js';

/** Statements on the database's one connection (prepared once each); a write resolves once the shared WAL sync has it on disk. */
export function sqliteExecutor(database: SqliteDatabase): SqlExecutor {
  const statements = new Map<string, Database.Statement>();
  return {
    byteOrder: '',
    skipLocked: '',
    query: async (sql, params) => {
      let statement = statements.get(sql);
      if (!statement) {
        statement = database.connection.prepare(sql);
        statements.set(sql, statement);
      }
      if (/^\s*SELECT/i.test(sql)) return statement.all(...params) as Record<string, unknown>[];
      let changed: boolean;
      let rows: Record<string, unknown>[] = [];
      if (statement.reader) {
        rows = statement.all(...params) as Record<string, unknown>[];
        changed = rows.length > 0;
      } else {
        changed = statement.run(...params).changes > 0;
      }
      // Only a write that changed something waits for the WAL sync (an idle dispatcher's claims change nothing).
      if (changed) await database.syncCommitted();
      return rows;
    },
  };
}

/** Export jobs in a SqliteDatabase (the metadata's). */
export class SqliteExportStore extends SqlExportStore {
  constructor(database: SqliteDatabase) {
    super(sqliteExecutor(database));
  }
}
