import { recordBytes } from '../domain/dataset-shape.js';
import { perceptualHash } from '../domain/perceptual-hash.js';
import type { DatasetRecord, MetadataStore, UnhashedSample } from '../ports/metadata-store.js';
import type { PixelStore } from '../ports/pixel-store.js';

export interface BackfillOptions {
  /** Samples read, hashed and written per step. */
  readonly batch?: number;
  /** Pause between steps, so that requests always get the event loop and the database. */
  readonly pauseMs?: number;
  /** Pause after a step failed (the database restarting) before trying it again. */
  readonly retryMs?: number;
}

export interface BackfillProgress {
  readonly running: boolean;
  /** Hashes computed and stored by this process. */
  readonly hashed: number;
  /** Samples whose pixels could not be read (their dataset went meanwhile, or a damaged record). */
  readonly skipped: number;
  /** True once a pass found nothing left to hash. */
  readonly done: boolean;
}

/**
 * Computes the perceptual hash of samples stored before hashes were computed at ingest, online:
 * a background pass of the serve process, in small steps by ascending id, each a read of the
 * stored pixels and one write of the hashes. The work left is what the database says has no
 * hash yet, so a pass stopped at any point (a restart, a crash) resumes where it was; replicas
 * running it at once only repeat one another's (identical) writes.
 */
export class HashBackfill {
  private readonly batch: number;
  private readonly pauseMs: number;
  private readonly retryMs: number;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private hashed = 0;
  private skipped = 0;
  private done = false;

  constructor(
    private readonly store: MetadataStore,
    private readonly pixels: PixelStore,
    private readonly log: (message: string) => void = () => undefined,
    options: BackfillOptions = {},
  ) {
    this.batch = options.batch ?? 256;
    this.pauseMs = options.pauseMs ?? 20;
    this.retryMs = options.retryMs ?? 5000;
  }

  get progress(): BackfillProgress {
    return { running: this.running !== undefined && !this.done, hashed: this.hashed, skipped: this.skipped, done: this.done };
  }

  /** Starts the pass in the background (once); it ends when nothing is left or stop() is called. */
  start(): void {
    this.running ??= this.loop().catch((error: unknown) => this.log(`perceptual hash backfill stopped: ${String(error)}`));
  }

  /** Ends the pass after its current step; safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /** One whole pass, in the caller's time (tests, tools): resolves when nothing is left to hash. */
  async runToEnd(): Promise<BackfillProgress> {
    let afterId = 0;
    for (;;) {
      const next = await this.step(afterId);
      if (next === undefined) break;
      afterId = next;
    }
    this.done = true;
    return this.progress;
  }

  private async loop(): Promise<void> {
    let afterId = 0;
    while (!this.stopped) {
      let next: number | undefined;
      try {
        next = await this.step(afterId);
      } catch (error) {
        this.log(`perceptual hash backfill: a step failed, retrying in ${this.retryMs} ms: ${error instanceof Error ? error.message : String(error)}`);
        await this.sleep(this.retryMs);
        continue;
      }
      if (next === undefined) {
        this.done = true;
        if (this.hashed + this.skipped > 0) this.log(`perceptual hash backfill done: ${this.hashed} hashed, ${this.skipped} skipped`);
        return;
      }
      afterId = next;
      await this.sleep(this.pauseMs);
    }
  }

  /** Hashes the next samples after `afterId`; the last id looked at, or undefined when none is left. */
  private async step(afterId: number): Promise<number | undefined> {
    const samples = await this.store.samplesWithoutPerceptualHash(afterId, this.batch);
    if (samples.length === 0) return undefined;
    const datasets = new Map((await this.store.listDatasets()).map((dataset) => [dataset.id, dataset]));
    const byDataset = new Map<number, UnhashedSample[]>();
    for (const sample of samples) {
      const list = byDataset.get(sample.datasetId) ?? [];
      list.push(sample);
      byDataset.set(sample.datasetId, list);
    }
    const hashes: { id: number; hash: string }[] = [];
    for (const [datasetId, list] of byDataset) {
      const dataset = datasets.get(datasetId);
      if (!dataset) {
        this.skipped += list.length;
        continue;
      }
      hashes.push(...(await this.hashAll(dataset, list)));
    }
    await this.store.setPerceptualHashes(hashes);
    this.hashed += hashes.length;
    return samples[samples.length - 1].id;
  }

  private async hashAll(dataset: DatasetRecord, samples: readonly UnhashedSample[]): Promise<{ id: number; hash: string }[]> {
    const size = recordBytes(dataset);
    const target = new Uint8Array(size * samples.length);
    try {
      await this.pixels.read(dataset.id, dataset, samples.map((sample) => sample.pixelSlot), target, 0);
    } catch {
      // One by one, so that one unreadable record does not hold back the others.
      const out: { id: number; hash: string }[] = [];
      for (const sample of samples) {
        try {
          await this.pixels.read(dataset.id, dataset, [sample.pixelSlot], target, 0);
          out.push({ id: sample.id, hash: perceptualHash(target.subarray(0, size), dataset) });
        } catch {
          this.skipped += 1;
        }
      }
      return out;
    }
    return samples.map((sample, i) => ({ id: sample.id, hash: perceptualHash(target.subarray(i * size, (i + 1) * size), dataset) }));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
