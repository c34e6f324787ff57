import type { Worker } from 'node:worker_threads';
import { recordBytes, type DatasetShape } from '../../domain/dataset-shape.js';
import { startModuleWorker } from '../../lib/module-worker.js';
import type { Digest, ImageDigests } from '../../ports/imaging.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './sharp.imaging.js';

/** What each thread is started with. */
export interface DigestThreadData {
  readonly maxPixels: number;
  /** The arena: ARENA_SLOTS slots of SLOT_BYTES, each an upload's bytes followed by its pixels. */
  readonly arena: SharedArrayBuffer;
  readonly slotBytes: number;
}

/**
 * One upload as posted to a thread: in an arena slot (`slot`, `length` bytes at its start, the
 * pixels to be written after them at `pixelsAt`), or as a copy the thread takes over (`bytes`).
 */
export type DigestJob =
  | { readonly id: number; readonly shape: DatasetShape; readonly slot: number; readonly length: number; readonly pixelsAt: number }
  | { readonly id: number; readonly shape: DatasetShape; readonly bytes: Uint8Array };

export interface DigestReply {
  readonly id: number;
  readonly sha256?: string;
  /** Decoded: into the job's arena slot, or these pixels (a job not in the arena). */
  readonly decoded?: boolean;
  readonly pixels?: Uint8Array;
  readonly perceptualHash?: string;
  readonly error?: string;
}

/** Jobs posted to a thread in one message, at most. */
const MAX_JOBS_PER_MESSAGE = 32;
/** A thread with this many jobs posted is kept busy: what comes meanwhile waits for its reply, to go in one message. */
const BUSY_JOBS = 8;
/**
 * Slots of the arena. An item holds one from its digest until its pixels are written (not until
 * its commit); an upload that fits a slot waits for one when all are taken. More slots measured
 * worse on memory: the items waiting for the event loop kept their pages resident.
 */
const ARENA_SLOTS = 64;
/** An upload and its pixels that fit together (a 100×100 RGB record and a PNG of up to 34 KB) use a slot; larger ones are copied. */
const SLOT_BYTES = 64 * 1024;

interface Waiting {
  readonly worker: Worker;
  readonly index: number;
  readonly slot?: number;
  readonly pixelsAt: number;
  readonly shape: DatasetShape;
  readonly resolve: (digest: Digest) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The CPU of an upload beside the event loop, on every core: its SHA-256 and, for a PNG the lean
 * path decodes (png.decoder.ts), its pixels and their perceptual hash. Other images come back
 * with their SHA-256 only, for sharp (which runs on threads of its own) and for the refusals it
 * words. Jobs go to the thread with the fewest waiting, several per message; threads start on
 * first use (or startAll()), do not keep the process alive when idle, and end with close(). A thread that dies
 * fails its jobs (a plain Error: the caller's request fails, what it committed before stays) and
 * is replaced.
 *
 * Bytes and pixels travel through one shared arena allocated once (ARENA_SLOTS × SLOT_BYTES, 4 MiB):
 * an upload is copied into a free slot, its pixels are decoded into the same slot, and the slot
 * is free again when the caller releases the digest (once the pixels are written). No memory is allocated or handed over per
 * upload, which on a busy machine cost more (garbage collections, transfers) than the copying.
 *
 * The arena is also the bound on the work handed to the threads: an upload that fits a slot
 * waits for a free one (first come, first served) rather than travelling as a copy. Copies were
 * what a bulk upload's 256 items in flight sent past the 64 slots, and each came back as pixels
 * allocated by the thread and freed only by the event loop's next full collection: 10–20 MB more
 * of the thread's memory while a long body streamed. Only uploads too large for a slot are copied.
 */
export class DecodeThreads implements ImageDigests {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  /** Jobs not posted yet, per thread: posted together once the current turn of the event loop ends. */
  private readonly outboxes: DigestJob[][] = [];
  private readonly pending = new Map<number, Waiting>();
  /** Jobs posted to each thread and not answered yet. */
  private readonly posted: number[] = [];
  private arena?: SharedArrayBuffer;
  private readonly freeSlots: number[] = [];
  /** Uploads waiting for a slot, in the order they came. */
  private readonly slotWaiters: Array<{ readonly take: (slot: number) => void; readonly fail: (error: Error) => void }> = [];
  private nextId = 0;
  private closed = false;

  constructor(
    /** SENSORY_INGEST_THREADS (its default rule: defaultIngestThreads in config.ts). */
    readonly threads: number,
    private readonly limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
  ) {
    if (!Number.isSafeInteger(threads) || threads < 1) throw new Error(`decode threads must be a whole number above 0, got ${threads}`);
  }

  /** Slots free in the arena (for tests: all of them once every digest is released). */
  get freeArenaSlots(): number {
    return this.arena ? this.freeSlots.length : ARENA_SLOTS;
  }

  /** Uploads waiting for a free arena slot (for tests). */
  get waitingForSlots(): number {
    return this.slotWaiters.length;
  }

  digest(bytes: Buffer, shape: DatasetShape): Promise<Digest> {
    if (this.closed) return Promise.reject(new Error('the decode threads are closed'));
    const fitsSlot = ((bytes.length + 7) & ~7) + recordBytes(shape) <= SLOT_BYTES;
    if (!fitsSlot) return this.post(bytes, shape, undefined);
    this.ensureArena();
    const slot = this.freeSlots.pop();
    if (slot !== undefined) return this.post(bytes, shape, slot);
    return new Promise<number>((take, fail) => this.slotWaiters.push({ take, fail })).then((freed) => this.post(bytes, shape, freed));
  }

  /** Posts an upload to the thread with the fewest jobs waiting: in arena slot `slot`, or as a copy. */
  private post(bytes: Buffer, shape: DatasetShape, slot: number | undefined): Promise<Digest> {
    if (this.closed) {
      this.freeSlot(slot);
      return Promise.reject(new Error('the decode threads are closed'));
    }
    let index = 0;
    for (let i = 1; i < this.threads; i++) if ((this.load[i] ?? 0) < (this.load[index] ?? 0)) index = i;
    const worker = (this.workers[index] ??= this.start(index));
    const plain = { width: shape.width, height: shape.height, channels: shape.channels };
    const id = this.nextId++;
    const pixelsAt = (bytes.length + 7) & ~7;
    let job: DigestJob;
    if (slot !== undefined) {
      new Uint8Array(this.arena!, slot * SLOT_BYTES, bytes.length).set(bytes);
      job = { id, shape: plain, slot, length: bytes.length, pixelsAt };
    } else {
      // A copy of its own, handed over without another: the member's bytes often share their
      // memory with the rest of a network chunk, which a message would copy whole.
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      job = { id, shape: plain, bytes: copy };
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, index, slot, pixelsAt, shape: plain, resolve, reject });
      this.load[index] = (this.load[index] ?? 0) + 1;
      const outbox = (this.outboxes[index] ??= []);
      outbox.push(job);
      if (outbox.length >= MAX_JOBS_PER_MESSAGE) this.send(index);
      else if (outbox.length === 1) setImmediate(() => this.sendIfIdle(index));
    });
  }

  /**
   * Starts every thread now rather than on first use: the service starts them with itself, so a
   * first bulk upload neither waits for them nor finds its process tens of MB larger than before.
   */
  startAll(): this {
    for (let index = 0; index < this.threads; index++) this.workers[index] ??= this.start(index);
    return this;
  }

  /** Ends the threads; jobs still running fail. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.slotWaiters.splice(0)) waiter.fail(new Error('the decode threads are closed'));
    await Promise.allSettled(this.workers.splice(0).map((worker) => worker.terminate()));
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
    this.posted[index] = (this.posted[index] ?? 0) + jobs.length;
    // Held while it works, so that a process waiting on it does not exit under it.
    worker.ref();
    const transfer: ArrayBuffer[] = [];
    for (const job of jobs) if ('bytes' in job) transfer.push(job.bytes.buffer as ArrayBuffer);
    worker.postMessage(jobs, transfer);
  }

  /**
   * Sends the jobs waiting for thread `index` unless it has enough posted already to keep it busy:
   * they then go with its next reply, together with those that come meanwhile.
   */
  private sendIfIdle(index: number): void {
    if ((this.posted[index] ?? 0) < BUSY_JOBS) this.send(index);
  }

  private settle(id: number): Waiting | undefined {
    const job = this.pending.get(id);
    if (!job) return undefined;
    this.pending.delete(id);
    this.load[job.index]--;
    if (this.load[job.index] === 0 && this.workers[job.index] === job.worker) job.worker.unref();
    return job;
  }

  /** The digest of a reply; a slot whose pixels are not needed is free again at once. */
  private digestOf(job: Waiting, reply: DigestReply & { sha256: string }): Digest {
    const { sha256 } = reply;
    if (!reply.decoded) {
      this.freeSlot(job.slot);
      return { sha256 };
    }
    if (job.slot === undefined) return { sha256, decoded: { mediaType: 'image/png', pixels: reply.pixels!, perceptualHash: reply.perceptualHash! } };
    const pixels = new Uint8Array(this.arena!, job.slot * SLOT_BYTES + job.pixelsAt, recordBytes(job.shape));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.freeSlot(job.slot);
    };
    return { sha256, decoded: { mediaType: 'image/png', pixels, perceptualHash: reply.perceptualHash! }, release };
  }

  /** A slot back: to the upload that has waited longest for one, else to the free list. */
  private freeSlot(slot: number | undefined): void {
    if (slot === undefined) return;
    const waiter = this.slotWaiters.shift();
    if (waiter) waiter.take(slot);
    else this.freeSlots.push(slot);
  }

  private ensureArena(): void {
    if (this.arena) return;
    this.arena = new SharedArrayBuffer(ARENA_SLOTS * SLOT_BYTES);
    for (let slot = ARENA_SLOTS - 1; slot >= 0; slot--) this.freeSlots.push(slot);
  }

  private start(index: number): Worker {
    this.ensureArena();
    const data: DigestThreadData = { maxPixels: this.limits.maxPixels, arena: this.arena!, slotBytes: SLOT_BYTES };
    const worker = startModuleWorker(import.meta.url, 'decode-threads.worker', { workerData: data });
    worker.unref();
    this.load[index] = 0;
    this.posted[index] = 0;
    worker.on('message', (replies: DigestReply[]) => {
      if (this.workers[index] === worker) this.posted[index] -= replies.length;
      for (const reply of replies) {
        const job = this.settle(reply.id);
        if (!job) continue;
        if (reply.error !== undefined || reply.sha256 === undefined) {
          this.freeSlot(job.slot);
          job.reject(new Error(`decode thread: ${reply.error ?? 'no SHA-256 in its reply'}`));
        } else {
          job.resolve(this.digestOf(job, reply as DigestReply & { sha256: string }));
        }
      }
      if (this.workers[index] === worker) this.sendIfIdle(index);
    });
    const fail = (error: Error) => {
      if (this.workers[index] === worker) {
        delete this.workers[index];
        this.load[index] = 0;
        this.posted[index] = 0;
        this.outboxes[index] = [];
      }
      for (const [id, job] of this.pending) {
        if (job.worker !== worker) continue;
        this.pending.delete(id);
        this.freeSlot(job.slot);
        job.reject(error);
      }
    };
    worker.on('error', (error) => fail(new Error(`a decode thread failed: ${error.message}`)));
    worker.on('exit', (code) => fail(new Error(`a decode thread exited with code ${code}`)));
    return worker;
  }
}
