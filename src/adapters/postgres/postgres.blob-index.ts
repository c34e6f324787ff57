import type pg from 'pg';
import type { BlobIndex, BlobLocation, BlobMove, IndexedBlob } from '../../ports/blob-index.js';

const LOCATION = 'segment_id AS segment, byte_offset AS offset, byte_length AS length';

/** The segment store's index in PostgreSQL (table blob_index); every write is one statement, committed on return. */
export class PostgresBlobIndex implements BlobIndex {
  constructor(private readonly pool: pg.Pool) {}

  async find(sha256: string): Promise<BlobLocation | undefined> {
    return (await this.pool.query<BlobLocation>(`SELECT ${LOCATION} FROM blob_index WHERE sha256 = $1`, [sha256])).rows[0];
  }

  async add(entries: readonly IndexedBlob[]): Promise<void> {
    if (entries.length === 0) return;
    await this.pool.query(
      `INSERT INTO blob_index (sha256, segment_id, byte_offset, byte_length)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
       ON CONFLICT (sha256) DO NOTHING`,
      [entries.map((e) => e.sha256), entries.map((e) => e.segment), entries.map((e) => e.offset), entries.map((e) => e.length)],
    );
  }

  async remove(sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    await this.pool.query('DELETE FROM blob_index WHERE sha256 = ANY($1::text[])', [sha256s]);
  }

  async usage(): Promise<Map<number, { bytes: number; blobs: number }>> {
    const { rows } = await this.pool.query<{ segment: number; bytes: number; blobs: number }>(
      'SELECT segment_id AS segment, SUM(byte_length)::bigint AS bytes, COUNT(*) AS blobs FROM blob_index GROUP BY segment_id',
      [],
    );
    return new Map(rows.map((row) => [row.segment, { bytes: row.bytes, blobs: row.blobs }]));
  }

  async inSegment(segment: number): Promise<IndexedBlob[]> {
    return (await this.pool.query<IndexedBlob>(`SELECT sha256, ${LOCATION} FROM blob_index WHERE segment_id = $1 ORDER BY byte_offset`, [segment])).rows;
  }

  async relocate(moves: readonly BlobMove[]): Promise<number> {
    if (moves.length === 0) return 0;
    const result = await this.pool.query(
      `UPDATE blob_index b SET segment_id = m.to_segment, byte_offset = m.to_offset, byte_length = m.to_length
       FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         AS m(sha256, from_segment, from_offset, to_segment, to_offset, to_length)
       WHERE b.sha256 = m.sha256 AND b.segment_id = m.from_segment AND b.byte_offset = m.from_offset`,
      [
        moves.map((m) => m.sha256),
        moves.map((m) => m.from.segment),
        moves.map((m) => m.from.offset),
        moves.map((m) => m.to.segment),
        moves.map((m) => m.to.offset),
        moves.map((m) => m.to.length),
      ],
    );
    return result.rowCount ?? 0;
  }
}
