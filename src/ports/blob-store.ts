import type { BlobMove, IndexedBlob } from './blob-index.js';
import type { DurableWhen } from './pixel-store.js';

/**
 * Original sample bytes, content-addressed by SHA-256: one copy per content, however often it
 * is put. Several instances (processes, replicas) may share one store.
 */
export interface BlobStore {
  /**
   * True when every stored blob has a row in the metadata store's blob index (the segment store):
   * a sample's commit then checks, in its transaction, that its blob is still indexed.
   */
  readonly indexed: boolean;
  /** Durable and atomic on return: a crash leaves either the whole blob or none. Idempotent. Refuses a malformed SHA-256. */
  put(sha256: string, bytes: Buffer): Promise<void>;
  /**
   * Optional: makes the bytes durable but leaves their index row to the caller, who commits it
   * in the sample's own transaction (one transaction and one sync for both). Returns undefined
   * when the blob is indexed already: the commit must then check that it still is. `indexed`,
   * when the caller has just looked it up, spares the store its own lookup.
   */
  stage?(sha256: string, bytes: Buffer, indexed?: boolean): Promise<IndexedBlob | undefined>;
  /**
   * Optional: stage() without waiting for the bytes to be durable, with the function that makes
   * them so (one sync shared by the writers calling it together). The caller must await
   * `durable` before it commits `blob`; when `blob` is undefined there is nothing to wait for.
   */
  stageDeferred?(sha256: string, bytes: Buffer, indexed?: boolean): Promise<{ blob: IndexedBlob | undefined; durable: DurableWhen }>;
  /** Rejects when there is no such blob. */
  get(sha256: string): Promise<Buffer>;
  /** Optional: many blobs at once, in the order asked (fewer opens and reads than one get each). Rejects when one is missing. */
  getMany?(sha256s: readonly string[]): Promise<Buffer[]>;
  has(sha256: string): Promise<boolean>;
  /** Removes the one copy; removing a missing blob is fine. */
  remove(sha256: string): Promise<void>;
  /** Throws when the store cannot be written. */
  ping(): Promise<void>;
  /** Creates what the store needs and repairs what a crash left; every other method awaits it too. */
  init(): Promise<void>;
  close(): Promise<void>;
}

export interface CompactionReport {
  /** Segment files before and after, and their bytes on disk. */
  readonly segmentsBefore: number;
  readonly segmentsAfter: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** Live blobs copied out of the segments that were rewritten. */
  readonly blobsMoved: number;
}

/** A blob store whose space is given back by rewriting its files (the segment store). */
export interface CompactingBlobStore extends BlobStore {
  /** Moves originals still in the per-file layout of earlier releases into segments; returns how many. */
  moveLegacyOriginals(): Promise<number>;
  /**
   * Rewrites every closed segment in which at least `minGarbageShare` of the bytes belong to no
   * indexed blob. Online: reads, puts and other compactions may run meanwhile.
   */
  compact(options: { minGarbageShare: number; onMove?: (moves: readonly BlobMove[]) => void }): Promise<CompactionReport>;
}
