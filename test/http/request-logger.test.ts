/**
 * request.log made on its first use (http/request-logger.ts): it writes what the child logger
 * Fastify would have made writes, at the parent's level, and makes nothing until used.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { lazyChildLogger } from '../../src/http/request-logger.js';

function sinkLogger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
  return { logger: pino({ level, base: undefined, timestamp: false }, sink), lines };
}

describe('the request logger made on first use', () => {
  it('writes the lines an eager child would, with the request id, at the parent level', () => {
    const lazy = sinkLogger('info');
    const eager = sinkLogger('info');
    const log = lazyChildLogger(lazy.logger, { reqId: 'r-1' }, {});
    const child = eager.logger.child({ reqId: 'r-1' });
    assert.equal(log.level, 'info');
    for (const target of [log, child]) {
      target.debug('not written');
      target.info({ code: 'X' }, 'details');
      target.warn('a warning');
      target.error({ err: new Error('boom') }, 'failed');
      target.child({ part: 'p' }).info('from a child');
    }
    assert.deepEqual(
      lazy.lines.map(({ err, ...line }) => ({ ...line, hasErr: err !== undefined })),
      eager.lines.map(({ err, ...line }) => ({ ...line, hasErr: err !== undefined })),
    );
    assert.deepEqual(
      lazy.lines.map((line) => [line.level, line.reqId, line.msg]),
      [
        [30, 'r-1', 'details'],
        [40, 'r-1', 'a warning'],
        [50, 'r-1', 'failed'],
        [30, 'r-1', 'from a child'],
      ],
    );
  });

  it('makes no child logger until something logs; a level set on it is its own', () => {
    const { logger, lines } = sinkLogger('warn');
    let children = 0;
    const counting = Object.assign(Object.create(logger), { child: (...args: Parameters<typeof logger.child>) => (children++, logger.child(...args)) });
    const log = lazyChildLogger(counting, { reqId: 'r-2' }, {});
    assert.equal(log.level, 'warn');
    assert.equal(children, 0);
    log.info('below the level');
    assert.equal(children, 1);
    log.level = 'info';
    log.info('now written');
    assert.equal(logger.level, 'warn', 'the parent keeps its level');
    assert.deepEqual(
      lines.map((line) => [line.reqId, line.msg]),
      [['r-2', 'now written']],
    );
  });
});
