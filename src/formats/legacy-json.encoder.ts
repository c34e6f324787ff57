import type { BatchPlan } from '../domain/batch-plan.js';
import type { DatasetShape } from '../domain/dataset-shape.js';
import type { EncodedBatch, Render } from './encoded-batch.js';
import { jsonSampleChunks, uint8SampleJson } from './pixel-json.js';

/** The dicebox `request` answer: `{"labels": [[i], …], "data": N×H×W×C}`, streamed. */
export function encodeLegacyBatch(plan: BatchPlan, render: Render): EncodedBatch {
  const labels = JSON.stringify(plan.samples.map((sample) => [sample.categoryIndex]));
  return { chunks: jsonSampleChunks(plan, render, `{"labels":${labels},"data":[`, ']}') };
}

/** The dicebox `poll` answer for one sample: `{"label": [i], "data": H×W×C}`. */
export function encodeLegacySample(label: number, pixels: Uint8Array, shape: DatasetShape): Buffer {
  return Buffer.concat([Buffer.from(`{"label":[${label}],"data":`), uint8SampleJson(pixels, shape), Buffer.from('}')]);
}

/** The dicebox `poll` answer when no sample is ready. */
export const LEGACY_NO_SAMPLE = { label: null, data: null } as const;
