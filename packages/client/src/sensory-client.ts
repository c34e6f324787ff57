import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBatch, decodePoll, type Batch, type LabelArray, type PolledBatch } from './batch-decoder.js';
import { DatasetsResource, datasetPath, parseJson } from './datasets.resource.js';
import { SensoryOrderEndedError } from './errors.js';
import { HttpTransport, type TransportOptions } from './http-transport.js';
import { ExportsResource } from './exports.resource.js';
import { SamplesResource } from './samples.resource.js';
import type { BatchRequest, CompactionRequest, CompactionResult, OrderCreated, OrderRequest, OrderView, PollRequest, ReshapeRequest } from './types.js';

export type SensoryClientOptions = TransportOptions;

const SAFETENSORS = 'application/x-safetensors';
/** A poll that came back empty without waiting is repeated after this pause. */
const EMPTY_POLL_PAUSE_MS = 50;

/** How a batch or poll answer is read (an option of the client, not sent to the service). */
export interface ReadOptions {
  /**
   * Read into the client's own receive buffer, allocated once and read into again by the next
   * `reuse` call of this client: the typed arrays are views on it, valid until that next call,
   * so copy what must outlive it. Without it each answer gets memory of its own, which costs the
   * operating system a page fault per 4 KiB the first time it is written: most of the client's
   * CPU on a large batch. A `reuse` call made while another one is reading gets a buffer of its own.
   */
  readonly reuse?: boolean;
}

export interface OrderIterationOptions extends Pick<PollRequest, 'max' | 'waitMs' | 'rank'>, ReadOptions {
  /**
   * Resume from a checkpoint: the `cursor` of the last batch the trainer had finished. Everything
   * after it comes again (what was sent but not acknowledged included); without it the iteration
   * continues after what the rank acknowledged.
   */
  readonly cursor?: string;
  /** Stops the iteration (the order itself stays; cancel it with cancelOrder). */
  readonly signal?: AbortSignal;
}

/**
 * A client of the Sensory API over node:http(s) with keep-alive connections. Calls that the
 * service answers the same way when repeated (reads, dataset PUT, uploads, polls) are retried on
 * connection errors and 5xx with exponential backoff; errors are SensoryApiError (status, the
 * SENSORY_ERR_* code, message, request id) or SensoryConnectionError.
 */
export class SensoryClient {
  readonly datasets: DatasetsResource;
  readonly samples: SamplesResource;
  readonly exports: ExportsResource;
  private readonly http: HttpTransport;

  constructor(options: SensoryClientOptions) {
    this.http = new HttpTransport(options);
    this.datasets = new DatasetsResource(this.http);
    this.samples = new SamplesResource(this.http);
    this.exports = new ExportsResource(this.http);
  }

  get url(): string {
    return this.http.url;
  }

  /**
   * A small batch, fetched as safetensors (read straight into one buffer) and decoded into typed
   * arrays that are views on it. Labels are a BigInt64Array when asked with labelDtype int64.
   * With `{reuse: true}` the buffer is the client's own, read over by the next reuse call.
   */
  async batch(dataset: string, request: BatchRequest & { labelDtype: 'int64' }, read?: ReadOptions): Promise<Batch<BigInt64Array>>;
  async batch(dataset: string, request: BatchRequest, read?: ReadOptions): Promise<Batch>;
  async batch(dataset: string, request: BatchRequest, read: ReadOptions = {}): Promise<Batch<LabelArray>> {
    const reply = await this.http.call({ method: 'POST', path: `${datasetPath(dataset)}/batches`, json: request, accept: SAFETENSORS, retry: 'idempotent', large: true, reuse: read.reuse });
    return decodeBatch(reply.body);
  }

  /**
   * Places a batch order. With a `key` the same request returns the same order, so it is retried
   * like a read; without one it is not retried once the request may have reached the service
   * (that could place two orders), only when a stale keep-alive connection failed before any answer.
   */
  async createOrder(dataset: string, request: OrderRequest): Promise<OrderCreated> {
    const retry = request.key !== undefined ? 'idempotent' : 'stale-socket';
    return parseJson((await this.http.call({ method: 'POST', path: `${datasetPath(dataset)}/orders`, json: request, retry })).body);
  }

  async getOrder(id: string): Promise<OrderView> {
    return parseJson((await this.http.call({ method: 'GET', path: `/v1/orders/${encodeURIComponent(id)}`, retry: 'idempotent' })).body);
  }

  async listOrders(options: { active?: boolean } = {}): Promise<OrderView[]> {
    const reply = await this.http.call({ method: 'GET', path: '/v1/orders', query: { active: options.active }, retry: 'idempotent' });
    return parseJson<{ orders: OrderView[] }>(reply.body).orders;
  }

  /**
   * The admin purge and compaction (admin key): answers when done, which may take minutes on a
   * large store, so the call waits up to six hours for it. Not retried once it may have started.
   */
  async compact(request: CompactionRequest = {}): Promise<CompactionResult> {
    const reply = await this.http.call({ method: 'POST', path: '/v1/admin/compaction', json: request, retry: 'stale-socket', extraTimeoutMs: 6 * 3600 * 1000 });
    return parseJson(reply.body);
  }

  /** Cancelling twice is harmless, so this is retried like a read. */
  async cancelOrder(id: string): Promise<OrderView> {
    return parseJson((await this.http.call({ method: 'DELETE', path: `/v1/orders/${encodeURIComponent(id)}`, retry: 'idempotent' })).body);
  }

  /**
   * One poll of a rank: up to `max` samples (waiting up to `waitMs` for the first). Retried on
   * connection errors and 5xx: with a cursor the same poll gives the same samples; without one
   * the service counts samples only once a response was fully sent, so what a broken response
   * carried is handed out again. `{reuse: true}` reads it into the client's own buffer, as batch().
   */
  async poll(id: string, options: PollRequest = {}, read: ReadOptions = {}): Promise<PolledBatch> {
    const reply = await this.http.call({
      method: 'POST',
      path: `/v1/orders/${encodeURIComponent(id)}/poll`,
      json: options,
      accept: SAFETENSORS,
      retry: 'idempotent',
      large: true,
      reuse: read.reuse,
      extraTimeoutMs: options.waitMs ?? 0,
    });
    return decodePoll(reply.body);
  }

  /**
   * The samples of one rank of an order (rank 0 unless told), poll after poll with cursors, until
   * every one was delivered. A batch is acknowledged when the next one is asked for, and the last
   * one with a final acknowledgement at the end: only acknowledged samples count as delivered, so
   * a trainer killed while it trained on a batch gets that batch again. Each batch carries its
   * `slots` and `cursor`; keep the cursor of the last batch trained on in a checkpoint and pass it
   * back as `cursor` to resume exactly after it. A poll retried after a broken connection gives
   * the same samples, so none is lost or doubled. Throws SensoryOrderEndedError when the order
   * fails, is cancelled or expires first. With `reuse`, each batch is read into the client's own
   * buffer and is valid until the loop asks for the next one.
   */
  async *order(id: string, options: OrderIterationOptions = {}): AsyncGenerator<PolledBatch, void, undefined> {
    const base: PollRequest = { max: options.max ?? 1024, waitMs: options.waitMs ?? 2000, ...(options.rank !== undefined ? { rank: options.rank } : {}) };
    let cursor = options.cursor ?? 'start';
    // A checkpoint's cursor was trained on: acknowledge it, and take back what came after it.
    let ack = options.cursor;
    let resume = options.cursor !== undefined;
    for (;;) {
      options.signal?.throwIfAborted();
      const batch = await this.poll(id, { ...base, cursor, ...(ack !== undefined ? { ack } : {}), ...(resume ? { resume } : {}) }, { reuse: options.reuse });
      resume = false;
      if (batch.ids.length > 0) yield batch;
      // Asked for the next batch: the one before is trained on.
      cursor = batch.cursor ?? cursor;
      ack = cursor;
      if (batch.done) {
        if (batch.remaining > 0) {
          const order = await this.getOrder(id).catch(() => undefined);
          throw new SensoryOrderEndedError(id, order?.status ?? batch.status, batch.remaining, order?.error);
        }
        // The final acknowledgement: the last batch was trained on, and the rank is delivered.
        if (batch.status !== 'complete') await this.poll(id, { ...base, cursor, ack, max: 0, waitMs: 0 });
        return;
      }
      if (batch.ids.length === 0 && (base.waitMs ?? 0) < EMPTY_POLL_PAUSE_MS) await sleep(EMPTY_POLL_PAUSE_MS);
    }
  }

  /**
   * Moves a rank's acknowledgement to a checkpoint's `cursor`, taking back everything after it
   * (`resume`), and returns where the rank stands. Before reshaping an order at a restart, rewind
   * every rank to its checkpoint: the reshape then deals exactly what no checkpoint trained on.
   */
  async rewind(id: string, options: { rank?: number; cursor: string }): Promise<PolledBatch> {
    return this.poll(id, { ...(options.rank !== undefined ? { rank: options.rank } : {}), cursor: options.cursor, ack: options.cursor, resume: true, max: 0, waitMs: 0 });
  }

  /** Deals the samples not yet delivered again over `ranks` ranks (a new generation: every rank starts again with cursor "start"). */
  async reshape(id: string, request: ReshapeRequest): Promise<OrderView> {
    return parseJson((await this.http.call({ method: 'POST', path: `/v1/orders/${encodeURIComponent(id)}/reshape`, json: request, retry: 'stale-socket' })).body);
  }

  /** Sets the order's idle TTL and moves its expiry to that long from now (trainers paused for long). */
  async extendOrder(id: string, ttlSeconds: number): Promise<OrderView> {
    return parseJson((await this.http.call({ method: 'PATCH', path: `/v1/orders/${encodeURIComponent(id)}`, json: { ttlSeconds }, retry: 'idempotent' })).body);
  }

  /** Closes idle keep-alive connections (they never keep the process alive on their own). */
  close(): void {
    this.http.close();
  }
}
