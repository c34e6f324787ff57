import { datasetPath, parseJson } from './datasets.resource.js';
import type { HttpTransport } from './http-transport.js';
import type { BulkResult, SampleListQuery, SamplePage, SampleView } from './types.js';
import { tarOfItems, type BulkItem } from './bulk-archive.js';
import { mediaTypeOf, readSource, type UploadSource } from './upload-source.js';

export interface UploadOptions {
  readonly category: string;
  /** The image type; by default guessed from the bytes, then the file name. */
  readonly contentType?: string;
}

/**
 * Bytes no sniffing recognises are still sent as an image: the service identifies images by
 * their bytes, so its answer (415 SENSORY_ERR_NOT_AN_IMAGE) names the real problem.
 */
const UNKNOWN_IMAGE = 'image/unknown';

/** `/v1/datasets/{name}/samples`. */
export class SamplesResource {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Adds one sample as a raw body. Safe to retry, and retried on connection errors and 5xx: the
   * same bytes in the same category answer 200 with the existing sample (`duplicate: true`), so
   * a retry of an upload whose first answer was lost reports a duplicate, never a second sample.
   */
  async upload(dataset: string, source: UploadSource, options: UploadOptions): Promise<SampleView> {
    const { bytes, name } = await readSource(source);
    const reply = await this.http.call({
      method: 'POST',
      path: `${datasetPath(dataset)}/samples`,
      query: { category: options.category },
      body: bytes,
      contentType: options.contentType ?? mediaTypeOf(bytes, name) ?? UNKNOWN_IMAGE,
      retry: 'idempotent',
    });
    return parseJson(reply.body);
  }

  /**
   * Adds many samples in one request: the items go as a tar streamed from their sources (read
   * one at a time), and the answer holds a receipt per item, in the items' order. Safe to retry,
   * and retried like a single upload: the items a lost attempt stored come back as duplicates.
   * `onItemSent` is told how many items have gone into the request body so far.
   */
  async uploadBulk(dataset: string, items: readonly BulkItem[], options: { onItemSent?: (sent: number) => void } = {}): Promise<BulkResult> {
    const reply = await this.http.call({
      method: 'POST',
      path: `${datasetPath(dataset)}/samples/bulk`,
      stream: () => tarOfItems(items, options.onItemSent),
      contentType: 'application/x-tar',
      retry: 'idempotent',
    });
    return parseJson(reply.body);
  }

  /** One page; pass the previous page's `nextCursor` for the next. */
  async page(dataset: string, query: SampleListQuery & { cursor?: string } = {}): Promise<SamplePage> {
    const reply = await this.http.call({ method: 'GET', path: `${datasetPath(dataset)}/samples`, query: { ...query }, retry: 'idempotent' });
    return parseJson(reply.body);
  }

  /** Every page of the listing, fetched one at a time as the loop asks for it. */
  async *pages(dataset: string, query: SampleListQuery = {}): AsyncGenerator<SamplePage> {
    let cursor: string | undefined;
    do {
      const page = await this.page(dataset, { ...query, cursor });
      yield page;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** Every live sample, page by page (`limit` is the page size). */
  async *list(dataset: string, query: SampleListQuery = {}): AsyncGenerator<SampleView> {
    for await (const page of this.pages(dataset, query)) yield* page.samples;
  }

  async get(dataset: string, id: number): Promise<SampleView> {
    return parseJson((await this.http.call({ method: 'GET', path: `${datasetPath(dataset)}/samples/${id}`, retry: 'idempotent' })).body);
  }

  /** The original bytes and their type. */
  async content(dataset: string, id: number): Promise<{ bytes: Buffer; contentType: string }> {
    const reply = await this.http.call({ method: 'GET', path: `${datasetPath(dataset)}/samples/${id}/content`, accept: 'image/*', retry: 'idempotent' });
    return { bytes: reply.body, contentType: String(reply.headers['content-type'] ?? '') };
  }

  /** Relabelling to the same category again changes nothing, so it is retried like a read. */
  async relabel(dataset: string, id: number, category: string): Promise<SampleView> {
    const reply = await this.http.call({ method: 'PATCH', path: `${datasetPath(dataset)}/samples/${id}`, json: { category }, retry: 'idempotent' });
    return parseJson(reply.body);
  }

  /** Needs the admin role; the sample stays visible to batches pinned to older revisions. */
  async delete(dataset: string, id: number): Promise<SampleView> {
    return parseJson((await this.http.call({ method: 'DELETE', path: `${datasetPath(dataset)}/samples/${id}`, retry: 'stale-socket' })).body);
  }
}
