/**
 * The BlobStore implementations a contract suite runs over, each opened on a directory of its
 * own: the segment store with its index on SQLite and on PostgreSQL, and the per-file store.
 * A child process (blob-writer.child.ts) opens them the same way, by name.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FileBlobStore } from '../../src/adapters/files/file.blob-store.js';
import { SegmentBlobStore, type SegmentStoreOptions } from '../../src/adapters/files/segment.blob-store.js';
import { PostgresBlobIndex } from '../../src/adapters/postgres/postgres.blob-index.js';
import { PostgresMetadataStore } from '../../src/adapters/postgres/postgres.metadata-store.js';
import { SqliteBlobIndex } from '../../src/adapters/sqlite/sqlite.blob-index.js';
import { SqliteMetadataStore } from '../../src/adapters/sqlite/sqlite.metadata-store.js';
import type { BlobStore } from '../../src/ports/blob-store.js';
import type { MetadataStore } from '../../src/ports/metadata-store.js';

export interface OpenedBlobStore {
  readonly blobs: BlobStore;
  /** The metadata store holding the index (segment stores only). */
  readonly metadata?: MetadataStore;
  close(): Promise<void>;
}

export type BlobStoreKind = 'segments+sqlite' | 'segments+postgres' | 'files';

/**
 * Opens a store of `kind` on `dir` (the data dir: segments/, blobs/, sensory.db). `databaseUrl`
 * is the PostgreSQL URL (with its schema) for 'segments+postgres'.
 */
export async function openBlobStore(kind: BlobStoreKind, dir: string, options: SegmentStoreOptions & { databaseUrl?: string } = {}): Promise<OpenedBlobStore> {
  mkdirSync(dir, { recursive: true });
  if (kind === 'files') {
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    return { blobs, close: () => blobs.close() };
  }
  let metadata: MetadataStore;
  let index;
  if (kind === 'segments+sqlite') {
    const sqlite = new SqliteMetadataStore(join(dir, 'sensory.db'));
    await sqlite.migrate();
    index = new SqliteBlobIndex(sqlite.db, () => sqlite.syncCommitted());
    metadata = sqlite;
  } else {
    if (!options.databaseUrl) throw new Error('segments+postgres needs databaseUrl');
    const postgres = new PostgresMetadataStore(options.databaseUrl);
    await postgres.migrate();
    index = new PostgresBlobIndex(postgres.pool);
    metadata = postgres;
  }
  const blobs = new SegmentBlobStore(join(dir, 'segments'), join(dir, 'blobs'), index, { rewriteAfterMs: 0, ...options });
  await blobs.init();
  return {
    blobs,
    metadata,
    close: async () => {
      await blobs.close();
      await metadata.close();
    },
  };
}
