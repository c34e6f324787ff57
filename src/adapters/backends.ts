import { fileURLToPath } from 'node:url';
import type { BlobStore } from '../ports/blob-store.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { OrderStore } from '../ports/order-store.js';
import { FileBlobStore } from './files/file.blob-store.js';
import { PostgresMetadataStore } from './postgres/postgres.metadata-store.js';
import { PostgresOrderStore } from './postgres/postgres.order-store.js';
import { SqliteDatabase } from './sqlite/sqlite.database.js';
import { SqliteMetadataStore } from './sqlite/sqlite.metadata-store.js';
import { SqliteOrderStore } from './sqlite/sqlite.order-store.js';

/** A database holds the metadata and the orders; both stores share its connection (or pool). */
export interface Database {
  readonly metadata: MetadataStore;
  readonly orders: OrderStore;
}

function openSqlite(url: string): Database {
  const database = new SqliteDatabase(decodeURIComponent(new URL(url).pathname));
  return { metadata: new SqliteMetadataStore(database), orders: new SqliteOrderStore(database) };
}

function openPostgres(url: string): Database {
  const metadata = new PostgresMetadataStore(url);
  return { metadata, orders: new PostgresOrderStore(metadata.pool) };
}

/** Every database, by the scheme of SENSORY_DATABASE_URL: a new backend is its adapter and one row here. */
export const DATABASES: Readonly<Record<string, (url: string) => Database>> = {
  'sqlite:': openSqlite,
  'postgres:': openPostgres,
  'postgresql:': openPostgres,
};

/** Every blob store, by the scheme of SENSORY_BLOB_URL: a new backend is its adapter and one row here. */
export const BLOB_STORES: Readonly<Record<string, (url: string) => BlobStore>> = {
  'file:': (url) => new FileBlobStore(fileURLToPath(url)),
};

/** The adapter `table` has for the scheme of `url`; config checked the scheme, so a miss is a bug. */
export function openByScheme<T>(table: Readonly<Record<string, (url: string) => T>>, url: string): T {
  const open = table[new URL(url).protocol];
  if (!open) throw new Error(`no adapter for ${new URL(url).protocol} URLs`);
  return open(url);
}
