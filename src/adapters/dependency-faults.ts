import { SensoryError } from '../domain/errors.js';

/**
 * Errors that say a dependency is away or full rather than that the code is wrong, recognised by
 * their shape wherever they were raised (files, SQLite, PostgreSQL): the error edge maps them, so
 * a new storage adapter gets the right answer without catching anything itself.
 */

/** errno codes of a full disk or an exhausted quota (files, and SQLite's own writes). */
const DISK_FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
/** SQLite's full-database code; PostgreSQL's disk_full and out-of-memory-for-files SQLSTATEs. */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', '53100']);

/** PostgreSQL SQLSTATEs of a lost or refused connection (class 08, shutdowns, too many clients). */
function isConnectionSqlState(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code);
}

/** What node-postgres says when the socket went away under it. */
const LOST_CONNECTION_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
];

/** Network errnos: the only outgoing connections a request makes are the database's. */
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

interface ErrorShape {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
  readonly errors?: unknown;
}

/** The error, its causes and (for an AggregateError, as a refused dual-stack connect gives) its parts. */
function* chain(error: unknown, depth = 0): Generator<ErrorShape> {
  if (depth > 5 || typeof error !== 'object' || error === null) return;
  const shape = error as ErrorShape;
  yield shape;
  yield* chain(shape.cause, depth + 1);
  if (Array.isArray(shape.errors)) for (const part of shape.errors) yield* chain(part, depth + 1);
}

export function isDiskFull(error: unknown): boolean {
  for (const shape of chain(error)) {
    const code = typeof shape.code === 'string' ? shape.code : '';
    if (DISK_FULL_ERRNOS.has(code) || DISK_FULL_CODES.has(code)) return true;
  }
  return false;
}

export function isDatabaseConnectionLost(error: unknown): boolean {
  for (const shape of chain(error)) {
    const code = typeof shape.code === 'string' ? shape.code : '';
    if (NETWORK_ERRNOS.has(code) || isConnectionSqlState(code)) return true;
    const message = typeof shape.message === 'string' ? shape.message : '';
    if (LOST_CONNECTION_MESSAGES.some((text) => message.startsWith(text))) return true;
  }
  return false;
}

/**
 * The SensoryError a dependency fault stands for, or undefined for any other error. The message
 * never carries the underlying text (addresses, paths): that goes to the log.
 */
export function dependencyFault(error: unknown): SensoryError | undefined {
  if (isDiskFull(error)) {
    return new SensoryError('SENSORY_ERR_DISK_FULL', 'the disk is full: nothing of this request was kept; retry once space is freed');
  }
  if (isDatabaseConnectionLost(error)) {
    return new SensoryError('SENSORY_ERR_DATABASE_UNAVAILABLE', 'the database is unavailable: nothing of this request was acknowledged; retry shortly');
  }
  return undefined;
}
