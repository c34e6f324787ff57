import type { BenchClient, Reply, RequestOptions } from './http-client.js';
import { CHANNELS, SIDE } from './images.js';
import { runPool } from './pool.js';

/**
 * The loads several figures put on a running service: a dataset, uploads as JSON base64 from
 * concurrent clients, and small batches. A service is a port and the admin key.
 */
export interface Service {
  readonly port: number;
  readonly key: string;
}

/** A request to `service` with its key, and `body` (when given) as JSON. */
export function apiRequest(service: Service, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): RequestOptions {
  return {
    port: service.port,
    method,
    path,
    headers: { 'api-access-key': service.key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  };
}

/** apiRequest, with the answer's body kept (small answers only). */
const json = (service: Service, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): RequestOptions => ({
  ...apiRequest(service, method, path, body, headers),
  keepBody: true,
});

export async function createDataset(client: BenchClient, service: Service, dataset: string): Promise<void> {
  await client.expect(201, json(service, 'PUT', `/v1/datasets/${dataset}`, { width: SIDE, height: SIDE, channels: CHANNELS }));
}

export async function sampleCount(client: BenchClient, service: Service, dataset: string): Promise<number> {
  const reply = await client.expect(200, json(service, 'GET', `/v1/datasets/${dataset}`));
  return (JSON.parse(reply.body!.toString()) as { sampleCount: number }).sampleCount;
}

/** The upload bodies, built before anything is timed: `{category, data: <base64>}`. */
export function jsonBodies(pngs: readonly Buffer[], categories: readonly string[]): Buffer[] {
  return pngs.map((png, i) => Buffer.from(JSON.stringify({ category: categories[i % categories.length], data: png.toString('base64') })));
}

/**
 * Posts `bodies` to `dataset` from `concurrency` clients, upload i to services[i % n] (round
 * robin), until all are stored or `seconds` have passed. Every upload must answer 201, and the
 * dataset must then hold exactly as many samples as were answered.
 */
export async function ingest(
  client: BenchClient,
  services: readonly Service[],
  dataset: string,
  bodies: readonly Buffer[],
  concurrency: number,
  seconds: number,
): Promise<{ done: number; seconds: number }> {
  const path = `/v1/datasets/${dataset}/samples`;
  const started = performance.now();
  const done = await runPool(
    bodies,
    concurrency,
    async (body, i) => {
      const service = services[i % services.length];
      await client.expect(201, { port: service.port, method: 'POST', path, headers: { 'api-access-key': service.key, 'content-type': 'application/json' }, body });
    },
    started + seconds * 1000,
  );
  const elapsed = (performance.now() - started) / 1000;
  const count = await sampleCount(client, services[0], dataset);
  if (count !== done) throw new Error(`dataset ${dataset} has ${count} samples, ${done} uploads were answered 201`);
  return { done, seconds: elapsed };
}

/** One sample as a raw image/png body with ?category=; it must be answered 201. */
export async function uploadPng(client: BenchClient, service: Service, dataset: string, png: Buffer, category: string): Promise<void> {
  await client.expect(201, {
    port: service.port,
    method: 'POST',
    path: `/v1/datasets/${dataset}/samples?category=${category}`,
    headers: { 'api-access-key': service.key, 'content-type': 'image/png' },
    body: png,
  });
}

/** Uploads `pngs` as raw image/png bodies (8 at a time): set-up, not a figure. */
export async function uploadRaw(client: BenchClient, service: Service, dataset: string, pngs: readonly Buffer[], categories: readonly string[]): Promise<void> {
  await runPool(pngs, 8, (png, i) => uploadPng(client, service, dataset, png, categories[i % categories.length]));
  const count = await sampleCount(client, service, dataset);
  if (count !== pngs.length) throw new Error(`dataset ${dataset} has ${count} samples, expected ${pngs.length}`);
}

/** One small batch of `size` as safetensors (the body is counted, not kept). */
export function safetensorsBatch(client: BenchClient, service: Service, dataset: string, size: number, seed: number, keepBody = false): Promise<Reply> {
  return client.expect(200, { ...json(service, 'POST', `/v1/datasets/${dataset}/batches`, { size, seed }, { accept: 'application/x-safetensors' }), keepBody });
}
