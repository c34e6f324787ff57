import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dependencyFault } from '../src/adapters/dependency-faults.js';

const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('dependency faults recognised by their shape', () => {
  it('a full disk or quota, from files, SQLite or PostgreSQL, is 507 SENSORY_ERR_DISK_FULL', () => {
    for (const error of [
      errno('ENOSPC', "ENOSPC: no space left on device, write '/data/blobs/tmp/x'"),
      errno('EDQUOT'),
      errno('SQLITE_FULL', 'database or disk is full'),
      errno('53100', 'could not extend file: No space left on device'),
      new Error('rename failed', { cause: errno('ENOSPC') }),
    ]) {
      const fault = dependencyFault(error);
      assert.equal(fault?.code, 'SENSORY_ERR_DISK_FULL', error.message);
      assert.equal(fault?.status, 507);
      assert.doesNotMatch(fault!.message, /\/data|ENOSPC/, 'no path or errno in the answer');
    }
  });

  it('a lost or refused database connection is 503 SENSORY_ERR_DATABASE_UNAVAILABLE', () => {
    for (const error of [
      new Error('Connection terminated unexpectedly'),
      errno('57P01', 'terminating connection due to administrator command'),
      errno('57P03', 'the database system is starting up'),
      errno('08006'),
      errno('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')]),
      new Error('timeout exceeded when trying to connect'),
    ]) {
      const fault = dependencyFault(error);
      assert.equal(fault?.code, 'SENSORY_ERR_DATABASE_UNAVAILABLE', error.message);
      assert.doesNotMatch(fault!.message, /127\.0\.0\.1|ECONN/);
    }
  });

  it('anything else is not a dependency fault (it stays a 500 with the request id)', () => {
    for (const error of [new Error('boom'), errno('23505', 'duplicate key'), errno('ENOENT'), errno('SQLITE_CONSTRAINT'), 'text', null]) {
      assert.equal(dependencyFault(error), undefined, String(error));
    }
  });
});
