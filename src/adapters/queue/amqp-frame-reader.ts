import { FRAME_BODY, FRAME_END, FRAME_MIN_SIZE, FRAME_PREFIX } from './amqp-wire.js';

/** What the frame reader hands its owner. */
export interface FrameSink {
  /**
   * Where the payload of a body frame of `size` bytes on `channel` goes: a buffer and the offset
   * of its first byte there, or undefined to let it pass unkept (a message being dropped). Throws
   * when no body is expected there or it would pass its message's end.
   */
  bodyTarget(channel: number, size: number): { readonly buffer: Buffer; readonly offset: number } | undefined;
  /** A whole frame: for a body frame `payload` is empty (its bytes went to bodyTarget's buffer). */
  frame(type: number, channel: number, payload: Buffer): void;
}

/**
 * Cuts a byte stream into AMQP frames — type, channel, size, payload, end octet — across reads of
 * any length, copying nothing it need not: a method or header frame's payload into one buffer of
 * the frame size (reused), a body frame's payload once, straight where the sink says. A frame
 * over the frame size or without its end octet throws (the stream is out of step: the
 * connection must go).
 */
export class FrameReader {
  private readonly prefix = Buffer.alloc(FRAME_PREFIX);
  private prefixHave = 0;
  private phase: 'prefix' | 'payload' | 'end' = 'prefix';
  private type = 0;
  private channel = 0;
  private size = 0;
  private have = 0;
  private body: { readonly buffer: Buffer; readonly offset: number } | undefined;
  private payload = Buffer.alloc(FRAME_MIN_SIZE);
  private max = FRAME_MIN_SIZE;

  constructor(private readonly sink: FrameSink) {}

  /** The largest frame accepted, prefix and end octet included (the handshake runs under the protocol's minimum). */
  get frameMax(): number {
    return this.max;
  }

  set frameMax(bytes: number) {
    this.max = Math.max(FRAME_MIN_SIZE, bytes);
    if (this.payload.length < this.max) this.payload = Buffer.alloc(this.max);
  }

  /** Reads `chunk[0, end)`; the chunk may be reused by the caller afterwards. */
  push(chunk: Buffer, end: number): void {
    let at = 0;
    while (at < end) {
      if (this.phase === 'prefix') {
        const n = Math.min(FRAME_PREFIX - this.prefixHave, end - at);
        chunk.copy(this.prefix, this.prefixHave, at, at + n);
        this.prefixHave += n;
        at += n;
        if (this.prefixHave === FRAME_PREFIX) this.begin();
      } else if (this.phase === 'payload') {
        const n = Math.min(this.size - this.have, end - at);
        if (this.type !== FRAME_BODY) chunk.copy(this.payload, this.have, at, at + n);
        else if (this.body) chunk.copy(this.body.buffer, this.body.offset + this.have, at, at + n);
        this.have += n;
        at += n;
        if (this.have === this.size) this.phase = 'end';
      } else {
        if (chunk[at++] !== FRAME_END) throw new Error('a frame without its end octet (the stream is out of step)');
        this.phase = 'prefix';
        this.prefixHave = 0;
        this.sink.frame(this.type, this.channel, this.type === FRAME_BODY ? EMPTY : this.payload.subarray(0, this.size));
      }
    }
  }

  private begin(): void {
    this.type = this.prefix.readUInt8(0);
    this.channel = this.prefix.readUInt16BE(1);
    this.size = this.prefix.readUInt32BE(3);
    this.have = 0;
    if (this.size + FRAME_PREFIX + 1 > this.max) throw new Error(`a frame of ${this.size} bytes, over the negotiated frame size ${this.max}`);
    this.body = this.type === FRAME_BODY ? this.sink.bodyTarget(this.channel, this.size) : undefined;
    this.phase = this.size === 0 ? 'end' : 'payload';
  }
}

const EMPTY = Buffer.alloc(0);
