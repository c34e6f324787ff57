import { MAX_BULK_ACTION_SAMPLES } from '../domain/bulk-actions.js';
import { SensoryError } from '../domain/errors.js';
import { categoryName } from '../domain/names.js';
import { sampleSearch, sampleTags } from '../domain/sample-annotations.js';
import type { Split } from '../domain/split.js';
import type { Actor, AuditRecord, BulkActionRecord, BulkChange, BulkOutcome, MetadataStore, SampleQuery } from '../ports/metadata-store.js';
import { requireDataset } from './dataset.service.js';

export const MAX_AUDIT_PAGE = 1000;

export interface BulkFilter {
  readonly category?: string;
  readonly split?: Split;
  readonly tag?: string;
  readonly filename?: string;
  readonly q?: string;
}

export interface BulkRequest {
  readonly action: BulkChange['kind'];
  readonly ids?: readonly number[];
  readonly filter?: BulkFilter;
  readonly category?: string;
  readonly tags?: readonly string[];
}

/** A cursor of the audit log is opaque to clients; inside, it is the last entry id of the page. */
function decodeAuditCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const match = /^a(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'cursor is not one this service gave out: send the nextCursor of the last page unchanged', { field: 'cursor' });
  return Number(match[1]);
}

function bad(field: string, message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}

/** Bulk actions over a selection or a filter, their undo, and the audit log. */
export class CurationService {
  constructor(private readonly store: MetadataStore) {}

  async apply(datasetName: string, request: BulkRequest, actor: Actor): Promise<BulkOutcome> {
    const dataset = await requireDataset(this.store, datasetName);
    const change = this.change(request);
    if ((request.ids === undefined) === (request.filter === undefined)) {
      throw bad('ids', 'send either ids (the samples to change) or filter (every sample it selects), not both nor neither');
    }
    const ids = request.ids ?? (await this.select(dataset.id, request.filter!));
    return this.store.applyBulk(dataset.id, ids, change, actor);
  }

  async undo(datasetName: string, actionId: number, actor: Actor): Promise<BulkOutcome> {
    const dataset = await requireDataset(this.store, datasetName);
    return this.store.undoBulk(dataset.id, actionId, actor);
  }

  async actions(datasetName: string, limit = 20): Promise<BulkActionRecord[]> {
    const dataset = await requireDataset(this.store, datasetName);
    return this.store.listBulkActions(dataset.id, limit);
  }

  /** A page of the audit log, newest first: the dataset's, or one sample's. */
  async audit(datasetName: string, request: { sampleId?: number; cursor?: string; limit?: number }): Promise<{ entries: AuditRecord[]; nextCursor?: string }> {
    const dataset = await requireDataset(this.store, datasetName);
    const limit = request.limit ?? 100;
    const entries = await this.store.listAudit(dataset.id, { sampleId: request.sampleId, beforeId: decodeAuditCursor(request.cursor), limit: limit + 1 });
    const more = entries.length > limit;
    if (more) entries.length = limit;
    return { entries, ...(more ? { nextCursor: Buffer.from(`a${entries[entries.length - 1].id}`, 'utf8').toString('base64url') } : {}) };
  }

  private change(request: BulkRequest): BulkChange {
    switch (request.action) {
      case 'relabel':
        if (request.category === undefined) throw bad('category', 'category is required with action relabel: the category to move the samples to');
        return { kind: 'relabel', category: categoryName('category', request.category) };
      case 'delete':
        return { kind: 'delete' };
      case 'tag':
      case 'untag': {
        if (request.tags === undefined || request.tags.length === 0) throw bad('tags', `tags is required with action ${request.action}: one or more tag names`);
        return { kind: request.action, tags: sampleTags('tags', request.tags) };
      }
    }
  }

  /** The live samples a filter selects, by id; more than MAX_BULK_ACTION_SAMPLES is refused. */
  private async select(datasetId: number, filter: BulkFilter): Promise<number[]> {
    const query: Omit<SampleQuery, 'limit' | 'afterId'> = {
      ...(filter.category !== undefined ? { category: categoryName('filter.category', filter.category) } : {}),
      ...(filter.split !== undefined ? { split: filter.split } : {}),
      ...(filter.tag !== undefined ? { tag: filter.tag.normalize('NFC') } : {}),
      ...(filter.filename !== undefined ? { filename: filter.filename.normalize('NFC') } : {}),
      ...(filter.q !== undefined ? { search: sampleSearch(filter.q.normalize('NFC')) } : {}),
    };
    const ids: number[] = [];
    for (let afterId = 0; ; ) {
      const page = await this.store.listSamples(datasetId, { ...query, afterId, limit: 1000 });
      for (const sample of page) ids.push(sample.id);
      if (ids.length > MAX_BULK_ACTION_SAMPLES) throw bad('filter', `the filter selects more than ${MAX_BULK_ACTION_SAMPLES} samples: narrow it, or act in several steps`);
      if (page.length < 1000) return ids;
      afterId = page[page.length - 1].id;
    }
  }
}
