/**
 * Every BlobStore implementation, for test/blob-store.contract.test.ts and the writer process it
 * kills (blob-writer.child.ts). A new implementation is one more line: a store in a directory of
 * its own, which opening again at the same place gives back with its blobs.
 *
 * The segment store keeps its index in a metadata store: here a SQLite file beside the directory
 * (`<directory>.db`), so that the directory itself is the store as a whole, as the suite expects.
 * test/segment-blob-store.test.ts runs the segment store on PostgreSQL too (openSegmentStore).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FileBlobStore } from '../../src/adapters/files/file.blob-store.js';
import { SegmentBlobStore, type SegmentStoreOptions } from '../../src/adapters/files/segment.blob-store.js';
import { PostgresBlobIndex } from '../../src/adapters/postgres/postgres.blob-index.js';
import { PostgresMetadataStore } from '../../src/adapters/postgres/postgres.metadata-store.js';
import { SqliteBlobIndex } from '../../src/adapters/sqlite/sqlite.blob-index.js';
import { SqliteMetadataStore } from '../../src/adapters/sqlite/sqlite.metadata-store.js';
import type { BlobIndex, BlobLocation, BlobMove, IndexedBlob } from '../../src/ports/blob-index.js';
import type { BlobStore } from '../../src/ports/blob-store.js';
import type { MetadataStore } from '../../src/ports/metadata-store.js';

export interface BlobStoreImplementation {
  readonly name: string;
  /** A store kept in `directory` (created when missing). */
  readonly open: (directory: string) => BlobStore;
}

export const BLOB_STORES: readonly BlobStoreImplementation[] = [
  { name: 'files', open: (directory) => new FileBlobStore(directory) },
  { name: 'segments', open: (directory) => openSegmentStore(directory, 'sqlite').blobs },
];

/** A blob index that waits for its metadata store's migrations before its first call. */
class MigratedIndex implements BlobIndex {
  constructor(private readonly ready: Promise<BlobIndex>) {}
  find = async (sha256: string): Promise<BlobLocation | undefined> => (await this.ready).find(sha256);
  add = async (entries: readonly IndexedBlob[]): Promise<void> => (await this.ready).add(entries);
  remove = async (sha256s: readonly string[]): Promise<void> => (await this.ready).remove(sha256s);
  usage = async () => (await this.ready).usage();
  inSegment = async (segment: number): Promise<IndexedBlob[]> => (await this.ready).inSegment(segment);
  relocate = async (moves: readonly BlobMove[]): Promise<number> => (await this.ready).relocate(moves);
}

export interface OpenedSegmentStore {
  readonly blobs: SegmentBlobStore;
  /** The metadata store that holds the index, migrated. */
  readonly metadata: Promise<MetadataStore>;
  close(): Promise<void>;
}

/**
 * The segment store on `directory` (segments under `<directory>/segments`, the per-file layout of
 * 0.1.0 read in place from `<directory>`), its index in SQLite at `<directory>.db` or in the
 * PostgreSQL database `databaseUrl` names. Compaction rewrites segments as soon as they are sealed.
 */
export function openSegmentStore(directory: string, backend: 'sqlite' | 'postgres', options: SegmentStoreOptions & { databaseUrl?: string } = {}): OpenedSegmentStore {
  let metadata: Promise<MetadataStore>;
  let index: Promise<BlobIndex>;
  if (backend === 'sqlite') {
    mkdirSync(join(directory, '..'), { recursive: true });
    const sqlite = new SqliteMetadataStore(`${directory}.db`);
    metadata = sqlite.migrate().then(() => sqlite);
    index = metadata.then(() => new SqliteBlobIndex(sqlite.database.connection, () => sqlite.syncCommitted()));
  } else {
    if (!options.databaseUrl) throw new Error('the PostgreSQL segment store needs databaseUrl');
    const postgres = new PostgresMetadataStore(options.databaseUrl);
    metadata = postgres.migrate().then(() => postgres);
    index = metadata.then(() => new PostgresBlobIndex(postgres.pool));
  }
  const blobs = new SegmentBlobStore(join(directory, 'segments'), directory, new MigratedIndex(index), { rewriteAfterMs: 0, ...options });
  return {
    blobs,
    metadata,
    close: async () => {
      await blobs.close();
      await (await metadata).close();
    },
  };
}
