import type { BatchService } from './batch.service.js';

export interface CategoryStats {
  readonly name: string;
  readonly index: number;
  readonly train: number;
  readonly test: number;
}

export interface DatasetStats {
  readonly dataset: string;
  /** The revision the counts are taken at. */
  readonly revision: number;
  readonly testPercent: number;
  readonly train: number;
  readonly test: number;
  /** Every category the dataset has had, by index, with its live samples in each split. */
  readonly categories: readonly CategoryStats[];
}

/** Live samples per category and split, counted from the candidates a batch would draw from. */
export class DatasetStatsService {
  constructor(private readonly batches: BatchService) {}

  async stats(datasetName: string): Promise<DatasetStats> {
    // Both selections pinned to one revision, so a change in between cannot skew the counts.
    const all = await this.batches.select(datasetName, { split: 'all' });
    const tests = all.dataset.testPercent > 0 ? (await this.batches.select(datasetName, { split: 'test', revision: all.revision })).eligible : [];
    const total = countByCategory(all.eligible);
    const test = countByCategory(tests);
    return {
      dataset: all.dataset.name,
      revision: all.revision,
      testPercent: all.dataset.testPercent,
      train: all.eligible.length - tests.length,
      test: tests.length,
      categories: all.categories.map(({ name, index }) => {
        const inTest = test.get(index) ?? 0;
        return { name, index, train: (total.get(index) ?? 0) - inTest, test: inTest };
      }),
    };
  }
}

function countByCategory(samples: readonly { categoryIndex: number }[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const sample of samples) counts.set(sample.categoryIndex, (counts.get(sample.categoryIndex) ?? 0) + 1);
  return counts;
}
