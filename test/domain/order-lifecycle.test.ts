import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SensoryError } from '../../src/domain/errors.js';
import { decodeCursor, encodeCursor } from '../../src/domain/order-cursor.js';
import { ORDER_STATUSES, canFinish, dueFinalStatus, extendedExpiry, isActive, statusOf, type OrderFacts } from '../../src/domain/order-lifecycle.js';

const NOW = 10_000_000;

function facts(overrides: Partial<OrderFacts> = {}): OrderFacts {
  return { stored: 'queued', expiresAt: NOW + 1000, now: NOW, deliveredBefore: 0, streams: [{ produced: 0, delivered: 0, length: 5 }], ...overrides };
}

describe('order lifecycle', () => {
  it('queued until the first result is produced, then running', () => {
    assert.equal(statusOf(facts()), 'queued');
    assert.equal(statusOf(facts({ streams: [{ produced: 0, delivered: 0, length: 5 }, { produced: 2, delivered: 0, length: 5 }] })), 'running');
    assert.equal(statusOf(facts({ stored: 'running' })), 'queued', 'the column says active; the facts say which');
    assert.equal(statusOf(facts({ deliveredBefore: 3 })), 'running', 'a reshaped order has run');
  });

  it('complete exactly when every stream is delivered, queued ones too; never a final status revived', () => {
    const twoStreams = (a: number, b: number) => [{ produced: 5, delivered: a, length: 5 }, { produced: 5, delivered: b, length: 5 }];
    assert.equal(statusOf(facts({ streams: twoStreams(5, 4) })), 'running', 'one short is not complete');
    assert.equal(statusOf(facts({ streams: twoStreams(5, 5) })), 'complete');
    assert.equal(statusOf(facts({ streams: [{ produced: 0, delivered: 5, length: 5 }] })), 'complete');
    assert.equal(dueFinalStatus(facts({ streams: twoStreams(5, 5) })), 'complete');
    for (const stored of ['cancelled', 'failed', 'expired', 'complete'] as const) {
      assert.equal(statusOf(facts({ stored, streams: twoStreams(5, 5) })), stored);
      assert.equal(statusOf(facts({ stored, now: NOW + 10_000 })), stored);
      assert.equal(dueFinalStatus(facts({ stored, now: NOW + 10_000 })), undefined);
    }
  });

  it('expired once read after expiresAt, unless every sample was delivered', () => {
    assert.equal(statusOf(facts({ now: NOW + 1000 })), 'queued', 'at expiresAt it still runs');
    assert.equal(statusOf(facts({ now: NOW + 1001 })), 'expired');
    assert.equal(dueFinalStatus(facts({ now: NOW + 1001 })), 'expired');
    assert.equal(statusOf(facts({ now: NOW + 1001, streams: [{ produced: 5, delivered: 5, length: 5 }] })), 'complete');
    assert.equal(dueFinalStatus(facts()), undefined);
  });

  it('only active orders finish', () => {
    assert.deepEqual(ORDER_STATUSES.filter(canFinish), ['queued', 'running']);
    assert.deepEqual(ORDER_STATUSES.filter(isActive), ['queued', 'running']);
  });

  it('a delivery extends the expiry to a TTL from now, written only when it moved by more than an eighth of the TTL', () => {
    const ttl = 800;
    assert.equal(extendedExpiry(NOW + ttl * 1000, NOW, ttl), undefined);
    assert.equal(extendedExpiry(NOW + ttl * 1000, NOW + 100_000, ttl), undefined, 'an eighth exactly: not yet');
    assert.equal(extendedExpiry(NOW + ttl * 1000, NOW + 100_001, ttl), NOW + 100_001 + ttl * 1000);
    assert.equal(extendedExpiry(NOW - 5, NOW, 1), NOW + 1000);
  });
});

describe('order cursors', () => {
  const ORDER = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  const here = { orderId: ORDER, generation: 2, stream: 3 };

  function expectError(fn: () => unknown, code: string, pattern?: RegExp): void {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof SensoryError, String(error));
      assert.equal(error.code, code);
      if (pattern) assert.match(error.message, pattern);
      return true;
    });
  }

  it('a token names a position of one stream of one generation of one order, and reads back', () => {
    for (const position of [0, 1, 12_345, 99_999_999]) {
      const token = encodeCursor({ ...here, position });
      assert.match(token, /^[A-Za-z0-9_-]+$/);
      assert.equal(decodeCursor('cursor', token, here), position);
    }
  });

  it('anything else is a 400 naming the field', () => {
    const valid = encodeCursor({ ...here, position: 7 });
    const bad = ['', 'start!', 'x'.repeat(201), valid + '=', valid.slice(0, -2), Buffer.from('v1.0f1e2d3c4b5a.2.3.07').toString('base64url'), Buffer.from('v2.0f1e2d3c4b5a.2.3.7').toString('base64url'), Buffer.from('v1.0f1e2d3c4b5a.2.3.-7').toString('base64url'), Buffer.from('v1.0F1E2D3C4B5A.2.3.7').toString('base64url')];
    for (const token of bad) expectError(() => decodeCursor('ack', token, here), 'SENSORY_ERR_BAD_CURSOR', /^ack /);
    expectError(() => decodeCursor('cursor', 42 as unknown as string, here), 'SENSORY_ERR_BAD_CURSOR');
  });

  it('a token of another order, generation or rank is a 409 saying which', () => {
    expectError(() => decodeCursor('cursor', encodeCursor({ ...here, orderId: 'ffffffff-4b5a-6978-8796-a5b4c3d2e1f0', position: 1 }), here), 'SENSORY_ERR_CURSOR_CONFLICT', /another order/);
    expectError(() => decodeCursor('cursor', encodeCursor({ ...here, generation: 1, position: 1 }), here), 'SENSORY_ERR_CURSOR_CONFLICT', /generation 1 .*now generation 2/);
    expectError(() => decodeCursor('cursor', encodeCursor({ ...here, stream: 0, position: 1 }), here), 'SENSORY_ERR_CURSOR_CONFLICT', /rank 0, not to rank 3/);
  });
});
