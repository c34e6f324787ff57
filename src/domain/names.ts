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

/** Category names: at most this many characters (code points)… */
export const MAX_CATEGORY_CHARS = 64;
/** …and this many bytes of UTF-8, so that a name is always one file name on any file system. */
const MAX_CATEGORY_BYTES = 255;
/** Characters no category name may hold: path separators, and what some file systems refuse. */
const FORBIDDEN_IN_CATEGORY = /[/\\:*?"<>|]/u;

/** The category name rule in words, for messages and docs. */
export const CATEGORY_RULE =
  '1–64 characters starting with a letter or digit: letters and digits of any script, spaces and punctuation except / \\ : * ? " < > |, with no leading or trailing space and no control characters';

/** Why a category name is refused, or undefined when it is fine (as given; see categoryName for its NFC form). */
function categoryProblem(value: string): string | undefined {
  if (value === '') return 'is empty';
  if ([...value].length > MAX_CATEGORY_CHARS) return `has ${[...value].length} characters, more than ${MAX_CATEGORY_CHARS}`;
  if (Buffer.byteLength(value, 'utf8') > MAX_CATEGORY_BYTES) return `has more than ${MAX_CATEGORY_BYTES} bytes in UTF-8`;
  if (value !== value.trim()) return 'starts or ends with a space';
  if (/\p{C}/u.test(value)) return 'holds a control or invisible character';
  if (/[^\S ]/u.test(value)) return 'holds a space other than an ordinary one (a tab, a line break, a no-break space)';
  const forbidden = FORBIDDEN_IN_CATEGORY.exec(value);
  if (forbidden) return `holds ${JSON.stringify(forbidden[0])}`;
  if (!/^[\p{L}\p{N}]/u.test(value)) return 'does not start with a letter or digit';
  return undefined;
}

/**
 * Checks a category name and returns it in Unicode normal form C, so that "Ähre" typed on one
 * machine and read from a folder name on another is one category. Names are path-safe by this
 * rule: no separator, no `.` or `..`, no leading dot, one file name long at most.
 */
export function categoryName(field: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new SensoryError('SENSORY_ERR_INVALID_NAME', `${field} must be a string of ${CATEGORY_RULE}; got ${shownValue(value)}`, { field });
  }
  const name = value.normalize('NFC');
  const problem = categoryProblem(name);
  if (problem) throw new SensoryError('SENSORY_ERR_INVALID_NAME', `${field} ${problem}: it must be ${CATEGORY_RULE}; got ${shownValue(value)}`, { field });
  return name;
}

/** Whether a category name is acceptable as it is (already in NFC). */
export function isCategoryName(value: string): boolean {
  return value === value.normalize('NFC') && categoryProblem(value) === undefined;
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
