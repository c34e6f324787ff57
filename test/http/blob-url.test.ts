/**
 * SENSORY_BLOB_URL: originals go where the URL points (a file: directory outside the data dir),
 * are read back from there, and the readiness check writes there.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { addSample, createDataset, makePng, removeDir, startTestApp, type TestApp } from '../support/harness.js';

describe('SENSORY_BLOB_URL', () => {
  const blobDir = mkdtempSync(join(tmpdir(), 'sensory-blob-url-'));
  let t: TestApp;

  before(async () => {
    t = await startTestApp({ SENSORY_BLOB_URL: pathToFileURL(join(blobDir, 'originals')).href });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
    rmSync(blobDir, { recursive: true, force: true });
  });

  it('keeps originals in the directory of a file: URL, not in the data dir', async () => {
    await createDataset(t, 'elsewhere', { width: 4, height: 4, channels: 3 });
    const png = await makePng(4, 4, 3, 1);
    const sample = await addSample(t, 'elsewhere', 'a', png);
    const sha = createHash('sha256').update(png).digest('hex');
    assert.equal(sample.sha256, sha);
    const segments = join(blobDir, 'originals', 'segments');
    const files = readdirSync(segments).filter((name) => name.endsWith('.seg'));
    assert.ok(files.some((name) => readFileSync(join(segments, name)).includes(png)), 'the original is in a segment under the URL');
    assert.equal(existsSync(join(t.dataDir, 'blobs')), false, 'nothing under <data dir>/blobs');
    const content = await t.app.inject({ method: 'GET', url: `/v1/datasets/elsewhere/samples/${sample.id}/content`, headers: t.auth('read') });
    assert.equal(content.statusCode, 200);
    assert.ok(content.rawPayload.equals(png));
  });

  it('checks that directory for readiness', async () => {
    const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(ready.statusCode, 200, ready.body);
    rmSync(join(blobDir, 'originals'), { recursive: true });
    const down = await t.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(down.statusCode, 503, down.body);
    assert.deepEqual(down.json().down, ['dataDir']);
  });
});
