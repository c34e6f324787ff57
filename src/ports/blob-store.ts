/** Original sample bytes, content-addressed by SHA-256. */
export interface BlobStore {
  /** Durable and atomic on return: a crash leaves either the whole blob or none. Idempotent. */
  put(sha256: string, bytes: Buffer): Promise<void>;
  get(sha256: string): Promise<Buffer>;
  has(sha256: string): Promise<boolean>;
  remove(sha256: string): Promise<void>;
  /** Throws when the store cannot be written. */
  ping(): Promise<void>;
}
