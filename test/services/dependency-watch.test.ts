/**
 * DependencyWatch on its own: only transitions are logged (one warning when a dependency stops
 * answering, one info line with the outage's length when it answers again), each dependency on
 * its own, and a round still running is not doubled.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyWatch } from '../../src/services/dependency-watch.js';

function recorder() {
  const lines: { level: 'warn' | 'info'; fields: any; message: string }[] = [];
  return {
    lines,
    log: {
      warn: (fields: object, message: string) => lines.push({ level: 'warn', fields, message }),
      info: (fields: object, message: string) => lines.push({ level: 'info', fields, message }),
    },
  };
}

describe('DependencyWatch', () => {
  it('logs a warning when a dependency stops answering and an info line when it is back, once each', async () => {
    let now = 1_000;
    const state = { database: true, broker: true };
    const ping = (name: keyof typeof state) => async () => {
      if (!state[name]) throw new Error(`${name} refused the connection`);
    };
    const { lines, log } = recorder();
    const watch = new DependencyWatch([{ name: 'database', ping: ping('database') }, { name: 'broker', ping: ping('broker') }], log, 2000, () => now);

    await watch.check();
    assert.equal(lines.length, 0, 'nothing while everything answers');

    state.database = false;
    for (let i = 0; i < 3; i++) {
      now += 2000;
      await watch.check();
    }
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0], { level: 'warn', fields: { dependency: 'database', reason: 'database refused the connection' }, message: 'database connection lost: database refused the connection' });

    state.broker = false;
    now += 2000;
    await watch.check();
    state.database = true;
    now += 2500;
    await watch.check();
    await watch.check();
    assert.deepEqual(
      lines.slice(1).map((line) => [line.level, line.message]),
      [
        ['warn', 'broker connection lost: broker refused the connection'],
        ['info', 'database connection is back after 8.5 s'],
      ],
    );
    assert.equal(lines[2].fields.downSeconds, 8.5);
    watch.stop();
  });

  it('waits for a round still running instead of starting another', async () => {
    let pings = 0;
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const watch = new DependencyWatch([{ name: 'database', ping: () => (pings++, slow) }], recorder().log);
    const first = watch.check();
    const second = watch.check();
    release();
    await Promise.all([first, second]);
    assert.equal(pings, 1);
  });
});
