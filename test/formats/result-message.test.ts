import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocateResultMessage, decodeResultMessage, encodeResultMessage, type ResultMessage } from '../../src/formats/result-message.js';

const message: ResultMessage = {
  orderId: 'order-1',
  generation: 2,
  stream: 1,
  run: 3,
  from: 40,
  to: 43,
  slots: [40, 41, 42],
  ids: [7, 9, 2 ** 40],
  labels: [0, 5, -1],
  epochs: [0, 1, 2 ** 32 - 1],
  augments: [
    { rotation: 0, scale: 1 },
    { rotation: -0.25, scale: 1.125 },
    { rotation: 0.5, scale: 0.875 },
  ],
  recordBytes: 4,
  pixels: Uint8Array.from({ length: 12 }, (_, i) => i * 20),
};

function fields(decoded: ResultMessage) {
  return { ...decoded, pixels: Buffer.from(decoded.pixels) };
}

test('a result message decodes to what was encoded', () => {
  assert.deepEqual(fields(decodeResultMessage(encodeResultMessage(message))), fields(message));
});

test('a result message allocated past the start of its memory (at a multiple of 8) is written there, not at the start', () => {
  const memory = Buffer.alloc(4096, 0xee);
  const { body, pixels } = allocateResultMessage(message, (bytes) => memory.subarray(64, 64 + bytes));
  pixels.set(message.pixels);
  assert.equal(body.byteOffset, 64);
  assert.ok(memory.subarray(0, 64).every((byte) => byte === 0xee), 'nothing written before the message');
  assert.deepEqual(fields(decodeResultMessage(body)), fields(message));
  assert.ok(body.equals(encodeResultMessage(message)), 'the same bytes as a message of its own');
});

test('a result message is refused at an offset that is not a multiple of 8', () => {
  const memory = Buffer.alloc(4096);
  assert.throws(() => allocateResultMessage(message, (bytes) => memory.subarray(4, 4 + bytes)), /multiple of 8/);
});
