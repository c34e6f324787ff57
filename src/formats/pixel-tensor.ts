import type { Dtype, Layout } from '../domain/batch-plan.js';
import { recordBytes, type DatasetShape } from '../domain/dataset-shape.js';

/** What byte v becomes as float32: v / 255 rounded to single precision. */
export const FLOAT_OF_BYTE = Float32Array.from({ length: 256 }, (_, value) => value / 255);

export function valueBytes(dtype: Dtype): number {
  return dtype === 'float32' ? 4 : 1;
}

/** True when the tensor's bytes are the stored records themselves (uint8, channels last). */
export function isRecordLayout(dtype: Dtype, layout: Layout | undefined, shape: DatasetShape): boolean {
  return dtype === 'uint8' && (layout !== 'nchw' || shape.channels === 1);
}

/**
 * Writes `count` stored records (H×W×C uint8 each) from `source` into `target` as the data
 * tensor's bytes in `dtype` and `layout`: float32 values v / 255, and channels first by reading
 * each channel's plane out of the interleaved record. `target` must be 4-byte aligned for float32.
 */
export function writeTensorValues(source: Uint8Array, count: number, shape: DatasetShape, dtype: Dtype, layout: Layout | undefined, target: Uint8Array): void {
  const record = recordBytes(shape);
  const values = count * record;
  const channels = shape.channels;
  const plane = shape.width * shape.height;
  const interleaved = layout !== 'nchw' || channels === 1;
  if (dtype === 'uint8') {
    if (interleaved) {
      target.set(source.subarray(0, values));
      return;
    }
    for (let base = 0; base < values; base += record) {
      for (let c = 0; c < channels; c++) {
        let at = base + c * plane;
        for (let p = base + c, end = base + record; p < end; p += channels) target[at++] = source[p];
      }
    }
    return;
  }
  if (target.byteOffset % 4 !== 0) throw new Error('a float32 tensor chunk must start at a multiple of 4 bytes');
  const out = new Float32Array(target.buffer, target.byteOffset, values);
  if (interleaved) {
    for (let i = 0; i < values; i++) out[i] = FLOAT_OF_BYTE[source[i]];
    return;
  }
  for (let base = 0; base < values; base += record) {
    for (let c = 0; c < channels; c++) {
      let at = base + c * plane;
      for (let p = base + c, end = base + record; p < end; p += channels) out[at++] = FLOAT_OF_BYTE[source[p]];
    }
  }
}
