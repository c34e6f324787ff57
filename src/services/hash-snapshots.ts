import { parseHash } from '../domain/perceptual-hash.js';
import type { DatasetRecord, MetadataStore } from '../ports/metadata-store.js';

/** Rows read per query while loading a dataset's hashes. */
const LOAD_PAGE = 20_000;
/** Datasets whose hashes are kept between requests. */
const CACHED_DATASETS = 2;

/** A dataset's live samples at one revision, hashed, as columns (position i = the i-th by id). */
export interface Snapshot {
  readonly datasetId: number;
  readonly revision: number;
  readonly ids: Float64Array;
  readonly categories: Int32Array;
  readonly buckets: Uint8Array;
  readonly pixelSlots: Float64Array;
  /** Live samples without a hash yet (left out of the index). */
  readonly unhashed: number;
  /** The largest id loaded (new samples come after it: ids grow with revisions). */
  readonly lastId: number;
  /** The hashes' words. */
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  /** Groups by distance, computed on first use (on a worker thread: seconds of CPU at a million hashes). */
  readonly groups: Map<number, Promise<Groups>>;
}

/** Groups of two or more positions, ordered by their first (smallest) position. */
export interface Groups {
  /** Group g is members[starts[g] … starts[g + 1]). */
  readonly starts: Uint32Array;
  /** Positions, ascending within each group. */
  readonly members: Uint32Array;
}

/**
 * Each dataset's perceptual hashes at its current revision, in typed arrays, kept for the few
 * datasets asked about last: loaded in pages, or brought forward from an older revision by what
 * changed since (deletes and relabels from the revision diff, new samples after the last id).
 */
export class HashSnapshots {
  private readonly snapshots = new Map<number, Promise<Snapshot>>();
  private readonly past = new Map<string, Promise<Snapshot>>();

  constructor(private readonly store: MetadataStore) {}

  forget(datasetId: number): void {
    this.snapshots.delete(datasetId);
    for (const key of this.past.keys()) if (key.startsWith(`${datasetId}@`)) this.past.delete(key);
  }

  /**
   * The dataset's hashes at its current revision. A snapshot at an older revision is brought
   * forward from what changed (when `refresh`, and nothing was left unhashed), else reloaded.
   */
  get(dataset: DatasetRecord, refresh = false): Promise<Snapshot> {
    const cached = this.snapshots.get(dataset.id);
    return this.current(dataset, cached, refresh);
  }

  /**
   * The dataset's hashes at an older revision (what a model trained there saw). Such a snapshot
   * never changes once everything in it is hashed; the last few asked for are kept.
   */
  at(dataset: DatasetRecord, revision: number): Promise<Snapshot> {
    if (revision === dataset.revision) return this.get(dataset);
    const key = `${dataset.id}@${revision}`;
    const cached = this.past.get(key);
    if (cached) {
      return cached.then((snapshot) => {
        if (snapshot.unhashed === 0) return snapshot;
        this.past.delete(key);
        return this.at(dataset, revision);
      });
    }
    const building = this.load(dataset, revision);
    this.past.set(key, building);
    building.catch(() => this.past.delete(key));
    while (this.past.size > CACHED_DATASETS) this.past.delete(this.past.keys().next().value!);
    return building;
  }

  private current(dataset: DatasetRecord, cached: Promise<Snapshot> | undefined, refresh: boolean): Promise<Snapshot> {
    if (cached) {
      return cached.then((snapshot) => {
        // A snapshot with samples still unhashed is rebuilt: the background pass may have hashed them since.
        if (snapshot.revision === dataset.revision && snapshot.unhashed === 0) return snapshot;
        if (this.snapshots.get(dataset.id) !== cached) return this.get(dataset, refresh);
        const forward = refresh && snapshot.unhashed === 0 && snapshot.revision < dataset.revision;
        return this.remember(dataset.id, forward ? this.forward(snapshot, dataset) : this.load(dataset));
      });
    }
    return this.remember(dataset.id, this.load(dataset));
  }

  private remember(datasetId: number, building: Promise<Snapshot>): Promise<Snapshot> {
    this.snapshots.delete(datasetId);
    this.snapshots.set(datasetId, building);
    building.catch(() => {
      if (this.snapshots.get(datasetId) === building) this.snapshots.delete(datasetId);
    });
    while (this.snapshots.size > CACHED_DATASETS) this.snapshots.delete(this.snapshots.keys().next().value!);
    return building;
  }

  /** `old` brought to the dataset's revision: deleted samples dropped, relabels applied, new samples appended. */
  private async forward(old: Snapshot, dataset: DatasetRecord): Promise<Snapshot> {
    const deleted = new Set<number>();
    const relabelled = new Map<number, number>();
    for (let afterId = 0; ; ) {
      const rows = await this.store.revisionChanges(dataset.id, { from: old.revision, to: dataset.revision, afterId, limit: LOAD_PAGE });
      for (const row of rows) {
        if (row.after === null) deleted.add(row.id);
        else if (row.before !== null) relabelled.set(row.id, row.after);
      }
      if (rows.length < LOAD_PAGE) break;
      afterId = rows[rows.length - 1].id;
    }
    const added = [];
    for (let afterId = old.lastId; ; ) {
      const rows = await this.store.hashedSamples(dataset.id, { revision: dataset.revision, afterId, limit: LOAD_PAGE });
      added.push(...rows);
      if (rows.length < LOAD_PAGE) break;
      afterId = rows[rows.length - 1].id;
    }
    const keep: number[] = [];
    for (let p = 0; p < old.ids.length; p++) if (!deleted.has(old.ids[p])) keep.push(p);
    const hashed = added.filter((row) => row.hash !== null);
    const n = keep.length + hashed.length;
    const next = {
      ids: new Float64Array(n),
      categories: new Int32Array(n),
      buckets: new Uint8Array(n),
      pixelSlots: new Float64Array(n),
      hi: new Uint32Array(n),
      lo: new Uint32Array(n),
    };
    keep.forEach((p, i) => {
      next.ids[i] = old.ids[p];
      next.categories[i] = relabelled.get(old.ids[p]) ?? old.categories[p];
      next.buckets[i] = old.buckets[p];
      next.pixelSlots[i] = old.pixelSlots[p];
      next.hi[i] = old.hi[p];
      next.lo[i] = old.lo[p];
    });
    hashed.forEach((row, j) => {
      const i = keep.length + j;
      const words = parseHash(row.hash!);
      next.ids[i] = row.id;
      next.categories[i] = row.categoryIndex;
      next.buckets[i] = row.splitBucket;
      next.pixelSlots[i] = row.pixelSlot;
      next.hi[i] = words.hi;
      next.lo[i] = words.lo;
    });
    const lastId = added.length > 0 ? added[added.length - 1].id : old.lastId;
    return { datasetId: old.datasetId, revision: dataset.revision, unhashed: added.length - hashed.length, lastId, groups: new Map(), ...next };
  }

  private async load(dataset: DatasetRecord, revision = dataset.revision): Promise<Snapshot> {
    let capacity = Math.max(16, dataset.sampleCount);
    let ids = new Float64Array(capacity);
    let hi = new Uint32Array(capacity);
    let lo = new Uint32Array(capacity);
    let categories = new Int32Array(capacity);
    let buckets = new Uint8Array(capacity);
    let slots = new Float64Array(capacity);
    let n = 0;
    let unhashed = 0;
    let lastId = 0;
    for (let afterId = 0; ; ) {
      const rows = await this.store.hashedSamples(dataset.id, { revision, afterId, limit: LOAD_PAGE });
      if (rows.length === 0) break;
      afterId = rows[rows.length - 1].id;
      lastId = afterId;
      for (const row of rows) {
        if (row.hash === null) {
          unhashed++;
          continue;
        }
        if (n === capacity) {
          capacity *= 2;
          [ids, slots] = [grow(ids, capacity), grow(slots, capacity)];
          [hi, lo] = [grow(hi, capacity), grow(lo, capacity)];
          categories = grow(categories, capacity);
          buckets = grow(buckets, capacity);
        }
        const words = parseHash(row.hash);
        ids[n] = row.id;
        hi[n] = words.hi;
        lo[n] = words.lo;
        categories[n] = row.categoryIndex;
        buckets[n] = row.splitBucket;
        slots[n] = row.pixelSlot;
        n++;
      }
      if (rows.length < LOAD_PAGE) break;
    }
    ids = ids.slice(0, n);
    const pixelSlots = slots.slice(0, n);
    return { datasetId: dataset.id, revision, ids, categories: categories.slice(0, n), buckets: buckets.slice(0, n), pixelSlots, unhashed, lastId, hi: hi.slice(0, n), lo: lo.slice(0, n), groups: new Map() };
  }

}

function grow<T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(array: T, capacity: number): T {
  const next = new (array.constructor as new (n: number) => T)(capacity);
  next.set(array);
  return next;
}
