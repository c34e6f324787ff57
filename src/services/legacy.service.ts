import type { Actor } from '../ports/metadata-store.js';
import { categoryMap } from '../domain/batch-plan.js';
import { SensoryError } from '../domain/errors.js';
import { assertValidName, categoryName, legacyDatasetName } from '../domain/names.js';
import type { EncodedBatch } from '../formats/encoded-batch.js';
import type { BatchService } from './batch.service.js';
import type { DatasetDetail, DatasetService } from './dataset.service.js';
import type { IngestService } from './ingest.service.js';

/** A dicebox store: one image into dataset `<name>_<width>x<height>`, 3 channels. */
export interface LegacyStore {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly category: string;
  readonly bytes: Buffer;
  readonly actor?: Actor;
}

/**
 * The dicebox sensory service's operations: stores go to a dataset named after the image size,
 * created when missing; batches come from the one dataset SENSORY_LEGACY_DATASET names.
 */
export class LegacyService {
  constructor(
    private readonly legacyDatasetName: string | undefined,
    private readonly datasets: DatasetService,
    private readonly ingest: IngestService,
    private readonly batches: BatchService,
  ) {}

  /** Stores the image, creating its dataset first when missing. A store that fails stores nothing, not even that dataset. */
  async store({ name, width, height, category, bytes, actor }: LegacyStore): Promise<void> {
    assertValidName('name', name);
    const dataset = legacyDatasetName(name, width, height);
    assertValidName('name', dataset);
    this.ingest.assertSize(bytes.length);
    categoryName('category', category);
    if (!(await this.datasets.find(dataset))) {
      await this.ingest.assertImage(bytes, { width, height, channels: 3 });
      await this.datasets.put(dataset, { width, height, channels: 3 });
    }
    await this.ingest.add(dataset, { category, bytes, actor });
  }

  /** The dataset the batch endpoints serve. */
  async dataset(): Promise<DatasetDetail> {
    const name = this.legacyDatasetName;
    if (!name) throw new SensoryError('SENSORY_ERR_LEGACY_DATASET_UNSET', 'SENSORY_LEGACY_DATASET is not set: the legacy batch endpoints serve that dataset');
    try {
      return await this.datasets.get(name);
    } catch (error) {
      if ((error as SensoryError).code !== 'SENSORY_ERR_DATASET_NOT_FOUND') throw error;
      throw new SensoryError('SENSORY_ERR_LEGACY_DATASET_UNSET', `SENSORY_LEGACY_DATASET names dataset ${name}, which does not exist`);
    }
  }

  async categoryMap(): Promise<Record<string, number>> {
    return categoryMap(await this.dataset());
  }

  /** A batch of the legacy dataset as the dicebox JSON, `{labels: [[i]…], data: N×H×W×C}`. */
  async batch(size: number, noise: number): Promise<EncodedBatch> {
    const dataset = await this.dataset();
    return this.batches.serve(dataset.name, { size, noise }, 'legacy');
  }
}
