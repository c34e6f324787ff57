/**
 * Original sample bytes, content-addressed by SHA-256: one copy per content, however often it
 * is put. Several instances (processes, replicas) may share one store.
 */
export interface BlobStore {
  /** Durable and atomic on return: a crash leaves either the whole blob or none. Idempotent. Refuses a malformed SHA-256. */
  put(sha256: string, bytes: Buffer): Promise<void>;
  /** Rejects when there is no such blob. */
  get(sha256: string): Promise<Buffer>;
  has(sha256: string): Promise<boolean>;
  /** Removes the one copy; removing a missing blob is fine. */
  remove(sha256: string): Promise<void>;
  /** Throws when the store cannot be written. */
  ping(): Promise<void>;
}
