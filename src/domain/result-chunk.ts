import type { Augment } from './augmentation.js';

/**
 * One result message: some slots of an order with their sample ids, label indices,
 * augmentations and uint8 pixels (one record per slot, in slot order). Slots stay attached to
 * their data, so a poll can hand out part of a message and put the rest back.
 */
export interface ResultChunk {
  readonly orderId: string;
  readonly slots: readonly number[];
  readonly ids: readonly number[];
  readonly labels: readonly number[];
  readonly augments: readonly Augment[];
  readonly recordBytes: number;
  readonly pixels: Uint8Array;
}

const VERSION = 1;

export function encodeChunk(chunk: ResultChunk): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      v: VERSION,
      orderId: chunk.orderId,
      slots: chunk.slots,
      ids: chunk.ids,
      labels: chunk.labels,
      augments: chunk.augments,
      recordBytes: chunk.recordBytes,
    }),
    'utf8',
  );
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(header.length, 0);
  return Buffer.concat([prefix, header, chunk.pixels]);
}

export function decodeChunk(message: Buffer): ResultChunk {
  const headerLength = message.readUInt32LE(0);
  const header = JSON.parse(message.subarray(4, 4 + headerLength).toString('utf8'));
  if (header.v !== VERSION) throw new Error(`result message version ${header.v} is not ${VERSION}`);
  const pixels = message.subarray(4 + headerLength);
  if (pixels.length !== header.slots.length * header.recordBytes) throw new Error('result message pixels do not match its slots');
  return { ...header, pixels };
}

/** The part of a chunk holding `keep` (a subset of its slots), in the chunk's order. */
export function selectSlots(chunk: ResultChunk, keep: ReadonlySet<number>): ResultChunk {
  // The common case, a message kept whole, shares its pixels instead of copying them.
  if (keep.size === chunk.slots.length && chunk.slots.every((slot) => keep.has(slot))) return chunk;
  const positions = chunk.slots.flatMap((slot, i) => (keep.has(slot) ? [i] : []));
  const pixels = new Uint8Array(positions.length * chunk.recordBytes);
  positions.forEach((position, i) => pixels.set(chunk.pixels.subarray(position * chunk.recordBytes, (position + 1) * chunk.recordBytes), i * chunk.recordBytes));
  return {
    orderId: chunk.orderId,
    slots: positions.map((i) => chunk.slots[i]),
    ids: positions.map((i) => chunk.ids[i]),
    labels: positions.map((i) => chunk.labels[i]),
    augments: positions.map((i) => chunk.augments[i]),
    recordBytes: chunk.recordBytes,
    pixels,
  };
}
