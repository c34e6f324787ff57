/**
 * The MetadataStore contract: one suite, run against every backend of support/metadata-backends.ts (narrowed by
 * SENSORY_TEST_BACKENDS, e.g. "sqlite" or "sqlite,postgres"). It uses only the interface, gives
 * every dataset a name unique to this run, and asserts no ordering the interface does not promise.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { POSTGRES_MIGRATIONS } from '../src/adapters/postgres/postgres.migrations.js';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { SQLITE_MIGRATIONS } from '../src/adapters/sqlite/sqlite.migrations.js';
import { isSensoryError } from '../src/domain/errors.js';
import type { DatasetRecord, MetadataStore, SampleRecord } from '../src/ports/metadata-store.js';
import { added, metadataBackends, runSamples } from './support/metadata-backends.js';

const selected = await metadataBackends('metadata');
const { uniqueName, sha, sample } = runSamples();

function sortedIds(list: readonly { id: number }[]): number[] {
  return list.map((s) => s.id).sort((a, b) => a - b);
}

for (const backend of selected) {
  describe(`MetadataStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let store: MetadataStore;

    before(async () => {
      store = await backend.create();
      await store.migrate();
    });
    after(async () => {
      await store.close();
    });

    async function dataset(testPercent = 0, prefix = 'ds'): Promise<DatasetRecord> {
      const { dataset } = await store.putDataset({ name: uniqueName(prefix), width: 8, height: 6, channels: 1, testPercent });
      return dataset;
    }
    async function revisionOf(ds: DatasetRecord): Promise<number> {
      return (await store.getDataset(ds.name))!.revision;
    }

    it('migrate is safe to call again and ping answers', async () => {
      const ds = await dataset();
      await store.migrate();
      await store.migrate();
      await store.ping();
      assert.equal((await store.getDataset(ds.name))?.id, ds.id);
      assert.equal(typeof store.kind, 'string');
    });

    it('putDataset creates, then returns the existing dataset for the same spec', async () => {
      const spec = { name: uniqueName('put'), width: 28, height: 14, channels: 3 as const, testPercent: 10 };
      const first = await store.putDataset(spec);
      assert.equal(first.created, true);
      assert.deepEqual(
        { ...first.dataset, id: 0, createdAt: '' },
        { ...spec, id: 0, createdAt: '', revision: 0, sampleCount: 0, purgedRevision: 0, categoriesDeclared: false },
      );
      assert.ok(Number.isInteger(first.dataset.id));
      assert.ok(!Number.isNaN(Date.parse(first.dataset.createdAt)), 'createdAt is an ISO date');

      const second = await store.putDataset({ ...spec });
      assert.equal(second.created, false);
      assert.deepEqual(second.dataset, first.dataset);
      assert.deepEqual(await store.getDataset(spec.name), first.dataset);
      assert.equal(await store.getDataset(uniqueName('missing')), undefined);
    });

    it('names differing only in letter case cannot coexist: SENSORY_ERR_DATASET_NAME_CONFLICT naming the existing one', async () => {
      const name = uniqueName('Digits');
      await store.putDataset({ name, width: 2, height: 2, channels: 1, testPercent: 0 });
      await assert.rejects(store.putDataset({ name: name.toLowerCase(), width: 2, height: 2, channels: 1, testPercent: 0 }), (error: unknown) => {
        assert.ok(isSensoryError(error));
        assert.equal(error.code, 'SENSORY_ERR_DATASET_NAME_CONFLICT');
        assert.ok(error.message.includes(`'${name}'`), error.message);
        return true;
      });
      assert.equal(await store.getDataset(name.toLowerCase()), undefined);
    });

    it('the case migration renames the later of an existing pair instead of failing', async () => {
      const name = uniqueName('Pair');
      const { dataset: first } = await store.putDataset({ name, width: 2, height: 2, channels: 1, testPercent: 0 });
      // The state before the migration: no folded index, a pair differing only in case, the last migration not applied.
      await rawSql(store, 'DROP INDEX datasets_name_folded');
      await rawSql(store, `INSERT INTO datasets (name, width, height, channels, test_percent, created_at) VALUES ('${name.toLowerCase()}', 2, 2, 1, 0, '${new Date().toISOString()}')`);
      await rawSql(store, caseMigration(store));
      assert.equal((await store.getDataset(name))?.id, first.id, 'the first-created keeps its name');
      assert.equal(await store.getDataset(name.toLowerCase()), undefined);
      const renamed = (await store.listDatasets()).find((d) => d.name.startsWith(`${name.toLowerCase().slice(0, 40)}-renamed-`));
      assert.ok(renamed, 'the later one is kept under a new name');
      await assert.rejects(store.putDataset({ name: name.toUpperCase(), width: 2, height: 2, channels: 1, testPercent: 0 }), /NAME_CONFLICT|exists/);
    });

    it('putDataset with another shape or test share is SENSORY_ERR_DATASET_SHAPE_CONFLICT naming the field', async () => {
      const spec = { name: uniqueName('conflict'), width: 28, height: 14, channels: 1 as const, testPercent: 10 };
      const { dataset: original } = await store.putDataset(spec);
      const changes = [{ width: 29 }, { height: 15 }, { channels: 3 as const }, { testPercent: 20 }];
      for (const change of changes) {
        const field = Object.keys(change)[0];
        await assert.rejects(store.putDataset({ ...spec, ...change }), (error: unknown) => {
          assert.ok(isSensoryError(error));
          assert.equal(error.code, 'SENSORY_ERR_DATASET_SHAPE_CONFLICT');
          assert.match(error.message, new RegExp(field));
          return true;
        });
      }
      assert.deepEqual(await store.getDataset(spec.name), original);
    });

    it('listDatasets lists by name', async () => {
      const names = [uniqueName('list-b'), uniqueName('list-a'), uniqueName('list-c')];
      for (const name of names) await store.putDataset({ name, width: 1, height: 1, channels: 1, testPercent: 0 });
      const listed = (await store.listDatasets()).map((d) => d.name);
      const all = [...listed].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      assert.deepEqual(listed, all);
      for (const name of names) assert.ok(listed.includes(name));
    });

    it('addSamples stores every field and counts revisions: +1 per added sample, +0 per duplicate', async () => {
      const ds = await dataset();
      const input = sample('fields', 'cat', { mediaType: 'image/jpeg', bytes: 4567, pixelSlot: 42, splitBucket: 17 });
      const [outcome] = await store.addSamples(ds.id, [input]);
      const s = added(outcome);
      assert.deepEqual(
        { ...s, id: 0, createdAt: '' },
        { ...input, id: 0, createdAt: '', datasetId: ds.id, categoryIndex: 0, revision: 1, filename: null, tags: [], metadata: {} },
      );
      assert.ok(!Number.isNaN(Date.parse(s.createdAt)));
      assert.deepEqual(await store.getSample(ds.id, s.id), s);
      assert.deepEqual(await store.findLiveSampleBySha(ds.id, input.sha256), s);
      assert.equal(await revisionOf(ds), 1);
      // The one-lookup form an upload uses: the same records, the dataset as of now.
      const found = await store.findDatasetAndLiveSample(ds.name, input.sha256);
      assert.deepEqual(found, { dataset: await store.getDataset(ds.name), existing: s, blobIndexed: false });
      assert.deepEqual(await store.findDatasetAndLiveSample(ds.name, sha('not stored')), { dataset: await store.getDataset(ds.name), existing: undefined, blobIndexed: false });
      assert.deepEqual(await store.findDatasetAndLiveSample('no-such-dataset', input.sha256), {});

      const [dup] = await store.addSamples(ds.id, [{ ...input, pixelSlot: 99 }]);
      assert.equal(dup.kind, 'duplicate');
      assert.deepEqual((dup as { sample: SampleRecord }).sample, s);
      assert.equal(await revisionOf(ds), 1);

      const outcomes = await store.addSamples(ds.id, [sample('r2', 'cat'), sample('r3', 'other')]);
      assert.deepEqual(outcomes.map((o) => o.kind), ['added', 'added']);
      assert.deepEqual(outcomes.map((o) => added(o).revision), [2, 3]);
      const after = (await store.getDataset(ds.name))!;
      assert.equal(after.revision, 3);
      assert.equal(after.sampleCount, 3);
    });

    it('same bytes: duplicate in the same category, conflict in another, also within one call', async () => {
      const ds = await dataset();
      const [first] = await store.addSamples(ds.id, [sample('x', 'cat')]);
      const original = added(first);

      const [conflict] = await store.addSamples(ds.id, [sample('x', 'brand-new-category')]);
      assert.equal(conflict.kind, 'conflict');
      assert.deepEqual((conflict as { existing: SampleRecord }).existing, original);
      assert.equal(await revisionOf(ds), 1);
      assert.deepEqual((await store.listCategories(ds.id)).map((c) => c.name), ['cat'], 'a conflict creates no category');

      const outcomes = await store.addSamples(ds.id, [
        sample('y', 'cat'),
        sample('y', 'cat'),
        sample('z', 'cat'),
        sample('z', 'dog'),
      ]);
      assert.deepEqual(outcomes.map((o) => o.kind), ['added', 'duplicate', 'added', 'conflict']);
      const y = added(outcomes[0]);
      assert.equal((outcomes[1] as { sample: SampleRecord }).sample.id, y.id);
      const z = added(outcomes[2]);
      assert.equal((outcomes[3] as { existing: SampleRecord }).existing.id, z.id);
      assert.equal(await revisionOf(ds), 3);
      assert.equal((await store.getDataset(ds.name))!.sampleCount, 3);
      assert.deepEqual((await store.listCategories(ds.id)).map((c) => c.name), ['cat']);
    });

    it('the same bytes in another dataset, or after a delete, are a new sample', async () => {
      const a = await dataset();
      const b = await dataset();
      const sa = added((await store.addSamples(a.id, [sample('shared', 'cat')]))[0]);
      const sb = added((await store.addSamples(b.id, [sample('shared', 'dog')]))[0]);
      assert.notEqual(sa.id, sb.id);
      assert.equal(await store.getSample(b.id, sa.id), undefined, 'a sample belongs to its dataset');

      await store.deleteSample(a.id, sa.id);
      const again = added((await store.addSamples(a.id, [sample('shared', 'other')]))[0]);
      assert.notEqual(again.id, sa.id);
      assert.equal(again.revision, 3);
      assert.deepEqual(await store.findLiveSampleBySha(a.id, sha('shared')), again);
    });

    it('a staged blob is indexed by its sample\'s commit; a found one is checked again, and dropped once unreferenced', async () => {
      const { dataset: ds } = await store.putDataset({ name: uniqueName('blobs'), width: 2, height: 2, channels: 3, testPercent: 0 });
      const staged = sample('blob-a', 'c', { newBlob: { sha256: sha('blob-a'), segment: 7, offset: 64, length: 123 } });
      assert.equal((await store.addSamples(ds.id, [staged]))[0].kind, 'added');
      assert.equal((await store.findDatasetAndLiveSample(ds.name, sha('blob-a'))).blobIndexed, true);
      // Found already indexed (in another dataset, say): the commit checks the row is still there.
      const { dataset: other } = await store.putDataset({ name: uniqueName('blobs'), width: 2, height: 2, channels: 3, testPercent: 0 });
      assert.equal((await store.addSamples(other.id, [sample('blob-a', 'c', { requireIndexedBlob: true })]))[0].kind, 'added');
      assert.deepEqual(await store.addSamples(other.id, [sample('blob-gone', 'c', { requireIndexedBlob: true })]), [{ kind: 'blob-missing' }]);
      assert.equal((await store.findDatasetAndLiveSample(other.name, sha('blob-gone'))).existing, undefined, 'nothing was added');
      // Still named by samples: kept. Once no sample names it: dropped.
      await store.dropUnreferencedBlobs();
      assert.equal((await store.findDatasetAndLiveSample(ds.name, sha('blob-a'))).blobIndexed, true);
      await store.deleteDataset(ds.name);
      await store.deleteDataset(other.name);
      assert.ok((await store.dropUnreferencedBlobs()) >= 1);
      const { dataset: third } = await store.putDataset({ name: uniqueName('blobs'), width: 2, height: 2, channels: 3, testPercent: 0 });
      assert.equal((await store.findDatasetAndLiveSample(third.name, sha('blob-a'))).blobIndexed, false);
    });

    it('addSamples on a missing dataset fails and stores nothing', async () => {
      await assert.rejects(store.addSamples(2_000_000_000, [sample('orphan', 'cat')]));
    });

    it('relabelSample: +1 and a new label; same category is unchanged with +0; only live samples', async () => {
      const ds = await dataset();
      const [o1, o2] = await store.addSamples(ds.id, [sample('r-a', 'cat'), sample('r-b', 'cat')]);
      const s1 = added(o1);
      const s2 = added(o2);

      const same = await store.relabelSample(ds.id, s1.id, 'cat');
      assert.deepEqual(same, s1);
      assert.equal(await revisionOf(ds), 2);

      const moved = await store.relabelSample(ds.id, s1.id, 'dog');
      assert.deepEqual(moved, { ...s1, category: 'dog', categoryIndex: 1 });
      assert.deepEqual(await store.getSample(ds.id, s1.id), moved);
      assert.equal(await revisionOf(ds), 3);

      const back = await store.relabelSample(ds.id, s1.id, 'cat');
      assert.equal(back?.categoryIndex, 0);
      assert.equal(await revisionOf(ds), 4);

      await store.deleteSample(ds.id, s2.id);
      assert.equal(await store.relabelSample(ds.id, s2.id, 'dog'), undefined, 'deleted');
      assert.equal(await store.relabelSample(ds.id, 2_000_000_000, 'dog'), undefined, 'unknown id');
      const other = await dataset();
      assert.equal(await store.relabelSample(other.id, s1.id, 'dog'), undefined, 'other dataset');
      assert.equal(await revisionOf(ds), 5);
    });

    it('deleteSample tombstones a live sample with +1 and hides it from live reads', async () => {
      const ds = await dataset();
      const [o1, o2] = await store.addSamples(ds.id, [sample('d-a', 'cat'), sample('d-b', 'cat')]);
      const s1 = added(o1);
      const s2 = added(o2);

      assert.deepEqual(await store.deleteSample(ds.id, s1.id), s1);
      const now = (await store.getDataset(ds.name))!;
      assert.equal(now.revision, 3);
      assert.equal(now.sampleCount, 1);
      assert.equal(await store.getSample(ds.id, s1.id), undefined);
      assert.equal(await store.findLiveSampleBySha(ds.id, s1.sha256), undefined);
      assert.equal((await store.findDatasetAndLiveSample(ds.name, s1.sha256)).existing, undefined, 'a deleted sample is not found');
      assert.deepEqual(sortedIds(await store.listSamples(ds.id, { limit: 100 })), [s2.id]);

      assert.equal(await store.deleteSample(ds.id, s1.id), undefined, 'already deleted');
      assert.equal(await store.deleteSample(ds.id, 2_000_000_000), undefined);
      assert.equal(await revisionOf(ds), 3);
    });

    it('category indices are given at first appearance, survive relabels and deletes, and are never reused', async () => {
      const ds = await dataset();
      const [a, b] = (await store.addSamples(ds.id, [sample('c-a', 'alpha'), sample('c-b', 'beta')])).map(added);
      assert.deepEqual([a.categoryIndex, b.categoryIndex], [0, 1]);

      await store.relabelSample(ds.id, a.id, 'gamma'); // rev 3: gamma created, alpha now empty
      await store.deleteSample(ds.id, b.id); // rev 4: beta now empty
      const [d] = (await store.addSamples(ds.id, [sample('c-d', 'delta')])).map(added); // rev 5
      assert.equal(d.categoryIndex, 3);

      assert.deepEqual(await store.listCategories(ds.id), [
        { name: 'alpha', index: 0, count: 0, createdRevision: 1 },
        { name: 'beta', index: 1, count: 0, createdRevision: 2 },
        { name: 'gamma', index: 2, count: 1, createdRevision: 3 },
        { name: 'delta', index: 3, count: 1, createdRevision: 5 },
      ]);

      const [again] = (await store.addSamples(ds.id, [sample('c-e', 'alpha')])).map(added);
      assert.equal(again.categoryIndex, 0);
      assert.equal((await store.listCategories(ds.id))[0].count, 1);
      assert.deepEqual(await store.listCategories((await dataset()).id), []);
    });

    it('eligibleSamples sees each revision as it was: tombstones and old labels', async () => {
      const ds = await dataset();
      const [s1, s2, s3] = (
        await store.addSamples(ds.id, [
          sample('e-1', 'a', { pixelSlot: 10 }),
          sample('e-2', 'a', { pixelSlot: 11 }),
          sample('e-3', 'b', { pixelSlot: 12 }),
        ])
      ).map(added); // revisions 1..3
      await store.relabelSample(ds.id, s1.id, 'b'); // rev 4
      await store.deleteSample(ds.id, s2.id); // rev 5
      const at = (revision: number, categoryIndexes?: number[]) =>
        store.eligibleSamples(ds.id, { revision, split: 'all', categoryIndexes });

      assert.deepEqual(await at(0), []);
      assert.deepEqual(await at(1), [{ id: s1.id, categoryIndex: 0, pixelSlot: 10 }]);
      assert.deepEqual(await at(3), [
        { id: s1.id, categoryIndex: 0, pixelSlot: 10 },
        { id: s2.id, categoryIndex: 0, pixelSlot: 11 },
        { id: s3.id, categoryIndex: 1, pixelSlot: 12 },
      ]);
      assert.deepEqual(await at(4), [
        { id: s1.id, categoryIndex: 1, pixelSlot: 10 },
        { id: s2.id, categoryIndex: 0, pixelSlot: 11 },
        { id: s3.id, categoryIndex: 1, pixelSlot: 12 },
      ]);
      assert.deepEqual(await at(5), [
        { id: s1.id, categoryIndex: 1, pixelSlot: 10 },
        { id: s3.id, categoryIndex: 1, pixelSlot: 12 },
      ]);

      // Category filter applies to the label at that revision.
      assert.deepEqual((await at(3, [0])).map((s) => s.id), [s1.id, s2.id]);
      assert.deepEqual((await at(5, [0])).map((s) => s.id), []);
      assert.deepEqual((await at(5, [1])).map((s) => s.id), [s1.id, s3.id]);
      assert.deepEqual((await at(5, [0, 1])).map((s) => s.id), [s1.id, s3.id]);
      assert.deepEqual(await at(5, []), [], 'an empty list of categories selects none');
    });

    it('split filter: bucket below testPercent is test, the rest train, all/absent no filter', async () => {
      const ds = await dataset(30);
      const [b0, b29, b30, b99] = (
        await store.addSamples(ds.id, [0, 29, 30, 99].map((bucket) => sample(`split-${bucket}`, 'cat', { splitBucket: bucket })))
      ).map(added);
      const list = async (split?: 'train' | 'test' | 'all') => sortedIds(await store.listSamples(ds.id, { split, limit: 100 }));
      const eligible = async (split: 'train' | 'test' | 'all') =>
        (await store.eligibleSamples(ds.id, { revision: 4, split })).map((s) => s.id);

      assert.deepEqual(await list('test'), [b0.id, b29.id]);
      assert.deepEqual(await list('train'), [b30.id, b99.id]);
      assert.deepEqual(await list('all'), [b0.id, b29.id, b30.id, b99.id]);
      assert.deepEqual(await list(), [b0.id, b29.id, b30.id, b99.id]);
      assert.deepEqual(await eligible('test'), [b0.id, b29.id]);
      assert.deepEqual(await eligible('train'), [b30.id, b99.id]);
      assert.deepEqual(await eligible('all'), [b0.id, b29.id, b30.id, b99.id]);

      const none = await dataset(0);
      const [only] = (await store.addSamples(none.id, [sample('split-none', 'cat', { splitBucket: 0 })])).map(added);
      assert.deepEqual(await store.listSamples(none.id, { split: 'test', limit: 10 }), []);
      assert.deepEqual(sortedIds(await store.listSamples(none.id, { split: 'train', limit: 10 })), [only.id]);
    });

    it('exportPage and countEligible: the eligible samples page by page, with what an export writes of each', async () => {
      const ds = await dataset(30);
      const made = (
        await store.addSamples(ds.id, [
          sample('x-1', 'a', { pixelSlot: 0, splitBucket: 10 }),
          sample('x-2', 'a', { pixelSlot: 1, splitBucket: 70, mediaType: 'image/jpeg' }),
          sample('x-3', 'b', { pixelSlot: 2, splitBucket: 20 }),
          sample('x-4', 'b', { pixelSlot: 3, splitBucket: 90 }),
          sample('x-5', 'a', { pixelSlot: 4, splitBucket: 50 }),
        ])
      ).map(added); // revisions 1..5
      await store.relabelSample(ds.id, made[0].id, 'b'); // rev 6
      await store.deleteSample(ds.id, made[1].id); // rev 7
      for (const revision of [3, 5, 6, 7]) {
        for (const split of ['all', 'train', 'test'] as const) {
          for (const categoryIndexes of [undefined, [0], [1], [0, 1], []]) {
            const query = { revision, split, ...(categoryIndexes ? { categoryIndexes } : {}) };
            const eligible = await store.eligibleSamples(ds.id, query);
            assert.equal(await store.countEligible(ds.id, query), eligible.length, JSON.stringify(query));
            const paged = [];
            for (let afterId = 0; ; ) {
              const page = await store.exportPage(ds.id, { ...query, afterId, limit: 2 });
              assert.ok(page.length <= 2);
              if (page.length === 0) break;
              paged.push(...page);
              afterId = page.at(-1)!.id;
            }
            assert.deepEqual(paged.map(({ id, categoryIndex, pixelSlot }) => ({ id, categoryIndex, pixelSlot })), eligible, JSON.stringify(query));
          }
        }
      }
      const [first, second] = await store.exportPage(ds.id, { revision: 5, split: 'all', afterId: 0, limit: 2 });
      assert.deepEqual(first, { id: made[0].id, sha256: made[0].sha256, mediaType: 'image/png', categoryIndex: 0, pixelSlot: 0, splitBucket: 10 });
      assert.equal(second.mediaType, 'image/jpeg');
      assert.equal(second.splitBucket, 70);
      assert.equal(await store.countEligible(ds.id + 1000, { revision: 5, split: 'all' }), 0, 'no such dataset: none');
    });

    it('listSamples: category filter, ascending ids, paging by afterId', async () => {
      const ds = await dataset();
      const samples = (
        await store.addSamples(ds.id, Array.from({ length: 7 }, (_, i) => sample(`page-${i}`, i % 2 ? 'odd' : 'even')))
      ).map(added);
      const allIds = sortedIds(samples);

      const full = await store.listSamples(ds.id, { limit: 100 });
      assert.deepEqual(full.map((s) => s.id), allIds);
      assert.deepEqual(full, [...samples].sort((a, b) => a.id - b.id));

      const pages: number[][] = [];
      let afterId: number | undefined;
      for (;;) {
        const page = await store.listSamples(ds.id, { limit: 3, afterId });
        if (page.length === 0) break;
        assert.ok(page.length <= 3);
        pages.push(page.map((s) => s.id));
        afterId = page[page.length - 1].id;
      }
      assert.deepEqual(pages.flat(), allIds);
      assert.deepEqual(pages.map((p) => p.length), [3, 3, 1]);

      const odd = await store.listSamples(ds.id, { category: 'odd', limit: 100 });
      assert.deepEqual(odd.map((s) => s.id), samples.filter((s) => s.category === 'odd').map((s) => s.id).sort((a, b) => a - b));
      assert.ok(odd.every((s) => s.category === 'odd' && s.categoryIndex === 1));
      const oddPage = await store.listSamples(ds.id, { category: 'odd', limit: 2, afterId: odd[0].id });
      assert.deepEqual(oddPage.map((s) => s.id), odd.slice(1, 3).map((s) => s.id));
      assert.deepEqual(await store.listSamples(ds.id, { category: 'no-such-category', limit: 100 }), []);

      await store.relabelSample(ds.id, odd[0].id, 'even');
      const odd2 = await store.listSamples(ds.id, { category: 'odd', limit: 100 });
      assert.deepEqual(odd2.map((s) => s.id), odd.slice(1).map((s) => s.id), 'filters by the current category');
    });

    it('reservePixelSlots never hands out a slot twice, also under concurrent calls and a second connection', async () => {
      const ds = await dataset();
      const ranges: [number, number][] = [];
      const reserve = async (s: MetadataStore, count: number) => {
        const first = await s.reservePixelSlots(ds.id, count);
        assert.ok(Number.isInteger(first) && first >= 0);
        ranges.push([first, first + count]);
      };
      await reserve(store, 1);
      await reserve(store, 5);
      await Promise.all(Array.from({ length: 40 }, (_, i) => reserve(store, 1 + (i % 7))));
      const second = await backend.create();
      try {
        await second.migrate();
        await Promise.all(Array.from({ length: 20 }, (_, i) => reserve(i % 2 ? store : second, 3)));
      } finally {
        await second.close();
      }
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i][0] >= ranges[i - 1][1], `ranges ${ranges[i - 1]} and ${ranges[i]} overlap`);
      }
      assert.equal(ranges.length, 62);
      assert.equal(await revisionOf(ds), 0, 'reserving slots is not a change of the dataset');
    });

    it('deleteDataset removes the dataset and everything in it, returning it as it was', async () => {
      const ds = await dataset(0, 'del');
      const [s1] = (await store.addSamples(ds.id, [sample('del-1', 'cat'), sample('del-2', 'dog')])).map(added);
      await store.relabelSample(ds.id, s1.id, 'dog');
      await store.deleteSample(ds.id, s1.id);
      const before = (await store.getDataset(ds.name))!;

      assert.deepEqual(await store.deleteDataset(ds.name), before);
      assert.equal(before.revision, 4);
      assert.equal(before.sampleCount, 1);
      assert.equal(await store.getDataset(ds.name), undefined);
      assert.ok(!(await store.listDatasets()).some((d) => d.name === ds.name));
      assert.equal(await store.getSample(ds.id, s1.id), undefined);
      assert.equal(await store.findLiveSampleBySha(ds.id, sha('del-2')), undefined);
      assert.equal(await store.deleteDataset(ds.name), undefined);

      const { dataset: fresh, created } = await store.putDataset({ name: ds.name, width: 3, height: 3, channels: 3, testPercent: 5 });
      assert.equal(created, true);
      assert.equal(fresh.revision, 0);
      assert.equal(fresh.sampleCount, 0);
      assert.deepEqual(await store.listCategories(fresh.id), []);
      const [again] = await store.addSamples(fresh.id, [sample('del-2', 'other')]);
      assert.equal(added(again).categoryIndex, 0);
    });

    it('eligibleSamples on 100,000 samples is fast', { timeout: 120_000 }, async (t) => {
      const ds = await dataset(20, 'big');
      const N = 100_000;
      const slot = await store.reservePixelSlots(ds.id, N);
      const chunk = 10_000;
      const ids: number[] = [];
      const chunkMs: number[] = [];
      for (let start = 0; start < N; start += chunk) {
        const items = Array.from({ length: chunk }, (_, k) => {
          const i = start + k;
          return sample(`big-${i}`, `c${i % 10}`, { pixelSlot: slot + i, splitBucket: i % 100 });
        });
        const began = performance.now();
        for (const o of await store.addSamples(ds.id, items)) ids.push(added(o).id);
        chunkMs.push(performance.now() - began);
      }
      // Adding to a large dataset costs what adding to a small one does (no scan of what is there).
      const sorted = [...chunkMs].sort((a, b) => a - b);
      t.diagnostic(`addSamples of ${chunk}: ${chunkMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
      assert.ok(sorted.at(-1)! < 10 * sorted[sorted.length >> 1], 'one addSamples call was over 10 times the median');
      for (let i = 0; i < 1000; i++) await store.relabelSample(ds.id, ids[i * 50 + 3], 'c0'); // c3 -> c0
      for (let i = 0; i < 1000; i++) await store.deleteSample(ds.id, ids[i * 50 + 1]); // c1
      assert.equal(await revisionOf(ds), N + 2000);

      const time = async (revision: number, split: 'all' | 'train', categoryIndexes?: number[]) => {
        const start = performance.now();
        const result = await store.eligibleSamples(ds.id, { revision, split, categoryIndexes });
        return { result, ms: performance.now() - start };
      };
      await time(N, 'all'); // warm-up
      const current = await time(N + 2000, 'all');
      const old = await time(N, 'all');
      const train = await time(N + 1000, 'train', [0, 1]);
      const ms = (x: { ms: number }) => `${x.ms.toFixed(1)} ms`;
      t.diagnostic(`eligibleSamples over ${N}: current ${ms(current)}, old revision ${ms(old)}, train+2 categories ${ms(train)}`);

      assert.equal(current.result.length, N - 1000);
      assert.equal(old.result.length, N);
      assert.equal(old.result.filter((s) => s.categoryIndex === 0).length, N / 10);
      assert.equal(current.result.filter((s) => s.categoryIndex === 0).length, N / 10 + 1000);
      for (let i = 1; i < current.result.length; i++) assert.ok(current.result[i].id > current.result[i - 1].id);
      assert.ok(train.result.every((s) => s.categoryIndex <= 1));
      const limitMs = Number(process.env.SENSORY_TEST_ELIGIBLE_MS ?? 500);
      assert.ok(Math.max(current.ms, old.ms, train.ms) < limitMs, `eligibleSamples took over ${limitMs} ms`);
    });

    it('close is safe twice, and a closed store no longer answers', async () => {
      const extra = await backend.create();
      await extra.migrate();
      await extra.ping();
      await extra.close();
      await extra.close();
      await assert.rejects(extra.ping());
    });

    it('reopening the same database keeps everything', async () => {
      const ds = await dataset(10, 'reopen');
      const [s1, s2] = (await store.addSamples(ds.id, [sample('ro-1', 'a', { splitBucket: 5 }), sample('ro-2', 'b')])).map(added);
      await store.relabelSample(ds.id, s1.id, 'c');
      await store.deleteSample(ds.id, s2.id);
      const slot = await store.reservePixelSlots(ds.id, 4);
      const before = {
        dataset: await store.getDataset(ds.name),
        categories: await store.listCategories(ds.id),
        samples: await store.listSamples(ds.id, { limit: 10 }),
        atTwo: await store.eligibleSamples(ds.id, { revision: 2, split: 'all' }),
      };
      await store.close();

      store = await backend.create();
      await store.migrate();
      assert.deepEqual(await store.getDataset(ds.name), before.dataset);
      assert.deepEqual(await store.listCategories(ds.id), before.categories);
      assert.deepEqual(await store.listSamples(ds.id, { limit: 10 }), before.samples);
      assert.deepEqual(await store.eligibleSamples(ds.id, { revision: 2, split: 'all' }), before.atTwo);
      assert.deepEqual(before.atTwo.map((s) => s.categoryIndex), [0, 1]);
      assert.ok((await store.reservePixelSlots(ds.id, 1)) >= slot + 4);
      const [dup] = await store.addSamples(ds.id, [sample('ro-1', 'c')]);
      assert.equal(dup.kind, 'duplicate');
    });

    it('keeps the perceptual hash given at ingest, lists the samples without one, and stores hashes computed later', async () => {
      const ds = await dataset(0, 'phash');
      const [a, b, c] = (
        await store.addSamples(ds.id, [sample('ph-1', 'x', { perceptualHash: '0123456789abcdef', pixelSlot: 0 }), sample('ph-2', 'x', { pixelSlot: 1 }), sample('ph-3', 'y', { pixelSlot: 2 })])
      ).map(added);
      const missing = (await store.samplesWithoutPerceptualHash(a.id - 1, 1000)).filter((s) => s.datasetId === ds.id);
      assert.deepEqual(missing, [
        { id: b.id, datasetId: ds.id, pixelSlot: 1 },
        { id: c.id, datasetId: ds.id, pixelSlot: 2 },
      ]);
      assert.deepEqual((await store.samplesWithoutPerceptualHash(b.id, 1000)).filter((s) => s.datasetId === ds.id).map((s) => s.id), [c.id]);
      const revision = (await store.getDataset(ds.name))!.revision;
      await store.setPerceptualHashes([{ id: b.id, hash: 'fedcba9876543210' }]);
      assert.equal((await store.getDataset(ds.name))!.revision, revision, 'a hash raises no revision');
      assert.deepEqual((await store.samplesWithoutPerceptualHash(a.id - 1, 1000)).filter((s) => s.datasetId === ds.id).map((s) => s.id), [c.id]);
      await store.setPerceptualHashes([]);

      await store.relabelSample(ds.id, a.id, 'y');
      await store.deleteSample(ds.id, c.id);
      const now = await store.hashedSamples(ds.id, { revision: revision + 2, afterId: 0, limit: 10 });
      assert.deepEqual(now, [
        { id: a.id, categoryIndex: 1, splitBucket: 50, pixelSlot: 0, hash: '0123456789abcdef' },
        { id: b.id, categoryIndex: 0, splitBucket: 50, pixelSlot: 1, hash: 'fedcba9876543210' },
      ]);
      const then = await store.hashedSamples(ds.id, { revision, afterId: a.id, limit: 10 });
      assert.deepEqual(then, [
        { id: b.id, categoryIndex: 0, splitBucket: 50, pixelSlot: 1, hash: 'fedcba9876543210' },
        { id: c.id, categoryIndex: 1, splitBucket: 50, pixelSlot: 2, hash: null },
      ]);
      assert.equal((await store.hashedSamples(ds.id, { revision, afterId: 0, limit: 1 })).length, 1);
    });

    it('lists what changed between two revisions: added, deleted and relabelled samples with their labels then', async () => {
      const ds = await dataset(0, 'diff');
      const [a, b, c] = (await store.addSamples(ds.id, [sample('df-1', 'cat'), sample('df-2', 'cat'), sample('df-3', 'dog')])).map(added); // revisions 1-3
      await store.relabelSample(ds.id, a.id, 'dog'); // 4
      await store.deleteSample(ds.id, b.id); // 5
      const [d] = (await store.addSamples(ds.id, [sample('df-4', 'bird')])).map(added); // 6
      await store.relabelSample(ds.id, c.id, 'cat'); // 7
      await store.relabelSample(ds.id, c.id, 'dog'); // 8: back to where it was
      const all = await store.revisionChanges(ds.id, { from: 3, to: 8, afterId: 0, limit: 100 });
      assert.deepEqual(all, [
        { id: a.id, before: 0, after: 1 },
        { id: b.id, before: 0, after: null },
        { id: d.id, before: null, after: 2 },
      ]);
      assert.deepEqual(await store.revisionChanges(ds.id, { from: 3, to: 7, afterId: b.id, limit: 100 }), [
        { id: c.id, before: 1, after: 0 },
        { id: d.id, before: null, after: 2 },
      ]);
      assert.deepEqual(await store.revisionChanges(ds.id, { from: 0, to: 2, afterId: 0, limit: 1 }), [{ id: a.id, before: null, after: 0 }]);
      assert.deepEqual(await store.revisionChanges(ds.id, { from: 8, to: 8, afterId: 0, limit: 100 }), []);
    });
  });
}

/** Runs SQL on the store's own database, outside the port (to build a state from before a migration). */
async function rawSql(store: MetadataStore, sql: string): Promise<void> {
  if (store instanceof SqliteMetadataStore) store.database.connection.exec(sql);
  else await (store as PostgresMetadataStore).pool.query(sql);
}

/** The migration that folds dataset names (later migrations follow it: it is run again alone). */
function caseMigration(store: MetadataStore): string {
  const migrations = store instanceof SqliteMetadataStore ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
  const found = migrations.find((sql) => sql.includes('CREATE UNIQUE INDEX datasets_name_folded'));
  if (!found) throw new Error('no migration creates datasets_name_folded');
  return found;
}
