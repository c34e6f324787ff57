import { createHash } from 'node:crypto';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import type { DuplicateGroupLabels } from '../domain/mislabel-ranking.js';
import { formatHash, parseHash } from '../domain/perceptual-hash.js';
import { isTestBucket } from '../domain/split.js';
import { componentsOffThread } from '../lib/hamming-components.js';
import type { DatasetRecord, MetadataStore } from '../ports/metadata-store.js';
import type { PixelStore } from '../ports/pixel-store.js';
import { requireDataset } from './dataset.service.js';
import { HashSnapshots, type Groups, type Snapshot } from './hash-snapshots.js';

/** Near-duplicate distances answered: ⌊D/4⌋ ≤ 2 bits per substring (137 probes per table). */
export const MAX_DUPLICATE_DISTANCE = 12;
export const DEFAULT_DUPLICATE_DISTANCE = 4;
export const MAX_GROUP_PAGE = 1000;
export const DEFAULT_GROUP_PAGE = 100;
/** Groups larger than this are not read back to compare their pixels. */
const MAX_COMPARED_MEMBERS = 64;

export interface GroupPageRequest {
  readonly distance?: number;
  /** The revision to look at (default: the current one). */
  readonly revision?: number;
  readonly cursor?: string;
  readonly limit?: number;
}

export interface GroupMember {
  readonly id: number;
  readonly category: string;
  readonly split: 'train' | 'test';
  readonly hash: string;
  /** Bits from the group's first member. */
  readonly distance: number;
}

export interface DuplicateGroup {
  readonly members: GroupMember[];
  /** Every member's stored pixels are byte-identical (same SHA-256); absent for groups too large to compare. */
  readonly identical?: boolean;
  readonly straddlesSplit: boolean;
  /** Its members' categories, when they differ (a likely label conflict). */
  readonly categories?: string[];
}

export interface GroupReport {
  readonly dataset: DatasetRecord;
  readonly revision: number;
  readonly distance: number;
  /** Live samples in the index, and those still waiting for their hash. */
  readonly hashed: number;
  readonly unhashed: number;
  readonly groups: DuplicateGroup[];
  readonly nextCursor?: string;
}

export interface DuplicateReport extends GroupReport {
  /** All groups at this distance, and the samples in them. */
  readonly totals: { readonly groups: number; readonly samples: number };
}

export interface LeakageReport extends GroupReport {
  /** Groups with members in both the train and the test split, and their samples. */
  readonly splitLeaks: { readonly groups: number; readonly samples: number };
  /** Groups whose members carry different categories, and their samples. */
  readonly labelConflicts: { readonly groups: number; readonly samples: number };
}

function badRequest(field: string, message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  const match = /^g(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw badRequest('cursor', 'cursor is not one this service gave out');
  return Number(match[1]);
}

const encodeCursor = (firstId: number) => Buffer.from(`g${firstId}`, 'utf8').toString('base64url');

/**
 * Near-duplicates and split leaks, from the perceptual hashes: a dataset's hashes at its current
 * revision are loaded once into typed arrays and kept while the revision stays; groups at a
 * distance are the connected components of pairs within it, found by multi-index hashing
 * (domain/hamming-index.ts) on a worker thread and kept likewise. Pages
 * are served from that, ordered by each group's smallest sample id.
 */
export class NearDuplicateService {
  private readonly snapshots: HashSnapshots;

  constructor(
    private readonly store: MetadataStore,
    private readonly pixels: PixelStore,
  ) {
    this.snapshots = new HashSnapshots(store);
  }

  async duplicates(datasetName: string, request: GroupPageRequest): Promise<DuplicateReport> {
    const { dataset, snapshot, distance, groups, after, limit } = await this.prepare(datasetName, request);
    const all = Array.from({ length: groups.starts.length - 1 }, (_, g) => g);
    const page = await this.page(dataset, snapshot, groups, all, after, limit);
    return { ...this.header(dataset, snapshot, distance), totals: { groups: all.length, samples: groups.members.length }, ...page };
  }

  async leakage(datasetName: string, request: GroupPageRequest): Promise<LeakageReport> {
    const { dataset, snapshot, distance, groups, after, limit } = await this.prepare(datasetName, request);
    const leaking: number[] = [];
    const split = { groups: 0, samples: 0 };
    const label = { groups: 0, samples: 0 };
    for (let g = 0; g + 1 < groups.starts.length; g++) {
      const { straddles, conflict } = this.flags(snapshot, groups, g, dataset.testPercent);
      const size = groups.starts[g + 1] - groups.starts[g];
      if (straddles) {
        split.groups++;
        split.samples += size;
      }
      if (conflict) {
        label.groups++;
        label.samples += size;
      }
      if (straddles || conflict) leaking.push(g);
    }
    const page = await this.page(dataset, snapshot, groups, leaking, after, limit);
    return { ...this.header(dataset, snapshot, distance), splitLeaks: split, labelConflicts: label, ...page };
  }

  /**
   * The live sample nearest to `hash` within `distance` bits (the smallest id among the nearest),
   * or undefined: what an upload that asks to be refused as a near-duplicate is checked against.
   * The dataset's hashes are brought to its current revision by reading only what changed since
   * they were loaded, then scanned (a popcount per sample: a few milliseconds at a million).
   */
  async findNear(dataset: DatasetRecord, hash: string, distance: number): Promise<{ id: number; distance: number } | undefined> {
    const snapshot = await this.snapshots.get(dataset, true);
    const { hi, lo } = parseHash(hash);
    let best: { id: number; distance: number } | undefined;
    for (let p = 0; p < snapshot.ids.length; p++) {
      const d = bitCount(snapshot.hi[p] ^ hi) + bitCount(snapshot.lo[p] ^ lo);
      if (d <= distance && (!best || d < best.distance)) best = { id: snapshot.ids[p], distance: d };
    }
    return best;
  }

  /** The dataset is gone or changed: its index is dropped. */
  forgetDataset(datasetId: number): void {
    this.snapshots.forget(datasetId);
  }

  private header(dataset: DatasetRecord, snapshot: Snapshot, distance: number) {
    return { dataset, revision: snapshot.revision, distance, hashed: snapshot.ids.length, unhashed: snapshot.unhashed };
  }

  private async prepare(datasetName: string, request: GroupPageRequest) {
    const distance = request.distance ?? DEFAULT_DUPLICATE_DISTANCE;
    if (!Number.isInteger(distance) || distance < 0 || distance > MAX_DUPLICATE_DISTANCE) {
      throw badRequest('distance', `distance must be a whole number from 0 to ${MAX_DUPLICATE_DISTANCE}`);
    }
    const limit = request.limit ?? DEFAULT_GROUP_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GROUP_PAGE) throw badRequest('limit', `limit must be a whole number from 1 to ${MAX_GROUP_PAGE}`);
    const after = decodeCursor(request.cursor);
    const dataset = await requireDataset(this.store, datasetName);
    const revision = request.revision ?? dataset.revision;
    if (!Number.isSafeInteger(revision) || revision < 0) throw badRequest('revision', 'revision must be a whole number of 0 or more');
    if (revision > dataset.revision) {
      throw new SensoryError('SENSORY_ERR_UNKNOWN_REVISION', `revision ${revision} is above dataset ${dataset.name}'s current revision ${dataset.revision}`, { field: 'revision' });
    }
    if (revision < dataset.purgedRevision) {
      throw new SensoryError('SENSORY_ERR_REVISION_PURGED', `revision ${revision} of dataset ${dataset.name} is gone: samples deleted before revision ${dataset.purgedRevision} were purged`, { field: 'revision' });
    }
    const snapshot = await this.snapshots.at(dataset, revision);
    const groups = await this.grouping(snapshot, distance);
    return { dataset, snapshot, distance, groups, after, limit };
  }

  private grouping(snapshot: Snapshot, distance: number): Promise<Groups> {
    let grouping = snapshot.groups.get(distance);
    if (!grouping) {
      grouping = componentsOffThread(snapshot.hi, snapshot.lo, distance).then(groupsOf);
      snapshot.groups.set(distance, grouping);
      grouping.catch(() => snapshot.groups.delete(distance));
    }
    return grouping;
  }

  /**
   * The groups of near-duplicates at the dataset's current revision whose members carry
   * different categories (by index): what the review queue ranks label conflicts from.
   */
  async labelConflicts(dataset: DatasetRecord, distance = DEFAULT_DUPLICATE_DISTANCE): Promise<DuplicateGroupLabels[]> {
    const snapshot = await this.snapshots.at(dataset, dataset.revision);
    const groups = await this.grouping(snapshot, distance);
    const out: DuplicateGroupLabels[] = [];
    for (let g = 0; g + 1 < groups.starts.length; g++) {
      if (!this.flags(snapshot, groups, g, dataset.testPercent).conflict) continue;
      const members = Array.from(groups.members.subarray(groups.starts[g], groups.starts[g + 1]), (p) => ({ id: snapshot.ids[p], label: snapshot.categories[p] }));
      out.push({ members });
    }
    return out;
  }

  private flags(snapshot: Snapshot, groups: Groups, g: number, testPercent: number): { straddles: boolean; conflict: boolean } {
    let test = false;
    let train = false;
    let conflict = false;
    const first = snapshot.categories[groups.members[groups.starts[g]]];
    for (let k = groups.starts[g]; k < groups.starts[g + 1]; k++) {
      const p = groups.members[k];
      if (isTestBucket(snapshot.buckets[p], testPercent)) test = true;
      else train = true;
      if (snapshot.categories[p] !== first) conflict = true;
    }
    return { straddles: test && train, conflict };
  }

  private async page(dataset: DatasetRecord, snapshot: Snapshot, groups: Groups, selected: readonly number[], afterId: number, limit: number) {
    const firstId = (g: number) => snapshot.ids[groups.members[groups.starts[g]]];
    // Groups are ordered by first position, positions by id: a binary search finds the page.
    let lo = 0;
    let hi = selected.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (firstId(selected[mid]) <= afterId) lo = mid + 1;
      else hi = mid;
    }
    const chosen = selected.slice(lo, lo + limit);
    const names = new Map((await this.store.listCategories(dataset.id)).map((c) => [c.index, c.name]));
    const out: DuplicateGroup[] = [];
    for (const g of chosen) out.push(await this.groupView(dataset, snapshot, groups, g, names));
    const more = lo + limit < selected.length;
    return { groups: out, ...(more ? { nextCursor: encodeCursor(firstId(chosen[chosen.length - 1])) } : {}) };
  }

  private async groupView(dataset: DatasetRecord, snapshot: Snapshot, groups: Groups, g: number, names: Map<number, string>): Promise<DuplicateGroup> {
    const positions = Array.from(groups.members.subarray(groups.starts[g], groups.starts[g + 1]));
    const { hi, lo } = snapshot;
    const [p0] = positions;
    const members = positions.map((p) => ({
      id: snapshot.ids[p],
      category: names.get(snapshot.categories[p]) ?? String(snapshot.categories[p]),
      split: isTestBucket(snapshot.buckets[p], dataset.testPercent) ? ('test' as const) : ('train' as const),
      hash: formatHash(hi[p], lo[p]),
      distance: bitCount(hi[p] ^ hi[p0]) + bitCount(lo[p] ^ lo[p0]),
    }));
    const { straddles, conflict } = this.flags(snapshot, groups, g, dataset.testPercent);
    const categories = conflict ? [...new Set(members.map((m) => m.category))] : undefined;
    const identical = await this.identical(dataset, snapshot, positions);
    return { members, ...(identical === undefined ? {} : { identical }), straddlesSplit: straddles, ...(categories ? { categories } : {}) };
  }

  /** Whether the members' stored pixels are byte-identical (read back only when their hashes are). */
  private async identical(dataset: DatasetRecord, snapshot: Snapshot, positions: readonly number[]): Promise<boolean | undefined> {
    if (positions.length > MAX_COMPARED_MEMBERS) return undefined;
    const { hi, lo } = snapshot;
    if (positions.some((p) => hi[p] !== hi[positions[0]] || lo[p] !== lo[positions[0]])) return false;
    const size = recordBytes(dataset);
    const target = new Uint8Array(size * positions.length);
    await this.pixels.read(dataset.id, dataset, positions.map((p) => snapshot.pixelSlots[p]), target, 0);
    const digest = (i: number) => createHash('sha256').update(target.subarray(i * size, (i + 1) * size)).digest('hex');
    const first = digest(0);
    return positions.every((_, i) => i === 0 || digest(i) === first);
  }

}

function bitCount(word: number): number {
  let v = (word >>> 0) - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Groups from component labels (each position labelled with its group's smallest position). */
function groupsOf(labels: Int32Array): Groups {
  const n = labels.length;
  const size = new Int32Array(n);
  for (let i = 0; i < n; i++) size[labels[i]]++;
  const groupOfRoot = new Int32Array(n).fill(-1);
  let count = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] === i && size[i] >= 2) {
      groupOfRoot[i] = count++;
      total += size[i];
    }
  }
  const starts = new Uint32Array(count + 1);
  for (let i = 0; i < n; i++) if (groupOfRoot[i] >= 0) starts[groupOfRoot[i] + 1] = size[i];
  for (let g = 0; g < count; g++) starts[g + 1] += starts[g];
  const fill = starts.slice(0, count);
  const members = new Uint32Array(total);
  for (let i = 0; i < n; i++) {
    const g = groupOfRoot[labels[i]];
    if (g >= 0) members[fill[g]++] = i;
  }
  return { starts, members };
}
