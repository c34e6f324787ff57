import type { Channels } from '../domain/dataset-shape.js';
import type { IndexedBlob } from './blob-index.js';
import type { Split } from '../domain/split.js';

export interface DatasetSpec {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly channels: Channels;
  readonly testPercent: number;
}

export interface DatasetRecord extends DatasetSpec {
  readonly id: number;
  /** Raised by one on every add, relabel and delete. 0 for a new dataset. */
  readonly revision: number;
  /** Live samples at the current revision. */
  readonly sampleCount: number;
  readonly createdAt: string;
  /** Revisions below this one may miss purged samples: batches and orders there are refused. 0 until a purge. */
  readonly purgedRevision: number;
}

export interface CategoryRecord {
  readonly name: string;
  /** Given at first appearance, never shifted, never reused. */
  readonly index: number;
  /** Live samples in this category at the current revision. */
  readonly count: number;
  /** Revision at which the category first appeared. */
  readonly createdRevision: number;
}

export interface SampleRecord {
  readonly id: number;
  readonly datasetId: number;
  readonly sha256: string;
  readonly category: string;
  readonly categoryIndex: number;
  /** Revision at which the sample was added. */
  readonly revision: number;
  readonly createdAt: string;
  readonly mediaType: string;
  /** Size of the original bytes. */
  readonly bytes: number;
  /** Record index of its dataset-shaped pixels in the pixel store. */
  readonly pixelSlot: number;
  /** 0–99, from its SHA-256; in the test split when below the dataset's testPercent. */
  readonly splitBucket: number;
}

export interface NewSample {
  readonly sha256: string;
  readonly category: string;
  readonly mediaType: string;
  readonly bytes: number;
  readonly pixelSlot: number;
  readonly splitBucket: number;
  /** The index row of a blob staged for this sample, inserted by the same commit (unless the SHA-256 is indexed already). */
  readonly newBlob?: IndexedBlob;
  /**
   * The blob was found indexed before the commit: the commit checks that it still is (a
   * compaction may have dropped it meanwhile, its samples having been purged).
   */
  readonly requireIndexedBlob?: boolean;
  /** The perceptual hash of its stored pixels (domain/perceptual-hash.ts), when computed at ingest. */
  readonly perceptualHash?: string;
}

export type AddOutcome =
  | { readonly kind: 'added'; readonly sample: SampleRecord }
  | { readonly kind: 'duplicate'; readonly sample: SampleRecord }
  | { readonly kind: 'conflict'; readonly existing: SampleRecord }
  /** Its blob is no longer indexed: put the bytes again and retry. Nothing was added. */
  | { readonly kind: 'blob-missing' };

/** Tombstones of one dataset that a purge with some cutoff would remove. */
export interface PurgeCandidates {
  readonly datasetId: number;
  readonly datasetName: string;
  readonly samples: number;
  /** The newest deletion among them: snapshots below it may hold some of them. */
  readonly maxDeletedRevision: number;
}

export interface SampleQuery {
  readonly category?: string;
  readonly split?: Split;
  /** Only samples with a larger id (the cursor of the previous page). */
  readonly afterId?: number;
  readonly limit: number;
}

export interface EligibleQuery {
  readonly revision: number;
  readonly split: Split;
  /** Only these category indices (as labelled at `revision`); all when absent. */
  readonly categoryIndexes?: readonly number[];
}

/** A sample as it was at a revision: what a batch draws from. */
export interface EligibleSample {
  readonly id: number;
  readonly categoryIndex: number;
  readonly pixelSlot: number;
}

/** A sample whose perceptual hash is still to be computed, with where its pixels are. */
export interface UnhashedSample {
  readonly id: number;
  readonly datasetId: number;
  readonly pixelSlot: number;
}

/** A sample live at a revision, labelled as it was then, with its perceptual hash. */
export interface HashedSample {
  readonly id: number;
  readonly categoryIndex: number;
  readonly splitBucket: number;
  readonly pixelSlot: number;
  /** 16 hex digits; null while the background pass has not computed it. */
  readonly hash: string | null;
}

export interface HashedQuery {
  readonly revision: number;
  readonly afterId: number;
  readonly limit: number;
}

/**
 * A sample that differs between two revisions: live at one and not the other, or labelled
 * differently. A category index, or null where it was not live.
 */
export interface RevisionChange {
  readonly id: number;
  readonly before: number | null;
  readonly after: number | null;
}

export interface ChangeQuery {
  readonly from: number;
  readonly to: number;
  readonly afterId: number;
  readonly limit: number;
}

/**
 * Datasets, categories and sample metadata. Every method is atomic. Implementations keep their
 * SQL dialect to themselves; the contract suite in test/metadata-store.contract.test.ts runs on
 * each of them.
 */
export interface MetadataStore {
  readonly kind: string;
  /** Creates or upgrades the schema; safe to call on every start. */
  migrate(): Promise<void>;
  /** Throws when the database cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Creates the dataset, or returns the existing one; SENSORY_ERR_DATASET_SHAPE_CONFLICT when its spec differs. */
  putDataset(spec: DatasetSpec): Promise<{ dataset: DatasetRecord; created: boolean }>;
  getDataset(name: string): Promise<DatasetRecord | undefined>;
  /** By name. */
  listDatasets(): Promise<DatasetRecord[]>;
  /** Removes the dataset and all its metadata; returns what was removed. */
  deleteDataset(name: string): Promise<DatasetRecord | undefined>;

  /** Reserves `count` consecutive pixel slots of the dataset; returns the first. Never hands out a slot twice. */
  reservePixelSlots(datasetId: number, count: number): Promise<number>;

  /**
   * Adds samples in one transaction, in order. Each added sample raises the revision by one and
   * creates its category on first appearance. A live sample with the same SHA-256 makes the
   * outcome `duplicate` (same category) or `conflict` (another category), and changes nothing.
   */
  addSamples(datasetId: number, samples: readonly NewSample[]): Promise<AddOutcome[]>;
  findLiveSampleBySha(datasetId: number, sha256: string): Promise<SampleRecord | undefined>;
  /**
   * The dataset of that name, its live sample with that SHA-256, and whether the blob index
   * knows these bytes, in one lookup: what every upload asks first (one round trip to a
   * database server instead of three).
   */
  findDatasetAndLiveSample(name: string, sha256: string): Promise<{ dataset?: DatasetRecord; existing?: SampleRecord; blobIndexed?: boolean }>;
  /** A live sample (not deleted) with its current category. */
  getSample(datasetId: number, id: number): Promise<SampleRecord | undefined>;
  /** Live samples by ascending id. */
  listSamples(datasetId: number, query: SampleQuery): Promise<SampleRecord[]>;
  /** Moves a live sample to `category` (created on first appearance), raising the revision; unchanged when it is already there. */
  relabelSample(datasetId: number, id: number, category: string): Promise<SampleRecord | undefined>;
  /** Tombstones a live sample, raising the revision; its data stays for older revisions. */
  deleteSample(datasetId: number, id: number): Promise<SampleRecord | undefined>;

  /** Every category the dataset has had, by index, with live counts. */
  listCategories(datasetId: number): Promise<CategoryRecord[]>;
  /** Samples live at `revision`, labelled as they were then, by ascending id. */
  eligibleSamples(datasetId: number, query: EligibleQuery): Promise<EligibleSample[]>;

  /** Per dataset, the tombstones deleted before `cutoff` (an ISO-8601 time). */
  purgeCandidates(cutoff: string): Promise<PurgeCandidates[]>;
  /** Whether some tombstone deleted before `cutoff` was live at `revision` (a snapshot the purge would change). */
  purgeChangesRevision(datasetId: number, cutoff: string, revision: number): Promise<boolean>;
  /** Raises the dataset's purged revision to at least `revision` (batches and orders below it are refused); returns it. */
  raisePurgedRevision(datasetId: number, revision: number): Promise<number>;
  /**
   * Removes the dataset's tombstones deleted before `cutoff` with their label history, and raises
   * its purged revision past them, in one transaction; returns how many were removed.
   */
  purgeSamples(datasetId: number, cutoff: string): Promise<{ samples: number; purgedRevision: number }>;
  /** Samples of every dataset, live or deleted, with no perceptual hash yet, by ascending id after `afterId`. */
  samplesWithoutPerceptualHash(afterId: number, limit: number): Promise<UnhashedSample[]>;
  /** Stores computed perceptual hashes (a sample gone meanwhile is skipped); raises no revision. */
  setPerceptualHashes(hashes: readonly { readonly id: number; readonly hash: string }[]): Promise<void>;
  /** Samples live at `revision`, labelled as then, with their hash, by ascending id after `afterId`. */
  hashedSamples(datasetId: number, query: HashedQuery): Promise<HashedSample[]>;
  /** Samples whose liveness or label differ between revisions `from` and `to`, by ascending id after `afterId`. */
  revisionChanges(datasetId: number, query: ChangeQuery): Promise<RevisionChange[]>;

  /** Forgets the blob index rows that no sample names any more (their bytes become garbage); returns how many. */
  dropUnreferencedBlobs(): Promise<number>;
}
