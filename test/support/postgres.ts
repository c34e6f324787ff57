import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import pg from 'pg';
import { inCi } from './broker.js';

/**
 * The PostgreSQL rule for tests: SENSORY_TEST_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test). Under CI (CI=true) the PostgreSQL tests always run,
 * so a server that is down makes them fail; elsewhere they are skipped with a message saying why.
 * Every test file works in schemas of its own, with names unique to the run, dropped after.
 */
export const PG_URL = process.env.SENSORY_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Where the URL points, without its credentials (for messages). */
export const PG_ADDRESS = (() => {
  const url = new URL(PG_URL);
  return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
})();

let probe: Promise<boolean> | undefined;

/** True when a connection to PG_URL can be opened; checked once per process. */
export function postgresAvailable(): Promise<boolean> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return probe;
}

/**
 * The `skip` option for a suite that needs PostgreSQL: false (run it) when the server is up or
 * when under CI (it must run there, and fail if the server is down); otherwise a reason to skip.
 */
export async function postgresSkip(): Promise<false | string> {
  if (await postgresAvailable()) return false;
  if (inCi()) return false;
  return `PostgreSQL is unreachable at ${PG_ADDRESS} (SENSORY_TEST_DATABASE_URL); skipped outside CI — with CI=true it runs and fails`;
}

/**
 * Under CI with the server down, adds a failing test that says so (the suites themselves fail
 * too, as they run). Does nothing otherwise. Await it at the top level of the test file.
 */
export async function requirePostgresInCi(): Promise<void> {
  if (!inCi() || (await postgresAvailable())) return;
  it(`PostgreSQL is reachable at ${PG_ADDRESS}`, () =>
    assert.fail(`CI is set but PostgreSQL is unreachable at ${PG_ADDRESS}: the PostgreSQL tests must run under CI`),
  );
}

/** Runs one statement on PG_URL outside any store, on a connection of its own; returns the rows. */
export async function postgresQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A schema name unique to this run: `sensory_test_<tag>_<random>`. */
export function uniqueSchema(tag: string): string {
  return `sensory_test_${tag}_${randomBytes(6).toString('hex')}`;
}

const schemas = new Map<string, Promise<void>>();

/**
 * Creates `schema` on first use (later calls wait for that one) and returns a URL whose
 * connections work in it (their search_path). dropSchemas() removes it.
 */
export async function useSchema(schema: string): Promise<string> {
  let created = schemas.get(schema);
  if (!created) {
    created = postgresQuery(`CREATE SCHEMA IF NOT EXISTS ${schema}`).then(() => undefined);
    schemas.set(schema, created);
  }
  await created;
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Drops every schema useSchema() created (for an after() hook). */
export async function dropSchemas(): Promise<void> {
  for (const [schema, created] of schemas) {
    schemas.delete(schema);
    if (await created.then(() => true, () => false)) await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
}

/**
 * The backends a contract suite runs on: those SENSORY_TEST_BACKENDS names (comma-separated,
 * e.g. "sqlite" or "sqlite,postgres"), or all. A name that is not a backend adds a failing test.
 */
export function selectBackends<B extends { readonly name: string }>(all: readonly B[]): B[] {
  const wanted = process.env.SENSORY_TEST_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of wanted ?? []) {
    if (!all.some((b) => b.name === name)) {
      it(`SENSORY_TEST_BACKENDS names a known backend: ${name}`, () => assert.fail(`no backend '${name}' in BACKENDS`));
    }
  }
  return wanted ? all.filter((b) => wanted.includes(b.name)) : [...all];
}
