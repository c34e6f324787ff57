import { isTestBucket } from '../domain/split.js';
import type { CategoryRecord, DatasetRecord, SampleRecord } from '../ports/metadata-store.js';
import type { FileOutcome, Stored } from '../services/ingest.service.js';

export function datasetView(dataset: DatasetRecord, categories?: readonly CategoryRecord[]) {
  return {
    name: dataset.name,
    width: dataset.width,
    height: dataset.height,
    channels: dataset.channels,
    testPercent: dataset.testPercent,
    revision: dataset.revision,
    sampleCount: dataset.sampleCount,
    createdAt: dataset.createdAt,
    categoriesDeclared: dataset.categoriesDeclared,
    ...(categories ? { categories: categories.map(categoryView) } : {}),
  };
}

export function categoryView(category: CategoryRecord) {
  return { name: category.name, index: category.index, count: category.count };
}

export function categoriesView(categories: readonly CategoryRecord[]) {
  return {
    categories: categories.map(categoryView),
    map: Object.fromEntries(categories.map((category) => [category.name, category.index])),
  };
}

export function sampleView(dataset: DatasetRecord, sample: SampleRecord, duplicate?: boolean) {
  return {
    id: sample.id,
    dataset: dataset.name,
    category: sample.category,
    categoryIndex: sample.categoryIndex,
    sha256: sample.sha256,
    revision: sample.revision,
    createdAt: sample.createdAt,
    mediaType: sample.mediaType,
    bytes: sample.bytes,
    split: isTestBucket(sample.splitBucket, dataset.testPercent) ? ('test' as const) : ('train' as const),
    ...(sample.filename !== null ? { filename: sample.filename } : {}),
    tags: sample.tags,
    metadata: sample.metadata,
    ...(duplicate ? { duplicate: true } : {}),
  };
}

/** A stored upload: 201 with the new sample, or 200 with the one these bytes already are. */
export function storedView(stored: Stored) {
  return { status: stored.duplicate ? 200 : 201, body: sampleView(stored.dataset, stored.sample, stored.duplicate) };
}

/** A several-file upload: each file's own status and sample or error; 201 when any file was new. */
export function fileOutcomesView(outcomes: readonly FileOutcome[]) {
  const samples = outcomes.map((outcome) => {
    if ('error' in outcome) return { filename: outcome.filename, status: outcome.error.status, error: { code: outcome.error.code, message: outcome.error.message } };
    const { status, body } = storedView(outcome.stored);
    return { filename: outcome.filename, status, sample: body };
  });
  return { status: samples.some((sample) => sample.status === 201) ? 201 : 200, body: { samples } };
}
