/**
 * Every PixelStore implementation, for test/pixel-store.contract.test.ts. A new implementation is
 * one more line: a store in a directory of its own, which opening again at the same place gives
 * back with its records.
 */
import { FilePixelStore } from '../../src/adapters/files/file.pixel-store.js';
import type { PixelStore } from '../../src/ports/pixel-store.js';

export interface PixelStoreImplementation {
  readonly name: string;
  /** A store kept in `directory` (created when missing). */
  readonly open: (directory: string) => PixelStore;
}

export const PIXEL_STORES: readonly PixelStoreImplementation[] = [
  { name: 'files', open: (directory) => new FilePixelStore(directory) },
];
