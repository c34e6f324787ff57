import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { API_KEY_FILE } from '../services/api-keyring.js';

/**
 * The API key for a command: --key, then SENSORY_API_KEY, then the key file that `sensory serve`
 * generated in the data dir.
 */
export async function resolveKey(flag: string | undefined, env: NodeJS.ProcessEnv, dataDir: string): Promise<string> {
  if (flag) return flag;
  if (env.SENSORY_API_KEY) return env.SENSORY_API_KEY;
  try {
    return (await readFile(join(dataDir, API_KEY_FILE), 'utf8')).trim();
  } catch {
    throw new Error(`no API key: pass --key, set SENSORY_API_KEY, or run where ${join(dataDir, API_KEY_FILE)} exists`);
  }
}
