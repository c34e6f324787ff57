/**
 * The MetadataStore contract for what a trainer reports of samples (loss, class probabilities,
 * predicted class) and what a person decides about them in review. One suite, run against every
 * backend (narrowed by SENSORY_TEST_BACKENDS), in the manner of metadata-store.contract.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetRecord, MetadataStore, SampleRecord } from '../src/ports/metadata-store.js';
import { added, metadataBackends, runSamples, storeForSuite } from './support/metadata-backends.js';

const selected = await metadataBackends('feedback');
const { uniqueName, sample } = runSamples();

const AT = '2026-01-05T10:00:00.000Z';
const LATER = '2026-01-05T11:00:00.000Z';

for (const backend of selected) {
  describe(`MetadataStore feedback contract: ${backend.name}`, { skip: backend.skip }, () => {
    let store: MetadataStore;
    storeForSuite(backend, (opened) => (store = opened));

    /** The reports without labelRevision (asserted on its own below). */
    const reports = async (datasetId: number) => (await store.listFeedback(datasetId)).map(({ labelRevision: _, ...rest }) => rest);

    async function withSamples(n: number): Promise<{ ds: DatasetRecord; samples: SampleRecord[] }> {
      const { dataset: ds } = await store.putDataset({ name: uniqueName('fb'), width: 2, height: 2, channels: 1, testPercent: 0 });
      const outcomes = await store.addSamples(
        ds.id,
        Array.from({ length: n }, (_, i) => sample(`${ds.name}-${i}`, i % 2 === 0 ? 'cat' : 'dog', { pixelSlot: i })),
      );
      return { ds, samples: outcomes.map(added) };
    }

    it('stores a report per live sample, skips ids of no live sample here, and lists them by id with the current label', async () => {
      const { ds, samples } = await withSamples(3);
      const other = await withSamples(1);
      const [a, b, c] = samples;
      const stored = await store.putFeedback(
        ds.id,
        [
          { id: c.id, loss: 2.5, probs: [0.1, 0.9], predicted: 1 },
          { id: a.id, loss: 0.125 },
          { id: other.samples[0].id, loss: 1 },
          { id: 999_999_999, probs: [0.5, 0.5] },
          { id: b.id, predicted: 0 },
        ],
        3,
        AT,
      );
      assert.deepEqual(stored, [c.id, a.id, b.id]);
      const list = await reports(ds.id);
      assert.deepEqual(list, [
        { id: a.id, categoryIndex: 0, loss: 0.125, probs: null, predicted: null, revision: 3, receivedAt: AT, decision: null },
        { id: b.id, categoryIndex: 1, loss: null, probs: null, predicted: 0, revision: 3, receivedAt: AT, decision: null },
        { id: c.id, categoryIndex: 0, loss: 2.5, probs: [0.1, 0.9], predicted: 1, revision: 3, receivedAt: AT, decision: null },
      ]);
      assert.deepEqual(await store.listFeedback(other.ds.id), []);
      assert.deepEqual(await store.putFeedback(ds.id, [], 3, AT), []);
    });

    it('the latest report wins, and it clears a decision; a decision on a sample without a report keeps an empty one', async () => {
      const { ds, samples } = await withSamples(2);
      const [a, b] = samples;
      await store.putFeedback(ds.id, [{ id: a.id, loss: 3, probs: [0.2, 0.8] }], 1, AT);
      assert.equal(await store.decideFeedback(ds.id, a.id, 'confirm', AT), true);
      assert.equal(await store.decideFeedback(ds.id, b.id, 'relabel', AT), true);
      assert.equal(await store.decideFeedback(ds.id, 999_999_999, 'confirm', AT), false);
      assert.deepEqual(await reports(ds.id), [
        { id: a.id, categoryIndex: 0, loss: 3, probs: [0.2, 0.8], predicted: null, revision: 1, receivedAt: AT, decision: 'confirm' },
        { id: b.id, categoryIndex: 1, loss: null, probs: null, predicted: null, revision: ds.revision + 2, receivedAt: AT, decision: 'relabel' },
      ]);
      await store.putFeedback(ds.id, [{ id: a.id, predicted: 1 }], 2, LATER);
      assert.deepEqual((await reports(ds.id))[0], { id: a.id, categoryIndex: 0, loss: null, probs: null, predicted: 1, revision: 2, receivedAt: LATER, decision: null });
      await store.deleteSample(ds.id, b.id);
      assert.equal(await store.decideFeedback(ds.id, b.id, 'confirm', AT), false);
    });

    it('follows the sample: a relabel shows the new label, a deleted sample drops out, a deleted dataset takes its reports', async () => {
      const { ds, samples } = await withSamples(2);
      const [a, b] = samples;
      await store.putFeedback(ds.id, [{ id: a.id, loss: 1 }, { id: b.id, loss: 2 }], 0, AT);
      const [labelledAt] = await store.listFeedback(ds.id);
      assert.equal(labelledAt.labelRevision, a.revision);
      await store.relabelSample(ds.id, a.id, 'dog');
      const relabelledAt = (await store.getDataset(ds.name))!.revision;
      await store.deleteSample(ds.id, b.id);
      assert.deepEqual(
        (await store.listFeedback(ds.id)).map((f) => [f.id, f.categoryIndex]),
        [[a.id, 1]],
      );
      assert.equal((await store.listFeedback(ds.id))[0].labelRevision, relabelledAt);
      assert.ok(relabelledAt > a.revision);
      assert.deepEqual(await store.putFeedback(ds.id, [{ id: b.id, loss: 5 }], 0, AT), []);
      // The purge removes the deleted sample with its report.
      assert.equal((await store.purgeSamples(ds.id, '9999-01-01T00:00:00.000Z')).samples, 1);
      assert.equal((await store.listFeedback(ds.id)).length, 1);
      await store.deleteDataset(ds.name);
      assert.deepEqual(await store.listFeedback(ds.id), []);
    });
  });
}
