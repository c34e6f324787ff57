import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FILENAME_CHARS, sampleFilename } from '../../src/domain/sample-annotations.js';

describe('sampleFilename', () => {
  it('counts characters, not UTF-16 units: 255 astral characters are a name, 256 are not', () => {
    const astral = '🐱'.repeat(MAX_FILENAME_CHARS);
    assert.equal(astral.length, 2 * MAX_FILENAME_CHARS);
    assert.equal(sampleFilename('filename', astral), astral);
    assert.throws(() => sampleFilename('filename', `${astral}🐱`), /1–255 characters/);
    assert.equal(sampleFilename('filename', 'a'.repeat(MAX_FILENAME_CHARS)), 'a'.repeat(MAX_FILENAME_CHARS));
    assert.throws(() => sampleFilename('filename', 'a'.repeat(MAX_FILENAME_CHARS + 1)), /1–255 characters/);
  });

  it('keeps the last path component, and refuses an empty one or control characters', () => {
    assert.equal(sampleFilename('filename', 'cats/tabby.png'), 'tabby.png');
    assert.equal(sampleFilename('filename', 'C:\\photos\\x.jpg'), 'x.jpg');
    assert.throws(() => sampleFilename('filename', 'cats/'), /1–255 characters/);
    assert.throws(() => sampleFilename('filename', 'a\u0007.png'), /control characters/);
    assert.throws(() => sampleFilename('filename', 7), /must be a string/);
  });
});
