import { categoryMap, dataShape, labelIndexes, type BatchPlan } from '../domain/batch-plan.js';
import type { EncodedBatch, Render } from './encoded-batch.js';
import { jsonSampleChunks } from './pixel-json.js';

/** The JSON batch of the modern API; `data` comes last so it can be streamed sample by sample. */
export function encodeJson(plan: BatchPlan, render: Render, extra: Record<string, unknown> = {}): EncodedBatch {
  const k = plan.categories.length;
  const labels = labelIndexes(plan).map((index) => (plan.labels === 'index' ? index : Array.from({ length: k }, (_, i) => (i === index ? 1 : 0))));
  const head = JSON.stringify({
    ids: plan.samples.map((sample) => sample.id),
    labels,
    shape: dataShape(plan),
    dtype: plan.dtype,
    ...(plan.labels === 'index' ? { labelDtype: plan.labelDtype ?? 'int32' } : {}),
    layout: plan.layout ?? 'nhwc',
    revision: plan.revision,
    seed: plan.seed,
    categories: categoryMap(plan),
    augment: plan.augments,
    ...extra,
  });
  return { chunks: jsonSampleChunks(plan, render, `${head.slice(0, -1)},"data":[`, ']}') };
}
