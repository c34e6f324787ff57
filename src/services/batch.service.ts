import { drawAugment, warpInto, isIdentity } from '../domain/augmentation.js';
import type { BatchPlan, Dtype, LabelForm } from '../domain/batch-plan.js';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { assertValidName } from '../domain/names.js';
import { randomSeed } from '../domain/random.js';
import { drawBalancedBatch, drawBatch } from '../domain/sampling.js';
import type { Split } from '../domain/split.js';
import type { CategoryRecord, DatasetRecord, EligibleSample, MetadataStore } from '../ports/metadata-store.js';
import type { PixelStore } from '../ports/pixel-store.js';
import { requireDataset } from './dataset.service.js';

export interface BatchRequest {
  readonly size: number;
  readonly noise?: number;
  readonly seed?: number;
  readonly split?: Split;
  readonly categories?: readonly string[];
  readonly revision?: number;
  readonly dtype?: Dtype;
  readonly labels?: LabelForm;
  readonly balance?: boolean;
}

export interface Selection {
  readonly dataset: DatasetRecord;
  readonly revision: number;
  readonly categories: readonly Pick<CategoryRecord, 'name' | 'index'>[];
  readonly categoryIndexes: readonly number[] | undefined;
  readonly split: Split;
  /** By ascending id. */
  readonly eligible: readonly EligibleSample[];
}

export class BatchService {
  constructor(
    private readonly store: MetadataStore,
    private readonly pixels: PixelStore,
    private readonly maxBatchSamples: number,
  ) {}

  async plan(datasetName: string, request: BatchRequest): Promise<BatchPlan> {
    if (request.size > this.maxBatchSamples) {
      throw new SensoryError(
        'SENSORY_ERR_BATCH_TOO_LARGE',
        `a small batch may have at most ${this.maxBatchSamples} samples (SENSORY_MAX_BATCH_SAMPLES); place a batch order (POST /v1/datasets/${datasetName}/orders) for ${request.size}`,
        { size: request.size, max: this.maxBatchSamples },
      );
    }
    const { dataset, revision, categories, eligible } = await this.select(datasetName, request);
    const seed = request.seed ?? randomSeed();
    const samples = request.balance ? drawBalancedBatch(eligible, request.size, seed) : drawBatch(eligible, request.size, seed);
    const noise = request.noise ?? 0;
    return {
      dataset,
      revision,
      seed,
      samples,
      augments: samples.map((_, slot) => drawAugment(seed, slot, noise)),
      categories,
      dtype: request.dtype ?? 'uint8',
      labels: request.labels ?? 'index',
    };
  }

  /** The candidates a batch or an order draws from: the dataset at a revision, in a split and categories. */
  async select(datasetName: string, request: Pick<BatchRequest, 'revision' | 'categories' | 'split'>): Promise<Selection> {
    const dataset = await requireDataset(this.store, datasetName);
    const revision = request.revision ?? dataset.revision;
    if (revision > dataset.revision) {
      throw new SensoryError('SENSORY_ERR_UNKNOWN_REVISION', `revision ${revision} is above dataset ${dataset.name}'s current revision ${dataset.revision}`, {
        revision,
        current: dataset.revision,
      });
    }
    if (revision < dataset.purgedRevision) {
      throw new SensoryError(
        'SENSORY_ERR_REVISION_PURGED',
        `revision ${revision} of dataset ${dataset.name} is gone: samples deleted before revision ${dataset.purgedRevision} were purged; ask for ${dataset.purgedRevision} or later`,
        { revision, purgedRevision: dataset.purgedRevision },
      );
    }
    const categories = await this.categoriesAt(dataset, revision);
    const categoryIndexes = request.categories?.map((name) => {
      assertValidName('categories[]', name);
      const found = categories.find((category) => category.name === name);
      if (!found) throw new SensoryError('SENSORY_ERR_UNKNOWN_CATEGORY', `dataset ${dataset.name} has no category ${name} at revision ${revision}`);
      return found.index;
    });
    const split = request.split ?? 'all';
    const eligible = await this.store.eligibleSamples(dataset.id, { revision, split, categoryIndexes });
    return { dataset, revision, categories, categoryIndexes, split, eligible };
  }

  /** The category map as it was at `revision`. */
  async categoriesAt(dataset: DatasetRecord, revision: number): Promise<Pick<CategoryRecord, 'name' | 'index'>[]> {
    return (await this.store.listCategories(dataset.id))
      .filter((category) => category.createdRevision <= revision)
      .map(({ name, index }) => ({ name, index }));
  }

  /** Writes the uint8 pixels of plan samples [start, start + count) into `target`, augmented. */
  async render(plan: BatchPlan, start: number, count: number, target: Uint8Array): Promise<void> {
    const { dataset } = plan;
    const size = recordBytes(dataset);
    const slots = plan.samples.slice(start, start + count).map((sample) => sample.pixelSlot);
    const augments = plan.augments.slice(start, start + count);
    if (augments.every(isIdentity)) {
      await this.pixels.read(dataset.id, dataset, slots, target, 0);
      return;
    }
    const source = new Uint8Array(slots.length * size);
    await this.pixels.read(dataset.id, dataset, slots, source, 0);
    augments.forEach((augment, i) => warpInto(source.subarray(i * size, (i + 1) * size), dataset, augment, target, i * size));
  }
}
