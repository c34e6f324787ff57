/**
 * The MetadataStore contract for what a group commit of uploads hands addSamples, and for the
 * lookups that many uploads make at once: groups holding the same bytes more than once, groups
 * where some items are refused between added ones, and concurrent lookups of a mix of datasets
 * and bytes. One suite, run against every backend (narrowed by SENSORY_TEST_BACKENDS).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSensoryError } from '../src/domain/errors.js';
import type { AddOutcome, DatasetRecord, MetadataStore, SampleRecord } from '../src/ports/metadata-store.js';
import { added, metadataBackends, runSamples, storeForSuite } from './support/metadata-backends.js';

const selected = await metadataBackends('groupcommit');
const { uniqueName, sha, sample } = runSamples();

/** The sample a duplicate names, or the one a conflict names. */
function named(outcome: AddOutcome): SampleRecord {
  if (outcome.kind === 'duplicate') return outcome.sample;
  if (outcome.kind === 'conflict') return outcome.existing;
  throw new Error(`no sample named by ${JSON.stringify(outcome)}`);
}

for (const backend of selected) {
  describe(`MetadataStore group commit contract: ${backend.name}`, { skip: backend.skip }, () => {
    let store: MetadataStore;
    storeForSuite(backend, (opened) => (store = opened));

    async function dataset(categories?: string[]): Promise<DatasetRecord> {
      const { dataset } = await store.putDataset({ name: uniqueName('group'), width: 2, height: 2, channels: 1, testPercent: 0, ...(categories ? { categories } : {}) });
      return dataset;
    }

    it('copies of the same bytes in one group: the first adds, every later one names it (duplicate or conflict)', async () => {
      const ds = await dataset();
      const outcomes = await store.addSamples(ds.id, [
        sample('g-a', 'cat'),
        sample('g-b', 'dog'),
        sample('g-a', 'cat'),
        sample('g-a', 'dog'),
        sample('g-b', 'dog', { pixelSlot: 9 }),
        sample('g-a', 'cat'),
      ]);
      assert.deepEqual(outcomes.map((o) => o.kind), ['added', 'added', 'duplicate', 'conflict', 'duplicate', 'duplicate']);
      const a = added(outcomes[0]);
      const b = added(outcomes[1]);
      assert.deepEqual([2, 3, 5].map((i) => named(outcomes[i])), [a, a, a]);
      assert.deepEqual(named(outcomes[4]), b, 'the record as added, not the later copy (pixel slot 0, not 9)');
      assert.deepEqual([a.revision, b.revision], [1, 2]);
      const now = (await store.getDataset(ds.name))!;
      assert.deepEqual([now.revision, now.sampleCount], [2, 2]);
      assert.deepEqual((await store.listCategories(ds.id)).map((c) => [c.name, c.count]), [['cat', 1], ['dog', 1]], 'a conflict creates no category');
    });

    it('a copy whose first was refused is judged on its own: added when it can be, then named by the copies after it', async () => {
      const ds = await dataset(['a', 'b']);
      const outcomes = await store.addSamples(ds.id, [
        sample('r-x', 'undeclared-one'),
        sample('r-x', 'b'),
        sample('r-x', 'b'),
        sample('r-y', 'c'),
        sample('r-y', 'c'),
      ]);
      assert.deepEqual(outcomes.map((o) => o.kind), ['undeclared', 'added', 'duplicate', 'undeclared', 'undeclared']);
      const x = added(outcomes[1]);
      assert.deepEqual(named(outcomes[2]), x);
      assert.deepEqual([x.revision, x.categoryIndex], [1, 1]);

      // The same for a blob gone from the index: its copy staged afresh is added.
      const blobs = await store.addSamples(ds.id, [
        sample('r-blob', 'a', { requireIndexedBlob: true }),
        sample('r-blob', 'a', { newBlob: { sha256: sha('r-blob'), segment: 3, offset: 0, length: 10 } }),
        sample('r-blob', 'a', { requireIndexedBlob: true }),
      ]);
      assert.deepEqual(blobs.map((o) => o.kind), ['blob-missing', 'added', 'duplicate']);
      assert.equal((await store.findDatasetAndLiveSample(ds.name, sha('r-blob'))).blobIndexed, true);
    });

    it('items refused in the middle of a group leave the others gapless revisions; new categories start at their first sample', async () => {
      const ds = await dataset();
      const [seed] = await store.addSamples(ds.id, [sample('m-seed', 'old')]);
      const outcomes = await store.addSamples(ds.id, [
        sample('m-1', 'old'),
        sample('m-seed', 'other'), // conflict with a live sample
        sample('m-2', 'new-1'),
        sample('m-gone', 'new-2', { requireIndexedBlob: true }), // its blob is not indexed
        sample('m-3', 'new-2'),
        sample('m-seed', 'old'), // duplicate of a live sample
        sample('m-4', 'new-1'),
      ]);
      assert.deepEqual(outcomes.map((o) => o.kind), ['added', 'conflict', 'added', 'blob-missing', 'added', 'duplicate', 'added']);
      assert.deepEqual(named(outcomes[1]), added(seed));
      assert.deepEqual(named(outcomes[5]), added(seed));
      const adds = [0, 2, 4, 6].map((i) => added(outcomes[i]));
      assert.deepEqual(adds.map((s) => s.revision), [2, 3, 4, 5]);
      assert.deepEqual(adds.map((s) => s.categoryIndex), [0, 1, 2, 1]);
      for (const s of adds) assert.deepEqual(await store.getSample(ds.id, s.id), s, 'the record answered is the record stored');
      const now = (await store.getDataset(ds.name))!;
      assert.deepEqual([now.revision, now.sampleCount], [5, 5]);
      assert.deepEqual(
        (await store.listCategories(ds.id)).map((c) => [c.name, c.index, c.count, c.createdRevision]),
        [['old', 0, 2, 1], ['new-1', 1, 2, 3], ['new-2', 2, 1, 4]],
      );
      assert.equal(await store.findLiveSampleBySha(ds.id, sha('m-gone')), undefined);
      const audited = await store.listAudit(ds.id, { limit: 100 });
      assert.deepEqual(audited.filter((entry) => entry.action === 'add').map((entry) => entry.sampleId).sort((p, q) => p - q), [added(seed), ...adds].map((s) => s.id).sort((p, q) => p - q));
    });

    it('a group into a missing dataset is SENSORY_ERR_DATASET_NOT_FOUND', async () => {
      await assert.rejects(store.addSamples(2_000_000_001, [sample('nowhere', 'cat'), sample('nowhere-2', 'cat')]), (error: unknown) => {
        assert.ok(isSensoryError(error), String(error));
        assert.equal(error.code, 'SENSORY_ERR_DATASET_NOT_FOUND');
        return true;
      });
    });

    it('lookups made at once over several datasets and bytes each get their own answer', async () => {
      const one = await dataset();
      const two = await dataset();
      const [s1] = await store.addSamples(one.id, [sample('l-1', 'cat', { newBlob: { sha256: sha('l-1'), segment: 1, offset: 0, length: 5 } })]);
      const [s2] = await store.addSamples(two.id, [sample('l-2', 'dog')]);
      const asked = [
        [one.name, 'l-1'],
        [one.name, 'l-2'],
        [two.name, 'l-2'],
        [two.name, 'l-1'],
        ['no-such-dataset', 'l-1'],
        [one.name, 'l-none'],
      ] as const;
      const many = Array.from({ length: 60 }, (_, i) => asked[i % asked.length]);
      const answers = await Promise.all(many.map(([name, label]) => store.findDatasetAndLiveSample(name, sha(label))));
      const one1 = (await store.getDataset(one.name))!;
      const two1 = (await store.getDataset(two.name))!;
      const expected = [
        { dataset: one1, existing: added(s1), blobIndexed: true },
        { dataset: one1, existing: undefined, blobIndexed: false },
        { dataset: two1, existing: added(s2), blobIndexed: false },
        { dataset: two1, existing: undefined, blobIndexed: true },
        {},
        { dataset: one1, existing: undefined, blobIndexed: false },
      ];
      answers.forEach((answer, i) => assert.deepEqual(answer, expected[i % expected.length], `lookup ${i}: ${many[i].join(' ')}`));
    });
  });
}
