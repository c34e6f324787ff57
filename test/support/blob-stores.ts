/**
 * Every BlobStore implementation, for test/blob-store.contract.test.ts and the writer process it
 * kills (blob-writer.child.ts). A new implementation is one more line: a store in a directory of
 * its own, which opening again at the same place gives back with its blobs.
 */
import { FileBlobStore } from '../../src/adapters/files/file.blob-store.js';
import type { BlobStore } from '../../src/ports/blob-store.js';

export interface BlobStoreImplementation {
  readonly name: string;
  /** A store kept in `directory` (created when missing). */
  readonly open: (directory: string) => BlobStore;
}

export const BLOB_STORES: readonly BlobStoreImplementation[] = [
  { name: 'files', open: (directory) => new FileBlobStore(directory) },
];
