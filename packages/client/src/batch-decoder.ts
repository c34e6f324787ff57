import { endianness } from 'node:os';
import { parseSafetensors } from './safetensors.reader.js';
import type { OrderStatus } from './types.js';

/** Index labels as int32 or (labelDtype int64) int64, or one-hot rows. */
export type LabelArray = Int32Array | BigInt64Array | Uint8Array;

interface BatchCommon<Labels extends LabelArray> {
  /** [N, height, width, channels], or [N, channels, height, width] when `layout` is nchw. */
  readonly shape: [number, number, number, number];
  readonly layout: 'nhwc' | 'nchw';
  /**
   * N category indices (Int32Array; BigInt64Array when the batch asked for labelDtype int64) or
   * N×K uint8 one-hot rows, row-major.
   */
  readonly labels: Labels;
  readonly labelShape: [number] | [number, number];
  readonly ids: number[];
  readonly revision: number;
  readonly seed: number;
  /** Category name → label index, at the batch's revision. */
  readonly categories: Record<string, number>;
  readonly dataset: string;
}

/**
 * A batch decoded from safetensors: `data` is N×H×W×C (or N×C×H×W) row-major, uint8 or float32
 * (value/255). `Labels` is BigInt64Array for a batch asked with labelDtype int64.
 */
export type Batch<Labels extends LabelArray = Int32Array | Uint8Array> = BatchCommon<Labels> &
  ({ readonly dtype: 'uint8'; readonly data: Uint8Array } | { readonly dtype: 'float32'; readonly data: Float32Array });

/** One poll of an order: a batch plus which order slots it holds and what is left. */
export type PolledBatch = Batch & {
  /** The order's sample slots these samples fill (0 … size-1), each delivered once. */
  readonly slots: number[];
  /** Samples of the order not yet delivered after these. */
  readonly remaining: number;
  /** No more samples will come. */
  readonly done: boolean;
  readonly status: OrderStatus;
};

const LITTLE_ENDIAN = endianness() === 'LE';

type ViewType = typeof Int32Array | typeof Float32Array | typeof BigInt64Array;

/** A typed view on the bytes when they are aligned (and the host little-endian), else a copy. */
function view<T extends ViewType>(Type: T, bytes: Buffer): InstanceType<T> {
  const size = Type.BYTES_PER_ELEMENT;
  const length = bytes.length / size;
  if (LITTLE_ENDIAN && bytes.byteOffset % size === 0) return new Type(bytes.buffer as ArrayBuffer, bytes.byteOffset, length) as InstanceType<T>;
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (Type === BigInt64Array) return BigInt64Array.from({ length }, (_, i) => data.getBigInt64(i * 8, true)) as InstanceType<T>;
  if (Type === Float32Array) return Float32Array.from({ length }, (_, i) => data.getFloat32(i * 4, true)) as InstanceType<T>;
  return Int32Array.from({ length }, (_, i) => data.getInt32(i * 4, true)) as InstanceType<T>;
}

function labelArray(labels: { dtype: string; data: Buffer }): LabelArray {
  if (labels.dtype === 'I32') return view(Int32Array, labels.data);
  if (labels.dtype === 'I64') return view(BigInt64Array, labels.data);
  return new Uint8Array(labels.data.buffer, labels.data.byteOffset, labels.data.length);
}

export function decodeBatch<Labels extends LabelArray = Int32Array | Uint8Array>(file: Buffer): Batch<Labels> {
  return decode(file).batch as Batch<Labels>;
}

function decode(file: Buffer): { batch: Batch<LabelArray>; metadata: Record<string, string> } {
  const { metadata, tensors } = parseSafetensors(file);
  const data = tensors.data;
  const labels = tensors.labels;
  if (!data || !labels) throw new Error('the safetensors answer lacks its data or labels tensor');
  const common = {
    shape: data.shape as [number, number, number, number],
    layout: metadata.layout === 'nchw' ? ('nchw' as const) : ('nhwc' as const),
    labels: labelArray(labels),
    labelShape: labels.shape as [number] | [number, number],
    ids: JSON.parse(metadata.ids ?? '[]') as number[],
    revision: Number(metadata.revision),
    seed: Number(metadata.seed),
    categories: JSON.parse(metadata.categories ?? '{}') as Record<string, number>,
    dataset: metadata.dataset ?? '',
  };
  const batch: Batch<LabelArray> =
    data.dtype === 'F32'
      ? { ...common, dtype: 'float32', data: view(Float32Array, data.data) }
      : { ...common, dtype: 'uint8', data: new Uint8Array(data.data.buffer, data.data.byteOffset, data.data.length) };
  return { batch, metadata };
}

export function decodePoll(file: Buffer): PolledBatch {
  const { batch, metadata } = decode(file);
  return {
    ...(batch as Batch),
    slots: JSON.parse(metadata.slots ?? '[]') as number[],
    remaining: Number(metadata.remaining),
    done: metadata.done === 'true',
    status: metadata.status as OrderStatus,
  };
}
