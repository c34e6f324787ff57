import { Problem } from './problem.js';

export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKeyEntry {
  /** What logs, the audit log and GET /v1/me call the key (`name@key:roles`); "key N" when not given. */
  readonly name?: string;
  readonly key: string;
  readonly roles: readonly Role[];
}

const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{8,256}$/;
const KEY_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * `key:role,role;key:role`, each key optionally named `name@key:role` (a key never holds `@`) —
 * problems name the entry by position, never by its key.
 */
export function parseApiKeys(raw: string): ApiKeyEntry[] | Problem {
  const entries: ApiKeyEntry[] = [];
  const parts = raw.split(';').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) return new Problem('must list at least one key as key:role,role');
  for (const [position, part] of parts.entries()) {
    const colon = part.lastIndexOf(':');
    const named = colon < 0 ? part : part.slice(0, colon);
    const at = named.indexOf('@');
    const name = at < 0 ? undefined : named.slice(0, at);
    const key = at < 0 ? named : named.slice(at + 1);
    if (name !== undefined && !KEY_NAME_PATTERN.test(name)) {
      return new Problem(`entry ${position + 1}: a key's name (before @) must be 1–64 characters of letters, digits and . _ -`);
    }
    const roles = colon < 0 ? [] : part.slice(colon + 1).split(',').map((role) => role.trim());
    if (!KEY_PATTERN.test(key)) {
      return new Problem(`entry ${position + 1}: the key must be 8–256 characters of letters, digits and . _ ~ + / = -`);
    }
    const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
    if (roles.length === 0 || unknown.length > 0) {
      return new Problem(`entry ${position + 1}: roles must be a comma-separated list of ${ROLES.join(', ')}`);
    }
    entries.push({ ...(name ? { name } : {}), key, roles: roles as Role[] });
  }
  return entries;
}
