import type { Augment } from '../domain/augmentation.js';
import type { PositionRange } from '../domain/position-ranges.js';

/**
 * One result message: consecutive positions [from, to) of one stream of an order, with their
 * slots, sample ids, labels, epochs, augmentations and uint8 pixels (one record per position).
 * A worker publishes it; a poll hands out all of it or part of it and puts the rest back.
 *
 * Layout (version 2, little-endian), every array at an offset that is a multiple of 8:
 *   0  "SRM2"            4  u32 count n       8  u32 record bytes   12 u32 generation
 *   16 u32 stream        20 u32 run           24 f64 from           32 order id, 40 bytes of ASCII
 *   72 f64[n] slots, f64[n] ids, f64[2n] augments (rotation, scale), i32[n] labels,
 *      u32[n] epochs, padding to 8, then n × record bytes of pixels.
 * Decoding copies the few numbers and shares the pixels (no copy).
 */

export interface ResultMessage {
  readonly orderId: string;
  readonly generation: number;
  readonly stream: number;
  /** The production run that made it: a message of an earlier run is stale. */
  readonly run: number;
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
  readonly slots: readonly number[];
  readonly ids: readonly number[];
  readonly labels: readonly number[];
  readonly epochs: readonly number[];
  readonly augments: readonly Augment[];
  readonly recordBytes: number;
  readonly pixels: Uint8Array;
}

const MAGIC = 'SRM2';
const HEADER = 72;
const ID_BYTES = 40;

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** The size of a message of `count` records. */
export function messageBytes(count: number, recordBytes: number): number {
  return HEADER + align8(count * (8 + 8 + 16 + 4 + 4)) + count * recordBytes;
}

export function encodeResultMessage(message: ResultMessage): Buffer {
  const n = message.slots.length;
  if (message.to - message.from !== n || [message.ids, message.labels, message.epochs, message.augments].some((a) => a.length !== n)) {
    throw new RangeError('a result message needs one slot, id, label, epoch and augmentation per position');
  }
  if (message.pixels.length !== n * message.recordBytes) throw new RangeError('a result message needs one pixel record per position');
  if (!/^[\x20-\x7e]{1,40}$/.test(message.orderId)) throw new RangeError('an order id is 1–40 printable ASCII characters');
  const out = Buffer.alloc(messageBytes(n, message.recordBytes));
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt32LE(n, 4);
  out.writeUInt32LE(message.recordBytes, 8);
  out.writeUInt32LE(message.generation, 12);
  out.writeUInt32LE(message.stream, 16);
  out.writeUInt32LE(message.run, 20);
  out.writeDoubleLE(message.from, 24);
  out.write(message.orderId.padEnd(ID_BYTES, '\0'), 32, ID_BYTES, 'ascii');
  let at = HEADER;
  for (const slot of message.slots) at = out.writeDoubleLE(slot, at);
  for (const id of message.ids) at = out.writeDoubleLE(id, at);
  for (const augment of message.augments) at = out.writeDoubleLE(augment.scale, out.writeDoubleLE(augment.rotation, at));
  for (const label of message.labels) at = out.writeInt32LE(label, at);
  for (const epoch of message.epochs) at = out.writeUInt32LE(epoch, at);
  out.set(message.pixels, align8(at));
  return out;
}

export function decodeResultMessage(body: Buffer): ResultMessage {
  if (body.length < HEADER || body.toString('ascii', 0, 4) !== MAGIC) throw new Error('not a result message of this version');
  const n = body.readUInt32LE(4);
  const recordBytes = body.readUInt32LE(8);
  if (body.length !== messageBytes(n, recordBytes)) throw new Error('a result message of the wrong length');
  const from = body.readDoubleLE(24);
  let at = HEADER;
  const read = (width: number, get: (offset: number) => number) =>
    Array.from({ length: n }, () => {
      const value = get(at);
      at += width;
      return value;
    });
  const slots = read(8, (o) => body.readDoubleLE(o));
  const ids = read(8, (o) => body.readDoubleLE(o));
  const augments = Array.from({ length: n }, () => {
    const augment = { rotation: body.readDoubleLE(at), scale: body.readDoubleLE(at + 8) };
    at += 16;
    return augment;
  });
  const labels = read(4, (o) => body.readInt32LE(o));
  const epochs = read(4, (o) => body.readUInt32LE(o));
  const start = align8(at);
  return {
    orderId: body.toString('ascii', 32, 32 + ID_BYTES).replace(/\0+$/, ''),
    generation: body.readUInt32LE(12),
    stream: body.readUInt32LE(16),
    run: body.readUInt32LE(20),
    from,
    to: from + n,
    slots,
    ids,
    labels,
    epochs,
    augments,
    recordBytes,
    pixels: body.subarray(start, start + n * recordBytes),
  };
}

/** The part of a message at positions [range.from, range.to) (inside it): shares the pixels. */
export function sliceResultMessage(message: ResultMessage, range: PositionRange): ResultMessage {
  if (range.from === message.from && range.to === message.to) return message;
  const a = range.from - message.from;
  const b = range.to - message.from;
  if (a < 0 || b > message.to - message.from || b < a) throw new RangeError(`positions ${range.from}…${range.to} are not inside the message ${message.from}…${message.to}`);
  return {
    ...message,
    from: range.from,
    to: range.to,
    slots: message.slots.slice(a, b),
    ids: message.ids.slice(a, b),
    labels: message.labels.slice(a, b),
    epochs: message.epochs.slice(a, b),
    augments: message.augments.slice(a, b),
    pixels: message.pixels.subarray(a * message.recordBytes, b * message.recordBytes),
  };
}
