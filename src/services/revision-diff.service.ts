import { SensoryError } from '../domain/errors.js';
import type { DatasetRecord, MetadataStore, RevisionChange } from '../ports/metadata-store.js';
import { requireDataset } from './dataset.service.js';

export const MAX_CHANGE_PAGE = 1000;
export const DEFAULT_CHANGE_PAGE = 100;
/** Changes read per query while counting. */
const SCAN_PAGE = 10_000;

export interface DiffRequest {
  readonly from?: number;
  readonly to?: number;
  readonly cursor?: string;
  readonly limit?: number;
}

export interface CategoryDiff {
  readonly name: string;
  readonly index: number;
  readonly added: number;
  readonly deleted: number;
  /** Samples relabelled into this category, and out of it. */
  readonly relabelledIn: number;
  readonly relabelledOut: number;
}

export type SampleChange =
  | { readonly id: number; readonly change: 'added'; readonly category: string }
  | { readonly id: number; readonly change: 'deleted'; readonly category: string }
  | { readonly id: number; readonly change: 'relabelled'; readonly from: string; readonly to: string };

export interface RevisionDiff {
  readonly dataset: DatasetRecord;
  readonly from: number;
  readonly to: number;
  readonly totals: { readonly added: number; readonly deleted: number; readonly relabelled: number };
  /** Categories with any change, by index. */
  readonly categories: CategoryDiff[];
  /** Relabels by (from, to) pair, most frequent first. */
  readonly relabels: { readonly from: string; readonly to: string; readonly count: number }[];
  /** The changed samples of this page, by ascending id. */
  readonly changes: SampleChange[];
  readonly nextCursor?: string;
}

function badRequest(field: string, message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  const match = /^c(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw badRequest('cursor', 'cursor is not one this service gave out');
  return Number(match[1]);
}

const encodeCursor = (lastId: number) => Buffer.from(`c${lastId}`, 'utf8').toString('base64url');

/**
 * What changed in a dataset between two revisions, class by class: samples added, deleted and
 * relabelled (from → to), counted first, then listed by pages. It reads what every revision
 * already keeps: each sample's added and deleted revision and its label history, so any two
 * revisions at or above the dataset's purged revision can be compared.
 */
export class RevisionDiffService {
  constructor(private readonly store: MetadataStore) {}

  async diff(datasetName: string, request: DiffRequest): Promise<RevisionDiff> {
    const limit = request.limit ?? DEFAULT_CHANGE_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CHANGE_PAGE) throw badRequest('limit', `limit must be a whole number from 1 to ${MAX_CHANGE_PAGE}`);
    for (const field of ['from', 'to'] as const) {
      const value = request[field];
      if (value === undefined) throw badRequest(field, `${field} is required: a revision of the dataset`);
      if (!Number.isSafeInteger(value) || value < 0) throw badRequest(field, `${field} must be a whole number of 0 or more`);
    }
    const from = request.from!;
    const to = request.to!;
    if (from > to) throw badRequest('from', `from (${from}) must not be above to (${to})`);
    const afterId = decodeCursor(request.cursor);
    const dataset = await requireDataset(this.store, datasetName);
    if (to > dataset.revision) {
      throw new SensoryError('SENSORY_ERR_UNKNOWN_REVISION', `to ${to} is above dataset ${dataset.name}'s current revision ${dataset.revision}`, { field: 'to', revision: to, current: dataset.revision });
    }
    if (from < dataset.purgedRevision) {
      throw new SensoryError(
        'SENSORY_ERR_REVISION_PURGED',
        `from ${from} is below dataset ${dataset.name}'s purged revision ${dataset.purgedRevision}: samples deleted before it were purged`,
        { field: 'from', revision: from, purgedRevision: dataset.purgedRevision },
      );
    }
    const names = new Map((await this.store.listCategories(dataset.id)).map((c) => [c.index, c.name]));
    const name = (index: number) => names.get(index) ?? String(index);
    const perCategory = new Map<number, { added: number; deleted: number; relabelledIn: number; relabelledOut: number }>();
    const count = (index: number) => {
      let entry = perCategory.get(index);
      if (!entry) perCategory.set(index, (entry = { added: 0, deleted: 0, relabelledIn: 0, relabelledOut: 0 }));
      return entry;
    };
    const pairs = new Map<string, { from: number; to: number; count: number }>();
    const totals = { added: 0, deleted: 0, relabelled: 0 };
    const page: RevisionChange[] = [];
    let more = false;

    // Every change is counted (memory: one entry per category and relabel pair); only the page's are kept.
    for (let scanned = 0; ; ) {
      const rows = await this.store.revisionChanges(dataset.id, { from, to, afterId: scanned, limit: SCAN_PAGE });
      for (const row of rows) {
        if (row.before === null && row.after !== null) {
          totals.added++;
          count(row.after).added++;
        } else if (row.after === null && row.before !== null) {
          totals.deleted++;
          count(row.before).deleted++;
        } else if (row.before !== null && row.after !== null) {
          totals.relabelled++;
          count(row.before).relabelledOut++;
          count(row.after).relabelledIn++;
          const key = `${row.before}:${row.after}`;
          const pair = pairs.get(key) ?? { from: row.before, to: row.after, count: 0 };
          pair.count++;
          pairs.set(key, pair);
        }
        if (row.id > afterId) {
          if (page.length < limit) page.push(row);
          else more = true;
        }
      }
      if (rows.length < SCAN_PAGE) break;
      scanned = rows[rows.length - 1].id;
    }

    return {
      dataset,
      from,
      to,
      totals,
      categories: [...perCategory.entries()].sort((a, b) => a[0] - b[0]).map(([index, c]) => ({ name: name(index), index, ...c })),
      relabels: [...pairs.values()].sort((a, b) => b.count - a.count || a.from - b.from || a.to - b.to).map((p) => ({ from: name(p.from), to: name(p.to), count: p.count })),
      changes: page.map((row): SampleChange => {
        if (row.before === null) return { id: row.id, change: 'added', category: name(row.after!) };
        if (row.after === null) return { id: row.id, change: 'deleted', category: name(row.before) };
        return { id: row.id, change: 'relabelled', from: name(row.before), to: name(row.after) };
      }),
      ...(more ? { nextCursor: encodeCursor(page[page.length - 1].id) } : {}),
    };
  }
}
