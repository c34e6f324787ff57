import { drawAugment, inMemoryScratchBytes, isIdentity, warpInMemory, warpInto } from '../domain/augmentation.js';
import type { BatchPlan, Dtype, LabelDtype, LabelForm, Layout } from '../domain/batch-plan.js';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { categoryName } from '../domain/names.js';
import { randomSeed } from '../domain/random.js';
import { drawBalancedBatch, drawBatch } from '../domain/sampling.js';
import { adoptChunk, disownChunk, releaseChunk, takeChunk, takeWasmChunk, wasmMemoryOf } from '../lib/chunk-pool.js';
import type { WarpArena, WarpThreads } from '../lib/warp-threads.js';
import type { Split } from '../domain/split.js';
import { encodeJson } from '../formats/batch-json.encoder.js';
import { encodeSafetensors } from '../formats/batch-safetensors.encoder.js';
import type { EncodedBatch, Render, TakeTarget } from '../formats/encoded-batch.js';
import { encodeLegacyBatch } from '../formats/legacy-json.encoder.js';
import type { CategoryRecord, DatasetRecord, EligibleSample, MetadataStore } from '../ports/metadata-store.js';
import type { PixelStore } from '../ports/pixel-store.js';
import type { BatchFormat, Telemetry } from '../ports/telemetry.js';
import { requireDataset } from './dataset.service.js';

/**
 * Upper bounds of the encoded size of one pixel value: safetensors stores it as it is; JSON
 * writes "[255]," for a one-channel pixel at most, or a float of up to 19 digits.
 */
const BYTES_PER_VALUE: Record<BatchFormat, Record<Dtype, number>> = {
  safetensors: { uint8: 1, float32: 4 },
  json: { uint8: 6, float32: 22 },
  legacy: { uint8: 6, float32: 22 },
};

export interface BatchRequest {
  readonly size: number;
  readonly noise?: number;
  readonly seed?: number;
  readonly split?: Split;
  readonly categories?: readonly string[];
  readonly revision?: number;
  readonly dtype?: Dtype;
  readonly labels?: LabelForm;
  readonly labelDtype?: LabelDtype;
  readonly layout?: Layout;
  readonly balance?: boolean;
}

export interface Selection {
  readonly dataset: DatasetRecord;
  readonly revision: number;
  readonly categories: readonly Pick<CategoryRecord, 'name' | 'index'>[];
  readonly categoryIndexes: readonly number[] | undefined;
  readonly split: Split;
  /** By ascending id. */
  readonly eligible: readonly EligibleSample[];
}

/** The chunks made by targetsFor (these very views): the warp's scratch follows their records in the same memory. */
const inPlaceTargets = new WeakSet<Uint8Array>();
/** Chunks made by targetsFor for warp threads: each is the target of a thread arena, its records read into the arena's source. */
const arenaTargets = new WeakMap<Uint8Array, WarpArena>();

/** Below this many bytes of records, a chunk is warped on the event loop: posting it would cost more. */
const MIN_THREADED_WARP_BYTES = 128 * 1024;

const ENCODERS: Record<BatchFormat, (plan: BatchPlan, render: Render, takeTarget?: TakeTarget) => EncodedBatch> = {
  json: (plan, render) => encodeJson(plan, render),
  safetensors: (plan, render, takeTarget) => encodeSafetensors(plan, render, {}, undefined, takeTarget),
  legacy: (plan, render) => encodeLegacyBatch(plan, render),
};

export class BatchService {
  constructor(
    private readonly store: MetadataStore,
    private readonly pixels: PixelStore,
    private readonly maxBatchSamples: number,
    private readonly telemetry: Telemetry,
    /** Bound on the encoded answer (SENSORY_MAX_BATCH_BYTES), estimated before any pixel is read. */
    private readonly maxBatchBytes = Number.MAX_SAFE_INTEGER,
    /** Where chunks of augmented samples are warped; without it, on the event loop. */
    private readonly warpThreads?: WarpThreads,
  ) {}

  /** A small batch, planned and encoded in `format`; its pixels are rendered as the body is read. */
  async serve(datasetName: string, request: BatchRequest, format: BatchFormat): Promise<EncodedBatch> {
    const started = performance.now();
    const plan = await this.plan(datasetName, request, format);
    this.telemetry.countBatchSamplesServed(format, plan.samples.length);
    this.telemetry.countPixelBytesServed('batch', plan.samples.length * recordBytes(plan.dataset));
    const encoded = ENCODERS[format](plan, (start, count, target) => this.render(plan, start, count, target), this.targetsFor(plan));
    return { ...encoded, chunks: timedChunks(encoded.chunks, () => this.telemetry.observeBatch(format, (performance.now() - started) / 1000)) };
  }

  async plan(datasetName: string, request: BatchRequest, format: BatchFormat = 'json'): Promise<BatchPlan> {
    if (request.size > this.maxBatchSamples) {
      throw new SensoryError(
        'SENSORY_ERR_BATCH_TOO_LARGE',
        `a small batch may have at most ${this.maxBatchSamples} samples (SENSORY_MAX_BATCH_SAMPLES); place a batch order (POST /v1/datasets/${datasetName}/orders) for ${request.size}`,
        { size: request.size, max: this.maxBatchSamples },
      );
    }
    if (request.labelDtype !== undefined && request.labels === 'onehot') {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'labelDtype applies to index labels; one-hot labels are always uint8 rows', { field: 'labelDtype' });
    }
    const { dataset, revision, categories, eligible } = await this.select(datasetName, request);
    const estimate = request.size * recordBytes(dataset) * BYTES_PER_VALUE[format][request.dtype ?? 'uint8'];
    if (estimate > this.maxBatchBytes) {
      throw new SensoryError(
        'SENSORY_ERR_BATCH_TOO_LARGE',
        `a batch of ${request.size} samples of ${recordBytes(dataset)} values as ${format} would be about ${estimate} bytes, above SENSORY_MAX_BATCH_BYTES (${this.maxBatchBytes}); ask for fewer samples, use safetensors, or place a batch order`,
        { estimatedBytes: estimate, max: this.maxBatchBytes },
      );
    }
    const seed = request.seed ?? randomSeed();
    const samples = request.balance ? drawBalancedBatch(eligible, request.size, seed) : drawBatch(eligible, request.size, seed);
    const noise = request.noise ?? 0;
    return {
      dataset,
      revision,
      seed,
      samples,
      augments: samples.map((_, slot) => drawAugment(seed, slot, noise)),
      categories,
      dtype: request.dtype ?? 'uint8',
      labels: request.labels ?? 'index',
      labelDtype: request.labelDtype ?? 'int32',
      layout: request.layout ?? 'nhwc',
    };
  }

  /** The candidates a batch or an order draws from: the dataset at a revision, in a split and categories. */
  async select(datasetName: string, request: Pick<BatchRequest, 'revision' | 'categories' | 'split'>): Promise<Selection> {
    const scope = await this.scope(datasetName, request);
    const { dataset, revision, split, categoryIndexes } = scope;
    const eligible = await this.store.eligibleSamples(dataset.id, { revision, split, categoryIndexes });
    return { ...scope, eligible };
  }

  /** What select() checks and resolves, without reading the samples: the dataset, revision, categories and split. */
  async scope(datasetName: string, request: Pick<BatchRequest, 'revision' | 'categories' | 'split'>): Promise<Omit<Selection, 'eligible'>> {
    const dataset = await requireDataset(this.store, datasetName);
    const revision = request.revision ?? dataset.revision;
    if (revision > dataset.revision) {
      throw new SensoryError('SENSORY_ERR_UNKNOWN_REVISION', `revision ${revision} is above dataset ${dataset.name}'s current revision ${dataset.revision}`, {
        revision,
        current: dataset.revision,
      });
    }
    if (revision < dataset.purgedRevision) {
      throw new SensoryError(
        'SENSORY_ERR_REVISION_PURGED',
        `revision ${revision} of dataset ${dataset.name} is gone: samples deleted before revision ${dataset.purgedRevision} were purged; ask for ${dataset.purgedRevision} or later`,
        { revision, purgedRevision: dataset.purgedRevision },
      );
    }
    const categories = await this.categoriesAt(dataset, revision);
    const categoryIndexes = request.categories?.map((name) => {
      const wanted = categoryName('categories', name);
      const found = categories.find((category) => category.name === wanted);
      if (!found) throw new SensoryError('SENSORY_ERR_UNKNOWN_CATEGORY', `categories names ${JSON.stringify(name)}, which dataset ${dataset.name} does not have at revision ${revision}`, { field: 'categories' });
      return found.index;
    });
    const split = request.split ?? 'all';
    return { dataset, revision, categories, categoryIndexes, split };
  }

  /** The category map as it was at `revision`. */
  async categoriesAt(dataset: DatasetRecord, revision: number): Promise<Pick<CategoryRecord, 'name' | 'index'>[]> {
    return (await this.store.listCategories(dataset.id))
      .filter((category) => category.createdRevision <= revision)
      .map(({ name, index }) => ({ name, index }));
  }

  /**
   * Where a plan's chunks are best made: for augmented samples that can be warped in place, over
   * a WebAssembly memory with the warp's scratch after the chunk's records (render then reads the
   * records into the chunk and warps each where it lies: no copy in or out); with warp threads,
   * over the target of a thread arena (the threads warp into it: no copy out). Undefined: the
   * encoder's own chunks.
   */
  private targetsFor(plan: BatchPlan): TakeTarget | undefined {
    if (plan.augments.every(isIdentity)) return undefined;
    const threads = this.warpThreads;
    if (threads) {
      // The chunk is an arena's target: the threads warp into it, with no copy out.
      return (bytes) => {
        if (bytes < MIN_THREADED_WARP_BYTES) return takeChunk(bytes);
        const arena = threads.arena(bytes);
        const chunk = adoptChunk(Buffer.from(arena.target.buffer, arena.target.byteOffset, bytes), () => threads.release(arena));
        arenaTargets.set(chunk, arena);
        return chunk;
      };
    }
    const scratch = inMemoryScratchBytes(plan.dataset);
    if (scratch === undefined) return undefined;
    return (bytes) => {
      const taken = takeWasmChunk(bytes + scratch);
      if (!taken) return takeChunk(bytes);
      const chunk = taken.chunk.subarray(0, bytes);
      inPlaceTargets.add(chunk);
      return chunk;
    };
  }

  /** Writes the uint8 pixels of plan samples [start, start + count) into `target`, augmented. */
  async render(plan: BatchPlan, start: number, count: number, target: Uint8Array): Promise<void> {
    const { dataset } = plan;
    const size = recordBytes(dataset);
    const slots = new Array<number>(count);
    let identity = true;
    for (let i = 0; i < count; i++) {
      slots[i] = plan.samples[start + i].pixelSlot;
      if (!isIdentity(plan.augments[start + i])) identity = false;
    }
    if (identity) {
      await this.pixels.read(dataset.id, dataset, slots, target, 0);
      return;
    }
    const memory = wasmMemoryOf(target);
    const scratch = inMemoryScratchBytes(dataset);
    const scratchAt = target.byteOffset + count * size;
    if (memory && scratch !== undefined && inPlaceTargets.has(target) && scratchAt + scratch <= memory.buffer.byteLength) {
      // A chunk from targetsFor: the records are read where they are sent from and warped there.
      await this.pixels.read(dataset.id, dataset, slots, target, 0);
      for (let i = 0; i < count; i++) warpInMemory(memory, target.byteOffset + i * size, dataset, plan.augments[start + i], scratchAt);
      return;
    }
    const arena = arenaTargets.get(target);
    if (this.warpThreads && arena) {
      await this.pixels.read(dataset.id, dataset, slots, arena.source, 0);
      try {
        await this.warpThreads.warp(arena, dataset, plan.augments.slice(start, start + count));
      } catch (error) {
        // After a failure a thread may still be writing: the arena is left to the collector.
        disownChunk(target);
        throw error;
      }
      return;
    }
    if (this.warpThreads && count > 1 && count * size >= MIN_THREADED_WARP_BYTES) {
      const arena = this.warpThreads.arena(count * size);
      await this.pixels.read(dataset.id, dataset, slots, arena.source, 0);
      await this.warpThreads.warp(arena, dataset, plan.augments.slice(start, start + count));
      target.set(arena.target);
      // Only once every thread is done with it: after a failure, a thread may still be writing.
      this.warpThreads.release(arena);
      return;
    }
    const source = takeChunk(count * size);
    try {
      await this.pixels.read(dataset.id, dataset, slots, source, 0);
      for (let i = 0; i < count; i++) warpInto(source.subarray(i * size, (i + 1) * size), dataset, plan.augments[start + i], target, i * size);
    } finally {
      releaseChunk(source);
    }
  }
}

/** The chunks as they are; `done` is called once the last one was taken, or the reader stopped. */
async function* timedChunks(chunks: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } finally {
    done();
  }
}
