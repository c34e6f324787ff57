import { open, type FileHandle } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { GroupSync } from '../files/fsync.js';
import { SQLITE_MIGRATIONS } from './sqlite.migrations.js';

/**
 * One SQLite file and its one connection (better-sqlite3), shared by the stores that keep their
 * tables in it (metadata, orders): it owns the connection, the schema migrations and the shared
 * WAL sync. Closing it twice is safe.
 */
export class SqliteDatabase {
  readonly connection: Database.Database;
  private readonly walPath: string | undefined;
  private wal: FileHandle | undefined;
  private closing: Promise<void> | undefined;
  private readonly walSync = new GroupSync(async () => {
    if (!this.walPath) return;
    this.wal ??= await open(this.walPath, 'r+');
    await this.wal.datasync();
  });

  constructor(filePath: string) {
    this.connection = new Database(filePath);
    this.connection.pragma('journal_mode = WAL');
    // Commits do not fsync on the event loop: a write is acknowledged after syncCommitted(), a
    // shared fdatasync of the WAL on the thread pool, so concurrent requests share one sync.
    this.connection.pragma('synchronous = NORMAL');
    this.walPath = filePath === ':memory:' ? undefined : `${filePath}-wal`;
    this.connection.pragma('foreign_keys = ON');
    this.connection.pragma('busy_timeout = 5000');
  }

  /**
   * Resolves once everything committed so far is on disk: WAL frames are appended in order, so
   * syncing the WAL file makes every earlier commit durable too.
   */
  async syncCommitted(): Promise<void> {
    await this.walSync.sync();
  }

  /** Runs the pending migrations (sqlite.migrations.ts), all in one transaction. */
  migrate(): void {
    const db = this.connection;
    db.transaction(() => {
      const current = db.pragma('user_version', { simple: true }) as number;
      for (let i = current; i < SQLITE_MIGRATIONS.length; i++) db.exec(SQLITE_MIGRATIONS[i]);
      if (current < SQLITE_MIGRATIONS.length) db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
    }).immediate();
  }

  ping(): void {
    this.connection.prepare('SELECT 1').get();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.walSync.idle();
      await this.wal?.close().catch(() => undefined);
      this.wal = undefined;
      if (this.connection.open) this.connection.close();
    })();
    return this.closing;
  }
}
