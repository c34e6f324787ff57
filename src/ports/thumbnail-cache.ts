/**
 * Small previews already made, keyed by the original's SHA-256 and the variant (the recipe and
 * size that made it, e.g. `w2-128`: a new recipe never reads an old preview). A cache:
 * losing an entry costs a remake, never data. Several replicas may share one cache (the data
 * volume): a put is atomic, so a reader sees a whole preview or none.
 */
export interface ThumbnailCache {
  /** The cached bytes, or undefined when there are none. */
  get(sha256: string, variant: string): Promise<Buffer | undefined>;
  /** Stores the bytes; a concurrent put of the same key leaves one whole copy. */
  put(sha256: string, variant: string, bytes: Buffer): Promise<void>;
  /** Every cached preview's key, one at a time. */
  list(): AsyncIterable<{ readonly sha256: string; readonly variant: string }>;
  /** Removes one preview; a missing one is fine. */
  remove(sha256: string, variant: string): Promise<void>;
}
