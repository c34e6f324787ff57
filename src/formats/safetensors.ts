/**
 * The safetensors container: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian tensor bytes. The header is
 * built first from sizes alone, so the body can be streamed behind it. The reader is the
 * client's (`parseSafetensors` in @sensory/client).
 */
export type SafetensorsDtype = 'U8' | 'I32' | 'I64' | 'F32';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { U8: 1, I32: 4, I64: 8, F32: 4 };

export function tensorBytes(spec: TensorSpec): number {
  return spec.shape.reduce((product, side) => product * side, BYTES_PER_ELEMENT[spec.dtype]);
}

export interface SafetensorsLayout {
  /** Length prefix and JSON header, padded with spaces to a multiple of 8 bytes. */
  readonly head: Buffer;
  readonly totalBytes: number;
}

/** Tensors are laid out in the order given; metadata values must be strings. */
export function safetensorsLayout(tensors: readonly TensorSpec[], metadata: Record<string, string>): SafetensorsLayout {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const tensor of tensors) {
    const size = tensorBytes(tensor);
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return { head, totalBytes: head.length + offset };
}
