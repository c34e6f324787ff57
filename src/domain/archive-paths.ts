import { SensoryError } from './errors.js';
import { CATEGORY_RULE, isCategoryName } from './names.js';

/** Where a member of an uploaded archive goes: its category (the folder) and its file name. */
export interface MemberPlace {
  readonly category: string;
  readonly file: string;
}

/**
 * The place of an archive member laid out `<category>/<file>` (a leading `./` allowed), or the
 * reason it is refused: an absolute path, a `.` or `..` component, another depth, or a folder
 * that is not a category name. Nothing of the path ever reaches the file system.
 */
export function memberPlace(path: string): MemberPlace | SensoryError {
  if (path.startsWith('/')) return new SensoryError('SENSORY_ERR_BAD_REQUEST', `${describe(path)} is an absolute path; members must be <category>/<file>`);
  const parts = path.replace(/^(\.\/)+/, '').split('/');
  if (parts.some((part) => part === '..' || part === '.')) {
    return new SensoryError('SENSORY_ERR_BAD_REQUEST', `${describe(path)} has a . or .. component; members must be <category>/<file>`);
  }
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    return new SensoryError('SENSORY_ERR_BAD_REQUEST', `${describe(path)} is not <category>/<file>`);
  }
  const category = parts[0].normalize('NFC');
  if (!isCategoryName(category)) {
    return new SensoryError('SENSORY_ERR_INVALID_NAME', `the folder of ${describe(path)} is not a category name (${CATEGORY_RULE})`, { field: 'category' });
  }
  return { category, file: parts[1] };
}

function describe(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 117)}...` : path);
}
