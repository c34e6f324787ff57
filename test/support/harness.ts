import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/app.js';
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js';

export const KEYS = {
  admin: 'admin-key-0123456789',
  read: 'read-key-0123456789',
  write: 'write-key-0123456789',
  readWrite: 'readwrite-key-0123456789',
} as const;

export interface TestApp {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly config: Config;
  readonly dataDir: string;
  /** Headers carrying a key of the given kind. */
  auth(kind?: keyof typeof KEYS): Record<string, string>;
  close(): Promise<void>;
}

/** A real app on a fresh temporary data dir (real SQLite, real files), driven by inject(). */
export async function startTestApp(env: Record<string, string> = {}, dataDir = mkdtempSync(join(tmpdir(), 'sensory-test-'))): Promise<TestApp> {
  const config = loadConfig({
    SENSORY_DATA_DIR: dataDir,
    SENSORY_API_KEYS: `${KEYS.admin}:admin;${KEYS.read}:read;${KEYS.write}:write;${KEYS.readWrite}:read,write`,
    ...env,
  });
  const runtime = await openRuntime(config);
  const app = await buildApp(runtime.deps);
  await app.ready();
  return {
    app,
    runtime,
    config,
    dataDir,
    auth: (kind = 'admin') => ({ 'api-access-key': KEYS[kind] }),
    close: async () => {
      await app.close();
      await runtime.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Deterministic pixels: every (x, y, c, seed) gives a different-looking value. */
export function patternPixels(width: number, height: number, channels: number, seed: number): Buffer {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        pixels[(y * width + x) * channels + c] = (x * 7 + y * 13 + c * 61 + seed * 31 + ((x * y + seed) % 17)) % 256;
      }
    }
  }
  return pixels;
}

export async function makePng(width: number, height: number, channels: 1 | 3 | 4, seed: number): Promise<Buffer> {
  return sharp(patternPixels(width, height, channels, seed), { raw: { width, height, channels } }).png().toBuffer();
}
