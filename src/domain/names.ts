import { SensoryError } from './errors.js';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_PATTERN_SOURCE = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
/** The dataset name rule in words, for messages. */
export const NAME_RULE = '1–64 characters of A–Z a–z 0–9 . _ -, starting with a letter or digit';

/** Checks a dataset or category name; the only way a name reaches a path or a query. */
export function assertValidName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new SensoryError(
      'SENSORY_ERR_INVALID_NAME',
      `${field} must be ${NAME_RULE}; got ${shownValue(value)}`,
      { field },
    );
  }
  return value;
}

/** The dataset the legacy store endpoint writes into: `<name>_<width>x<height>`. */
export function legacyDatasetName(name: string, width: number, height: number): string {
  return `${name}_${width}x${height}`;
}

/** The inverse of legacyDatasetName: `mnist_28x28` → {name: 'mnist', width: 28, height: 28}. */
export function parseLegacyDatasetName(folder: string): { name: string; width: number; height: number } | undefined {
  const match = /^(.+)_(\d{1,4})x(\d{1,4})$/.exec(folder);
  if (!match || !NAME_PATTERN.test(folder)) return undefined;
  const width = Number(match[2]);
  const height = Number(match[3]);
  return width > 0 && height > 0 ? { name: match[1], width, height } : undefined;
}

/** The dataset a new name would clash with, differing only in letter case. */
export function caseConflict(requested: string, existing: string): SensoryError {
  return new SensoryError(
    'SENSORY_ERR_DATASET_NAME_CONFLICT',
    `Dataset '${existing}' exists; names differing only in letter case cannot coexist (asked '${requested}').`,
    { existing },
  );
}

/** The value as sent, quoted and cut short. */
export function shownValue(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
