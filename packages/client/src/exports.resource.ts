import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { datasetPath, parseJson } from './datasets.resource.js';
import type { HttpTransport } from './http-transport.js';
import type { ExportRequest, ExportView } from './types.js';

export interface ExportWaitOptions {
  /** Between two looks at the job. Default 500 ms. */
  readonly intervalMs?: number;
  /** Told of the job each time it is read. */
  readonly onProgress?: (job: ExportView) => void;
  readonly signal?: AbortSignal;
}

export interface ExportDownloadOptions {
  /** Told of the bytes of the file being downloaded (its number, bytes so far). */
  readonly onBytes?: (file: number, bytes: number) => void;
}

/** `/v1/exports`: export jobs run in the background, and their files downloaded with resumable Range requests. */
export class ExportsResource {
  constructor(private readonly http: HttpTransport) {}

  /** Starts a job (202). Not retried once it may have reached the service: that could start two. */
  async create(dataset: string, request: ExportRequest): Promise<ExportView> {
    return parseJson((await this.http.call({ method: 'POST', path: `${datasetPath(dataset)}/exports`, json: request, retry: 'stale-socket' })).body);
  }

  async get(id: string): Promise<ExportView> {
    return parseJson((await this.http.call({ method: 'GET', path: `/v1/exports/${encodeURIComponent(id)}`, retry: 'idempotent' })).body);
  }

  async list(options: { dataset?: string } = {}): Promise<ExportView[]> {
    const reply = await this.http.call({ method: 'GET', path: '/v1/exports', query: { dataset: options.dataset }, retry: 'idempotent' });
    return parseJson<{ exports: ExportView[] }>(reply.body).exports;
  }

  /** Admin: removes an ended job and its files. */
  async delete(id: string): Promise<ExportView> {
    return parseJson((await this.http.call({ method: 'DELETE', path: `/v1/exports/${encodeURIComponent(id)}`, retry: 'stale-socket' })).body);
  }

  /** Reads the job until it is complete or failed; returns it then. */
  async wait(id: string, options: ExportWaitOptions = {}): Promise<ExportView> {
    for (;;) {
      options.signal?.throwIfAborted();
      const job = await this.get(id);
      options.onProgress?.(job);
      if (job.status === 'complete' || job.status === 'failed') return job;
      await sleep(options.intervalMs ?? 500);
    }
  }

  /**
   * Downloads every file of a job into `dir` (created if needed), by its name; a file downloaded
   * before is resumed from where it stopped. Returns the paths.
   */
  async download(job: ExportView, dir: string, options: ExportDownloadOptions = {}): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    const paths: string[] = [];
    for (const file of job.files) {
      const target = join(dir, file.name);
      await this.http.download(`/v1/exports/${encodeURIComponent(job.id)}/files/${file.n}`, target, (bytes) => options.onBytes?.(file.n, bytes));
      paths.push(target);
    }
    return paths;
  }
}
