import type { Augment } from './augmentation.js';
import type { DatasetShape } from './dataset-shape.js';

export type Dtype = 'uint8' | 'float32';
export type LabelForm = 'index' | 'onehot';
/** The integer type of index labels: int64 is what PyTorch's losses take without a conversion. */
export type LabelDtype = 'int32' | 'int64';
/** The order of a sample's axes: height × width × channels, or channels first as convolutions take it. */
export type Layout = 'nhwc' | 'nchw';

/** What a plan needs of its dataset: its identity and shape. */
export interface PlanDataset extends DatasetShape {
  readonly id: number;
  readonly name: string;
}

/** One drawn sample: its id, its label at the plan's revision, and where its pixels are. */
export interface PlanSample {
  readonly id: number;
  readonly categoryIndex: number;
  readonly pixelSlot: number;
}

export interface PlanCategory {
  readonly name: string;
  readonly index: number;
}

/**
 * Everything a batch response needs, decided before a single pixel is read: the samples in
 * response order, each one's augmentation, the category map at the plan's revision, and the
 * response's dtype and label form. Small batches and order polls are both plans.
 */
export interface BatchPlan {
  readonly dataset: PlanDataset;
  readonly revision: number;
  readonly seed: number;
  readonly samples: readonly PlanSample[];
  readonly augments: readonly Augment[];
  /** The category map at the plan's revision, by index. */
  readonly categories: readonly PlanCategory[];
  readonly dtype: Dtype;
  readonly labels: LabelForm;
  /** Index labels only (one-hot rows are uint8); int32 when absent. */
  readonly labelDtype?: LabelDtype;
  /** nhwc when absent. */
  readonly layout?: Layout;
}

/** [N, H, W, C] or [N, C, H, W]: the shape of a plan's data tensor in its layout. */
export function dataShape(plan: Pick<BatchPlan, 'samples' | 'dataset' | 'layout'>): [number, number, number, number] {
  const { width, height, channels } = plan.dataset;
  const n = plan.samples.length;
  return plan.layout === 'nchw' ? [n, channels, height, width] : [n, height, width, channels];
}

export function categoryMap(plan: Pick<BatchPlan, 'categories'>): Record<string, number> {
  return Object.fromEntries(plan.categories.map((category) => [category.name, category.index]));
}

export function labelIndexes(plan: Pick<BatchPlan, 'samples'>): number[] {
  return plan.samples.map((sample) => sample.categoryIndex);
}
