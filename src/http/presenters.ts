import { isTestBucket } from '../domain/split.js';
import type { CategoryRecord, DatasetRecord, SampleRecord } from '../ports/metadata-store.js';

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
    ...(duplicate ? { duplicate: true } : {}),
  };
}
