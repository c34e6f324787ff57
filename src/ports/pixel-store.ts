import type { DatasetShape } from '../domain/dataset-shape.js';

/** Resolves once the writes it was returned for are durable (rejects when they cannot be made so). */
export type DurableWhen = () => Promise<void>;

/**
 * Each dataset's samples at the dataset's shape, as fixed-size uint8 records (H×W×C): record
 * `slot` lives at `slot × recordBytes`, so a batch reads records, never images. Several
 * instances (processes, replicas) may write one dataset's slots at once.
 */
export interface PixelStore {
  /** Durable on return. `records[i]` goes to slot `slots[i]`. */
  write(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional: writes as write() does but returns before the records are durable, with the
   * function that makes them so (one sync shared by the writers calling it together). Lets a
   * caller sync the pixels in the same group as the rest of a commit. The records are not read
   * once it has resolved (their memory may then be reused).
   */
  writeDeferred?(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<DurableWhen>;
  /**
   * Copies record `slots[i]` into `target` at `targetOffset + i × recordBytes`. A slot never
   * written below the highest written one reads as zeros; a slot above it is an error.
   */
  read(datasetId: number, shape: DatasetShape, slots: readonly number[], target: Uint8Array, targetOffset: number): Promise<void>;
  /** Removes every record of the dataset; dropping one that has none is fine. */
  drop(datasetId: number): Promise<void>;
  close(): Promise<void>;
}
