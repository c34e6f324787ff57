import net from 'node:net';
import { releaseChunk, takeChunk } from '../../lib/chunk-pool.js';
import { FrameReader } from './amqp-frame-reader.js';
import {
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  HEARTBEAT_FRAME,
  METHOD,
  MethodReader,
  MethodWriter,
  PROTOCOL_HEADER,
  parseAmqpUrl,
  publishFrames,
  settleFrame,
  type AmqpAddress,
} from './amqp-wire.js';

/** A message taken with basic.get: its body is a chunk-pool buffer (lib/chunk-pool.ts), the taker's to give back. */
export interface TakenMessage {
  readonly body: Buffer;
  /**
   * Settles the message on the channel that delivered it, once; nothing when that channel or the
   * connection is gone (the broker has put the message back already).
   */
  settle(outcome: 'ack' | 'requeue' | 'drop'): void;
}

/** The broker closed a channel, e.g. 404 for a get from a queue that does not exist. */
export class ResultChannelClosed extends Error {
  constructor(readonly replyCode: number, replyText: string) {
    super(`the broker closed a result channel: ${replyCode} ${replyText}`);
  }
}

export interface ResultConnectionOptions {
  /** For the whole opening handshake. */
  readonly timeoutMs?: number;
  /** A larger message is dropped (rejected without requeue) as it arrives, never held in memory. */
  readonly maxBodyBytes?: number;
  readonly log?: (line: string) => void;
}

/** Bytes read from the socket at once into one reused buffer. */
const READ_BUFFER_BYTES = 256 * 1024;
const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The frame size asked for when the URL sets none (amqplib's default: RabbitMQ's too). */
const DEFAULT_FRAME_MAX = 131_072;
/** basic.get, ack and reject. */
const GET_CHANNEL = 1;
/** Publishes in confirm mode. */
const PUBLISH_CHANNEL = 2;

/** What a waiter on a channel is given: a method frame's arguments, or a whole message taken. */
type Answer = MethodReader | { readonly tag: number; readonly body: Buffer | undefined };

interface Waiter {
  readonly expect: readonly number[];
  resolve(answer: Answer | undefined): void;
  reject(error: Error): void;
}

interface Confirm {
  resolve(outcome: 'published' | 'full'): void;
  reject(error: Error): void;
}

interface Incoming {
  readonly tag: number;
  /** -1 until the content header frame came. */
  size: number;
  have: number;
  /** A pooled buffer of `size` bytes; undefined while the header is awaited, or for a message dropped as too large. */
  body: Buffer | undefined;
}

/**
 * A lean AMQP 0-9-1 connection for result messages of about 1 MiB each: it takes them (basic.get,
 * ack, reject) and publishes them (confirmed), nothing else. amqplib reassembles a message by
 * concatenating socket reads and then frames (2–3 copies and as many fresh buffers per message,
 * which kept the collector busy), and publishes through a fresh zeroed buffer per frame; here the
 * socket reads into one reused buffer and each body frame is copied once, straight into a
 * chunk-pool buffer of the message's size that the taker gives back once the message is settled,
 * and a publish hands views of the body to one gathered write (the kernel's copy is the only one).
 * One channel takes, one publishes; gets run one at a time, as the protocol wants for synchronous
 * methods. A frame larger than the negotiated frame size, a body longer than its header said, or
 * any frame out of place closes the connection with an error saying so (the broker then puts
 * back every message not acknowledged); a lost connection fails the calls in progress and every
 * later one.
 */
export class AmqpResultConnection {
  private readonly socket: net.Socket;
  private readonly address: AmqpAddress;
  private readonly maxBodyBytes: number;
  private readonly log: (line: string) => void;
  private readonly frames = new FrameReader({
    bodyTarget: (channel, size) => this.bodyTarget(channel, size),
    frame: (type, channel, payload) => this.frame(type, channel, payload),
  });
  /** The channel of the frame being handled. */
  private frameChannel = 0;
  /** The size of the body frame being read. */
  private bodyFrameBytes = 0;
  private incoming: Incoming | undefined;
  private readonly waiters = new Map<number, Waiter>();
  private channelOpen = false;
  /** Counts the reading channel's openings: a message settles only on the channel that delivered it. */
  private incarnation = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** The publishing channel in confirm mode, being opened or open; undefined when closed. */
  private publishing: Promise<void> | undefined;
  /** Publishes awaiting the broker's confirm, by sequence number (in order). */
  private readonly confirms = new Map<number, Confirm>();
  private publishSeq = 0;
  private failure: Error | undefined;
  private readonly closeListeners: ((error: Error) => void)[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sentSinceBeat = false;
  private lastReceived = Date.now();

  private constructor(url: string, options: ResultConnectionOptions) {
    this.address = parseAmqpUrl(url);
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.log = options.log ?? (() => undefined);
    this.socket = net.connect({
      host: this.address.host,
      port: this.address.port,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (bytes: number, buffer: Uint8Array) => {
          this.receive(buffer as Buffer, bytes);
          return true;
        },
      },
    });
    this.socket.on('error', (error) => this.fail(new Error(`the result connection failed: ${error.message}`)));
    this.socket.on('close', () => this.fail(new Error('the broker closed the result connection')));
  }

  /** Connects, authenticates (PLAIN), opens the vhost and the reading channel. */
  static async open(url: string, options: ResultConnectionOptions = {}): Promise<AmqpResultConnection> {
    const connection = new AmqpResultConnection(url, options);
    const timeoutMs = options.timeoutMs ?? 5000;
    const timer = setTimeout(() => connection.fail(new Error(`the result connection was not open after ${timeoutMs} ms`)), timeoutMs);
    try {
      await connection.handshake();
      return connection;
    } catch (error) {
      connection.fail(error as Error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Why the connection is gone; undefined while it works. */
  get closedBecause(): Error | undefined {
    return this.failure;
  }

  /** Called once when the connection is lost or closed. */
  onClose(listener: (error: Error) => void): void {
    if (this.failure) queueMicrotask(() => listener(this.failure!));
    else this.closeListeners.push(listener);
  }

  private async handshake(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.closeListeners.push(reject);
    });
    const start = this.expect(0, [METHOD.connectionStart]);
    this.write(PROTOCOL_HEADER);
    const offer = (await start) as MethodReader;
    offer.octet();
    offer.octet();
    offer.longstr(); // server properties
    const mechanisms = offer.longstr().toString('utf8').split(' ');
    if (!mechanisms.includes('PLAIN')) throw new Error(`the broker offers no PLAIN login (only ${mechanisms.join(', ')})`);
    const tune = this.expect(0, [METHOD.connectionTune]);
    const login = Buffer.from(`\0${this.address.username}\0${this.address.password}`, 'utf8');
    this.send(0, new MethodWriter(METHOD.connectionStartOk).table({ product: 'sensory result connection', capabilities: { authentication_failure_close: true } }).shortstr('PLAIN').longstr(login).shortstr('en_US'));
    // A refused login: the broker says why with connection.close (403) instead of tuning — it
    // does so for a client that announces authentication_failure_close, else it just hangs up.
    const tuning = (await tune) as MethodReader;
    const channelMax = tuning.short();
    const serverFrameMax = tuning.long();
    const serverHeartbeat = tuning.short();
    // The smaller of the broker's limit (0: none) and ours: the URL's frameMax, else amqplib's default.
    const frameMax = Math.max(FRAME_MIN_SIZE, Math.min(this.address.frameMax || DEFAULT_FRAME_MAX, serverFrameMax || Number.POSITIVE_INFINITY));
    const heartbeat = this.address.heartbeat ?? serverHeartbeat;
    this.send(0, new MethodWriter(METHOD.connectionTuneOk).short(channelMax).long(frameMax).short(heartbeat));
    this.frames.frameMax = frameMax;
    if (heartbeat > 0) this.beat(heartbeat);
    const opened = this.expect(0, [METHOD.connectionOpenOk]);
    this.send(0, new MethodWriter(METHOD.connectionOpen).shortstr(this.address.vhost).shortstr('').octet(0));
    await opened;
    await this.openChannel();
  }

  /** Heartbeats both ways: one sent when nothing else was for half the interval; silence for two intervals is a lost connection. */
  private beat(seconds: number): void {
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastReceived > 2 * seconds * 1000) {
        this.fail(new Error(`the broker sent nothing for ${2 * seconds} s (heartbeats missed)`));
        return;
      }
      if (!this.sentSinceBeat) this.write(HEARTBEAT_FRAME);
      this.sentSinceBeat = false;
    }, (seconds * 1000) / 2);
    this.heartbeatTimer.unref();
  }

  /** channel.open on `channel`, until the broker says it is open. */
  private async openChannelNumber(channel: number): Promise<void> {
    const opened = this.expect(channel, [METHOD.channelOpenOk]);
    this.send(channel, new MethodWriter(METHOD.channelOpen).shortstr(''));
    await opened;
  }

  private async openChannel(): Promise<void> {
    await this.openChannelNumber(GET_CHANNEL);
    this.incarnation++;
    this.channelOpen = true;
  }

  /**
   * Publishes `body` to `queue` (default exchange, not persistent) and resolves once the broker
   * confirms it: 'full' when it refused it (a bounded queue with reject-publish overflow). The
   * body is written as it is, not copied: it must not change until the promise settles. Rejects
   * when the connection or the channel is lost before the confirm (the message may or may not
   * have been queued).
   */
  async publish(queue: string, body: Buffer): Promise<'published' | 'full'> {
    if (this.failure) throw this.failure;
    this.publishing ??= this.openPublishing().catch((error: Error) => {
      this.publishing = undefined;
      throw error;
    });
    await this.publishing;
    if (this.failure) throw this.failure;
    const seq = ++this.publishSeq;
    const confirmed = new Promise<'published' | 'full'>((resolve, reject) => this.confirms.set(seq, { resolve, reject }));
    this.sentSinceBeat = true;
    this.socket.cork();
    for (const piece of publishFrames(PUBLISH_CHANNEL, queue, body, this.frames.frameMax)) this.socket.write(piece);
    this.socket.uncork();
    return confirmed;
  }

  private async openPublishing(): Promise<void> {
    await this.openChannelNumber(PUBLISH_CHANNEL);
    const selected = this.expect(PUBLISH_CHANNEL, [METHOD.confirmSelectOk]);
    this.send(PUBLISH_CHANNEL, new MethodWriter(METHOD.confirmSelect).octet(0));
    await selected;
    // Confirms count the channel's publishes from 1.
    this.publishSeq = 0;
  }

  /** basic.ack or basic.nack from the broker: the publishes up to `tag` (multiple) or `tag` alone. */
  private confirm(tag: number, multiple: boolean, outcome: 'published' | 'full'): void {
    for (const [seq, waiting] of this.confirms) {
      if (seq > tag) break;
      if (!multiple && seq !== tag) continue;
      this.confirms.delete(seq);
      waiting.resolve(outcome);
    }
  }

  private failConfirms(error: Error): void {
    const waiting = [...this.confirms.values()];
    this.confirms.clear();
    for (const confirm of waiting) confirm.reject(error);
  }

  /**
   * Takes the next message of `queue` (basic.get, not auto-acknowledged), or undefined when it
   * has none. Rejects with ResultChannelClosed when the broker closes the channel (the queue does
   * not exist, say): messages taken on it and not settled go back to their queues, and the next
   * call opens a channel again. Calls run one after another.
   */
  get(queue: string): Promise<TakenMessage | undefined> {
    const run = this.tail.then(() => this.getNow(queue));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async getNow(queue: string): Promise<TakenMessage | undefined> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (!this.channelOpen) await this.openChannel();
      const answer = this.expect(GET_CHANNEL, [METHOD.basicGetOk, METHOD.basicGetEmpty]);
      this.send(GET_CHANNEL, new MethodWriter(METHOD.basicGet).short(0).shortstr(queue).octet(0));
      const taken = await answer;
      if (!taken || taken instanceof MethodReader) return undefined;
      const incarnation = this.incarnation;
      if (taken.body === undefined) {
        // Too large to be a result message of any release: it cannot be served; dropped, not held.
        this.log(`dropped a message of queue ${queue} larger than ${this.maxBodyBytes} bytes`);
        this.settle(incarnation, taken.tag, 'drop');
        continue;
      }
      let settled = false;
      return {
        body: taken.body,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          this.settle(incarnation, taken.tag, outcome);
        },
      };
    }
  }

  private settle(incarnation: number, tag: number, outcome: 'ack' | 'requeue' | 'drop'): void {
    if (this.failure || !this.channelOpen || incarnation !== this.incarnation) return;
    this.write(settleFrame(GET_CHANNEL, tag, outcome));
  }

  /** Closes the connection (the broker puts back what was taken and not acknowledged). Safe twice. */
  async close(): Promise<void> {
    if (this.failure) return;
    const closed = this.expect(0, [METHOD.connectionCloseOk]).catch(() => undefined);
    this.send(0, new MethodWriter(METHOD.connectionClose).short(200).shortstr('closing').short(0).short(0));
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    this.fail(new Error('the result connection is closed'));
  }

  // ------------------------------------------------------------------ frames in

  private receive(chunk: Buffer, end: number): void {
    this.lastReceived = Date.now();
    if (this.failure) return;
    try {
      this.frames.push(chunk, end);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private bodyTarget(channel: number, size: number): { buffer: Buffer; offset: number } | undefined {
    const message = this.incoming;
    if (channel !== GET_CHANNEL || !message || message.size < 0) throw new Error('a body frame without a message to carry');
    if (message.have + size > message.size) throw new Error(`a body longer than the ${message.size} bytes its header announced`);
    this.bodyFrameBytes = size;
    return message.body ? { buffer: message.body, offset: message.have } : undefined;
  }

  private frame(type: number, channel: number, payload: Buffer): void {
    if (this.failure) return;
    this.frameChannel = channel;
    switch (type) {
      case FRAME_METHOD:
        return this.method(new MethodReader(payload));
      case FRAME_HEADER:
        return this.contentHeader(payload);
      case FRAME_BODY: {
        const message = this.incoming!;
        message.have += this.bodyFrameBytes;
        if (message.have === message.size) this.delivered();
        return;
      }
      case FRAME_HEARTBEAT:
        return;
      default:
        throw new Error(`a frame of unknown type ${type}`);
    }
  }

  private contentHeader(payload: Buffer): void {
    const message = this.incoming;
    if (this.frameChannel !== GET_CHANNEL || !message || message.size >= 0) throw new Error('a content header without a message to carry');
    const size = Number(payload.readBigUInt64BE(4));
    message.size = size;
    if (size <= this.maxBodyBytes) message.body = takeChunk(size);
    if (size === 0) this.delivered();
  }

  private delivered(): void {
    const message = this.incoming!;
    this.incoming = undefined;
    this.resolve(GET_CHANNEL, { tag: message.tag, body: message.body });
  }

  private method(args: MethodReader): void {
    const method = args.method;
    if (this.frameChannel === 0) {
      if (method === METHOD.connectionClose) {
        const code = args.short();
        const text = args.shortstr();
        this.send(0, new MethodWriter(METHOD.connectionCloseOk));
        throw new Error(`the broker closed the result connection: ${code} ${text}`);
      }
      return this.resolve(0, args);
    }
    if (this.frameChannel !== GET_CHANNEL && this.frameChannel !== PUBLISH_CHANNEL) throw new Error(`a method on channel ${this.frameChannel}, which this connection never opened`);
    if (method === METHOD.channelClose) {
      const code = args.short();
      const text = args.shortstr();
      this.send(this.frameChannel, new MethodWriter(METHOD.channelCloseOk));
      const closed = new ResultChannelClosed(code, text);
      if (this.frameChannel === GET_CHANNEL) {
        this.channelOpen = false;
        this.dropIncoming();
      } else {
        this.publishing = undefined;
        this.failConfirms(closed);
      }
      const waiter = this.waiters.get(this.frameChannel);
      this.waiters.delete(this.frameChannel);
      waiter?.reject(closed);
      return;
    }
    if (this.frameChannel === PUBLISH_CHANNEL && (method === METHOD.basicAck || method === METHOD.basicNack)) {
      const tag = args.longlong();
      const bits = args.octet();
      this.confirm(tag, (bits & 1) === 1, method === METHOD.basicAck ? 'published' : 'full');
      return;
    }
    if (method === METHOD.basicGetOk && this.frameChannel === GET_CHANNEL) {
      if (this.incoming) throw new Error('a message before the previous one was whole');
      this.incoming = { tag: args.longlong(), size: -1, have: 0, body: undefined };
      if (!this.waiters.has(GET_CHANNEL)) throw new Error('a message nobody asked for');
      return;
    }
    this.resolve(this.frameChannel, args);
  }

  private resolve(channel: number, answer: Answer): void {
    const waiter = this.waiters.get(channel);
    const method = answer instanceof MethodReader ? answer.method : METHOD.basicGetOk;
    if (!waiter || !waiter.expect.includes(method)) throw new Error(`an unexpected method ${method >> 16}.${method & 0xffff} on channel ${channel}`);
    this.waiters.delete(channel);
    waiter.resolve(answer);
  }

  private expect(channel: number, methods: readonly number[]): Promise<Answer | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiters.has(channel)) return Promise.reject(new Error(`a call on channel ${channel} while another waits`));
    return new Promise((resolve, reject) => this.waiters.set(channel, { expect: methods, resolve, reject }));
  }

  // ------------------------------------------------------------------ frames out, failure

  private send(channel: number, method: MethodWriter): void {
    this.write(method.frame(channel));
  }

  private write(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.sentSinceBeat = true;
    this.socket.write(bytes);
  }

  private dropIncoming(): void {
    if (this.incoming?.body) releaseChunk(this.incoming.body);
    this.incoming = undefined;
  }

  /** The connection is gone (or unusable): everything waiting fails with `error`, once. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.channelOpen = false;
    clearInterval(this.heartbeatTimer);
    this.dropIncoming();
    this.socket.destroy();
    this.failConfirms(error);
    const waiters = [...this.waiters.values()];
    this.waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}
