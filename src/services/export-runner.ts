import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { recordBytes } from '../domain/dataset-shape.js';
import { MAX_EXPORT_ATTEMPTS, exportFileName, resumePoint, type ExportFile, type ExportJob, type ExportSpec } from '../domain/export-job.js';
import { ExportFileWriter } from '../adapters/files/export-file.writer.js';
import { categoryNames, imagefolderMembers, safetensorsShardLayout, webdatasetMembers } from '../formats/export-members.js';
import { TAR_END } from '../formats/tar.writer.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { Clock } from '../ports/clock.js';
import type { ExportHold, ExportStore } from '../ports/export-store.js';
import type { ExportSample, MetadataStore } from '../ports/metadata-store.js';
import type { ExportTask, TaskOutcome } from '../ports/order-queue.js';
import type { PixelStore } from '../ports/pixel-store.js';

/** Samples read per page: their originals are in memory at once (two pages: one written, one read ahead). */
const PAGE = 256;
/** Progress is written (and the lease renewed) at most this often. */
const RENEW_EVERY_MS = 500;

export interface ExportRunnerOptions {
  /** Where job files go: `<dir>/<job id>/<file>`. */
  readonly dir: string;
  /** How long a job stays held without a renewal: a runner that died loses it then. */
  readonly leaseMs: number;
  /** Jobs this process runs at once. */
  readonly concurrency: number;
  readonly log?: (message: string) => void;
  /** Told of every job that ended (complete or failed), after its row says so. */
  readonly onFinished?: (job: ExportJob) => void;
}

/** The runner lost the job (its lease ran out and another took it), or is stopping. */
class Stopped extends Error {}
/** The job cannot be done: it fails with this message. */
class JobFailure extends Error {}

/**
 * Runs export jobs in the background: a task from the queue names a job to take now, and a sweep
 * takes any job that is queued or whose runner died (its lease ran out), so a job finishes even
 * when its task was lost or its process was killed. A job taken again resumes after its last
 * finished file. Files stream page by page: memory stays flat whatever the dataset's size.
 */
export class ExportRunner {
  readonly name = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<string, Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly store: MetadataStore,
    private readonly jobs: ExportStore,
    private readonly blobs: BlobStore,
    private readonly pixels: PixelStore,
    private readonly clock: Clock,
    private readonly options: ExportRunnerOptions,
  ) {}

  /** Sweeps now and then every half lease (up to 5 s); a second call does nothing. */
  start(): void {
    if (this.sweepTimer || this.stopping) return;
    const every = Math.max(200, Math.min(5000, Math.floor(this.options.leaseMs / 2)));
    this.sweepTimer = setInterval(() => void this.sweep(), every);
    this.sweepTimer.unref();
    void this.sweep();
  }

  /** The queue's export task: take that job now if there is room (the sweep takes it otherwise). */
  handle = async (task: ExportTask): Promise<TaskOutcome> => {
    if (!this.stopping) await this.take(task.data.jobId).catch((error: Error) => this.options.log?.(`export ${task.data.jobId}: ${error.message}`));
    return 'ack';
  };

  /** Takes jobs that can be taken while there is room; never throws. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        while (!this.stopping && this.running.size < this.options.concurrency && (await this.take(undefined))) {
          // took one; look for another
        }
      } catch (error) {
        this.options.log?.(`export sweep: ${(error as Error).message}`);
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** Resolves once every job in this process is idle (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /** Stops taking jobs; jobs in flight stop at their next page and are handed back for another runner. Safe twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sweeping;
    await Promise.allSettled([...this.running.values()]);
  }

  private hold(): ExportHold {
    return { runner: this.name, now: this.clock.now(), leaseMs: this.options.leaseMs };
  }

  private async take(id: string | undefined): Promise<boolean> {
    if (this.stopping || this.running.size >= this.options.concurrency) return false;
    if (id !== undefined && this.running.has(id)) return false;
    const job = await this.jobs.claim(id, this.hold());
    if (!job) return false;
    const run = this.run(job).finally(() => {
      this.running.delete(job.spec.id);
      // Room again: a job that waited for it starts now rather than at the next sweep.
      if (!this.stopping) void this.sweep();
    });
    this.running.set(job.spec.id, run);
    return true;
  }

  private async run(job: ExportJob): Promise<void> {
    const { spec } = job;
    try {
      if (job.attempts > MAX_EXPORT_ATTEMPTS) throw new JobFailure(`stopped after ${MAX_EXPORT_ATTEMPTS} attempts: each runner that took it died or stopped`);
      const dataset = await this.store.getDataset(spec.datasetName);
      if (!dataset || dataset.id !== spec.datasetId) throw new JobFailure(`dataset ${spec.datasetName} was deleted`);
      if (spec.revision < dataset.purgedRevision) throw new JobFailure(`revision ${spec.revision} of dataset ${spec.datasetName} was purged`);
      const dir = join(this.options.dir, spec.id);
      await mkdir(dir, { recursive: true });
      await this.write(job, dir);
      await this.end(job, { status: 'complete' });
    } catch (error) {
      if (error instanceof Stopped) {
        // Handed back at once when stopping; when the lease was lost, another runner has it already.
        await this.jobs.release(spec.id, this.name).catch(() => undefined);
        return;
      }
      const message = error instanceof JobFailure ? error.message : `export failed: ${(error as Error).message}`;
      if (!(error instanceof JobFailure)) this.options.log?.(`export ${spec.id}: ${(error as Error).stack ?? error}`);
      await this.end(job, { status: 'failed', error: message }).catch(() => undefined);
    }
  }

  private async end(job: ExportJob, outcome: { status: 'complete' | 'failed'; error?: string }): Promise<void> {
    if (await this.jobs.finish(job.spec.id, this.name, { ...outcome, finishedAt: new Date(this.clock.now()).toISOString() })) {
      const ended = await this.jobs.get(job.spec.id);
      if (ended) this.options.onFinished?.(ended);
    }
  }

  /** Writes the files the job still lacks, file after file. */
  private async write(job: ExportJob, dir: string): Promise<void> {
    const { spec } = job;
    // imagefolder is one tar: a job taken again writes it from the start.
    const start = spec.format === 'imagefolder' ? { afterId: 0, done: 0, nextFile: 0 } : resumePoint(job.files);
    let { afterId, done, nextFile } = start;
    const progress = new Progress(this, spec.id, done);
    const perFile = spec.format === 'imagefolder' ? spec.total : spec.shardSize;
    do {
      const count = Math.min(perFile, spec.total - done);
      const name = exportFileName(spec, nextFile);
      const writer = await ExportFileWriter.create(join(dir, name));
      let lastId: number;
      try {
        lastId = spec.format === 'safetensors'
          ? await this.writeSafetensors(spec, writer, afterId, count, nextFile, progress)
          : await this.writeTar(spec, writer, afterId, count, progress);
      } catch (error) {
        await writer.abandon();
        throw error;
      }
      const bytes = await writer.finish();
      done += count;
      const file: ExportFile = { name, bytes, samples: count, lastId };
      if (!(await this.jobs.addFile(spec.id, this.hold(), file, done))) throw new Stopped();
      progress.done = done;
      afterId = lastId;
      nextFile++;
    } while (done < spec.total);
  }

  /** The pages of `count` samples after `afterId`, each page's originals read while the one before is written. */
  private async *pages(spec: ExportSpec, afterId: number, count: number, withOriginals: boolean): AsyncGenerator<{ samples: ExportSample[]; originals: Buffer[] }> {
    let left = count;
    let after = afterId;
    const fetch = async (): Promise<{ samples: ExportSample[]; originals: Buffer[] } | undefined> => {
      if (left === 0) return undefined;
      const samples = await this.store.exportPage(spec.datasetId, {
        revision: spec.revision,
        split: spec.split,
        ...(spec.categoryIndexes ? { categoryIndexes: spec.categoryIndexes } : {}),
        afterId: after,
        limit: Math.min(PAGE, left),
      });
      if (samples.length === 0) throw new JobFailure(`samples of revision ${spec.revision} of dataset ${spec.datasetName} are gone (purged or the dataset deleted)`);
      left -= samples.length;
      after = samples.at(-1)!.id;
      const originals = withOriginals ? await this.originals(samples) : [];
      return { samples, originals };
    };
    let next = fetch();
    for (;;) {
      const page = await next;
      if (!page) return;
      next = fetch();
      // A rejected read-ahead is awaited on the next turn; until then it must not count as unhandled.
      next.catch(() => undefined);
      yield page;
    }
  }

  private originals(samples: readonly ExportSample[]): Promise<Buffer[]> {
    const sha256s = samples.map((sample) => sample.sha256);
    return this.blobs.getMany ? this.blobs.getMany(sha256s) : Promise.all(sha256s.map((sha256) => this.blobs.get(sha256)));
  }

  private async writeTar(spec: ExportSpec, writer: ExportFileWriter, afterId: number, count: number, progress: Progress): Promise<number> {
    const names = categoryNames(spec);
    const mtime = Math.floor(this.clock.now() / 1000);
    const members = spec.format === 'webdataset' ? webdatasetMembers : imagefolderMembers;
    let lastId = afterId;
    for await (const { samples, originals } of this.pages(spec, afterId, count, true)) {
      const buffers: Buffer[] = [];
      for (let i = 0; i < samples.length; i++) buffers.push(...members(spec, names, samples[i], originals[i], mtime));
      await writer.append(...buffers);
      lastId = samples.at(-1)!.id;
      await progress.add(samples.length);
    }
    await writer.append(TAR_END);
    return lastId;
  }

  private async writeSafetensors(spec: ExportSpec, writer: ExportFileWriter, afterId: number, count: number, shard: number, progress: Progress): Promise<number> {
    const layout = safetensorsShardLayout(spec, count, shard);
    const record = recordBytes(spec);
    const labels = new BigInt64Array(count);
    const ids = new BigInt64Array(count);
    await writer.append(layout.head);
    let at = 0;
    let lastId = afterId;
    for await (const { samples } of this.pages(spec, afterId, count, false)) {
      const pixels = Buffer.allocUnsafe(samples.length * record);
      await this.pixels.read(spec.datasetId, spec, samples.map((sample) => sample.pixelSlot), pixels, 0);
      for (const sample of samples) {
        labels[at] = BigInt(sample.categoryIndex);
        ids[at] = BigInt(sample.id);
        at++;
      }
      await writer.append(pixels);
      lastId = samples.at(-1)!.id;
      await progress.add(samples.length);
    }
    await writer.append(Buffer.from(labels.buffer), Buffer.from(ids.buffer));
    if (writer.size !== layout.totalBytes) throw new Error(`safetensors shard ${shard} has ${writer.size} bytes, its header says ${layout.totalBytes}`);
    return lastId;
  }

  /** For Progress: records progress under the runner's lease; throws Stopped when the lease is lost or the runner stops. */
  async renew(id: string, done: number): Promise<void> {
    if (this.stopping) throw new Stopped();
    if (!(await this.jobs.renew(id, this.hold(), done))) throw new Stopped();
  }
}

/** Samples written by a job, written to its row now and then. */
class Progress {
  private last = 0;

  constructor(
    private readonly runner: ExportRunner,
    private readonly id: string,
    public done: number,
  ) {}

  async add(samples: number): Promise<void> {
    this.done += samples;
    const now = Date.now();
    if (now - this.last < RENEW_EVERY_MS) return;
    this.last = now;
    await this.runner.renew(this.id, this.done);
  }
}
