/** One statement with `?` placeholders: what both dialects run (PostgreSQL's adapter numbers them). */
export interface SqlExecutor {
  /** Rows of a SELECT or of RETURNING; a write is durable when the promise resolves. */
  query(sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** How the dialect orders text columns byte by byte (PostgreSQL: COLLATE "C"; SQLite: nothing). */
  readonly byteOrder: string;
  /** The claim's inner select locks the row it picks and skips locked ones (PostgreSQL), or nothing (SQLite writes one at a time). */
  readonly skipLocked: string;
}
