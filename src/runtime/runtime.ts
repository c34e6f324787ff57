import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileBlobStore } from '../adapters/files/file.blob-store.js';
import { FilePixelStore } from '../adapters/files/file.pixel-store.js';
import { SharpImaging } from '../adapters/imaging/sharp.imaging.js';
import { SqliteMetadataStore } from '../adapters/sqlite/sqlite.metadata-store.js';
import type { Config } from '../config/config.js';
import type { AppDeps } from '../http/app.js';
import { Metrics } from '../http/metrics.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import { ApiKeyring, loadOrCreateAdminKey } from '../services/api-keyring.js';
import { BatchService } from '../services/batch.service.js';
import { DatasetService } from '../services/dataset.service.js';
import { ImportService } from '../services/import.service.js';
import { IngestService } from '../services/ingest.service.js';
import { SampleService } from '../services/sample.service.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface Runtime {
  readonly deps: AppDeps;
  /** Where the generated admin key is kept, and the key itself when it was made by this start. */
  readonly keyFile?: { path: string; newKey?: string };
  /** Closes every adapter, each even if another fails; safe to call twice. */
  close(): Promise<void>;
}

function openMetadataStore(config: Config): MetadataStore {
  const url = config.databaseUrl;
  if (url === undefined) return new SqliteMetadataStore(join(config.dataDir, 'sensory.db'));
  if (url.startsWith('sqlite:')) return new SqliteMetadataStore(decodeURIComponent(new URL(url).pathname));
  throw new Error('SENSORY_DATABASE_URL: PostgreSQL is not supported by this version yet; leave it unset for SQLite in the data dir');
}

/** The composition root: configuration in, adapters and services wired together. */
export async function openRuntime(config: Config): Promise<Runtime> {
  await mkdir(config.dataDir, { recursive: true });
  const store = openMetadataStore(config);
  await store.migrate();
  const blobs = new FileBlobStore(join(config.dataDir, 'blobs'));
  const pixels = new FilePixelStore(join(config.dataDir, 'pixels'));
  const imaging = new SharpImaging();
  const generated = config.apiKeys ? undefined : await loadOrCreateAdminKey(config.dataDir);
  const keyring = new ApiKeyring(config.apiKeys ?? generated!.entries);

  const datasets = new DatasetService(store, pixels, blobs);
  const ingest = new IngestService(store, blobs, pixels, imaging, config.maxSampleBytes);
  const deps: AppDeps = {
    config,
    version: VERSION,
    keyring,
    datasets,
    samples: new SampleService(store, blobs),
    ingest,
    imports: new ImportService(store, ingest),
    batches: new BatchService(store, pixels, config.maxBatchSamples),
    metrics: new Metrics(),
    readiness: async () => ({
      database: await store.ping().then(() => 'ok', (error: Error) => `unavailable: ${error.message}`),
      dataDir: await blobs.ping().then(() => 'ok', (error: Error) => `unavailable: ${error.message}`),
      queue: 'ok',
    }),
  };

  let closing: Promise<void> | undefined;
  return {
    deps,
    keyFile: generated ? { path: generated.path, newKey: generated.newKey } : undefined,
    close: () => {
      closing ??= Promise.allSettled([pixels.close(), store.close()]).then(() => undefined);
      return closing;
    },
  };
}
