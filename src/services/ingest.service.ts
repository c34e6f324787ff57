import { createHash } from 'node:crypto';
import { recordBytes, type DatasetShape } from '../domain/dataset-shape.js';
import { SensoryError, isSensoryError } from '../domain/errors.js';
import { assertValidName, categoryName } from '../domain/names.js';
import { undeclaredCategory } from '../domain/category-list.js';
import type { SampleAnnotations } from '../domain/sample-annotations.js';
import { perceptualHash } from '../domain/perceptual-hash.js';
import { splitBucket } from '../domain/split.js';
import { WriteBatcher } from '../lib/write-batcher.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { DecodeOptions, Digest, ImageDigests, Imaging } from '../ports/imaging.js';
import type { Actor, AddOutcome, DatasetRecord, MetadataStore, NewSample, SampleRecord } from '../ports/metadata-store.js';
import type { DurableWhen, PixelStore } from '../ports/pixel-store.js';
import type { Telemetry } from '../ports/telemetry.js';
import { datasetNotFound, requireDataset } from './dataset.service.js';
import { PixelSlotAllocator } from './pixel-slots.js';

export interface Upload {
  readonly category: unknown;
  readonly bytes: Buffer;
  /** Checked already (domain/sample-annotations.ts); kept by a new sample, ignored for a duplicate. */
  readonly annotations?: SampleAnnotations;
  /** Who uploads it (the audit log). */
  readonly actor?: Actor;
}

export interface Stored {
  readonly dataset: DatasetRecord;
  readonly sample: SampleRecord;
  readonly duplicate: boolean;
}

/** One file of a several-file upload: its bytes, or what was wrong with it as it was read. */
export type FileUpload =
  | { readonly filename: string; readonly bytes: Buffer; readonly annotations?: SampleAnnotations }
  | { readonly filename: string; readonly error: SensoryError };

/** What became of one file of a several-file upload. */
export type FileOutcome = { readonly filename: string; readonly stored: Stored } | { readonly filename: string; readonly error: SensoryError };

/** Options of one upload. */
export interface UploadOptions {
  /** Refuse the upload (409 SENSORY_ERR_NEAR_DUPLICATE) when a live sample's perceptual hash is within this many bits. */
  readonly rejectNearDuplicate?: number;
}

/** What an upload that asks to be refused as a near-duplicate is checked against. */
export interface NearDuplicateFinder {
  findNear(dataset: DatasetRecord, hash: string, distance: number): Promise<{ id: number; distance: number } | undefined>;
}

/**
 * A sample whose bytes and pixels are written, waiting for its metadata commit. They are durable
 * already, unless `durable` is given: the commit then awaits it first (see commit()).
 */
export type Prepared = { readonly kind: 'ready'; readonly sample: NewSample; readonly durable?: DurableWhen } | { readonly kind: 'known'; readonly stored: Stored };

/** What the group commit of a dataset takes: a sample, and what makes its bytes and pixels durable when not yet. */
interface Pending {
  readonly sample: NewSample;
  readonly durable?: DurableWhen;
}

/**
 * Adding samples. The order of writes is what makes a 2xx durable and a crash harmless: original
 * bytes (atomic file) → pixels at a fresh slot (fsynced) → one metadata commit that makes the
 * sample visible. A crash before the commit leaves only unreferenced bytes.
 */
export class IngestService {
  private readonly slots: PixelSlotAllocator;
  private readonly committers = new Map<number, WriteBatcher<Pending, AddOutcome>>();
  /** The categories of datasets that declare theirs, as last read: lists only grow, so a miss reads again. */
  private readonly declared = new Map<number, Set<string>>();
  /** The dataset last found under each name: its shape lets a single upload be decoded before its lookup. */
  private readonly shapes = new Map<string, DatasetRecord>();

  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly pixels: PixelStore,
    private readonly imaging: Imaging,
    private readonly maxSampleBytes: number,
    private readonly telemetry: Telemetry,
    private readonly nearDuplicates?: NearDuplicateFinder,
    /** Hashing and decoding of single uploads beside the event loop (SENSORY_INGEST_THREADS), once a dataset's shape is known. */
    private readonly digests?: ImageDigests,
  ) {
    this.slots = new PixelSlotAllocator(store);
  }

  /** One sample; errors are thrown (400, 409, 413, 415). */
  add(datasetName: string, upload: Upload, options: UploadOptions = {}): Promise<Stored> {
    return this.measured(() => this.addUnmeasured(datasetName, upload, options));
  }

  /** Times one upload and counts its outcome: stored, duplicate, or refused by its error code. */
  private async measured(store: () => Promise<Stored>): Promise<Stored> {
    const started = performance.now();
    try {
      const stored = await store();
      this.telemetry.observeIngest(stored.duplicate ? 'duplicate' : 'stored', (performance.now() - started) / 1000);
      return stored;
    } catch (error) {
      if (isSensoryError(error)) this.refused(error, started);
      throw error;
    }
  }

  /** Counts an upload refused before or while it was stored (`started`: when its work began). */
  refused(error: SensoryError, started?: number): void {
    this.telemetry.countUploadRejected(error.code);
    if (started !== undefined) this.telemetry.observeIngest('rejected', (performance.now() - started) / 1000);
  }

  private async addUnmeasured(datasetName: string, upload: Upload, options: UploadOptions): Promise<Stored> {
    assertValidName('dataset', datasetName);
    // With decode threads, an upload into a dataset seen before is hashed and decoded on one, at
    // the shape it had then, before its lookup (which needs the SHA-256). The pixels are used only
    // if the lookup finds that same dataset (a dataset deleted and made again under the name is
    // another). Several uploads go in one message: side by side with the event loop doing it all,
    // 0.89–0.95 of the service CPU per sample in 6 of 7 rounds (bench/paired-ingest.ts).
    const known = this.digests ? this.shapes.get(datasetName) : undefined;
    const digested = known && upload.bytes.length > 0 && upload.bytes.length <= this.maxSampleBytes ? await this.digests!.digest(upload.bytes, known) : undefined;
    let prepared: Prepared;
    let dataset: DatasetRecord;
    try {
      const sha256 = digested?.sha256 ?? createHash('sha256').update(upload.bytes).digest('hex');
      const found = await this.store.findDatasetAndLiveSample(datasetName, sha256);
      if (!found.dataset) throw datasetNotFound(datasetName);
      dataset = found.dataset;
      if (this.digests) this.shapes.set(datasetName, dataset);
      // Decoded at the shape of the dataset found under this name before: used only if it is that one still.
      const predecoded = known?.id === dataset.id ? digested?.decoded : undefined;
      // Its syncs start now and the group commit awaits them before its transaction: the upload
      // joins the commit queue while they run, so one transaction and one WAL sync serve more uploads.
      prepared = await this.prepareLookedUp(dataset, upload, sha256, found.existing, { ...options, deferSync: true }, found.blobIndexed, predecoded);
    } finally {
      digested?.release?.();
    }
    if (prepared.kind === 'known') return prepared.stored;
    const stored = settle(dataset, await this.commit(dataset.id, prepared.sample, upload.bytes, startSyncing(prepared.durable)));
    if (!stored.duplicate) this.telemetry.countSamplesStored(1);
    return stored;
  }

  /**
   * Group-commits a prepared sample. Its bytes and pixels are made durable first, when written
   * with `durable` left to the commit: the samples of one group share those syncs, then one
   * transaction and one sync of the database. A compaction may have dropped the index row of a
   * blob the upload found already stored (its samples were purged meanwhile): the bytes are then
   * put again and the commit retried.
   */
  async commit(datasetId: number, sample: NewSample, bytes: Buffer, durable?: DurableWhen): Promise<AddOutcome> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.committer(datasetId).submit({ sample, durable });
      if (outcome.kind !== 'blob-missing' || attempt >= 3) return outcome;
      const { newBlob, requireIndexedBlob } = await this.storeOriginal(sample.sha256, bytes);
      sample = { ...sample, newBlob, requireIndexedBlob };
      durable = undefined;
    }
  }

  /**
   * One sample of a bulk upload into a dataset already looked up; errors are thrown as by add().
   * `digest`: the bytes' SHA-256, and their pixels where they could be decoded, worked out
   * beforehand (ImageDigests, off the event loop); what it leaves undecoded is decoded here.
   */
  addTo(dataset: DatasetRecord, upload: Upload, options: DecodeOptions = {}, digest?: Promise<Digest>): Promise<Stored> {
    return this.measured(() => this.addToUnmeasured(dataset, upload, options, digest));
  }

  private async addToUnmeasured(dataset: DatasetRecord, upload: Upload, options: DecodeOptions, digest?: Promise<Digest>): Promise<Stored> {
    const digested = digest ? await digest : undefined;
    const sha256 = digested?.sha256 ?? createHash('sha256').update(upload.bytes).digest('hex');
    let prepared: Prepared;
    try {
      // One lookup for the live sample and the blob index; a dataset deleted and made again under
      // its name meanwhile is not this one, and is asked about by id as before.
      const found = await this.store.findDatasetAndLiveSample(dataset.name, sha256);
      const same = found.dataset?.id === dataset.id;
      const existing = same ? found.existing : await this.store.findLiveSampleBySha(dataset.id, sha256);
      prepared = await this.prepareLookedUp(dataset, upload, sha256, existing, { ...options, deferSync: true }, same ? found.blobIndexed : undefined, digested?.decoded);
    } finally {
      // The pixels are written (or not needed): memory lent for them goes back before the commit.
      digested?.release?.();
    }
    if (prepared.kind === 'known') return prepared.stored;
    const stored = settle(dataset, await this.commit(dataset.id, prepared.sample, upload.bytes, startSyncing(prepared.durable)));
    if (!stored.duplicate) this.telemetry.countSamplesStored(1);
    return stored;
  }

  /**
   * Several files into one category, each stored (or refused) on its own. What fails them all
   * fails them once, before any file: the dataset and the category.
   */
  async addFiles(datasetName: string, category: unknown, files: readonly FileUpload[], actor?: Actor, options: UploadOptions = {}): Promise<FileOutcome[]> {
    await requireDataset(this.store, datasetName);
    categoryName('category', category);
    return Promise.all(
      files.map(async (file): Promise<FileOutcome> => {
        try {
          if ('error' in file) {
            this.refused(file.error);
            throw file.error;
          }
          return { filename: file.filename, stored: await this.add(datasetName, { category, bytes: file.bytes, annotations: file.annotations, actor }, options) };
        } catch (error) {
          if (!isSensoryError(error)) throw error;
          return { filename: file.filename, error };
        }
      }),
    );
  }

  /**
   * Validates, deduplicates and writes bytes and pixels; the metadata is left to the caller, so
   * an import can commit all its samples at once.
   */
  async prepare(dataset: DatasetRecord, upload: Upload, options: DecodeOptions = {}): Promise<Prepared> {
    const sha256 = createHash('sha256').update(upload.bytes).digest('hex');
    return this.prepareLookedUp(dataset, upload, sha256, await this.store.findLiveSampleBySha(dataset.id, sha256), options);
  }

  /** prepare() once the live sample with these bytes (if any) is known. */
  private async prepareLookedUp(
    dataset: DatasetRecord,
    upload: Upload,
    sha256: string,
    existing: SampleRecord | undefined,
    options: DecodeOptions & UploadOptions & { readonly deferSync?: boolean } = {},
    blobIndexed?: boolean,
    predecoded?: Digest['decoded'],
  ): Promise<Prepared> {
    const category = categoryName('category', upload.category);
    this.assertSize(upload.bytes.length);
    if (existing) return { kind: 'known', stored: knownOrConflict(dataset, existing, category) };
    // Refused before any byte is written; the commit checks again.
    if (dataset.categoriesDeclared && !(await this.isDeclared(dataset, category))) throw undeclaredCategory(dataset.name, category);
    const decoded = predecoded ?? (await this.imaging.toDatasetPixels(upload.bytes, dataset, options));
    if (decoded.pixels.length !== recordBytes(dataset)) throw new Error('imaging returned pixels of the wrong size');
    // From the pixels in hand: a few tens of microseconds, no read back.
    const hash = predecoded?.perceptualHash ?? perceptualHash(decoded.pixels, dataset);
    if (options.rejectNearDuplicate !== undefined) await this.refuseNearDuplicate(dataset, hash, options.rejectNearDuplicate);
    // The original and the pixels are independent files: both are written, then both synced —
    // here, or (deferSync) by the group commit, with the other samples of its group.
    const [pixels, original] = await Promise.all([this.writePixelsDeferred(dataset, decoded.pixels), this.stageOriginal(sha256, upload.bytes, blobIndexed)]);
    const durable = allDurable(pixels.durable, original.durable);
    if (durable && !options.deferSync) await durable();
    return {
      kind: 'ready',
      ...(durable && options.deferSync ? { durable } : {}),
      sample: {
        sha256,
        category,
        mediaType: decoded.mediaType,
        bytes: upload.bytes.length,
        pixelSlot: pixels.slot,
        splitBucket: splitBucket(sha256),
        perceptualHash: hash,
        ...original.blob,
        ...definedAnnotations(upload.annotations),
        ...(upload.actor ? { actor: upload.actor } : {}),
      },
    };
  }

  /** Checked before anything is written: a refused upload stores nothing. */
  private async refuseNearDuplicate(dataset: DatasetRecord, hash: string, distance: number): Promise<void> {
    if (!this.nearDuplicates) throw new Error('no near-duplicate finder was given to the ingest service');
    const near = await this.nearDuplicates.findNear(dataset, hash, distance);
    if (near) {
      throw new SensoryError(
        'SENSORY_ERR_NEAR_DUPLICATE',
        `the image is a near-duplicate of sample ${near.id} (perceptual hashes ${near.distance} bits apart, at most ${distance} asked)`,
        { sampleId: near.id, distance: near.distance },
      );
    }
  }

  /**
   * The original made durable. A store that stages leaves its index row to the sample's commit;
   * a blob found indexed already is checked again by that commit.
   */
  private async storeOriginal(sha256: string, bytes: Buffer, indexed?: boolean): Promise<Pick<NewSample, 'newBlob' | 'requireIndexedBlob'>> {
    if (this.blobs.stage) {
      const newBlob = await this.blobs.stage(sha256, bytes, indexed);
      return newBlob ? { newBlob } : { requireIndexedBlob: true };
    }
    await this.blobs.put(sha256, bytes);
    return this.blobs.indexed ? { requireIndexedBlob: true } : {};
  }

  /** storeOriginal() leaving the sync to the caller, when the store can. */
  private async stageOriginal(sha256: string, bytes: Buffer, indexed?: boolean): Promise<{ blob: Pick<NewSample, 'newBlob' | 'requireIndexedBlob'>; durable?: DurableWhen }> {
    if (!this.blobs.stageDeferred) return { blob: await this.storeOriginal(sha256, bytes, indexed) };
    const { blob, durable } = await this.blobs.stageDeferred(sha256, bytes, indexed);
    return blob ? { blob: { newBlob: blob }, durable } : { blob: { requireIndexedBlob: true } };
  }

  /** writePixels() leaving the sync to the caller, when the store can. */
  private async writePixelsDeferred(dataset: DatasetRecord, pixels: Uint8Array): Promise<{ slot: number; durable?: DurableWhen }> {
    if (!this.pixels.writeDeferred) return { slot: await this.writePixels(dataset, pixels) };
    const slot = await this.slots.next(dataset.id);
    return { slot, durable: await this.pixels.writeDeferred(dataset.id, dataset, [slot], [pixels]) };
  }

  private async writePixels(dataset: DatasetRecord, pixels: Uint8Array): Promise<number> {
    const slot = await this.slots.next(dataset.id);
    await this.pixels.write(dataset.id, dataset, [slot], [pixels]);
    return slot;
  }

  /**
   * Throws what `add` would throw for these bytes at this shape (413, 415) without storing
   * anything: lets a caller check an upload before creating the dataset it goes into.
   */
  async assertImage(bytes: Buffer, shape: DatasetShape): Promise<void> {
    this.assertSize(bytes.length);
    await this.imaging.toDatasetPixels(bytes, shape);
  }

  assertSize(bytes: number): void {
    const error = this.sizeError(bytes);
    if (error) throw error;
  }

  sizeError(bytes: number): SensoryError | undefined {
    if (bytes > this.maxSampleBytes) {
      return new SensoryError('SENSORY_ERR_SAMPLE_TOO_LARGE', `a sample may have at most ${this.maxSampleBytes} bytes, got ${bytes}`);
    }
    if (bytes === 0) return new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', 'the sample is empty');
    return undefined;
  }

  private async isDeclared(dataset: DatasetRecord, category: string): Promise<boolean> {
    if (this.declared.get(dataset.id)?.has(category)) return true;
    const names = new Set((await this.store.listCategories(dataset.id)).map((known) => known.name));
    this.declared.set(dataset.id, names);
    return names.has(category);
  }

  /** The dataset is gone and its id is never used again: its slots and committer can go. */
  forgetDataset(datasetId: number): void {
    this.declared.delete(datasetId);
    this.slots.forget(datasetId);
    this.committers.delete(datasetId);
    for (const [name, known] of this.shapes) if (known.id === datasetId) this.shapes.delete(name);
  }

  private committer(datasetId: number): WriteBatcher<Pending, AddOutcome> {
    let committer = this.committers.get(datasetId);
    if (!committer) {
      committer = new WriteBatcher(async (pending) => {
        // Nothing is committed before its bytes and pixels are durable (syncs shared by the group).
        await Promise.all(pending.map((p) => p.durable?.()));
        return this.store.addSamples(datasetId, pending.map((p) => p.sample));
      });
      this.committers.set(datasetId, committer);
    }
    return committer;
  }
}

/** One DurableWhen for the writes that left theirs to the caller; undefined when none did. */
function allDurable(...durables: ReadonlyArray<DurableWhen | undefined>): DurableWhen | undefined {
  const pending = durables.filter((d): d is DurableWhen => d !== undefined);
  if (pending.length === 0) return undefined;
  return () => Promise.all(pending.map((d) => d())).then(() => undefined);
}

/**
 * Starts the syncs of an upload's (or a bulk item's) original and pixels as soon as they are
 * written: they run (shared with the uploads written meanwhile) while the group before commits,
 * and the commit of the upload's own group awaits them before its transaction. A single upload
 * thus waits in the commit queue while they run, instead of joining it only once they are done
 * (larger commit groups: fewer transactions and WAL syncs per upload); a bulk
 * item's next items are decoded and written meanwhile instead of each item holding its place in
 * flight until its own syncs are done.
 */
function startSyncing(durable: DurableWhen | undefined): DurableWhen | undefined {
  if (!durable) return undefined;
  const syncing = durable();
  syncing.catch(() => undefined);
  return () => syncing;
}

function definedAnnotations(annotations: SampleAnnotations | undefined): SampleAnnotations {
  if (!annotations) return {};
  const { filename, tags, metadata } = annotations;
  return { ...(filename !== undefined ? { filename } : {}), ...(tags !== undefined ? { tags } : {}), ...(metadata !== undefined ? { metadata } : {}) };
}

function knownOrConflict(dataset: DatasetRecord, existing: SampleRecord, category: string): Stored {
  if (existing.category !== category) throw conflict(existing, category);
  return { dataset, sample: existing, duplicate: true };
}

export function settle(dataset: DatasetRecord, outcome: AddOutcome): Stored {
  if (outcome.kind === 'conflict') throw conflict(outcome.existing, undefined);
  if (outcome.kind === 'undeclared') throw undeclaredCategory(dataset.name, outcome.category);
  if (outcome.kind === 'blob-missing') throw new Error('the original of a sample kept leaving the blob index while it was being committed');
  return { dataset, sample: outcome.sample, duplicate: outcome.kind === 'duplicate' };
}

function conflict(existing: SampleRecord, category: string | undefined): SensoryError {
  return new SensoryError(
    'SENSORY_ERR_CATEGORY_CONFLICT',
    `these bytes are already sample ${existing.id} in category ${existing.category}${category ? `, not ${category}` : ''}`,
    { sampleId: existing.id, category: existing.category },
  );
}
