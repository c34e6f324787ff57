import { SensoryError } from '../domain/errors.js';
import { compareRanked, rankMislabels, type MislabelReason, type RankedSample } from '../domain/mislabel-ranking.js';
import type { Actor, DatasetRecord, FeedbackInput, MetadataStore, ReviewDecision, SampleRecord } from '../ports/metadata-store.js';
import type { Clock } from '../ports/clock.js';
import { requireDataset } from './dataset.service.js';
import type { NearDuplicateService } from './near-duplicate.service.js';
import type { SampleService } from './sample.service.js';

export const DEFAULT_MAX_FEEDBACK_ITEMS = 10_000;
export const MAX_REVIEW_PAGE = 200;
export const DEFAULT_REVIEW_PAGE = 20;
/** How far the probabilities of one sample may sum from 1. */
export const PROBABILITY_SUM_TOLERANCE = 0.01;

export interface FeedbackRequest {
  readonly revision?: number;
  readonly items: readonly FeedbackInput[];
}

export interface FeedbackOutcome {
  readonly dataset: DatasetRecord;
  readonly revision: number;
  readonly stored: number;
  /** One per item, in the order sent. */
  readonly results: { readonly id: number; readonly status: 'stored' | 'not_found' }[];
}

export interface ReviewReason {
  readonly kind: MislabelReason['kind'];
  readonly loss?: number;
  readonly z?: number;
  readonly percentile?: number;
  readonly labelProbability?: number;
  readonly suggestedProbability?: number;
  readonly groupSize?: number;
  readonly others?: number;
  readonly suggested?: string;
}

export interface ReviewItem {
  readonly id: number;
  readonly category: string;
  readonly score: number;
  readonly reasons: ReviewReason[];
  readonly suggested?: string;
  readonly loss?: number;
  /** The revision of the report this ranking used, and when it came. */
  readonly feedbackRevision?: number;
  readonly receivedAt?: string;
}

export interface ReviewPage {
  readonly dataset: DatasetRecord;
  readonly revision: number;
  /** Samples in the queue (not decided since their last report). */
  readonly total: number;
  readonly items: ReviewItem[];
  readonly nextCursor?: string;
}

export interface DecisionRequest {
  readonly decision: ReviewDecision;
  readonly category?: string;
}

export interface DecisionOutcome {
  readonly dataset: DatasetRecord;
  readonly id: number;
  readonly decision: ReviewDecision;
  /** The sample after the decision (relabel: its new label; delete: as it was). */
  readonly sample: SampleRecord;
}

function badRequest(field: string, message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}

function decodeCursor(cursor: string | undefined): { score: number; id: number } | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const match = /^r(-?\d+(?:\.\d+)?(?:e-?\d+)?):(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw badRequest('cursor', 'cursor is not one this service gave out');
  return { score: Number(match[1]), id: Number(match[2]) };
}

const encodeCursor = (item: { score: number; id: number }) => Buffer.from(`r${item.score}:${item.id}`, 'utf8').toString('base64url');

/**
 * Label review fed by the trainer: reports of loss, class probabilities or predicted class per
 * sample come in bulk; the review queue ranks likely mislabels from them and from near-duplicates
 * carrying other labels (domain/mislabel-ranking.ts), computed when asked from every report of
 * the dataset; a person's decision takes a sample out of it until its next report. Relabels and
 * deletes go through the sample service, so revisions and the audit log record them as any other.
 */
export class ReviewService {
  constructor(
    private readonly store: MetadataStore,
    private readonly samples: SampleService,
    private readonly nearDuplicates: NearDuplicateService,
    private readonly clock: Clock,
    /** SENSORY_MAX_FEEDBACK_ITEMS. */
    private readonly maxItems = DEFAULT_MAX_FEEDBACK_ITEMS,
  ) {}

  async feedback(datasetName: string, request: FeedbackRequest): Promise<FeedbackOutcome> {
    const items: readonly FeedbackInput[] = request.items;
    if (items.length === 0) throw badRequest('items', 'items must list at least one sample');
    if (items.length > this.maxItems) {
      throw new SensoryError('SENSORY_ERR_BODY_TOO_LARGE', `items lists ${items.length} samples; at most ${this.maxItems} go in one request (SENSORY_MAX_FEEDBACK_ITEMS)`, { field: 'items' });
    }
    const dataset = await requireDataset(this.store, datasetName);
    const revision = request.revision ?? dataset.revision;
    if (revision > dataset.revision) {
      throw new SensoryError('SENSORY_ERR_UNKNOWN_REVISION', `revision ${revision} is above dataset ${dataset.name}'s current revision ${dataset.revision}`, { field: 'revision' });
    }
    const categories = (await this.store.listCategories(dataset.id)).length;
    const seen = new Set<number>();
    items.forEach((item, i) => {
      const at = `items[${i}]`;
      if (seen.has(item.id)) throw badRequest(`${at}.id`, `${at}.id: sample ${item.id} is listed twice`);
      seen.add(item.id);
      if (item.loss === undefined && item.probs === undefined && item.predicted === undefined) {
        throw badRequest(at, `${at} reports nothing: send loss, probs or predicted`);
      }
      if (item.loss !== undefined && !(Number.isFinite(item.loss) && item.loss >= 0)) throw badRequest(`${at}.loss`, `${at}.loss must be a finite number of 0 or more`);
      if (item.probs !== undefined) {
        if (item.probs.length !== categories) {
          throw badRequest(`${at}.probs`, `${at}.probs has ${item.probs.length} probabilities; dataset ${dataset.name} has ${categories} categories (one per category index)`);
        }
        const bad = item.probs.findIndex((p) => !(Number.isFinite(p) && p >= 0 && p <= 1));
        if (bad >= 0) throw badRequest(`${at}.probs[${bad}]`, `${at}.probs[${bad}] must be a probability from 0 to 1`);
        const sum = item.probs.reduce((a, b) => a + b, 0);
        if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) throw badRequest(`${at}.probs`, `${at}.probs sum to ${sum}, not 1`);
      }
      if (item.predicted !== undefined && !(Number.isInteger(item.predicted) && item.predicted >= 0 && item.predicted < categories)) {
        throw badRequest(`${at}.predicted`, `${at}.predicted must be a category index from 0 to ${categories - 1}`);
      }
    });
    const stored = new Set(await this.store.putFeedback(dataset.id, items, revision, new Date(this.clock.now()).toISOString()));
    return {
      dataset,
      revision,
      stored: stored.size,
      results: items.map((item) => ({ id: item.id, status: stored.has(item.id) ? ('stored' as const) : ('not_found' as const) })),
    };
  }

  async queue(datasetName: string, request: { limit?: number; cursor?: string }): Promise<ReviewPage> {
    const limit = request.limit ?? DEFAULT_REVIEW_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_REVIEW_PAGE) throw badRequest('limit', `limit must be a whole number from 1 to ${MAX_REVIEW_PAGE}`);
    const after = decodeCursor(request.cursor);
    const dataset = await requireDataset(this.store, datasetName);
    const { ranked, reports, names } = await this.rank(dataset);
    const queued = ranked.filter((r) => reports.get(r.id)?.decision == null);
    const start = after ? queued.findIndex((r) => compareRanked(r, after) > 0) : 0;
    const from = start < 0 ? queued.length : start;
    const page = queued.slice(from, from + limit);
    const name = (index: number) => names.get(index) ?? String(index);
    const items = page.map((r): ReviewItem => {
      const report = reports.get(r.id);
      return {
        id: r.id,
        category: name(r.label),
        score: r.score,
        reasons: r.reasons.map((reason) => ('suggested' in reason ? { ...reason, suggested: name(reason.suggested) } : { ...reason })),
        ...(r.suggested !== undefined ? { suggested: name(r.suggested) } : {}),
        ...(report?.loss != null ? { loss: report.loss } : {}),
        ...(report && (report.loss !== null || report.probs !== null || report.predicted !== null) ? { feedbackRevision: report.revision, receivedAt: report.receivedAt } : {}),
      };
    });
    const more = from + limit < queued.length;
    return { dataset, revision: dataset.revision, total: queued.length, items, ...(more ? { nextCursor: encodeCursor(page[page.length - 1]) } : {}) };
  }

  async decide(datasetName: string, id: number, request: DecisionRequest, actor?: Actor): Promise<DecisionOutcome> {
    const dataset = await requireDataset(this.store, datasetName);
    const at = () => new Date(this.clock.now()).toISOString();
    switch (request.decision) {
      case 'confirm': {
        if (request.category !== undefined) throw badRequest('category', 'category goes with relabel only');
        const { sample } = await this.samples.get(datasetName, id);
        if (!(await this.store.decideFeedback(dataset.id, id, 'confirm', at()))) throw sampleGone(dataset, id);
        return { dataset, id, decision: 'confirm', sample };
      }
      case 'relabel': {
        let category = request.category;
        if (category === undefined) {
          await this.samples.get(datasetName, id);
          const { ranked, names } = await this.rank(dataset);
          const suggested = ranked.find((r) => r.id === id)?.suggested;
          if (suggested === undefined) throw badRequest('category', `sample ${id} has no suggested class: send category`);
          category = names.get(suggested) ?? String(suggested);
        }
        const { sample } = await this.samples.patch(datasetName, id, { category }, actor);
        await this.store.decideFeedback(dataset.id, id, 'relabel', at());
        return { dataset, id, decision: 'relabel', sample };
      }
      case 'delete': {
        if (request.category !== undefined) throw badRequest('category', 'category goes with relabel only');
        const { sample } = await this.samples.delete(datasetName, id, actor);
        return { dataset, id, decision: 'delete', sample };
      }
      default:
        throw badRequest('decision', 'decision must be confirm, relabel or delete');
    }
  }

  private async rank(dataset: DatasetRecord): Promise<{ ranked: RankedSample[]; reports: Map<number, Awaited<ReturnType<MetadataStore['listFeedback']>>[number]>; names: Map<number, string> }> {
    const [feedback, groups, categories] = await Promise.all([
      this.store.listFeedback(dataset.id),
      this.nearDuplicates.labelConflicts(dataset),
      this.store.listCategories(dataset.id),
    ]);
    const reports = new Map(feedback.map((f) => [f.id, f]));
    const ranked = rankMislabels(
      // A loss is about the label the sample had then: relabelled since, it says nothing of the new one.
      feedback.map((f) => ({ id: f.id, label: f.categoryIndex, loss: f.labelRevision > f.revision ? null : f.loss, probs: f.probs, predicted: f.predicted })),
      groups,
    );
    return { ranked, reports, names: new Map(categories.map((c) => [c.index, c.name])) };
  }
}

function sampleGone(dataset: DatasetRecord, id: number): SensoryError {
  return new SensoryError('SENSORY_ERR_SAMPLE_NOT_FOUND', `dataset ${dataset.name} has no sample ${id}`);
}
