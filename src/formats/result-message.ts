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

/** Typed-array views write and read the numbers directly where the platform is little-endian (it is everywhere Node runs today). */
const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The fields of a message, without its pixels. */
export type ResultMessageFields = Omit<ResultMessage, 'pixels'>;

/**
 * A message with its header and numbers written and its pixel area left to fill (`pixels`, a
 * view into `body`): the producer renders the records straight into the message, no copy.
 */
export function allocateResultMessage(message: ResultMessageFields, allocate: (bytes: number) => Buffer = Buffer.allocUnsafeSlow): { body: Buffer; pixels: Uint8Array } {
  const n = message.slots.length;
  if (message.to - message.from !== n || [message.ids, message.labels, message.epochs, message.augments].some((a) => a.length !== n)) {
    throw new RangeError('a result message needs one slot, id, label, epoch and augmentation per position');
  }
  if (!/^[\x20-\x7e]{1,40}$/.test(message.orderId)) throw new RangeError('an order id is 1–40 printable ASCII characters');
  // `allocate` gives a buffer at an offset that is a multiple of 8 (allocUnsafeSlow and the chunk
  // pool give offset 0), so the typed-array views below are aligned; its contents may be anything:
  // every byte but the pixels is written here (the padding zeroed), the pixels are the caller's.
  const out = allocate(messageBytes(n, message.recordBytes));
  if (out.byteOffset % 8 !== 0) throw new RangeError('a result message is allocated at an offset that is a multiple of 8');
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt32LE(n, 4);
  out.writeUInt32LE(message.recordBytes, 8);
  out.writeUInt32LE(message.generation, 12);
  out.writeUInt32LE(message.stream, 16);
  out.writeUInt32LE(message.run, 20);
  out.writeDoubleLE(message.from, 24);
  out.write(message.orderId.padEnd(ID_BYTES, '\0'), 32, ID_BYTES, 'ascii');
  let at = HEADER;
  if (NATIVE_LE) {
    const doubles = new Float64Array(out.buffer, out.byteOffset + HEADER, 4 * n);
    for (let i = 0; i < n; i++) {
      doubles[i] = message.slots[i];
      doubles[n + i] = message.ids[i];
      doubles[2 * n + 2 * i] = message.augments[i].rotation;
      doubles[2 * n + 2 * i + 1] = message.augments[i].scale;
    }
    const words = new Int32Array(out.buffer, out.byteOffset + HEADER + 32 * n, 2 * n);
    for (let i = 0; i < n; i++) {
      words[i] = message.labels[i];
      words[n + i] = message.epochs[i];
    }
    at = HEADER + 40 * n;
  } else {
    for (const slot of message.slots) at = out.writeDoubleLE(slot, at);
    for (const id of message.ids) at = out.writeDoubleLE(id, at);
    for (const augment of message.augments) at = out.writeDoubleLE(augment.scale, out.writeDoubleLE(augment.rotation, at));
    for (const label of message.labels) at = out.writeInt32LE(label, at);
    for (const epoch of message.epochs) at = out.writeUInt32LE(epoch, at);
  }
  const start = align8(at);
  out.fill(0, at, start);
  return { body: out, pixels: out.subarray(start, start + n * message.recordBytes) };
}

export function encodeResultMessage(message: ResultMessage): Buffer {
  if (message.pixels.length !== message.slots.length * message.recordBytes) throw new RangeError('a result message needs one pixel record per position');
  const { body, pixels } = allocateResultMessage(message);
  pixels.set(message.pixels);
  return body;
}

export function decodeResultMessage(body: Buffer): ResultMessage {
  if (body.length < HEADER || body.toString('ascii', 0, 4) !== MAGIC) throw new Error('not a result message of this version');
  const n = body.readUInt32LE(4);
  const recordBytes = body.readUInt32LE(8);
  if (body.length !== messageBytes(n, recordBytes)) throw new Error('a result message of the wrong length');
  const from = body.readDoubleLE(24);
  const slots = new Array<number>(n);
  const ids = new Array<number>(n);
  const augments = new Array<Augment>(n);
  const labels = new Array<number>(n);
  const epochs = new Array<number>(n);
  if (NATIVE_LE && (body.byteOffset + HEADER) % 8 === 0) {
    const doubles = new Float64Array(body.buffer, body.byteOffset + HEADER, 4 * n);
    const words = new Int32Array(body.buffer, body.byteOffset + HEADER + 32 * n, 2 * n);
    for (let i = 0; i < n; i++) {
      slots[i] = doubles[i];
      ids[i] = doubles[n + i];
      augments[i] = { rotation: doubles[2 * n + 2 * i], scale: doubles[2 * n + 2 * i + 1] };
      labels[i] = words[i];
      epochs[i] = words[n + i] >>> 0;
    }
  } else {
    for (let i = 0; i < n; i++) {
      slots[i] = body.readDoubleLE(HEADER + 8 * i);
      ids[i] = body.readDoubleLE(HEADER + 8 * (n + i));
      augments[i] = { rotation: body.readDoubleLE(HEADER + 16 * n + 16 * i), scale: body.readDoubleLE(HEADER + 16 * n + 16 * i + 8) };
      labels[i] = body.readInt32LE(HEADER + 32 * n + 4 * i);
      epochs[i] = body.readUInt32LE(HEADER + 36 * n + 4 * i);
    }
  }
  const start = align8(HEADER + 40 * n);
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
