import { createWriteStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectHttp, staleSocketErrors as directStaleSocketErrors } from './direct-http.js';
import { freshBody, gather, ReceiveBuffer, type BodyAllocator } from './receive-buffer.js';
import type { ErrorCode } from './types.js';
import { SensoryApiError, SensoryConnectionError, isTransient } from './errors.js';

export interface TransportOptions {
  /** The service's base URL, e.g. http://127.0.0.1:8002 (a path prefix is kept). */
  readonly url: string;
  readonly key: string;
  /** Further attempts after a transient failure (connection error, 5xx) of a call that is safe to repeat. Default 5. */
  readonly retries?: number;
  /** First backoff delay; it doubles with each attempt, up to 5 s. Default 250 ms. */
  readonly retryDelayMs?: number;
  /** A socket idle this long fails the attempt (a poll adds its waitMs). Default 60 s. */
  readonly timeoutMs?: number;
  /** Parallel connections to the service. Default 16. */
  readonly maxSockets?: number;
}

export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /**
   * The whole body; a body of known length gets a buffer of its own (offset 0, so typed views
   * align), or with `reuse` the start of the transport's receive buffer.
   */
  readonly body: Buffer;
}

/**
 * - `idempotent`: the server gives the same outcome when the call is repeated (reads, PUT, a
 *   sample upload, a poll): retried on any connection failure and on 5xx.
 * - `stale-socket`: retried only when a reused keep-alive socket turned out closed before the
 *   request got any answer (the server had dropped the idle connection), the one failure that
 *   proves the request was not acted on.
 */
export type RetryPolicy = 'idempotent' | 'stale-socket';

export interface CallOptions {
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly json?: unknown;
  readonly body?: Buffer;
  /** A body streamed instead (chunked): called once per attempt, so a retry sends it again from the start. */
  readonly stream?: () => Readable;
  readonly contentType?: string;
  readonly accept?: string;
  readonly retry: RetryPolicy;
  /** Added to the idle timeout (a long poll's waitMs). */
  readonly extraTimeoutMs?: number;
  /** Overrides the transport's retries for this call. */
  readonly retries?: number;
  /** A large answer: read straight into its buffer (DirectHttp) when the URL is plain http. */
  readonly large?: boolean;
  /**
   * A successful answer is read into the transport's own receive buffer (see ReceiveBuffer),
   * which the next reuse call reads over: the body is valid until then.
   */
  readonly reuse?: boolean;
}

const MAX_BACKOFF_MS = 5_000;
const MAX_RETRY_AFTER_MS = 30_000;
/** Errors thrown by an attempt on a reused keep-alive socket before any answer came. */
const staleSocketErrors = new WeakSet<object>();

/** node:http with one keep-alive agent (fetch is 2–3× slower for large bodies), retries and the service's error shape. */
export class HttpTransport {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly lib: typeof http | typeof https;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly direct: DirectHttp | undefined;
  private readonly receiveBuffer = new ReceiveBuffer();

  constructor(private readonly options: TransportOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new TypeError(`url must be http:// or https://, not ${this.base.protocol}`);
    this.lib = this.base.protocol === 'https:' ? https : http;
    const agentOptions = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets: options.maxSockets ?? 16 };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.retries = options.retries ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 250;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    const port = Number(this.base.port || 80);
    this.direct = this.base.protocol === 'http:' ? new DirectHttp(this.base.hostname.replace(/^\[|\]$/g, ''), port, options.maxSockets ?? 16) : undefined;
  }

  get url(): string {
    return this.base.href;
  }

  /** One call, retried by its policy; any status ≥ 400 becomes a SensoryApiError. */
  async call(options: CallOptions): Promise<HttpReply> {
    const payload = options.json !== undefined ? Buffer.from(JSON.stringify(options.json), 'utf8') : options.body;
    // Held for every attempt of the call: a retry reads over what a failed attempt left.
    const held = options.reuse ? this.receiveBuffer.hold() : undefined;
    const allocate = held?.allocate ?? freshBody;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const reply = options.large && this.direct ? await this.directAttempt(this.direct, options, payload, allocate) : await this.attempt(options, payload, allocate);
          if (reply.status >= 400) throw apiError(reply);
          return reply;
        } catch (error) {
          const stale = staleSocketErrors.has(error as object) || directStaleSocketErrors.has(error as object);
          const retryable = options.retry === 'idempotent' ? isTransient(error) : stale;
          if (!retryable || attempt >= (options.retries ?? this.retries)) throw error;
          await sleep(this.backoff(attempt, error));
        }
      }
    } finally {
      held?.release();
    }
  }

  /** Delay before attempt `attempt + 1`: exponential with jitter, or the server's Retry-After. */
  backoff(attempt: number, error?: unknown): number {
    const retryAfter = error instanceof SensoryApiError ? error.retryAfterMs : undefined;
    if (retryAfter !== undefined) return Math.min(retryAfter, MAX_RETRY_AFTER_MS);
    const ceiling = Math.min(MAX_BACKOFF_MS, this.retryDelayMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /**
   * Streams a GET into `target`, through `<target>.partial`: a download cut off (here, or in an
   * earlier process) resumes with a Range request from the partial file's size, and a file that
   * changed meanwhile (If-Range no longer matches) starts again. Retried on connection failures
   * and 5xx. Renamed to `target` once whole; returns its size.
   */
  async download(path: string, target: string, onBytes: (bytes: number) => void = () => undefined): Promise<number> {
    const partial = `${target}.partial`;
    let etag: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const have = (await stat(partial).catch(() => undefined))?.size ?? 0;
      try {
        const size = await this.downloadAttempt(path, partial, have, etag, onBytes, (tag) => (etag = tag));
        await rename(partial, target);
        return size;
      } catch (error) {
        if (!isTransient(error) || attempt >= this.retries) throw error;
        await sleep(this.backoff(attempt, error));
      }
    }
  }

  private downloadAttempt(path: string, partial: string, have: number, etag: string | undefined, onBytes: (bytes: number) => void, onEtag: (etag: string) => void): Promise<number> {
    const headers: http.OutgoingHttpHeaders = { 'api-access-key': this.options.key, accept: '*/*' };
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      if (etag) headers['if-range'] = etag;
    }
    return new Promise<number>((resolve, reject) => {
      const request = this.lib.request(
        { protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port, method: 'GET', path: this.pathOf({ method: 'GET', path, retry: 'idempotent' }), headers, agent: this.agent, timeout: this.timeoutMs },
        (response) => {
          const status = response.statusCode ?? 0;
          if (typeof response.headers.etag === 'string') onEtag(response.headers.etag);
          const contentRange = /\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''));
          if (status === 416 && contentRange && Number(contentRange[1]) === have) {
            // The partial file is whole already.
            response.resume();
            return resolve(have);
          }
          if (status >= 400) {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => reject(apiError({ status, headers: response.headers, body: Buffer.concat(chunks) })));
            response.on('error', (error) => reject(connectionError(error)));
            return;
          }
          // 200: the whole file (no range asked, or the file changed): start over.
          const start = status === 206 ? have : 0;
          const total = status === 206 && contentRange ? Number(contentRange[1]) : Number(response.headers['content-length']);
          onBytes(start);
          const out = createWriteStream(partial, { flags: start === 0 ? 'w' : 'a' });
          let written = start;
          response.on('data', (chunk: Buffer) => {
            written += chunk.length;
            onBytes(written);
          });
          response.pipe(out);
          const fail = (error: Error) => {
            out.destroy();
            reject(connectionError(error));
          };
          response.on('error', fail);
          response.on('close', () => {
            if (!response.complete) fail(aborted(`the download stopped after ${written} bytes`));
          });
          out.on('error', (error) => reject(error));
          out.on('finish', () => {
            if (Number.isFinite(total) && written !== total) return reject(aborted(`the download ended after ${written} of ${total} bytes`));
            resolve(written);
          });
        },
      );
      request.on('timeout', () => request.destroy(new SensoryConnectionError(`no data from ${this.base.host} for ${this.timeoutMs} ms`, 'ETIMEDOUT')));
      request.on('error', (error) => reject(connectionError(error)));
      request.end();
    });
  }

  /** Closes the idle keep-alive connections; calls still running finish. */
  close(): void {
    this.agent.destroy();
    this.direct?.close();
  }

  private directAttempt(direct: DirectHttp, options: CallOptions, payload: Buffer | undefined, allocate: BodyAllocator): Promise<HttpReply> {
    return direct.request({ method: options.method, path: this.pathOf(options), headers: { host: this.base.host, ...this.headersOf(options, payload) }, body: payload, timeoutMs: this.timeoutMs + (options.extraTimeoutMs ?? 0), allocate });
  }

  private headersOf(options: CallOptions, payload: Buffer | undefined): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = { 'api-access-key': this.options.key, accept: options.accept ?? 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = options.contentType ?? (options.json !== undefined ? 'application/json' : 'application/octet-stream');
      headers['content-length'] = payload.length;
    } else if (options.stream) {
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    }
    return headers;
  }

  private attempt(options: CallOptions, payload: Buffer | undefined, allocate: BodyAllocator): Promise<HttpReply> {
    const headers = this.headersOf(options, payload);
    return new Promise<HttpReply>((resolve, reject) => {
      let settled = false;
      let answered = false;
      const finish = (error: Error | undefined, reply?: HttpReply) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(reply!);
      };
      const request = this.lib.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          method: options.method,
          path: this.pathOf(options),
          headers,
          agent: this.agent,
          timeout: this.timeoutMs + (options.extraTimeoutMs ?? 0),
        },
        (response) => {
          answered = true;
          const declared = Number(response.headers['content-length']);
          const known = response.headers['content-length'] !== undefined && Number.isSafeInteger(declared) && declared >= 0;
          // An error answer never goes into a reused buffer.
          const bodyBuffer = (response.statusCode ?? 0) < 400 ? allocate : freshBody;
          const whole = known ? bodyBuffer(declared) : undefined;
          const chunks: Buffer[] = [];
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            if (settled) return;
            if (whole) {
              if (received + chunk.length > declared) return response.destroy(aborted(`more bytes than the declared ${declared}`));
              chunk.copy(whole, received);
            } else {
              chunks.push(chunk);
            }
            received += chunk.length;
          });
          response.on('end', () => {
            if (whole && received !== declared) return finish(aborted(`the answer ended after ${received} of ${declared} bytes`));
            finish(undefined, { status: response.statusCode ?? 0, headers: response.headers, body: whole ?? (bodyBuffer === freshBody ? Buffer.concat(chunks) : gather(chunks, bodyBuffer)) });
          });
          response.on('error', (error) => finish(connectionError(error)));
          response.on('close', () => {
            if (!response.complete) finish(aborted(`the connection closed after ${received} bytes of the answer`));
          });
        },
      );
      request.on('timeout', () => request.destroy(new SensoryConnectionError(`no data from ${this.base.host} for ${this.timeoutMs + (options.extraTimeoutMs ?? 0)} ms`, 'ETIMEDOUT')));
      request.on('error', (error) => {
        // After an answer began, the answer's own events decide (a server may answer 401 before reading the whole upload).
        if (answered) return;
        const failure = connectionError(error);
        if (request.reusedSocket && (failure.code === 'ECONNRESET' || failure.code === 'EPIPE')) staleSocketErrors.add(failure);
        finish(failure);
      });
      if (options.stream) {
        const body = options.stream();
        body.once('error', (error) => request.destroy(error));
        body.pipe(request);
      } else {
        request.end(payload);
      }
    });
  }

  private pathOf(options: CallOptions): string {
    const prefix = this.base.pathname.replace(/\/+$/, '');
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) query.set(name, String(value));
    const search = query.toString();
    return `${prefix}${options.path}${search ? `?${search}` : ''}`;
  }
}

function aborted(message: string): SensoryConnectionError {
  return new SensoryConnectionError(message, 'SENSORY_CONNECTION_ABORTED');
}

function connectionError(error: Error): SensoryConnectionError {
  if (error instanceof SensoryConnectionError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? (error.message === 'aborted' ? 'SENSORY_CONNECTION_ABORTED' : 'ECONNRESET');
  return new SensoryConnectionError(`${error.message} (${code})`, code, { cause: error });
}

/** The service's `{error: {code, message, requestId?}}`, or whatever text came instead. */
function apiError(reply: HttpReply): SensoryApiError {
  const headerId = typeof reply.headers['x-request-id'] === 'string' ? reply.headers['x-request-id'] : undefined;
  let code: ErrorCode | 'SENSORY_ERR_UNKNOWN' = 'SENSORY_ERR_UNKNOWN';
  let message = reply.body.subarray(0, 300).toString('utf8') || `HTTP ${reply.status}`;
  let requestId = headerId;
  try {
    const parsed = JSON.parse(reply.body.toString('utf8')) as { error?: { code?: string; message?: string; requestId?: string } };
    if (parsed.error && typeof parsed.error.code === 'string') {
      code = parsed.error.code as ErrorCode;
      message = parsed.error.message ?? message;
      requestId = parsed.error.requestId ?? headerId;
    }
  } catch {
    // not the service's error shape: keep the raw text
  }
  const retryAfter = Number(reply.headers['retry-after']);
  const retryAfterMs = reply.headers['retry-after'] !== undefined && Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined;
  return new SensoryApiError(reply.status, code, message, requestId, retryAfterMs);
}
