/**
 * Knowing a dataset with `sensory serve` as a real process (the compiled build, so the grouping
 * runs on its worker thread): samples of a data dir written by release 0.1.0, which had no
 * perceptual hashes, are hashed by the background pass while the service answers; the revision
 * diff reads the history the old release wrote; near-duplicates uploaded over HTTP are grouped.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { SensoryClient } from '@sensory/client';
import { tarEntries } from '../../src/formats/tar.reader.js';
import { jpeg, resized, scenePng, shifted } from '../support/look-alike-images.js';
import { call, ensureBuilt, killAll, removeTempDirs, sleep, startServer, stop, tempDir } from '../support/process.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'release-0.1.0-data-dir.json'), 'utf8')) as {
  key: string;
  datasets: Record<string, { revision: number; sampleCount: number; categories: { name: string; index: number; count: number }[] }>;
};
const KEY = manifest.key;

async function unpack(dir: string): Promise<void> {
  for await (const entry of tarEntries(Readable.from([gunzipSync(readFileSync(join(FIXTURES, 'release-0.1.0-data-dir.tar.gz')))]), false)) {
    const bytes = await entry.readAll();
    mkdirSync(dirname(join(dir, entry.path)), { recursive: true });
    writeFileSync(join(dir, entry.path), bytes);
  }
}

describe('know your data, in a real serve process', () => {
  before(() => ensureBuilt());
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('an old data dir is hashed online; its diff reads the old history; uploaded look-alikes are grouped', async () => {
    const dataDir = tempDir('sensory-kyd-');
    await unpack(dataDir);
    const server = await startServer(dataDir, { SENSORY_API_KEYS: `${KEY}:admin` });
    try {
      // The background pass hashes every old sample; the service answers all along.
      for (const [name, expected] of Object.entries(manifest.datasets)) {
        let report: { hashed: number; unhashed: number } | undefined;
        for (let i = 0; i < 300; i++) {
          const res = await call(server.url, KEY, 'GET', `/v1/datasets/${name}/duplicates?distance=0`);
          assert.equal(res.status, 200, res.body.toString());
          report = res.json();
          if (report!.unhashed === 0) break;
          assert.equal((await call(server.url, KEY, 'GET', '/health/live')).status, 200);
          await sleep(100);
        }
        assert.deepEqual({ hashed: report!.hashed, unhashed: report!.unhashed }, { hashed: expected.sampleCount, unhashed: 0 }, name);

        // Revision 0 to now: every live sample added, in its category; nothing else.
        const diff = (await call(server.url, KEY, 'GET', `/v1/datasets/${name}/diff?from=0&to=${expected.revision}&limit=1000`)).json();
        assert.deepEqual(diff.totals, { added: expected.sampleCount, deleted: 0, relabelled: 0 });
        assert.deepEqual(
          diff.categories.map((c: { name: string; added: number }) => [c.name, c.added]),
          expected.categories.filter((c) => c.count > 0).map((c) => [c.name, c.count]),
        );
        assert.equal(diff.changes.length, expected.sampleCount);
      }

      // New samples are hashed at ingest: resized, re-encoded and shifted copies are grouped.
      assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/kyd-scenes', { json: { width: 64, height: 64, channels: 3, testPercent: 20 } })).status, 201);
      const ids: number[] = [];
      const upload = async (category: string, bytes: Buffer, type = 'image/png') => {
        const res = await call(server.url, KEY, 'POST', `/v1/datasets/kyd-scenes/samples?category=${category}`, { bytes, type });
        assert.equal(res.status, 201, res.body.toString());
        ids.push(res.json().id);
        return res.json().id as number;
      };
      for (let seed = 1; seed <= 6; seed++) await upload('a', await scenePng(seed));
      const copies = [
        await upload('a', await scenePng(1, 160)),
        await upload('b', await jpeg(await scenePng(2), 90), 'image/jpeg'),
        await upload('a', await shifted(await scenePng(4), 1, 1)),
        await upload('a', await resized(await scenePng(5), 40)),
      ];
      const res = await call(server.url, KEY, 'GET', '/v1/datasets/kyd-scenes/duplicates?distance=10');
      assert.equal(res.status, 200, res.body.toString());
      const groups = res.json().groups.map((g: { members: { id: number }[] }) => g.members.map((m) => m.id));
      assert.deepEqual(groups, [
        [ids[0], copies[0]],
        [ids[1], copies[1]],
        [ids[3], copies[2]],
        [ids[4], copies[3]],
      ]);
      const leakage = (await call(server.url, KEY, 'GET', '/v1/datasets/kyd-scenes/leakage?distance=10')).json();
      assert.equal(leakage.labelConflicts.groups, 1, 'the JPEG copy carries another label');

      // The same through the SDK, page by page.
      const client = new SensoryClient({ url: server.url, key: KEY });
      const first = await client.datasets.duplicates('kyd-scenes', { distance: 10, limit: 3 });
      assert.equal(first.totals.groups, 4);
      const second = await client.datasets.duplicates('kyd-scenes', { distance: 10, limit: 3, cursor: first.nextCursor });
      assert.equal(second.nextCursor, undefined);
      assert.deepEqual([...first.groups, ...second.groups].map((g) => g.members.map((m) => m.id)), groups);
      assert.equal((await client.datasets.leakage('kyd-scenes', { distance: 10 })).labelConflicts.groups, 1);
      const diff = await client.datasets.diff('kyd-scenes', { from: 0, to: ids.length });
      assert.deepEqual(diff.totals, { added: ids.length, deleted: 0, relabelled: 0 });
    } finally {
      await stop(server);
    }
    assert.match(server.stdout() + server.stderr(), /perceptual hash backfill done: 33 hashed, 0 skipped/, "every sample of the old data dir, deleted ones included");
  });
});
