import type Database from 'better-sqlite3';
import type { BlobIndex, BlobLocation, BlobMove, IndexedBlob } from '../../ports/blob-index.js';

const LOCATION = 'segment_id AS segment, byte_offset AS offset, byte_length AS length';

function prepareAll(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
      find: p(`SELECT ${LOCATION} FROM blob_index WHERE sha256 = ?`),
      add: p(`INSERT OR IGNORE INTO blob_index (sha256, segment_id, byte_offset, byte_length) VALUES (@sha256, @segment, @offset, @length)`),
      remove: p(`DELETE FROM blob_index WHERE sha256 = ?`),
      usage: p(`SELECT segment_id AS segment, SUM(byte_length) AS bytes, COUNT(*) AS blobs FROM blob_index GROUP BY segment_id`),
      inSegment: p(`SELECT sha256, ${LOCATION} FROM blob_index WHERE segment_id = ? ORDER BY byte_offset`),
      relocate: p(`UPDATE blob_index SET segment_id = @toSegment, byte_offset = @toOffset, byte_length = @toLength
                   WHERE sha256 = @sha256 AND segment_id = @fromSegment AND byte_offset = @fromOffset`),
  };
}

/**
 * The segment store's index in the SQLite database (table blob_index). Writes wait for the
 * shared WAL sync, so they are durable on return and share syncs with the sample commits.
 */
export class SqliteBlobIndex implements BlobIndex {
  private statements: ReturnType<typeof prepareAll> | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly syncCommitted: () => Promise<void>,
  ) {}

  /** Prepared on first use, once the migrations have created the table. */
  private get q(): ReturnType<typeof prepareAll> {
    this.statements ??= prepareAll(this.db);
    return this.statements;
  }

  async find(sha256: string): Promise<BlobLocation | undefined> {
    return this.q.find.get(sha256) as BlobLocation | undefined;
  }

  async add(entries: readonly IndexedBlob[]): Promise<void> {
    if (entries.length === 0) return;
    this.db.transaction(() => {
      for (const { sha256, segment, offset, length } of entries) this.q.add.run({ sha256, segment, offset, length });
    })();
    await this.syncCommitted();
  }

  async remove(sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    this.db.transaction(() => {
      for (const sha256 of sha256s) this.q.remove.run(sha256);
    })();
    await this.syncCommitted();
  }

  async usage(): Promise<Map<number, { bytes: number; blobs: number }>> {
    const rows = this.q.usage.all() as { segment: number; bytes: number; blobs: number }[];
    return new Map(rows.map((row) => [row.segment, { bytes: row.bytes, blobs: row.blobs }]));
  }

  async inSegment(segment: number): Promise<IndexedBlob[]> {
    return this.q.inSegment.all(segment) as IndexedBlob[];
  }

  async relocate(moves: readonly BlobMove[]): Promise<number> {
    if (moves.length === 0) return 0;
    const moved = this.db.transaction(() => {
      let count = 0;
      for (const { sha256, from, to } of moves) {
        count += this.q.relocate.run({ sha256, fromSegment: from.segment, fromOffset: from.offset, toSegment: to.segment, toOffset: to.offset, toLength: to.length }).changes;
      }
      return count;
    })();
    await this.syncCommitted();
    return moved;
  }
}
