/**
 * A data dir written by release 0.1.0 (test/fixtures/release-0.1.0-data-dir.tar.gz: originals
 * one file each under blobs/, made by release-data-dir.generate.ts) opened by this release: every
 * old sample is served byte-identical, batches hold the very samples, pixels and labels the
 * release served, new samples
 * are accepted (into segments), and `sensory compact` moves the old originals into segments and
 * purges what was deleted, everything still byte-identical after it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { parseSafetensors } from '@sensory/client';
import { tarEntries } from '../../src/formats/tar.reader.js';
import { call, ensureBuilt, killAll, removeTempDirs, runCli, sha256, startServer, stop, tempDir } from '../support/process.js';
import { tarOf } from '../support/tar.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'release-0.1.0-data-dir.json'), 'utf8')) as {
  key: string;
  datasets: Record<string, { revision: number; sampleCount: number; batches: { revision: number; size: number; seed: number; ids: number[]; data: string; labels: string }[] }>;
  samples: { dataset: string; id: number; sha256: string; category: string; deleted?: boolean }[];
};
const KEY = manifest.key;

/** The sample ids and the digests of the pixel and label tensors of a safetensors batch (its framing may have grown since 0.1.0). */
function tensors(body: Buffer): { ids: number[]; data: string; labels: string } {
  const parsed = parseSafetensors(body);
  return { ids: JSON.parse(parsed.metadata.ids), data: sha256(Buffer.from(parsed.tensors.data.data)), labels: sha256(Buffer.from(parsed.tensors.labels.data)) };
}

async function unpack(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for await (const entry of tarEntries(Readable.from([gunzipSync(readFileSync(join(FIXTURES, 'release-0.1.0-data-dir.tar.gz')))]), false)) {
    const bytes = await entry.readAll();
    mkdirSync(dirname(join(dir, entry.path)), { recursive: true });
    writeFileSync(join(dir, entry.path), bytes);
    files.set(entry.path, bytes);
  }
  return files;
}

describe('a data dir written by release 0.1.0', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('serves every old sample byte-identical, the same batches, takes new samples, and compacts', async () => {
    const dataDir = tempDir('sensory-release-');
    const files = await unpack(dataDir);
    const env = { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_LOG_LEVEL: 'warn' };
    let server = await startServer(dataDir, env);

    const checkOldSamples = async () => {
      for (const [name, expected] of Object.entries(manifest.datasets)) {
        const info = (await call(server.url, KEY, 'GET', `/v1/datasets/${name}`)).json();
        assert.equal(info.sampleCount >= expected.sampleCount, true);
        for (const batch of expected.batches) {
          const reply = await call(server.url, KEY, 'POST', `/v1/datasets/${name}/batches`, { json: { size: batch.size, seed: batch.seed, revision: batch.revision }, accept: 'application/x-safetensors' });
          assert.equal(reply.status, 200, reply.body.toString().slice(0, 300));
          assert.deepEqual(tensors(reply.body), { ids: batch.ids, data: batch.data, labels: batch.labels }, `the ${name} batch at revision ${batch.revision} is the one release 0.1.0 served`);
        }
      }
      for (const sample of manifest.samples.filter((s) => !s.deleted)) {
        const meta = await call(server.url, KEY, 'GET', `/v1/datasets/${sample.dataset}/samples/${sample.id}`);
        assert.equal(meta.status, 200);
        assert.deepEqual([meta.json().sha256, meta.json().category], [sample.sha256, sample.category]);
        const content = await call(server.url, KEY, 'GET', `/v1/datasets/${sample.dataset}/samples/${sample.id}/content`);
        assert.equal(content.status, 200);
        assert.ok(content.body.equals(files.get(`blobs/${sample.sha256[0]}/${sample.sha256}`)!), `sample ${sample.id} is byte-identical`);
      }
    };

    // Opened as it is: nothing moved, everything served from the old files.
    for (const [name, expected] of Object.entries(manifest.datasets)) {
      const info = (await call(server.url, KEY, 'GET', `/v1/datasets/${name}`)).json();
      assert.deepEqual([info.revision, info.sampleCount], [expected.revision, expected.sampleCount]);
    }
    await checkOldSamples();

    // New samples, single and bulk, go into segments; the bytes of an old one again are a duplicate.
    const fresh = await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
    assert.equal((await call(server.url, KEY, 'POST', '/v1/datasets/pets/samples?category=new', { bytes: fresh })).status, 201);
    const old = manifest.samples.find((s) => s.dataset === 'pets' && !s.deleted)!;
    const bulk = await call(server.url, KEY, 'POST', '/v1/datasets/pets/samples/bulk', {
      type: 'application/x-tar',
      bytes: await tarOf([
        { name: `${old.category}/old.png`, data: files.get(`blobs/${old.sha256[0]}/${old.sha256}`)! },
        { name: 'new/other.png', data: await sharp(fresh).negate().png().toBuffer() },
      ]),
    });
    assert.equal(bulk.status, 201, bulk.body.toString());
    assert.deepEqual(bulk.json().receipts.map((r: { status: string }) => r.status), ['duplicate', 'stored']);
    assert.ok(readdirSync(join(dataDir, 'blobs', 'segments')).some((name) => name.endsWith('.seg')));

    // Restart, then compact: old originals move into segments, the deleted samples are purged.
    await stop(server);
    server = await startServer(dataDir, env);
    const compact = runCli(['compact', '--url', server.url, '--key', KEY, '--retention-seconds', '0'], {});
    const exit = await compact.exit;
    assert.equal(exit.code, 0, compact.stderr());
    const result = JSON.parse(compact.stdout());
    const deleted = manifest.samples.filter((s) => s.deleted).length;
    assert.equal(result.purged.reduce((n: number, p: { samples: number }) => n + p.samples, 0), deleted);
    assert.equal(result.legacyOriginalsMoved, files.size - 3, JSON.stringify(result));
    const leftover = readdirSync(join(dataDir, 'blobs'), { recursive: true }).filter((name) => /[0-9a-f]{64}$/.test(String(name)));
    assert.deepEqual(leftover, [], 'no original is left in the old layout');
    for (const sample of manifest.samples.filter((s) => !s.deleted)) {
      const content = await call(server.url, KEY, 'GET', `/v1/datasets/${sample.dataset}/samples/${sample.id}/content`);
      assert.ok(content.body.equals(files.get(`blobs/${sample.sha256[0]}/${sample.sha256}`)!), `sample ${sample.id} is byte-identical after compaction`);
    }
    for (const [name, expected] of Object.entries(manifest.datasets)) {
      // A batch at a revision before the purged deletions is refused now, by design.
      const before = expected.batches[1];
      const refused = await call(server.url, KEY, 'POST', `/v1/datasets/${name}/batches`, { json: { size: 1, revision: before.revision } });
      assert.deepEqual([refused.status, refused.json().error.code], [422, 'SENSORY_ERR_REVISION_PURGED']);
      const current = expected.batches[0];
      const reply = await call(server.url, KEY, 'POST', `/v1/datasets/${name}/batches`, { json: { size: current.size, seed: current.seed, revision: current.revision }, accept: 'application/x-safetensors' });
      assert.deepEqual(tensors(reply.body), { ids: current.ids, data: current.data, labels: current.labels }, `the ${name} batch at its current revision is unchanged by compaction`);
    }
    assert.ok(existsSync(join(dataDir, 'sensory.db')));
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  });
});
