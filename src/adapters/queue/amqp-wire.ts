/**
 * The few AMQP 0-9-1 frames the result reader (amqp-result-reader.ts) speaks, as plain
 * functions: frames written into small buffers, method arguments read from a frame's payload.
 * No I/O here. Layout of a frame: type (1), channel (2), payload size (4), payload, 0xCE.
 */

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;
/** Type, channel and size before a frame's payload. */
export const FRAME_PREFIX = 7;
/** The smallest frame size a peer must accept (the handshake runs under it). */
export const FRAME_MIN_SIZE = 4096;

export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** (class << 16) | method, for the methods used here. */
export const METHOD = {
  connectionStart: (10 << 16) | 10,
  connectionStartOk: (10 << 16) | 11,
  connectionTune: (10 << 16) | 30,
  connectionTuneOk: (10 << 16) | 31,
  connectionOpen: (10 << 16) | 40,
  connectionOpenOk: (10 << 16) | 41,
  connectionClose: (10 << 16) | 50,
  connectionCloseOk: (10 << 16) | 51,
  channelOpen: (20 << 16) | 10,
  channelOpenOk: (20 << 16) | 11,
  channelClose: (20 << 16) | 40,
  channelCloseOk: (20 << 16) | 41,
  basicGet: (60 << 16) | 70,
  basicGetOk: (60 << 16) | 71,
  basicGetEmpty: (60 << 16) | 72,
  basicAck: (60 << 16) | 80,
  basicReject: (60 << 16) | 90,
  basicPublish: (60 << 16) | 40,
  basicNack: (60 << 16) | 120,
  confirmSelect: (85 << 16) | 10,
  confirmSelectOk: (85 << 16) | 11,
} as const;

export interface FieldTable {
  readonly [key: string]: string | boolean | FieldTable;
}

/** Writes method arguments in order; `frame()` wraps them as one method frame. */
export class MethodWriter {
  private readonly parts: Buffer[] = [];

  constructor(private readonly method: number) {}

  octet(value: number): this {
    this.parts.push(Buffer.from([value & 0xff]));
    return this;
  }

  short(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(value);
    this.parts.push(b);
    return this;
  }

  long(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value);
    this.parts.push(b);
    return this;
  }

  longlong(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(value));
    this.parts.push(b);
    return this;
  }

  shortstr(value: string): this {
    const text = Buffer.from(value, 'utf8');
    if (text.length > 255) throw new RangeError(`an AMQP short string is at most 255 bytes (got ${text.length})`);
    this.parts.push(Buffer.from([text.length]), text);
    return this;
  }

  longstr(value: Buffer): this {
    return this.long(value.length).raw(value);
  }

  /** A field table of strings ('S'), booleans ('t') and tables ('F'). */
  table(entries: FieldTable): this {
    const body = new MethodWriter(0);
    for (const [key, value] of Object.entries(entries)) {
      body.shortstr(key);
      if (typeof value === 'string') body.octet(0x53).longstr(Buffer.from(value, 'utf8'));
      else if (typeof value === 'boolean') body.octet(0x74).octet(value ? 1 : 0);
      else body.octet(0x46).table(value);
    }
    return this.longstr(body.args());
  }

  raw(bytes: Buffer): this {
    this.parts.push(bytes);
    return this;
  }

  args(): Buffer {
    return Buffer.concat(this.parts);
  }

  frame(channel: number): Buffer {
    const args = this.args();
    const out = Buffer.allocUnsafe(FRAME_PREFIX + 4 + args.length + 1);
    out.writeUInt8(FRAME_METHOD, 0);
    out.writeUInt16BE(channel, 1);
    out.writeUInt32BE(4 + args.length, 3);
    out.writeUInt32BE(this.method, 7);
    args.copy(out, 11);
    out.writeUInt8(FRAME_END, 11 + args.length);
    return out;
  }
}

export const HEARTBEAT_FRAME = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);

/** basic.ack of one delivery, or basic.reject (requeue or drop), as one 21-byte frame. */
export function settleFrame(channel: number, deliveryTag: number, outcome: 'ack' | 'requeue' | 'drop'): Buffer {
  const out = Buffer.allocUnsafe(FRAME_PREFIX + 4 + 9 + 1);
  out.writeUInt8(FRAME_METHOD, 0);
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(13, 3);
  out.writeUInt32BE(outcome === 'ack' ? METHOD.basicAck : METHOD.basicReject, 7);
  out.writeBigUInt64BE(BigInt(deliveryTag), 11);
  // ack: multiple = 0; reject: requeue bit.
  out.writeUInt8(outcome === 'requeue' ? 1 : 0, 19);
  out.writeUInt8(FRAME_END, 20);
  return out;
}

/** Reads method arguments from a payload (after its class and method ids). */
export class MethodReader {
  private at = 4;

  constructor(private readonly payload: Buffer) {}

  get method(): number {
    return this.payload.readUInt32BE(0);
  }

  octet(): number {
    return this.payload.readUInt8(this.take(1));
  }

  short(): number {
    return this.payload.readUInt16BE(this.take(2));
  }

  long(): number {
    return this.payload.readUInt32BE(this.take(4));
  }

  longlong(): number {
    return Number(this.payload.readBigUInt64BE(this.take(8)));
  }

  shortstr(): string {
    const n = this.octet();
    const at = this.take(n);
    return this.payload.toString('utf8', at, at + n);
  }

  longstr(): Buffer {
    const n = this.long();
    const at = this.take(n);
    return this.payload.subarray(at, at + n);
  }

  private take(n: number): number {
    const at = this.at;
    if (at + n > this.payload.length) throw new Error('an AMQP method frame shorter than its arguments');
    this.at += n;
    return at;
  }
}

/** The parts of an amqp:// URL the reader needs (credentials and vhost percent-decoded, as amqplib reads them). */
export interface AmqpAddress {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  /** Seconds; undefined: the broker's proposal. */
  readonly heartbeat?: number;
  /** Bytes; undefined: the broker's proposal. */
  readonly frameMax?: number;
}

export function parseAmqpUrl(url: string): AmqpAddress {
  const parsed = new URL(url);
  if (parsed.protocol !== 'amqp:') throw new Error(`the result reader speaks amqp: only (got ${parsed.protocol})`);
  const whole = (name: string) => {
    const raw = parsed.searchParams.get(name);
    if (raw === null) return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`the AMQP URL's ${name} must be a whole number`);
    return n;
  };
  const path = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port: parsed.port ? Number(parsed.port) : 5672,
    username: parsed.username ? decodeURIComponent(parsed.username) : 'guest',
    password: parsed.password ? decodeURIComponent(parsed.password) : 'guest',
    vhost: path === '' ? '/' : decodeURIComponent(path),
    heartbeat: whole('heartbeat'),
    frameMax: whole('frameMax'),
  };
}

const FRAME_END_BYTE = Buffer.from([FRAME_END]);

/**
 * The frames of a non-persistent publish of `body` to `queue` (the default exchange), as the
 * pieces to write in order: the body's bytes are views of `body`, never copied, so `body` must
 * not change until they were written. Body frames carry at most frameMax - 8 bytes each.
 */
export function publishFrames(channel: number, queue: string, body: Buffer, frameMax: number): Buffer[] {
  const pieces = [new MethodWriter(METHOD.basicPublish).short(0).shortstr('').shortstr(queue).octet(0).frame(channel)];
  const header = Buffer.allocUnsafe(FRAME_PREFIX + 15 + 1);
  header.writeUInt8(FRAME_HEADER, 0);
  header.writeUInt16BE(channel, 1);
  header.writeUInt32BE(15, 3);
  header.writeUInt16BE(60, 7); // class basic
  header.writeUInt16BE(0, 9); // weight
  header.writeBigUInt64BE(BigInt(body.length), 11);
  header.writeUInt16BE(0x1000, 19); // property flags: delivery-mode only
  header.writeUInt8(1, 21); // delivery-mode 1: not persistent
  header.writeUInt8(FRAME_END, 22);
  pieces.push(header);
  const most = frameMax - FRAME_PREFIX - 1;
  if (!(most > 0)) throw new RangeError(`a frame size of ${frameMax} leaves no room for a body`);
  for (let at = 0; at < body.length; at += most) {
    const size = Math.min(most, body.length - at);
    const prefix = Buffer.allocUnsafe(FRAME_PREFIX);
    prefix.writeUInt8(FRAME_BODY, 0);
    prefix.writeUInt16BE(channel, 1);
    prefix.writeUInt32BE(size, 3);
    pieces.push(prefix, body.subarray(at, at + size), FRAME_END_BYTE);
  }
  return pieces;
}
