import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobIndex } from '../ports/blob-index.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { ExportStore } from '../ports/export-store.js';
import type { WebhookStore } from '../ports/webhook-store.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderStore } from '../ports/order-store.js';
import { SegmentBlobStore } from './files/segment.blob-store.js';
import { PostgresExportStore } from './postgres/postgres.export-store.js';
import { PostgresWebhookStore } from './postgres/postgres.webhook-store.js';
import { PostgresBlobIndex } from './postgres/postgres.blob-index.js';
import { PostgresMetadataStore } from './postgres/postgres.metadata-store.js';
import { PostgresOrderStore } from './postgres/postgres.order-store.js';
import { SqliteDatabase } from './sqlite/sqlite.database.js';
import { SqliteExportStore } from './sqlite/sqlite.export-store.js';
import { SqliteWebhookStore } from './sqlite/sqlite.webhook-store.js';
import { SqliteBlobIndex } from './sqlite/sqlite.blob-index.js';
import { SqliteMetadataStore } from './sqlite/sqlite.metadata-store.js';
import { SqliteOrderStore } from './sqlite/sqlite.order-store.js';

/** A database holds the metadata, the orders and the blob index; the stores share its connection (or pool). */
export interface Database {
  readonly metadata: MetadataStore;
  readonly orders: OrderStore;
  readonly blobIndex: BlobIndex;
  readonly exports: ExportStore;
  readonly webhooks: WebhookStore;
}

function openSqlite(url: string): Database {
  const database = new SqliteDatabase(decodeURIComponent(new URL(url).pathname));
  const synced = () => database.syncCommitted();
  return { metadata: new SqliteMetadataStore(database), orders: new SqliteOrderStore(database), blobIndex: new SqliteBlobIndex(database.connection, synced),
    exports: new SqliteExportStore(database),
    webhooks: new SqliteWebhookStore(database),
  };
}

function openPostgres(url: string): Database {
  const metadata = new PostgresMetadataStore(url);
  return { metadata, orders: new PostgresOrderStore(metadata.pool), blobIndex: new PostgresBlobIndex(metadata.pool), exports: new PostgresExportStore(metadata.pool),
    webhooks: new PostgresWebhookStore(metadata.pool),
  };
}

/** Every database, by the scheme of SENSORY_DATABASE_URL: a new backend is its adapter and one row here. */
export const DATABASES: Readonly<Record<string, (url: string) => Database>> = {
  'sqlite:': openSqlite,
  'postgres:': openPostgres,
  'postgresql:': openPostgres,
};

/** What a blob store may need besides its URL: the database's blob index, and its settings. */
export interface BlobStoreContext {
  readonly blobIndex: BlobIndex;
  readonly segmentBytes: number;
  readonly log: (message: string) => void;
}

/**
 * Every blob store, by the scheme of SENSORY_BLOB_URL: a new backend is its adapter and one row
 * here. `file:` is the segment store: segments under `<path>/segments`, found through the blob
 * index of the database, and the one-file-per-original layout of 0.1.0 read in place at `<path>`.
 */
export const BLOB_STORES: Readonly<Record<string, (url: string, context: BlobStoreContext) => BlobStore>> = {
  'file:': (url, { blobIndex, segmentBytes, log }) => new SegmentBlobStore(join(fileURLToPath(url), 'segments'), fileURLToPath(url), blobIndex, { segmentBytes, log }),
};

/** The adapter `table` has for the scheme of `url`; config checked the scheme, so a miss is a bug. */
export function openByScheme<T, C extends unknown[] = []>(table: Readonly<Record<string, (url: string, ...context: C) => T>>, url: string, ...context: C): T {
  const open = table[new URL(url).protocol];
  if (!open) throw new Error(`no adapter for ${new URL(url).protocol} URLs`);
  return open(url, ...context);
}
