import type http from 'node:http';
import net from 'node:net';
import { SensoryConnectionError } from './errors.js';
import { freshBody, gather, type BodyAllocator } from './receive-buffer.js';

/** What an answer gives back: as HttpTransport's, with the body in one buffer of its own. */
export interface DirectReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface DirectRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body?: Buffer;
  readonly timeoutMs: number;
  /** Where a successful answer's body goes (status < 400); a fresh buffer of its own by default. */
  readonly allocate?: BodyAllocator;
}

/** Status line and headers larger than this are refused (the service's are a few hundred bytes). */
const HEAD_LIMIT = 64 * 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n');

/**
 * HTTP/1.1 calls whose answers are read straight into the buffer they end up in: sockets made
 * with net's `onread`, whose buffer function points each read at the body's next free byte.
 * node:http reads into a fresh 64 KiB buffer per read and the body is copied once more from
 * there: on a 30 MB batch that costs about three times the CPU, and half the rate. Plain http
 * only; keep-alive sockets of its own, unreferenced while idle like an Agent's.
 */
export class DirectHttp {
  private readonly idle: DirectSocket[] = [];
  private closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly maxIdle: number,
  ) {}

  async request(request: DirectRequest): Promise<DirectReply> {
    const reused = this.idle.pop();
    const socket = reused ?? new DirectSocket(this.host, this.port);
    const reply = await socket.exchange(request, reused !== undefined);
    if (socket.reusable && !this.closed && this.idle.length < this.maxIdle) {
      socket.park(() => this.forget(socket));
      this.idle.push(socket);
    } else {
      socket.destroy();
    }
    return reply;
  }

  close(): void {
    this.closed = true;
    for (const socket of this.idle.splice(0)) socket.destroy();
  }

  private forget(socket: DirectSocket): void {
    const at = this.idle.indexOf(socket);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

type Framing = { kind: 'length'; body: Buffer; at: number } | { kind: 'chunked'; decoder: ChunkedDecoder } | { kind: 'close'; parts: Buffer[] };

/** One keep-alive connection and the answer being read on it. */
class DirectSocket {
  private readonly socket: net.Socket;
  private readonly head = Buffer.allocUnsafe(HEAD_LIMIT);
  /** Bytes of status line and headers read so far (when no framing yet). */
  private headAt = 0;
  private framing: Framing | undefined;
  private status = 0;
  private headers: http.IncomingHttpHeaders = {};
  private keepAlive = true;
  private received = 0;
  private pending: { resolve(reply: DirectReply): void; reject(error: Error): void } | undefined;
  private allocate: BodyAllocator = freshBody;
  private onIdleClose: (() => void) | undefined;
  /** Where bytes past a declared length go (they are an error). */
  private readonly stray = Buffer.allocUnsafe(1024);
  reusable = false;

  constructor(host: string, port: number) {
    this.socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => this.target(),
        callback: (bytes: number) => {
          this.onBytes(bytes);
          return true;
        },
      },
    });
    this.socket.on('error', (error) => this.fail(connectionError(error)));
    this.socket.on('close', () => this.onClose());
    this.socket.on('timeout', () => this.socket.destroy(new SensoryConnectionError('no data for the idle timeout', 'ETIMEDOUT')));
  }

  exchange(request: DirectRequest, reused: boolean): Promise<DirectReply> {
    this.onIdleClose = undefined;
    this.reusable = false;
    this.received = 0;
    this.allocate = request.allocate ?? freshBody;
    this.socket.ref();
    this.socket.setTimeout(request.timeoutMs);
    return new Promise<DirectReply>((resolve, reject) => {
      this.pending = {
        resolve,
        reject: (error) => {
          // A reused socket that failed before any byte of the answer: the server had closed it.
          if (reused && this.received === 0 && error instanceof SensoryConnectionError) staleSocketErrors.add(error);
          reject(error);
        },
      };
      this.socket.write(requestBytes(request));
    });
  }

  park(onClose: () => void): void {
    this.onIdleClose = onClose;
    this.socket.setTimeout(0);
    this.socket.unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Where the next read goes. Node asks once when the socket is made and again after each read's
   * callback, so this describes the state after the last read: between answers, the head of the
   * next one (bytes that come while none is awaited make onBytes drop the socket).
   */
  private target(): Uint8Array {
    const framing = this.framing;
    if (!framing) return this.head.subarray(this.headAt);
    if (framing.kind === 'length') return framing.at < framing.body.length ? framing.body.subarray(framing.at) : this.stray;
    return framing.kind === 'chunked' ? framing.decoder.space() : (framing.parts.at(-1) as Buffer);
  }

  private onBytes(bytes: number): void {
    this.received += bytes;
    if (!this.pending) {
      this.socket.destroy();
      return;
    }
    const framing = this.framing;
    if (!framing) return this.onHead(bytes);
    if (framing.kind === 'length') {
      if (framing.at >= framing.body.length) return this.fail(aborted('more bytes than the declared content-length'));
      framing.at += bytes;
      if (framing.at === framing.body.length) this.finish(framing.body);
      return;
    }
    if (framing.kind === 'chunked') {
      try {
        if (framing.decoder.wrote(bytes)) this.finish(framing.decoder.body((length) => this.bodyBuffer(length)));
      } catch (error) {
        this.fail(error as Error);
      }
      return;
    }
    const last = framing.parts[framing.parts.length - 1];
    framing.parts[framing.parts.length - 1] = last.subarray(0, bytes);
    framing.parts.push(Buffer.allocUnsafe(64 * 1024));
  }

  /** The buffer of a body of `length` bytes: an error answer never goes into a reused buffer. */
  private bodyBuffer(length: number): Buffer {
    return this.status < 400 ? this.allocate(length) : freshBody(length);
  }

  private onHead(bytes: number): void {
    this.headAt += bytes;
    const end = this.head.subarray(0, this.headAt).indexOf(CRLF_CRLF);
    if (end < 0) {
      if (this.headAt === HEAD_LIMIT) this.fail(aborted(`an answer head longer than ${HEAD_LIMIT} bytes`));
      return;
    }
    const lines = this.head.subarray(0, end).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!statusLine) return this.fail(aborted(`not an HTTP/1.1 answer: ${lines[0].slice(0, 80)}`));
    this.status = Number(statusLine[1]);
    this.headers = parseHeaders(lines.slice(1));
    this.keepAlive = !/\bclose\b/i.test(String(this.headers.connection ?? '')) && lines[0].startsWith('HTTP/1.1');
    const early = this.head.subarray(end + 4, this.headAt);
    const length = this.headers['content-length'];
    if (/\bchunked\b/i.test(String(this.headers['transfer-encoding'] ?? ''))) {
      const decoder = new ChunkedDecoder();
      this.framing = { kind: 'chunked', decoder };
      try {
        if (decoder.feed(early)) this.finish(decoder.body((length) => this.bodyBuffer(length)));
      } catch (error) {
        this.fail(error as Error);
      }
    } else if (length !== undefined) {
      const declared = Number(length);
      if (!Number.isSafeInteger(declared) || declared < 0) return this.fail(aborted(`a content-length of ${length}`));
      if (early.length > declared) return this.fail(aborted('more bytes than the declared content-length'));
      // At offset 0 of its buffer, so typed views on the body are aligned.
      const body = this.bodyBuffer(declared);
      early.copy(body);
      this.framing = { kind: 'length', body, at: early.length };
      if (early.length === declared) this.finish(body);
    } else {
      this.keepAlive = false;
      this.framing = { kind: 'close', parts: [Buffer.from(early), Buffer.allocUnsafe(64 * 1024)] };
    }
  }

  private finish(body: Buffer): void {
    const pending = this.pending;
    this.pending = undefined;
    this.reusable = this.keepAlive;
    this.framing = undefined;
    this.headAt = 0;
    pending?.resolve({ status: this.status, headers: this.headers, body });
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    this.reusable = false;
    this.socket.destroy();
    pending?.reject(error);
  }

  private onClose(): void {
    this.onIdleClose?.();
    const framing = this.framing;
    if (this.pending && framing?.kind === 'close') {
      framing.parts.pop();
      this.keepAlive = false;
      return this.finish(gather(framing.parts, (length) => this.bodyBuffer(length)));
    }
    const got = framing?.kind === 'length' ? framing.at : this.received;
    this.fail(aborted(`the connection closed after ${got} bytes of the answer`));
  }
}

function requestBytes(request: DirectRequest): Buffer {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) head += `${name}: ${item}\r\n`;
  }
  if (request.headers['content-length'] === undefined) head += `content-length: ${request.body?.length ?? 0}\r\n`;
  head += '\r\n';
  return request.body ? Buffer.concat([Buffer.from(head, 'latin1'), request.body]) : Buffer.from(head, 'latin1');
}

function parseHeaders(lines: readonly string[]): http.IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

/** A chunked body decoded as it arrives: reads go into `space()`, `wrote(n)` consumes them. */
class ChunkedDecoder {
  private readonly scratch = Buffer.allocUnsafe(64 * 1024);
  private readonly parts: Buffer[] = [];
  /** Bytes at the start of `scratch` not consumed yet (a partial line). */
  private kept = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  /** Data bytes, or CRLF bytes after them, still due. */
  private left = 0;

  space(): Uint8Array {
    return this.scratch.subarray(this.kept);
  }

  /** True once the whole body has arrived. */
  wrote(bytes: number): boolean {
    return this.consume(this.kept + bytes);
  }

  feed(bytes: Uint8Array): boolean {
    if (bytes.length > this.scratch.length - this.kept) throw aborted('a chunked answer head larger than expected');
    this.scratch.set(bytes, this.kept);
    return this.consume(this.kept + bytes.length);
  }

  body(allocate: BodyAllocator): Buffer {
    return gather(this.parts, allocate);
  }

  private consume(end: number): boolean {
    let at = 0;
    while (at < end) {
      if (this.state === 'data' || this.state === 'data-end') {
        const take = Math.min(this.left, end - at);
        if (this.state === 'data') this.parts.push(Buffer.from(this.scratch.subarray(at, at + take)));
        this.left -= take;
        at += take;
        if (this.left === 0) [this.state, this.left] = this.state === 'data' ? ['data-end', 2] : ['size', 0];
        continue;
      }
      const lineEnd = this.scratch.subarray(at, end).indexOf('\r\n');
      if (lineEnd < 0) break;
      const line = this.scratch.subarray(at, at + lineEnd).toString('latin1');
      at += lineEnd + 2;
      if (this.state === 'trailer') {
        if (line === '') return true;
        continue;
      }
      const size = Number.parseInt(line, 16);
      if (!Number.isSafeInteger(size) || size < 0) throw aborted(`a chunk size line of ${JSON.stringify(line.slice(0, 40))}`);
      [this.state, this.left] = size === 0 ? ['trailer', 0] : ['data', size];
    }
    this.scratch.copy(this.scratch, 0, at, end);
    this.kept = end - at;
    if (this.kept === this.scratch.length) throw aborted('a chunk size line longer than 64 KiB');
    return false;
  }
}

/** Errors of a reused keep-alive socket that failed before any answer came (HttpTransport's stale-socket retry). */
export const staleSocketErrors = new WeakSet<object>();

function aborted(message: string): SensoryConnectionError {
  return new SensoryConnectionError(message, 'SENSORY_CONNECTION_ABORTED');
}

function connectionError(error: Error): SensoryConnectionError {
  if (error instanceof SensoryConnectionError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'ECONNRESET';
  return new SensoryConnectionError(`${error.message} (${code})`, code, { cause: error });
}
