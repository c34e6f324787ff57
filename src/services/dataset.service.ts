import { MAX_SIDE, MAX_TEST_PERCENT, type Channels } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { assertValidName } from '../domain/names.js';
import { declaredCategoryList } from '../domain/category-list.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { CategoryRecord, DatasetRecord, MetadataStore } from '../ports/metadata-store.js';
import type { PixelStore } from '../ports/pixel-store.js';

export interface DatasetRequest {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly testPercent?: number;
  /** A declared class list (see DatasetSpec.categories). */
  readonly categories?: unknown;
}

export interface DatasetDetail extends DatasetRecord {
  readonly categories: readonly CategoryRecord[];
}

export async function requireDataset(store: MetadataStore, name: string): Promise<DatasetRecord> {
  assertValidName('dataset', name);
  const dataset = await store.getDataset(name);
  if (!dataset) throw datasetNotFound(name);
  return dataset;
}

export function datasetNotFound(name: string): SensoryError {
  return new SensoryError('SENSORY_ERR_DATASET_NOT_FOUND', `dataset ${name} does not exist`);
}

function assertInteger(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `${field} must be a whole number from ${min} to ${max}`, { field });
  }
}

/** A service that keeps state per dataset in memory (the upload path: slots, group commits). */
export interface DatasetStateHolder {
  /** The dataset is gone and its id is never used again. */
  forgetDataset(datasetId: number): void;
}

export class DatasetService {
  constructor(
    private readonly store: MetadataStore,
    private readonly pixels: PixelStore,
    private readonly blobs: BlobStore,
    private readonly stateHolders: readonly DatasetStateHolder[] = [],
    /** Bound on width × height × channels (SENSORY_MAX_RECORD_BYTES). */
    private readonly maxRecordBytes = Number.MAX_SAFE_INTEGER,
  ) {}

  /** Creates the dataset, or confirms it exists with the same shape. */
  async put(name: string, request: DatasetRequest): Promise<{ dataset: DatasetRecord; created: boolean }> {
    assertValidName('dataset', name);
    assertInteger('width', request.width, 1, MAX_SIDE);
    assertInteger('height', request.height, 1, MAX_SIDE);
    if (request.channels !== 1 && request.channels !== 3) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'channels must be 1 or 3', { field: 'channels' });
    }
    const testPercent = request.testPercent ?? 0;
    assertInteger('testPercent', testPercent, 0, MAX_TEST_PERCENT);
    const record = request.width * request.height * request.channels;
    if (record > this.maxRecordBytes) {
      throw new SensoryError(
        'SENSORY_ERR_RECORD_TOO_LARGE',
        `width × height × channels is ${record} bytes per sample, above SENSORY_MAX_RECORD_BYTES (${this.maxRecordBytes})`,
        { recordBytes: record, max: this.maxRecordBytes },
      );
    }
    const categories = request.categories === undefined ? undefined : declaredCategoryList(request.categories);
    return this.store.putDataset({
      name,
      width: request.width,
      height: request.height,
      channels: request.channels as Channels,
      testPercent,
      ...(categories ? { categories } : {}),
    });
  }

  async get(name: string): Promise<DatasetDetail> {
    const dataset = await requireDataset(this.store, name);
    return { ...dataset, categories: await this.store.listCategories(dataset.id) };
  }

  /** The dataset, or undefined when there is none of that name. */
  find(name: string): Promise<DatasetRecord | undefined> {
    assertValidName('dataset', name);
    return this.store.getDataset(name);
  }

  list(): Promise<DatasetRecord[]> {
    return this.store.listDatasets();
  }

  async categories(name: string): Promise<CategoryRecord[]> {
    const dataset = await requireDataset(this.store, name);
    return this.store.listCategories(dataset.id);
  }

  /**
   * Removes the dataset's metadata and pixels, and what the services hold in memory for it.
   * Original files are content-addressed and may be shared with other datasets, so they are left
   * for a purge to collect.
   */
  async delete(name: string): Promise<DatasetRecord> {
    const dataset = await requireDataset(this.store, name);
    await this.store.deleteDataset(name);
    await this.pixels.drop(dataset.id);
    for (const holder of this.stateHolders) holder.forgetDataset(dataset.id);
    return dataset;
  }

  /** Used by the readiness check. */
  async ping(): Promise<void> {
    await this.store.ping();
    await this.blobs.ping();
  }
}
