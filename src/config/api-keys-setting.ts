import { Problem } from './problem.js';

export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKeyEntry {
  readonly key: string;
  readonly roles: readonly Role[];
}

const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{8,256}$/;

/** `key:role,role;key:role` — problems name the entry by position, never by its key. */
export function parseApiKeys(raw: string): ApiKeyEntry[] | Problem {
  const entries: ApiKeyEntry[] = [];
  const parts = raw.split(';').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) return new Problem('must list at least one key as key:role,role');
  for (const [position, part] of parts.entries()) {
    const colon = part.lastIndexOf(':');
    const key = colon < 0 ? part : part.slice(0, colon);
    const roles = colon < 0 ? [] : part.slice(colon + 1).split(',').map((role) => role.trim());
    if (!KEY_PATTERN.test(key)) {
      return new Problem(`entry ${position + 1}: the key must be 8–256 characters of letters, digits and . _ ~ + / = -`);
    }
    const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
    if (roles.length === 0 || unknown.length > 0) {
      return new Problem(`entry ${position + 1}: roles must be a comma-separated list of ${ROLES.join(', ')}`);
    }
    entries.push({ key, roles: roles as Role[] });
  }
  return entries;
}
