import { endianness } from 'node:os';
import { parseSafetensors } from './safetensors.reader.js';
import type { OrderStatus } from './types.js';

interface BatchCommon {
  /** [N, height, width, channels] */
  readonly shape: [number, number, number, number];
  /** N (int32 category indices) or N×K (uint8 one-hot rows), row-major. */
  readonly labels: Int32Array | Uint8Array;
  readonly labelShape: [number] | [number, number];
  readonly ids: number[];
  readonly revision: number;
  readonly seed: number;
  /** Category name → label index, at the batch's revision. */
  readonly categories: Record<string, number>;
  readonly dataset: string;
}

/** A batch decoded from safetensors: `data` is N×H×W×C row-major, uint8 or float32 (value/255). */
export type Batch = BatchCommon & ({ readonly dtype: 'uint8'; readonly data: Uint8Array } | { readonly dtype: 'float32'; readonly data: Float32Array });

/** One poll of an order: a batch plus which order slots it holds and what is left. */
export type PolledBatch = Batch & {
  /** The order's sample slots these samples fill, each delivered once. */
  readonly slots: number[];
  /** The epoch of each sample. */
  readonly epochs: number[];
  /** The rank these samples are for, in the order's current generation. */
  readonly rank: number;
  readonly generation: number;
  /** Cursor mode: the cursor after these samples (send it as cursor and ack; keep it in a checkpoint). */
  readonly cursor?: string;
  /** Samples of the rank not yet delivered after these. */
  readonly remaining: number;
  /** No more samples will come for the rank. */
  readonly done: boolean;
  readonly status: OrderStatus;
};

const LITTLE_ENDIAN = endianness() === 'LE';

/** A typed view on the bytes when they are aligned (and the host little-endian), else a copy. */
function view<T extends Int32Array | Float32Array>(Type: { new (buffer: ArrayBufferLike, offset: number, length: number): T; new (length: number): T }, bytes: Buffer): T {
  const length = bytes.length / 4;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Type(bytes.buffer, bytes.byteOffset, length);
  const out = new Type(length);
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < length; i++) out[i] = Type === (Float32Array as unknown) ? data.getFloat32(i * 4, true) : data.getInt32(i * 4, true);
  return out;
}

export function decodeBatch(file: Buffer): Batch {
  return decode(file).batch;
}

function decode(file: Buffer): { batch: Batch; metadata: Record<string, string> } {
  const { metadata, tensors } = parseSafetensors(file);
  const data = tensors.data;
  const labels = tensors.labels;
  if (!data || !labels) throw new Error('the safetensors answer lacks its data or labels tensor');
  const common = {
    shape: data.shape as [number, number, number, number],
    labels: labels.dtype === 'I32' ? view(Int32Array, labels.data) : new Uint8Array(labels.data.buffer, labels.data.byteOffset, labels.data.length),
    labelShape: labels.shape as [number] | [number, number],
    ids: JSON.parse(metadata.ids ?? '[]') as number[],
    revision: Number(metadata.revision),
    seed: Number(metadata.seed),
    categories: JSON.parse(metadata.categories ?? '{}') as Record<string, number>,
    dataset: metadata.dataset ?? '',
  };
  const batch: Batch =
    data.dtype === 'F32'
      ? { ...common, dtype: 'float32', data: view(Float32Array, data.data) }
      : { ...common, dtype: 'uint8', data: new Uint8Array(data.data.buffer, data.data.byteOffset, data.data.length) };
  return { batch, metadata };
}

export function decodePoll(file: Buffer): PolledBatch {
  const { batch, metadata } = decode(file);
  return {
    ...batch,
    slots: JSON.parse(metadata.slots ?? '[]') as number[],
    epochs: JSON.parse(metadata.epochs ?? '[]') as number[],
    rank: Number(metadata.rank ?? 0),
    generation: Number(metadata.generation ?? 0),
    ...(metadata.cursor !== undefined ? { cursor: metadata.cursor } : {}),
    remaining: Number(metadata.remaining),
    done: metadata.done === 'true',
    status: metadata.status as OrderStatus,
  };
}
