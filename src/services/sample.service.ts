import { SensoryError } from '../domain/errors.js';
import { categoryName } from '../domain/names.js';
import { DEFAULT_MAX_METADATA_BYTES, sampleAnnotations, sampleSearch } from '../domain/sample-annotations.js';
import type { Split } from '../domain/split.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { Actor, DatasetRecord, MetadataStore, SampleRecord } from '../ports/metadata-store.js';
import { requireDataset } from './dataset.service.js';

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export interface SamplePageRequest {
  readonly category?: string;
  readonly split?: Split;
  readonly filename?: string;
  readonly tag?: string;
  readonly q?: string;
  /** oldest (ascending ids, the default), newest (descending), category (by name) or filename (missing last); ties by id. */
  readonly sort?: SampleSort;
  readonly cursor?: string;
  readonly limit?: number;
}

export interface SamplePage {
  readonly dataset: DatasetRecord;
  readonly samples: SampleRecord[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  readonly nextCursor?: string;
}

export type SampleSort = 'oldest' | 'newest' | 'category' | 'filename';

interface Position {
  readonly id: number;
  /** The sort key of the sample at `id` (category or filename sorts; null: no filename). */
  readonly key?: string | null;
}

const badCursor = (why: string) => new SensoryError('SENSORY_ERR_BAD_REQUEST', `cursor ${why}`, { field: 'cursor' });

/**
 * A cursor is opaque to clients. Inside, by id: `s<last id>`; by category or filename: JSON
 * {s: sort, k: key of the last sample, id: its id}, so that the next page starts after that pair.
 */
function decodeCursor(cursor: string | undefined, sort: SampleSort): Position | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const byId = /^s(\d{1,15})$/.exec(text);
  if (byId) {
    if (sort === 'category' || sort === 'filename') throw badCursor(`is not one of sort=${sort}`);
    return { id: Number(byId[1]) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badCursor('is not one this service gave out');
  }
  const { s, k, id } = (parsed ?? {}) as { s?: unknown; k?: unknown; id?: unknown };
  if ((s !== 'category' && s !== 'filename') || !Number.isSafeInteger(id) || (id as number) < 1) throw badCursor('is not one this service gave out');
  if (typeof k !== 'string' && !(k === null && s === 'filename')) throw badCursor('is not one this service gave out');
  if (s !== sort) throw badCursor(`is one of sort=${s}, not of sort=${sort}`);
  return { id: id as number, key: k };
}

function encodeCursor(last: SampleRecord, sort: SampleSort): string {
  if (sort === 'category') return Buffer.from(JSON.stringify({ s: sort, k: last.category, id: last.id }), 'utf8').toString('base64url');
  if (sort === 'filename') return Buffer.from(JSON.stringify({ s: sort, k: last.filename ?? null, id: last.id }), 'utf8').toString('base64url');
  return Buffer.from(`s${last.id}`, 'utf8').toString('base64url');
}

export class SampleService {
  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    /** SENSORY_MAX_SAMPLE_METADATA_BYTES. */
    private readonly maxMetadataBytes = DEFAULT_MAX_METADATA_BYTES,
  ) {}

  /**
   * Relabels (raising the revision) and changes the filename, tags or metadata (raising none), in
   * that order; everything is checked before anything changes.
   */
  async patch(
    datasetName: string,
    id: number,
    change: { category?: unknown; filename?: unknown; tags?: unknown; metadata?: unknown },
    actor?: Actor,
  ): Promise<{ dataset: DatasetRecord; sample: SampleRecord }> {
    const dataset = await requireDataset(this.store, datasetName);
    const category = change.category === undefined ? undefined : categoryName('category', change.category);
    const annotations = sampleAnnotations(change, this.maxMetadataBytes);
    if (category === undefined && Object.keys(annotations).length === 0) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'send at least one of category, filename, tags, metadata', { field: 'body' });
    }
    let sample = category === undefined ? await this.store.getSample(dataset.id, id) : await this.store.relabelSample(dataset.id, id, category, actor);
    if (!sample) throw notFound(dataset, id);
    if (Object.keys(annotations).length > 0) {
      sample = await this.store.annotateSample(dataset.id, id, annotations, actor);
      if (!sample) throw notFound(dataset, id);
    }
    return { dataset, sample };
  }

  async list(datasetName: string, request: SamplePageRequest): Promise<SamplePage> {
    const dataset = await requireDataset(this.store, datasetName);
    const category = request.category === undefined ? undefined : categoryName('category', request.category);
    const limit = request.limit ?? DEFAULT_PAGE;
    const sort = request.sort ?? 'oldest';
    const after = decodeCursor(request.cursor, sort);
    const samples = await this.store.listSamples(dataset.id, {
      category,
      split: request.split,
      ...(request.filename !== undefined ? { filename: request.filename.normalize('NFC') } : {}),
      ...(request.tag !== undefined ? { tag: request.tag.normalize('NFC') } : {}),
      ...(request.q !== undefined ? { search: sampleSearch(request.q.normalize('NFC')) } : {}),
      afterId: after?.id,
      ...(sort === 'newest' ? { newestFirst: true } : {}),
      ...(sort === 'category' || sort === 'filename' ? { orderBy: sort, ...(after ? { afterKey: after.key } : {}) } : {}),
      limit: limit + 1,
    });
    const more = samples.length > limit;
    if (more) samples.length = limit;
    return { dataset, samples, nextCursor: more ? encodeCursor(samples[samples.length - 1], sort) : undefined };
  }

  async get(datasetName: string, id: number): Promise<{ dataset: DatasetRecord; sample: SampleRecord }> {
    const dataset = await requireDataset(this.store, datasetName);
    return { dataset, sample: await this.requireSample(dataset, id) };
  }

  async content(datasetName: string, id: number): Promise<{ sample: SampleRecord; bytes: Buffer }> {
    const { sample } = await this.get(datasetName, id);
    return { sample, bytes: await this.blobs.get(sample.sha256) };
  }

  async relabel(datasetName: string, id: number, category: unknown): Promise<{ dataset: DatasetRecord; sample: SampleRecord }> {
    const dataset = await requireDataset(this.store, datasetName);
    const name = categoryName('category', category);
    const sample = await this.store.relabelSample(dataset.id, id, name);
    if (!sample) throw notFound(dataset, id);
    return { dataset, sample };
  }

  async delete(datasetName: string, id: number, actor?: Actor): Promise<{ dataset: DatasetRecord; sample: SampleRecord }> {
    const dataset = await requireDataset(this.store, datasetName);
    const sample = await this.store.deleteSample(dataset.id, id, actor);
    if (!sample) throw notFound(dataset, id);
    return { dataset, sample };
  }

  private async requireSample(dataset: DatasetRecord, id: number): Promise<SampleRecord> {
    const sample = await this.store.getSample(dataset.id, id);
    if (!sample) throw notFound(dataset, id);
    return sample;
  }
}

function notFound(dataset: DatasetRecord, id: number): SensoryError {
  return new SensoryError('SENSORY_ERR_SAMPLE_NOT_FOUND', `dataset ${dataset.name} has no sample ${id}`);
}
