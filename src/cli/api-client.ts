import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { API_KEY_FILE } from '../services/api-keyring.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  readonly url: string;
  readonly key: string;
}

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

/** A thin client of the modern API for the command line. */
export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  async request(method: string, path: string, body?: { json?: unknown; bytes?: Buffer; type?: string }): Promise<{ status: number; body: Buffer; type: string }> {
    const headers: Record<string, string> = { 'API-ACCESS-KEY': this.options.key };
    let payload: Blob | string | undefined;
    if (body?.json !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body?.bytes) {
      headers['content-type'] = body.type ?? 'application/octet-stream';
      payload = new Blob([new Uint8Array(body.bytes)]);
    }
    const response = await fetch(new URL(path, this.options.url), { method, headers, body: payload });
    const bytes = Buffer.from(await response.arrayBuffer());
    const type = response.headers.get('content-type') ?? '';
    if (response.status >= 400) {
      let code = 'SENSORY_ERR_UNKNOWN';
      let message = bytes.toString('utf8').slice(0, 300);
      try {
        const parsed = JSON.parse(bytes.toString('utf8'));
        code = parsed.error.code;
        message = parsed.error.message;
      } catch {
        // not our error shape: keep the raw text
      }
      throw new ApiError(response.status, code, message);
    }
    return { status: response.status, body: bytes, type };
  }

  async json<T>(method: string, path: string, json?: unknown): Promise<{ status: number; value: T }> {
    const response = await this.request(method, path, json === undefined ? undefined : { json });
    return { status: response.status, value: JSON.parse(response.body.toString('utf8')) as T };
  }
}
