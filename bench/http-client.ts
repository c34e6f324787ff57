import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Bytes of the response body. */
  readonly bytes: number;
  /** From sending the request to the last byte of the response. */
  readonly ms: number;
  /** Only when asked with keepBody (or on an error status). */
  readonly body?: Buffer;
}

export interface RequestOptions {
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string;
  readonly keepBody?: boolean;
}

/**
 * The benchmark client: node:http with one keep-alive agent (fetch() would be 2–3× slower and
 * hide the server behind the client). The body is counted chunk by chunk, never concatenated,
 * unless keepBody is set.
 */
export class BenchClient {
  // An idle socket is dropped after 4 s, before the service's keep-alive timeout (5 s) closes
  // it: a request sent on a socket the server is closing at that moment fails with a hang-up.
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8, keepAliveMsecs: 10_000, timeout: 4000 });

  constructor(private readonly defaultHeaders: Record<string, string> = {}) {}

  request(options: RequestOptions): Promise<Reply> {
    const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
    const headers: Record<string, string | number> = { ...this.defaultHeaders, ...options.headers };
    if (body) headers['content-length'] = body.length;
    return new Promise<Reply>((resolve, reject) => {
      const started = performance.now();
      const request = http.request(
        { host: '127.0.0.1', port: options.port, method: options.method, path: options.path, headers, agent: this.agent },
        (response) => {
          const status = response.statusCode ?? 0;
          const keep = options.keepBody || status >= 400;
          const chunks: Buffer[] = [];
          let bytes = 0;
          response.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (keep) chunks.push(chunk);
          });
          response.on('error', reject);
          response.on('end', () => {
            resolve({
              status,
              headers: response.headers,
              bytes,
              ms: performance.now() - started,
              body: keep ? Buffer.concat(chunks) : undefined,
            });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Like request, but anything other than the expected status is an error naming the reply. */
  async expect(status: number | readonly number[], options: RequestOptions): Promise<Reply> {
    const reply = await this.request(options);
    const wanted = typeof status === 'number' ? [status] : status;
    if (!wanted.includes(reply.status)) {
      const text = reply.body ? reply.body.subarray(0, 400).toString('utf8') : '';
      throw new Error(`${options.method} ${options.path} → ${reply.status}, expected ${wanted.join('/')}: ${text}`);
    }
    return reply;
  }

  close(): void {
    this.agent.destroy();
  }
}
