import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../src/adapters/clock/system.clock.js';
import { SensoryError } from '../../src/domain/errors.js';
import { OrderSignals } from '../../src/services/order-signals.js';

/** What waiting polls wait on: a signal of their stream or of their whole order, a deadline, a bound. */
describe('OrderSignals', () => {
  const limits = { recheckMs: 60_000, maxWaiting: 3, maxWaitingPerKey: 2 };
  const ref = (stream: number) => ({ orderId: 'o1', generation: 0, stream });
  /** How long `wait` took, in ms. */
  const timed = async (wait: Promise<void>) => {
    const started = Date.now();
    await wait;
    return Date.now() - started;
  };

  it('a result of one stream wakes the polls of that stream only; an order-wide signal wakes all', async () => {
    const signals = new OrderSignals(systemClock, limits);
    const zero = signals.watch(ref(0), 'k1');
    const one = signals.watch(ref(1), 'k2');
    const waits = [timed(zero.wait(5000)), timed(one.wait(400))];
    await new Promise((resolve) => setTimeout(resolve, 50));
    signals.signal('o1', ref(0));
    signals.signal('other-order');
    const [zeroMs, oneMs] = await Promise.all(waits);
    assert.ok(zeroMs < 1000, `stream 0 woke after ${zeroMs} ms`);
    assert.ok(oneMs >= 350, `stream 1 woke after ${oneMs} ms: not by stream 0's result`);
    const again = timed(one.wait(5000));
    signals.signal('o1');
    assert.ok((await again) < 1000, 'an order-wide signal wakes every stream');
    zero.close();
    one.close();
  });

  it('a signal between arm() and wait() is not missed; arm() forgets earlier ones', async () => {
    const signals = new OrderSignals(systemClock, limits);
    const watch = signals.watch(ref(0), 'k1');
    watch.arm();
    signals.signal('o1', ref(0));
    assert.ok((await timed(watch.wait(5000))) < 100, 'the signal came before the wait');
    watch.arm();
    assert.ok((await timed(watch.wait(200))) >= 150, 'after arm() the old signal is forgotten');
    watch.close();
  });

  it('waits at most the safety re-check', async () => {
    const signals = new OrderSignals(systemClock, { ...limits, recheckMs: 100 });
    const watch = signals.watch(ref(0), 'k1');
    assert.ok((await timed(watch.wait(5000))) < 1000);
    watch.close();
  });

  it('bounds waiting polls per key and in all; a place comes back on close(); close() twice is safe', async () => {
    const signals = new OrderSignals(systemClock, limits);
    const a = signals.watch(ref(0), 'k1');
    const b = signals.watch(ref(0), 'k1');
    const c = signals.watch(ref(0), 'k1');
    await a.wait(1);
    await b.wait(1);
    await assert.rejects(c.wait(1), (error: SensoryError) => error.code === 'SENSORY_ERR_TOO_MANY_POLLS' && /SENSORY_MAX_WAITING_POLLS_PER_KEY/.test(error.message));
    const d = signals.watch(ref(0), 'k2');
    await d.wait(1);
    const e = signals.watch(ref(0), 'k3');
    await assert.rejects(e.wait(1), (error: SensoryError) => error.code === 'SENSORY_ERR_TOO_MANY_POLLS' && /SENSORY_MAX_WAITING_POLLS\b/.test(error.message));
    assert.equal(signals.count(), 3);
    assert.equal(signals.count('k1'), 2);
    a.close();
    a.close();
    assert.equal(signals.count(), 2);
    await e.wait(1);
    for (const watch of [b, c, d, e]) watch.close();
    assert.equal(signals.count(), 0);
    assert.equal(signals.count('k1'), 0);
  });
});
