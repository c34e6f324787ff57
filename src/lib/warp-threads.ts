import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Augment } from '../domain/augmentation.js';
import type { DatasetShape } from '../domain/dataset-shape.js';
import { startModuleWorker } from './module-worker.js';

/** One share of a chunk's warps, as posted to a thread: records and results both in `memory`. */
export interface WarpJob {
  readonly id: number;
  readonly memory: SharedArrayBuffer;
  readonly shape: DatasetShape;
  /** Rotation and scale of each record, interleaved. */
  readonly augments: Float64Array;
  readonly sourceOffset: number;
  readonly targetOffset: number;
}

export interface WarpReply {
  readonly id: number;
  readonly error?: string;
}

/** Arenas are made in power-of-two sizes from 1 MiB; a few idle ones are kept for the next chunks. */
const MIN_ARENA = 1024 * 1024;
const MAX_IDLE_ARENAS = 8;

/** Shared memory for one chunk: its records are read into `source`, warped into `target`. */
export interface WarpArena {
  readonly source: Uint8Array;
  readonly target: Uint8Array;
}

/**
 * The warps of a batch chunk on worker threads: they run beside the event loop, which meanwhile
 * reads the next records and writes the previous chunk to its socket, and on every core. The
 * records are read into shared memory (an arena), each thread warps its share of them into the
 * same arena, and the caller copies the results out. Threads start on first use, do not keep the
 * process alive, and are ended by close(); a thread that fails fails its jobs and is replaced.
 */
export class WarpThreads {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { worker: Worker; resolve: () => void; reject: (error: Error) => void }>();
  private readonly idle = new Map<number, SharedArrayBuffer[]>();
  private nextId = 0;
  private closed = false;

  /** `threads`: SENSORY_WARP_THREADS, about one per core. */
  constructor(readonly threads = Math.min(4, availableParallelism())) {}

  /** Shared memory for `bytes` of records and as many of results. */
  arena(bytes: number): WarpArena {
    let size = MIN_ARENA;
    while (size < 2 * bytes) size *= 2;
    const memory = this.idle.get(size)?.pop() ?? new SharedArrayBuffer(size);
    return { source: new Uint8Array(memory, 0, bytes), target: new Uint8Array(memory, size / 2, bytes) };
  }

  /** Gives an arena back once nothing reads it any more. */
  release(arena: WarpArena): void {
    const memory = arena.source.buffer as SharedArrayBuffer;
    const list = this.idle.get(memory.byteLength) ?? [];
    if (list.length < MAX_IDLE_ARENAS) list.push(memory);
    this.idle.set(memory.byteLength, list);
  }

  /** Warps the arena's records (one per augment) into its target, the threads sharing them out. */
  async warp(arena: WarpArena, shape: DatasetShape, augments: readonly Augment[]): Promise<void> {
    if (this.closed) throw new Error('the warp threads are closed');
    const size = shape.width * shape.height * shape.channels;
    const memory = arena.source.buffer as SharedArrayBuffer;
    const parts = Math.min(this.threads, augments.length);
    const jobs: Promise<void>[] = [];
    let first = 0;
    for (let part = 0; part < parts; part++) {
      const last = Math.round(((part + 1) * augments.length) / parts);
      const values = new Float64Array(2 * (last - first));
      for (let i = first; i < last; i++) {
        values[2 * (i - first)] = augments[i].rotation;
        values[2 * (i - first) + 1] = augments[i].scale;
      }
      jobs.push(
        this.post(part, {
          id: this.nextId++,
          memory,
          shape: { width: shape.width, height: shape.height, channels: shape.channels },
          augments: values,
          sourceOffset: arena.source.byteOffset + first * size,
          targetOffset: arena.target.byteOffset + first * size,
        }),
      );
      first = last;
    }
    await Promise.all(jobs);
  }

  /** Ends the threads; jobs still running fail. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.workers.splice(0).map((worker) => worker.terminate()));
    this.idle.clear();
  }

  private post(index: number, job: WarpJob): Promise<void> {
    const worker = (this.workers[index] ??= this.start(index));
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { worker, resolve, reject });
      // Held while it works, so that a process waiting on it does not exit under it.
      worker.ref();
      worker.postMessage(job);
    });
  }

  private start(index: number): Worker {
    const worker = startModuleWorker(import.meta.url, 'warp-threads.worker');
    worker.unref();
    worker.on('message', (reply: WarpReply) => {
      const job = this.pending.get(reply.id);
      if (!job) return;
      this.pending.delete(reply.id);
      if (![...this.pending.values()].some((other) => other.worker === worker)) worker.unref();
      if (reply.error === undefined) job.resolve();
      else job.reject(new Error(`warp thread: ${reply.error}`));
    });
    const fail = (error: Error) => {
      if (this.workers[index] === worker) delete this.workers[index];
      for (const [id, job] of this.pending) {
        if (job.worker !== worker) continue;
        this.pending.delete(id);
        job.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the warp thread exited with code ${code}`)));
    return worker;
  }
}
