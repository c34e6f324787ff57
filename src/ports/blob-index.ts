/** Where a blob's bytes are in a segment file: the record starts at `offset`, its payload has `length` bytes. */
export interface BlobLocation {
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
}

export interface IndexedBlob extends BlobLocation {
  readonly sha256: string;
}

export interface BlobMove {
  readonly sha256: string;
  readonly from: BlobLocation;
  readonly to: BlobLocation;
}

/**
 * The index of the segment blob store, kept in the metadata store (one row per SHA-256): it is
 * what makes an appended record findable, and what compaction rewrites when it moves records.
 */
export interface BlobIndex {
  find(sha256: string): Promise<BlobLocation | undefined>;
  /** Records blobs whose bytes are durable; a SHA-256 already indexed keeps its location. Durable on return. */
  add(entries: readonly IndexedBlob[]): Promise<void>;
  /** Forgets blobs (their records become garbage for compaction). */
  remove(sha256s: readonly string[]): Promise<void>;
  /** Payload bytes and blob count indexed in each segment. */
  usage(): Promise<Map<number, { bytes: number; blobs: number }>>;
  /** The blobs indexed in one segment, by offset. */
  inSegment(segment: number): Promise<IndexedBlob[]>;
  /** Moves each blob that is still at `from` to `to`; returns how many moved. Durable on return. */
  relocate(moves: readonly BlobMove[]): Promise<number>;
}
