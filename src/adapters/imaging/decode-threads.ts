import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { DatasetShape } from '../../domain/dataset-shape.js';
import { startModuleWorker } from '../../lib/module-worker.js';
import type { Digest, ImageDigests } from '../../ports/imaging.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './sharp.imaging.js';

/** What each thread is started with. */
export interface DigestThreadData {
  readonly maxPixels: number;
}

/** One upload as posted to a thread: its bytes are a copy the thread takes over. */
export interface DigestJob {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly shape: DatasetShape;
}

export interface DigestReply {
  readonly id: number;
  readonly sha256?: string;
  readonly pixels?: Uint8Array;
  readonly perceptualHash?: string;
  readonly error?: string;
}

/** Jobs posted to a thread in one message, at most. */
const MAX_JOBS_PER_MESSAGE = 32;

/** About one thread per core, the event loop's included: it parses, looks up and commits meanwhile. */
export function defaultDecodeThreads(): number {
  return Math.min(4, availableParallelism());
}

/**
 * The CPU of an upload beside the event loop, on every core: its SHA-256 and, for a PNG the lean
 * path decodes (png.decoder.ts), its pixels and their perceptual hash. Other images come back
 * with their SHA-256 only, for sharp (which runs on threads of its own) and for the refusals it
 * words. Jobs go to the thread with the fewest waiting; threads start on first use, do not keep
 * the process alive when idle, and end with close(). A thread that dies fails its jobs (a plain
 * Error: the caller's request fails, what it committed before stays) and is replaced.
 */
export class DecodeThreads implements ImageDigests {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  /** Jobs not posted yet, per thread: posted together once the current turn of the event loop ends. */
  private readonly outboxes: DigestJob[][] = [];
  private readonly pending = new Map<number, { worker: Worker; index: number; resolve: (digest: Digest) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private closed = false;

  constructor(
    readonly threads = defaultDecodeThreads(),
    private readonly limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
  ) {
    if (!Number.isSafeInteger(threads) || threads < 1) throw new Error(`decode threads must be a whole number above 0, got ${threads}`);
  }

  digest(bytes: Buffer, shape: DatasetShape): Promise<Digest> {
    if (this.closed) return Promise.reject(new Error('the decode threads are closed'));
    let index = 0;
    for (let i = 1; i < this.threads; i++) if ((this.load[i] ?? 0) < (this.load[index] ?? 0)) index = i;
    const worker = (this.workers[index] ??= this.start(index));
    // A copy of its own, handed over without another: the member's bytes often share their memory
    // with the rest of a network chunk, which a message would copy whole.
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const job: DigestJob = { id: this.nextId++, bytes: copy, shape: { width: shape.width, height: shape.height, channels: shape.channels } };
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { worker, index, resolve, reject });
      this.load[index] = (this.load[index] ?? 0) + 1;
      const outbox = (this.outboxes[index] ??= []);
      outbox.push(job);
      if (outbox.length >= MAX_JOBS_PER_MESSAGE) this.send(index);
      else if (outbox.length === 1) setImmediate(() => this.send(index));
    });
  }

  /**
   * Posts what waits for thread `index` as one message: a message wakes a thread, and on a
   * machine whose cores are all busy each wake costs more than the copying.
   */
  private send(index: number): void {
    const jobs = this.outboxes[index];
    const worker = this.workers[index];
    if (!jobs || jobs.length === 0) return;
    this.outboxes[index] = [];
    if (!worker) return; // it died meanwhile: its jobs failed with it
    // Held while it works, so that a process waiting on it does not exit under it.
    worker.ref();
    worker.postMessage(jobs, jobs.map((job) => job.bytes.buffer as ArrayBuffer));
  }

  /** Ends the threads; jobs still running fail. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.workers.splice(0).map((worker) => worker.terminate()));
  }

  private settle(id: number): { resolve: (digest: Digest) => void; reject: (error: Error) => void } | undefined {
    const job = this.pending.get(id);
    if (!job) return undefined;
    this.pending.delete(id);
    this.load[job.index]--;
    if (this.load[job.index] === 0 && this.workers[job.index] === job.worker) job.worker.unref();
    return job;
  }

  private start(index: number): Worker {
    const data: DigestThreadData = { maxPixels: this.limits.maxPixels };
    const worker = startModuleWorker(import.meta.url, 'decode-threads.worker', { workerData: data });
    worker.unref();
    this.load[index] = 0;
    worker.on('message', (replies: DigestReply[]) => {
      for (const reply of replies) {
        const job = this.settle(reply.id);
        if (!job) continue;
        if (reply.error !== undefined || reply.sha256 === undefined) job.reject(new Error(`decode thread: ${reply.error ?? 'no SHA-256 in its reply'}`));
        else if (!reply.pixels) job.resolve({ sha256: reply.sha256 });
        else job.resolve({ sha256: reply.sha256, decoded: { mediaType: 'image/png', pixels: reply.pixels, perceptualHash: reply.perceptualHash! } });
      }
    });
    const fail = (error: Error) => {
      if (this.workers[index] === worker) {
        delete this.workers[index];
        this.load[index] = 0;
        this.outboxes[index] = [];
      }
      for (const [id, job] of this.pending) {
        if (job.worker !== worker) continue;
        this.pending.delete(id);
        job.reject(error);
      }
    };
    worker.on('error', (error) => fail(new Error(`a decode thread failed: ${error.message}`)));
    worker.on('exit', (code) => fail(new Error(`a decode thread exited with code ${code}`)));
    return worker;
  }
}
