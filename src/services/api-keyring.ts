import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiKeyEntry, Role } from '../config/api-keys-setting.js';

export interface Principal {
  /**
   * The key's name (`name@key` in SENSORY_API_KEYS), or "key 1", "key 2", … in configuration
   * order: what logs, the audit log and GET /v1/me name instead of the key.
   */
  readonly label: string;
  readonly roles: ReadonlySet<Role>;
  /** A stable id of the key (from its digest, never the key itself): who placed an order. */
  readonly owner: string;
}

interface StoredKey extends Principal {
  readonly digest: Buffer;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every configured key with
 * no early exit, so neither a key's length nor its position leaks through timing.
 */
export class ApiKeyring {
  private readonly keys: readonly StoredKey[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.keys = entries.map((entry, position) => {
      const keyDigest = digest(entry.key);
      return { label: entry.name ?? `key ${position + 1}`, roles: new Set(entry.roles), digest: keyDigest, owner: ownerOf(keyDigest) };
    });
  }

  authenticate(presented: string | undefined): Principal | undefined {
    if (presented === undefined || presented === '') return undefined;
    const candidate = digest(presented);
    let found: Principal | undefined;
    for (const key of this.keys) {
      if (timingSafeEqual(candidate, key.digest) && found === undefined) found = key;
    }
    return found;
  }
}

/** The owner id of a key's digest: a digest of the digest under its own label, so it says nothing of the key. */
function ownerOf(keyDigest: Buffer): string {
  return createHash('sha256').update('sensory order owner\0').update(keyDigest).digest('hex').slice(0, 32);
}

/** `admin` may do everything; `read` and `write` only what they name. */
export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.has('admin') || principal.roles.has(role);
}

export const API_KEY_FILE = 'api-key';

export interface GeneratedKey {
  readonly path: string;
  /** Set only when the key was created by this call: printed once, never again. */
  readonly newKey?: string;
  readonly entries: ApiKeyEntry[];
}

/** With no keys configured: the admin key kept in `<dataDir>/api-key` (mode 0600), made at first start. */
export async function loadOrCreateAdminKey(dataDir: string): Promise<GeneratedKey> {
  const path = join(dataDir, API_KEY_FILE);
  try {
    const key = (await readFile(path, 'utf8')).trim();
    if (key !== '') return { path, entries: [{ key, roles: ['admin'] }] };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32).toString('base64url');
  try {
    await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another replica on the same data dir made it first: use that one.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateAdminKey(dataDir);
    throw error;
  }
  await chmod(path, 0o600);
  return { path, newKey: key, entries: [{ key, roles: ['admin'] }] };
}
