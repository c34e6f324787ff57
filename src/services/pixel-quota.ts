import { recordBytes, type DatasetShape } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import type { DurableWhen, PixelStore } from '../ports/pixel-store.js';

/**
 * A PixelStore that refuses to grow a dataset's pixel file past `maxBytes`: a record at slot s
 * makes the file (s + 1) × recordBytes long, so a write beyond that is refused before any byte is
 * written. Slots are never reused (a deleted sample's stays a hole), so the bound counts every
 * sample ever added. The ingest path writes pixels before its metadata commit: a refused write
 * stores nothing.
 */
export class PixelQuota implements PixelStore {
  constructor(
    private readonly inner: PixelStore,
    private readonly maxBytes: number,
  ) {}

  async write(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<void> {
    this.check(shape, slots);
    return this.inner.write(datasetId, shape, slots, records);
  }

  async writeDeferred(datasetId: number, shape: DatasetShape, slots: readonly number[], records: readonly Uint8Array[]): Promise<DurableWhen> {
    this.check(shape, slots);
    if (this.inner.writeDeferred) return this.inner.writeDeferred(datasetId, shape, slots, records);
    await this.inner.write(datasetId, shape, slots, records);
    return async () => undefined;
  }

  private check(shape: DatasetShape, slots: readonly number[]): void {
    const record = recordBytes(shape);
    let highest = -1;
    for (const slot of slots) if (slot > highest) highest = slot;
    if ((highest + 1) * record > this.maxBytes) {
      throw new SensoryError(
        'SENSORY_ERR_DATASET_TOO_LARGE',
        `the dataset's pixels would pass ${this.maxBytes} bytes (SENSORY_MAX_DATASET_PIXEL_BYTES: ${Math.floor(this.maxBytes / record)} samples of ${record} bytes)`,
        { maxBytes: this.maxBytes, recordBytes: record },
      );
    }
  }

  read(datasetId: number, shape: DatasetShape, slots: readonly number[], target: Uint8Array, targetOffset: number): Promise<void> {
    return this.inner.read(datasetId, shape, slots, target, targetOffset);
  }

  drop(datasetId: number): Promise<void> {
    return this.inner.drop(datasetId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
