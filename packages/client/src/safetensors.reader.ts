/**
 * A reader of the safetensors container: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the raw little-endian tensor bytes.
 */
export type SafetensorsDtype = 'U8' | 'I32' | 'I64' | 'F32';

export interface ParsedSafetensors {
  readonly metadata: Record<string, string>;
  readonly tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; data: Buffer }>;
}

/** The tensors are views into `file`, not copies. */
export function parseSafetensors(file: Buffer): ParsedSafetensors {
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, any>;
  const body = file.subarray(8 + headerLength);
  const tensors: ParsedSafetensors['tensors'] = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = value.data_offsets as [number, number];
    tensors[name] = { dtype: value.dtype, shape: value.shape, data: body.subarray(start, end) };
  }
  return { metadata: header.__metadata__ ?? {}, tensors };
}
