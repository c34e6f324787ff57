import type { Channels } from '../domain/dataset-shape.js';
import type { IndexedBlob } from './blob-index.js';
import type { Split } from '../domain/split.js';
import type { SampleSearch } from '../domain/sample-annotations.js';

/** Who made a change: the key's name and roles, never the key. */
export interface Actor {
  readonly name: string;
  readonly roles: readonly string[];
}

/** The actor of changes made without a key (the store's own tests, migrations). */
export const SYSTEM_ACTOR: Actor = Object.freeze({ name: 'system', roles: [] });

/** What the audit log records. */
export type AuditAction = 'add' | 'relabel' | 'delete' | 'annotate' | 'restore';

export interface AuditRecord {
  readonly id: number;
  readonly sampleId: number;
  readonly action: AuditAction;
  readonly actor: Actor;
  readonly at: string;
  /** The dataset's revision after the change (annotations raise none: the revision they were made at). */
  readonly revision: number;
  /** The bulk action the change was part of. */
  readonly bulkId: number | null;
  /** add: {category}; relabel: {from, to}; delete: {category}; annotate: the fields set; restore: {from: the deleted sample's id}. */
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface AuditQuery {
  /** Only this sample's history. */
  readonly sampleId?: number;
  /** Only entries older than this one (the cursor of the previous page). */
  readonly beforeId?: number;
  readonly limit: number;
}

/** One change applied to many samples at once. */
export type BulkChange =
  | { readonly kind: 'relabel'; readonly category: string }
  | { readonly kind: 'delete' }
  | { readonly kind: 'tag'; readonly tags: readonly string[] }
  | { readonly kind: 'untag'; readonly tags: readonly string[] };

export type BulkItemStatus = 'changed' | 'unchanged' | 'not_found' | 'restored' | 'skipped';

export interface BulkItemResult {
  readonly id: number;
  readonly status: BulkItemStatus;
  /** restored: the new sample the deleted one came back as. */
  readonly newId?: number;
  /** skipped (an undo): why. */
  readonly reason?: string;
}

export interface BulkActionRecord {
  readonly id: number;
  readonly kind: BulkChange['kind'] | 'undo';
  readonly actor: Actor;
  readonly at: string;
  /** The dataset's revision after the action. */
  readonly revision: number;
  readonly changed: number;
  /** An undo: the action it undid. */
  readonly undoes: number | null;
  /** The undo that undid this action, if any. */
  readonly undoneBy: number | null;
}

export interface BulkOutcome {
  readonly action: BulkActionRecord;
  readonly results: readonly BulkItemResult[];
}

export interface DatasetSpec {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly channels: Channels;
  readonly testPercent: number;
  /**
   * A declared class list (category names, checked, in index order): on creation the categories
   * get indices 0, 1, … in this order; on an existing dataset the list must begin with its
   * categories in index order, and the names after them are appended (raising the revision).
   * Either way the dataset then refuses uploads and relabels into categories it does not have.
   */
  readonly categories?: readonly string[];
}

export interface DatasetRecord extends Omit<DatasetSpec, 'categories'> {
  readonly id: number;
  /** Raised by one on every add, relabel and delete. 0 for a new dataset. */
  readonly revision: number;
  /** Live samples at the current revision. */
  readonly sampleCount: number;
  readonly createdAt: string;
  /** Revisions below this one may miss purged samples: batches and orders there are refused. 0 until a purge. */
  readonly purgedRevision: number;
  /** The dataset declared its categories: uploads and relabels into others are refused. */
  readonly categoriesDeclared: boolean;
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
  /** The original file name, when the upload gave one. */
  readonly filename: string | null;
  /** Short names people filter by; not part of snapshots (changing them raises no revision). */
  readonly tags: readonly string[];
  /** A small JSON object; not part of snapshots either. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** A change of a live sample's annotations: absent fields are kept. */
export interface AnnotationChange {
  readonly filename?: string;
  /** Replaces the tags. */
  readonly tags?: readonly string[];
  /** Added to the tags (after `tags`, if both). */
  readonly addTags?: readonly string[];
  /** Taken from the tags. */
  readonly removeTags?: readonly string[];
  /** Replaces the metadata. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface NewSample {
  readonly sha256: string;
  readonly category: string;
  readonly mediaType: string;
  readonly bytes: number;
  readonly pixelSlot: number;
  readonly splitBucket: number;
  /** Who added it (the audit log); SYSTEM_ACTOR when absent. */
  readonly actor?: Actor;
  readonly filename?: string;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
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
  | { readonly kind: 'blob-missing' }
  /** The dataset declares its categories and this one is not among them. Nothing was added. */
  | { readonly kind: 'undeclared'; readonly category: string };

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
  /** Only samples whose filename contains this (letter case ignored, at least for ASCII). */
  readonly filename?: string;
  /** Only samples carrying this tag. */
  readonly tag?: string;
  /** Only samples whose id is `search.id`, whose SHA-256 starts with `search.shaPrefix`, whose filename contains `search.text` or that carry the tag `search.text`. */
  readonly search?: SampleSearch;
  /** Only samples with a larger id (the cursor of the previous page); newest first: a smaller id. */
  readonly afterId?: number;
  /** By descending id (the newest first) instead of ascending. */
  readonly newestFirst?: boolean;
  /**
   * By category name, or by filename (samples without one last), instead of by id; ties by
   * ascending id. Names compare byte-wise (code point order), the same in every store.
   */
  readonly orderBy?: 'category' | 'filename';
  /**
   * With `orderBy` and `afterId`: the sort key of the previous page's last sample (null: it had
   * no filename); the page continues after (afterKey, afterId).
   */
  readonly afterKey?: string | null;
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

/** A page of the samples an export writes: those live at `revision`, in the split and categories, after `afterId`. */
export interface ExportPageQuery extends EligibleQuery {
  readonly afterId: number;
  readonly limit: number;
}

/** A sample as an export writes it: labelled as it was at the export's revision. */
export interface ExportSample extends EligibleSample {
  readonly sha256: string;
  readonly mediaType: string;
  readonly splitBucket: number;
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
export type ReviewDecision = 'confirm' | 'relabel' | 'delete';

/** What a trainer reported of one sample. */
export interface FeedbackInput {
  readonly id: number;
  readonly loss?: number;
  /** One probability per category index. */
  readonly probs?: readonly number[];
  /** A category index. */
  readonly predicted?: number;
}

/** The latest report of a live sample, with its current label and what a person decided since. */
export interface FeedbackRecord {
  readonly id: number;
  readonly categoryIndex: number;
  /** The revision its current label was given at: above `revision`, the reported loss was about another label. */
  readonly labelRevision: number;
  readonly loss: number | null;
  readonly probs: number[] | null;
  readonly predicted: number | null;
  /** The revision the trainer's samples were drawn at. */
  readonly revision: number;
  readonly receivedAt: string;
  /** Null until a person decided; a new report clears it. */
  readonly decision: ReviewDecision | null;
}

export interface MetadataStore {
  readonly kind: string;
  /** Creates or upgrades the schema; safe to call on every start. */
  migrate(): Promise<void>;
  /** Throws when the database cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Creates the dataset, or returns the existing one; SENSORY_ERR_DATASET_SHAPE_CONFLICT when its
   * shape differs. `categories` declares (or extends) its class list: see DatasetSpec;
   * SENSORY_ERR_CATEGORY_LIST_CONFLICT when the list does not begin with its categories.
   */
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
  /**
   * Moves a live sample to `category` (created on first appearance), raising the revision;
   * unchanged when it is already there. SENSORY_ERR_UNDECLARED_CATEGORY when the dataset declares
   * its categories and this is not one.
   */
  relabelSample(datasetId: number, id: number, category: string, actor?: Actor): Promise<SampleRecord | undefined>;
  /** Changes a live sample's filename, tags or metadata (no revision is raised); undefined when there is no such live sample. */
  annotateSample(datasetId: number, id: number, change: AnnotationChange, actor?: Actor): Promise<SampleRecord | undefined>;
  /** Tombstones a live sample, raising the revision; its data stays for older revisions. */
  deleteSample(datasetId: number, id: number, actor?: Actor): Promise<SampleRecord | undefined>;

  /**
   * Applies one change to the live samples among `ids` in one transaction: relabels and deletes
   * raise the revision by one in all (none when nothing changed); tags raise none. Records the
   * action (what an undo needs) and an audit entry per changed sample. A relabel into a category
   * a declaring dataset lacks is SENSORY_ERR_UNDECLARED_CATEGORY, and changes nothing.
   */
  applyBulk(datasetId: number, ids: readonly number[], change: BulkChange, actor: Actor): Promise<BulkOutcome>;
  /**
   * Undoes the dataset's last bulk action (not an undo, not undone): relabels back, takes added
   * tags away and gives removed ones back, and brings deleted samples back as new samples (new
   * ids, the same bytes, label and annotations) — each only where nothing changed it since
   * (`skipped` otherwise). One revision, one new action of kind undo. SENSORY_ERR_BULK_ACTION_NOT_FOUND
   * or SENSORY_ERR_UNDO_CONFLICT (not the last one, or undone already).
   */
  undoBulk(datasetId: number, actionId: number, actor: Actor): Promise<BulkOutcome>;
  /** The dataset's bulk actions, newest first. */
  listBulkActions(datasetId: number, limit: number): Promise<BulkActionRecord[]>;
  /** The dataset's audit log (or one sample's), newest first. */
  listAudit(datasetId: number, query: AuditQuery): Promise<AuditRecord[]>;

  /** Every category the dataset has had, by index, with live counts. */
  listCategories(datasetId: number): Promise<CategoryRecord[]>;
  /** Samples live at `revision`, labelled as they were then, by ascending id. */
  eligibleSamples(datasetId: number, query: EligibleQuery): Promise<EligibleSample[]>;
  /** How many samples eligibleSamples would return, without returning them. */
  countEligible(datasetId: number, query: EligibleQuery): Promise<number>;
  /** Up to `limit` of the eligible samples with an id above `afterId`, by ascending id, with what an export writes of each. */
  exportPage(datasetId: number, query: ExportPageQuery): Promise<ExportSample[]>;

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

  /**
   * Stores each item's report for a live sample of the dataset, replacing the sample's previous
   * one and clearing any decision; ids of no live sample there are skipped. Each id at most once
   * (the caller checks). Returns the ids stored, in the order given.
   */
  putFeedback(datasetId: number, items: readonly FeedbackInput[], revision: number, at: string): Promise<number[]>;
  /** The reports of the dataset's live samples, by ascending id. */
  listFeedback(datasetId: number): Promise<FeedbackRecord[]>;
  /**
   * Records a person's decision on a live sample (kept until its next report; a sample with no
   * report yet gets an empty one); false when there is no such live sample.
   */
  decideFeedback(datasetId: number, id: number, decision: ReviewDecision, at: string): Promise<boolean>;

  /** Forgets the blob index rows that no sample names any more (their bytes become garbage); returns how many. */
  dropUnreferencedBlobs(): Promise<number>;
}
