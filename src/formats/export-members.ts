import { extensionOf, pathSafe, splitOf, webdatasetKey, type ExportSpec } from '../domain/export-job.js';
import type { ExportSample } from '../ports/metadata-store.js';
import { safetensorsLayout, type SafetensorsLayout } from './safetensors.js';
import { tarHeader, tarPadding } from './tar.writer.js';

/** The label names of a job, by category index. */
export function categoryNames(spec: Pick<ExportSpec, 'categories'>): Map<number, string> {
  return new Map(spec.categories.map((category) => [category.index, category.name]));
}

/**
 * One sample as WebDataset members, adjacent in the shard: `<key>.<ext>` (the original bytes),
 * `<key>.cls` (the category index as decimal text) and `<key>.json` (id, SHA-256, category,
 * index, split, revision). The key has no dot, so readers group the three by it.
 */
export function webdatasetMembers(spec: ExportSpec, names: Map<number, string>, sample: ExportSample, original: Buffer, mtime: number): Buffer[] {
  const key = webdatasetKey(sample.id);
  const cls = Buffer.from(String(sample.categoryIndex), 'ascii');
  const json = Buffer.from(
    JSON.stringify({
      id: sample.id,
      sha256: sample.sha256,
      category: names.get(sample.categoryIndex) ?? null,
      categoryIndex: sample.categoryIndex,
      split: splitOf(sample.splitBucket, spec.testPercent),
      revision: spec.revision,
      mediaType: sample.mediaType,
    }),
    'utf8',
  );
  return [
    tarHeader(`${key}.${extensionOf(sample.mediaType)}`, original.length, mtime),
    original,
    tarPadding(original.length),
    tarHeader(`${key}.cls`, cls.length, mtime),
    cls,
    tarPadding(cls.length),
    tarHeader(`${key}.json`, json.length, mtime),
    json,
    tarPadding(json.length),
  ];
}

/** One sample as `<split>/<category>/<sha256>.<ext>`: the layout `sensory import` reads (one split folder at a time). */
export function imagefolderMembers(spec: ExportSpec, names: Map<number, string>, sample: ExportSample, original: Buffer, mtime: number): Buffer[] {
  const category = pathSafe(names.get(sample.categoryIndex) ?? String(sample.categoryIndex));
  const path = `${splitOf(sample.splitBucket, spec.testPercent)}/${category}/${sample.sha256}.${extensionOf(sample.mediaType)}`;
  return [tarHeader(path, original.length, mtime), original, tarPadding(original.length)];
}

/**
 * A safetensors shard of `count` samples: `data` (N×H×W×C, U8, the stored pixels), `labels`
 * (N, I64) and `ids` (N, I64), in that order; the category map, revision and split in `__metadata__`.
 */
export function safetensorsShardLayout(spec: ExportSpec, count: number, shard: number): SafetensorsLayout {
  const categories = Object.fromEntries(spec.categories.map((category) => [category.name, category.index]));
  return safetensorsLayout(
    [
      { name: 'data', dtype: 'U8', shape: [count, spec.height, spec.width, spec.channels] },
      { name: 'labels', dtype: 'I64', shape: [count] },
      { name: 'ids', dtype: 'I64', shape: [count] },
    ],
    {
      dataset: spec.datasetName,
      revision: String(spec.revision),
      split: spec.split,
      shard: String(shard),
      layout: 'nhwc',
      categories: JSON.stringify(categories),
    },
  );
}
