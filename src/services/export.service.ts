import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_EXPORT_SHARD_SIZE, type ExportFormat, type ExportJob, type ExportSpec } from '../domain/export-job.js';
import { SensoryError } from '../domain/errors.js';
import type { Split } from '../domain/split.js';
import type { Clock } from '../ports/clock.js';
import type { ExportStore } from '../ports/export-store.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue } from '../ports/order-queue.js';
import type { BatchService } from './batch.service.js';

export interface ExportRequest {
  readonly format: ExportFormat;
  readonly shardSize?: number;
  readonly revision?: number;
  readonly split?: Split;
  readonly categories?: readonly string[];
}

/** A finished file of a job, found on disk. */
export interface ExportFileHandle {
  readonly path: string;
  readonly name: string;
  readonly bytes: number;
  readonly contentType: string;
  /** Changes when the file does (another attempt of the job): a strong validator for If-Range. */
  readonly etag: string;
}

/** Jobs listed at most. */
export const MAX_EXPORTS_LISTED = 1000;

/**
 * Export jobs as the API sees them: created (checked, counted and pinned to a revision), then run
 * by an ExportRunner in whichever process takes the task; their finished files are read from the
 * exports directory on the shared data dir.
 */
export class ExportService {
  constructor(
    private readonly store: MetadataStore,
    private readonly jobs: ExportStore,
    private readonly batches: BatchService,
    private readonly queue: OrderQueue,
    private readonly clock: Clock,
    /** `<data dir>/exports`. */
    private readonly dir: string,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  async create(datasetName: string, request: ExportRequest): Promise<ExportJob> {
    const { dataset, revision, categories, categoryIndexes, split } = await this.batches.scope(datasetName, request);
    const total = await this.store.countEligible(dataset.id, { revision, split, ...(categoryIndexes ? { categoryIndexes } : {}) });
    const spec: ExportSpec = {
      id: randomUUID(),
      datasetId: dataset.id,
      datasetName: dataset.name,
      format: request.format,
      revision,
      split,
      categoryIndexes: categoryIndexes ? [...categoryIndexes] : null,
      categories: categories.map(({ name, index }) => ({ name, index })),
      shardSize: request.shardSize ?? DEFAULT_EXPORT_SHARD_SIZE,
      width: dataset.width,
      height: dataset.height,
      channels: dataset.channels,
      testPercent: dataset.testPercent,
      total,
    };
    const job: ExportJob = {
      spec,
      status: 'queued',
      done: 0,
      files: [],
      error: null,
      runner: null,
      leaseUntil: 0,
      attempts: 0,
      createdAt: new Date(this.clock.now()).toISOString(),
      finishedAt: null,
    };
    await this.jobs.insert(job);
    // The task only wakes a runner: if it is lost, a runner's sweep takes the queued job anyway.
    await this.queue.publishTasks([{ kind: 'export', version: 1, data: { jobId: spec.id } }]).catch((error: Error) => {
      this.log(`export ${spec.id}: its task was not published (${error.message}); a runner's sweep will take it`);
    });
    return job;
  }

  async get(id: string): Promise<ExportJob> {
    const job = await this.jobs.get(id);
    if (!job) throw new SensoryError('SENSORY_ERR_EXPORT_NOT_FOUND', `no export job ${id}`);
    return job;
  }

  async list(datasetName?: string): Promise<ExportJob[]> {
    return this.jobs.list({ ...(datasetName !== undefined ? { datasetName } : {}), limit: MAX_EXPORTS_LISTED });
  }

  /** The n-th file (0-based) of a job, once it is finished; files of a running job are ready one by one. */
  async file(id: string, n: number): Promise<ExportFileHandle> {
    const job = await this.get(id);
    const entry = job.files[n];
    if (!entry) {
      const expected = job.spec.format === 'imagefolder' ? 1 : Math.max(1, Math.ceil(job.spec.total / job.spec.shardSize));
      if (n < expected && job.status !== 'failed') {
        throw new SensoryError('SENSORY_ERR_EXPORT_FILE_NOT_READY', `file ${n} of export ${id} is not written yet (${job.files.length} of ${expected} ready); ask again later`);
      }
      throw new SensoryError('SENSORY_ERR_EXPORT_FILE_NOT_FOUND', `export ${id} has no file ${n} (it has ${job.files.length})`);
    }
    const path = join(this.dir, job.spec.id, entry.name);
    const info = await stat(path).catch(() => undefined);
    if (!info || info.size !== entry.bytes) throw new SensoryError('SENSORY_ERR_EXPORT_FILE_NOT_FOUND', `file ${n} of export ${id} was removed`);
    return {
      path,
      name: entry.name,
      bytes: entry.bytes,
      contentType: job.spec.format === 'safetensors' ? 'application/octet-stream' : 'application/x-tar',
      etag: `"${job.spec.id}-${n}-${entry.bytes}-${Math.floor(info.mtimeMs)}"`,
    };
  }

  /** Removes a job that is not running, with its files (admin). */
  async remove(id: string): Promise<ExportJob> {
    const job = await this.get(id);
    if (job.status === 'running' && job.leaseUntil > this.clock.now()) {
      throw new SensoryError('SENSORY_ERR_EXPORT_RUNNING', `export ${id} is running; remove it once it has ended`);
    }
    await this.jobs.remove(id);
    await rm(join(this.dir, job.spec.id), { recursive: true, force: true });
    return job;
  }
}

