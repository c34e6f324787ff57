import { SensoryError } from './errors.js';
import { MAX_TAGS, applyAnnotationChange } from './sample-annotations.js';

/** Samples one bulk action may name (or a filter may select). */
export const MAX_BULK_ACTION_SAMPLES = 100_000;

type Change =
  | { readonly kind: 'relabel'; readonly category: string }
  | { readonly kind: 'delete' }
  | { readonly kind: 'tag'; readonly tags: readonly string[] }
  | { readonly kind: 'untag'; readonly tags: readonly string[] };

interface Annotated {
  readonly category: string;
  readonly filename: string | null;
  readonly tags: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

export type ItemPlan<T> =
  | { readonly kind: 'relabel'; readonly to: string }
  | { readonly kind: 'delete' }
  /** Tags changed: the sample as it becomes, and the tags actually added or removed (what an undo gives back). */
  | { readonly kind: 'annotate'; readonly next: T; readonly tags: readonly string[] };

/** What a bulk change does to one live sample; undefined when it changes nothing. */
export function planBulkItem<T extends Annotated>(sample: T, change: Change): ItemPlan<T> | undefined {
  switch (change.kind) {
    case 'relabel':
      return sample.category === change.category ? undefined : { kind: 'relabel', to: change.category };
    case 'delete':
      return { kind: 'delete' };
    case 'tag': {
      const room = Math.max(0, MAX_TAGS - sample.tags.length);
      const added = change.tags.filter((tag) => !sample.tags.includes(tag)).slice(0, room);
      return added.length === 0 ? undefined : { kind: 'annotate', next: applyAnnotationChange(sample, { addTags: added }), tags: added };
    }
    case 'untag': {
      const removed = change.tags.filter((tag) => sample.tags.includes(tag));
      return removed.length === 0 ? undefined : { kind: 'annotate', next: applyAnnotationChange(sample, { removeTags: removed }), tags: removed };
    }
  }
}

export function bulkNotFound(id: number): SensoryError {
  return new SensoryError('SENSORY_ERR_BULK_ACTION_NOT_FOUND', `the dataset has no bulk action ${id}`, { field: 'id' });
}

/** Only the last action that is not an undo may be undone, and only once. */
export function assertUndoable(action: { id: number; kind: string; undoneBy: number | null }, last: { id: number } | undefined): void {
  if (action.kind === 'undo') throw new SensoryError('SENSORY_ERR_UNDO_CONFLICT', `bulk action ${action.id} is an undo: it cannot be undone in turn`, { field: 'id' });
  if (action.undoneBy !== null) throw new SensoryError('SENSORY_ERR_UNDO_CONFLICT', `bulk action ${action.id} was undone already (by ${action.undoneBy})`, { field: 'id' });
  if (last && last.id !== action.id) {
    throw new SensoryError('SENSORY_ERR_UNDO_CONFLICT', `only the last bulk action of the dataset can be undone: ${last.id} came after ${action.id}`, { field: 'id' });
  }
}
