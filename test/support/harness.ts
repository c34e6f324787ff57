import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/app.js';
import { openServeRuntime, type ServeRuntime } from '../../src/runtime/serve.runtime.js';

export const KEYS = {
  admin: 'admin-key-0123456789',
  read: 'read-key-0123456789',
  write: 'write-key-0123456789',
  readWrite: 'readwrite-key-0123456789',
} as const;

export interface TestApp {
  readonly app: FastifyInstance;
  readonly runtime: ServeRuntime;
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
  const runtime = await openServeRuntime(config);
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

// ---------------------------------------------------------------------------------------------
// Requests and replies through inject()

/** What the assertions below read of an inject() reply. */
export interface InjectReply {
  readonly statusCode: number;
  readonly headers: Record<string, unknown>;
  readonly body: string;
}

/** A sample as the API returns it (the fields the tests read). */
export interface SampleView {
  id: number;
  category: string;
  categoryIndex: number;
  sha256: string;
  revision: number;
  split: 'train' | 'test';
}

/** PUT /v1/datasets/{name} with the admin key; asserts 201. */
export async function createDataset(t: TestApp, name: string, spec: Record<string, unknown>): Promise<void> {
  const res = await t.app.inject({ method: 'PUT', url: `/v1/datasets/${name}`, headers: t.auth('admin'), payload: spec });
  assert.equal(res.statusCode, 201, res.body);
}

/** POST /v1/datasets/{dataset}/samples with `png` as base64 JSON; asserts 201 and returns the sample. */
export async function addSample(t: TestApp, dataset: string, category: string, png: Buffer, kind: keyof typeof KEYS = 'admin'): Promise<SampleView> {
  const res = await t.app.inject({
    method: 'POST',
    url: `/v1/datasets/${dataset}/samples`,
    headers: t.auth(kind),
    payload: { category, data: png.toString('base64') },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as SampleView;
}

/**
 * Creates dataset `name` of `shape` and adds `count` PNGs of that size (seeds firstSeed,
 * firstSeed + 1, …), their categories cycling through `categories`. Returns the samples in the
 * order added and each sample id's source pixels.
 */
export async function seedDataset(
  t: TestApp,
  name: string,
  shape: { width: number; height: number; channels: 1 | 3; testPercent?: number },
  count: number,
  categories: readonly string[],
  firstSeed = 1,
): Promise<{ samples: SampleView[]; pixels: Map<number, Buffer> }> {
  await createDataset(t, name, shape);
  const samples: SampleView[] = [];
  const pixels = new Map<number, Buffer>();
  for (let i = 0; i < count; i++) {
    const seed = firstSeed + i;
    const sample = await addSample(t, name, categories[i % categories.length], await makePng(shape.width, shape.height, shape.channels, seed));
    samples.push(sample);
    pixels.set(sample.id, patternPixels(shape.width, shape.height, shape.channels, seed));
  }
  return { samples, pixels };
}

/** assertError, returning the message; without `code`, any code will do. */
export function expectError(res: InjectReply, status: number, code?: string): string {
  return assertError(res, status, code ?? []).error.message;
}

/**
 * An error reply of `status`, JSON, whose code is `code` (or one of `code`; any code when the list
 * is empty) and whose message is not empty; returns the body.
 */
export function assertError(res: InjectReply, status: number, code: string | readonly string[]): { error: { code: string; message: string } } {
  const codes = typeof code === 'string' ? [code] : code;
  assert.equal(res.statusCode, status, `expected ${status} ${codes.join('|')}, got ${res.statusCode}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  assert.equal(typeof body.error, 'object', res.body);
  if (codes.length > 0) assert.ok(codes.includes(body.error.code), `expected ${codes.join('|')}, got ${res.body}`);
  assert.equal(typeof body.error.message, 'string', res.body);
  assert.ok(body.error.message.length > 0);
  return body;
}
