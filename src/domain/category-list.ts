import { SensoryError } from './errors.js';
import { categoryName, shownValue } from './names.js';

/** Names a dataset may declare at once. */
export const MAX_DECLARED_CATEGORIES = 10_000;

/**
 * A declared class list, checked: an array of 1 … MAX_DECLARED_CATEGORIES category names (in NFC),
 * none twice. Its order is the order of the indices.
 */
export function declaredCategoryList(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_DECLARED_CATEGORIES) {
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `categories must be an array of 1 to ${MAX_DECLARED_CATEGORIES} category names; got ${shownValue(value)}`, { field: 'categories' });
  }
  const seen = new Map<string, number>();
  return value.map((item, i) => {
    const name = categoryName(`categories[${i}]`, item);
    const first = seen.get(name);
    if (first !== undefined) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `categories[${i}] repeats categories[${first}] (${JSON.stringify(name)}): each name may be declared once`, { field: `categories[${i}]` });
    }
    seen.set(name, i);
    return name;
  });
}

/**
 * What a declared list adds to a dataset's categories (by index): the list must begin with every
 * category the dataset has, in index order, because indices never move; the names after them are
 * appended. Anything else is SENSORY_ERR_CATEGORY_LIST_CONFLICT.
 */
export function categoriesToAppend(datasetName: string, existing: readonly string[], requested: readonly string[]): string[] {
  const mismatch = existing.findIndex((name, i) => requested[i] !== name);
  if (mismatch >= 0 || requested.length < existing.length) {
    const at = mismatch >= 0 ? mismatch : requested.length;
    const shownExisting = existing.length > 8 ? `${existing.slice(0, 8).map((n) => JSON.stringify(n)).join(', ')}, …` : existing.map((n) => JSON.stringify(n)).join(', ');
    throw new SensoryError(
      'SENSORY_ERR_CATEGORY_LIST_CONFLICT',
      `categories must begin with the ${existing.length} categories dataset ${datasetName} has, in index order (${shownExisting}); ` +
        `index ${at} is ${JSON.stringify(existing[at])}, got ${requested[at] === undefined ? 'nothing' : JSON.stringify(requested[at])}. Indices never move: append new names at the end`,
      { field: `categories[${at}]` },
    );
  }
  return requested.slice(existing.length);
}

/** The refusal of an upload or relabel into a category a dataset with a declared list does not have. */
export function undeclaredCategory(datasetName: string, category: string): SensoryError {
  return new SensoryError(
    'SENSORY_ERR_UNDECLARED_CATEGORY',
    `category ${JSON.stringify(category)} is not declared by dataset ${datasetName}: send one of its categories, or append it with PUT /v1/datasets/${datasetName} {…, categories: [the list, then ${JSON.stringify(category)}]}`,
    { field: 'category' },
  );
}
