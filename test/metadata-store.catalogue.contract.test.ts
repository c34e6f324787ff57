/**
 * The MetadataStore contract for what a team curating a dataset needs: declared class lists (and
 * later annotations, bulk actions, the audit log). One suite, run against every backend (narrowed
 * by SENSORY_TEST_BACKENDS), in the manner of metadata-store.contract.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresMetadataStore } from '../src/adapters/postgres/postgres.metadata-store.js';
import { isSensoryError } from '../src/domain/errors.js';
import type { Actor, DatasetRecord, MetadataStore, SampleRecord } from '../src/ports/metadata-store.js';
import { added, metadataBackends, runSamples, storeForSuite } from './support/metadata-backends.js';
import { postgresQuery, uniqueSchema, useSchema } from './support/postgres.js';

const selected = await metadataBackends('catalogue');
const { uniqueName, sample } = runSamples();

const rejectsWith = (code: string) => (error: unknown) => {
  assert.ok(isSensoryError(error), String(error));
  assert.equal(error.code, code, error.message);
  return true;
};

for (const backend of selected) {
  describe(`MetadataStore catalogue contract: ${backend.name}`, { skip: backend.skip }, () => {
    let store: MetadataStore;
    storeForSuite(backend, (opened) => (store = opened));

    async function dataset(categories?: string[]): Promise<DatasetRecord> {
      const { dataset } = await store.putDataset({ name: uniqueName('cat'), width: 2, height: 2, channels: 1, testPercent: 0, ...(categories ? { categories } : {}) });
      return dataset;
    }

    describe('declared categories', () => {
      it('a new dataset gets the declared names at indices 0, 1, … in order, at revision 0', async () => {
        const ds = await dataset(['zebra', 'my cat', 'Ähre', '猫']);
        assert.equal(ds.categoriesDeclared, true);
        assert.equal(ds.revision, 0);
        const categories = await store.listCategories(ds.id);
        assert.deepEqual(categories.map((c) => [c.name, c.index, c.count, c.createdRevision]), [
          ['zebra', 0, 0, 0],
          ['my cat', 1, 0, 0],
          ['Ähre', 2, 0, 0],
          ['猫', 3, 0, 0],
        ]);
      });

      it('uploads into a declared category keep its index; others are refused and add nothing', async () => {
        const ds = await dataset(['a', 'b']);
        const outcomes = await store.addSamples(ds.id, [sample(`${ds.name}-1`, 'b'), sample(`${ds.name}-2`, 'c'), sample(`${ds.name}-3`, 'a')]);
        assert.equal(added(outcomes[0]).categoryIndex, 1);
        assert.deepEqual(outcomes[1], { kind: 'undeclared', category: 'c' });
        assert.equal(added(outcomes[2]).categoryIndex, 0);
        const after = (await store.getDataset(ds.name))!;
        assert.equal(after.revision, 2, 'the refused sample raised nothing');
        assert.deepEqual((await store.listCategories(ds.id)).map((c) => c.name), ['a', 'b']);
      });

      it('a relabel into an undeclared category is SENSORY_ERR_UNDECLARED_CATEGORY and changes nothing', async () => {
        const ds = await dataset(['a', 'b']);
        const one = added((await store.addSamples(ds.id, [sample(`${ds.name}-r`, 'a')]))[0]);
        await assert.rejects(store.relabelSample(ds.id, one.id, 'z'), rejectsWith('SENSORY_ERR_UNDECLARED_CATEGORY'));
        assert.equal((await store.getSample(ds.id, one.id))!.category, 'a');
        assert.equal((await store.getDataset(ds.name))!.revision, 1);
        assert.equal((await store.relabelSample(ds.id, one.id, 'b'))!.categoryIndex, 1);
      });

      it('a longer list appends at the next indices (raising the revision); a list that does not begin with the categories is a conflict', async () => {
        const ds = await dataset(['a', 'b']);
        await store.addSamples(ds.id, [sample(`${ds.name}-x`, 'a')]);
        const spec = { name: ds.name, width: 2, height: 2, channels: 1 as const, testPercent: 0 };
        const same = await store.putDataset({ ...spec, categories: ['a', 'b'] });
        assert.equal(same.dataset.revision, 1, 'the same list changes nothing');
        const longer = await store.putDataset({ ...spec, categories: ['a', 'b', 'c'] });
        assert.equal(longer.created, false);
        assert.equal(longer.dataset.revision, 2);
        const categories = await store.listCategories(ds.id);
        assert.deepEqual(categories.map((c) => [c.name, c.index, c.createdRevision]), [['a', 0, 0], ['b', 1, 0], ['c', 2, 2]]);
        await assert.rejects(store.putDataset({ ...spec, categories: ['b', 'a', 'c'] }), rejectsWith('SENSORY_ERR_CATEGORY_LIST_CONFLICT'));
        await assert.rejects(store.putDataset({ ...spec, categories: ['a'] }), rejectsWith('SENSORY_ERR_CATEGORY_LIST_CONFLICT'));
        assert.equal((await store.getDataset(ds.name))!.revision, 2);
        assert.equal(added((await store.addSamples(ds.id, [sample(`${ds.name}-c`, 'c')]))[0]).categoryIndex, 2);
      });

      it('a dataset whose categories came by arrival may declare them, keeping their indices', async () => {
        const ds = await dataset();
        assert.equal(ds.categoriesDeclared, false);
        await store.addSamples(ds.id, [sample(`${ds.name}-1`, 'seven'), sample(`${ds.name}-2`, 'three')]);
        const spec = { name: ds.name, width: 2, height: 2, channels: 1 as const, testPercent: 0 };
        await assert.rejects(store.putDataset({ ...spec, categories: ['three', 'seven'] }), rejectsWith('SENSORY_ERR_CATEGORY_LIST_CONFLICT'));
        const declared = await store.putDataset({ ...spec, categories: ['seven', 'three'] });
        assert.equal(declared.dataset.categoriesDeclared, true);
        assert.equal(declared.dataset.revision, 2, 'declaring what exists appends nothing and keeps the revision');
        const [refused] = await store.addSamples(ds.id, [sample(`${ds.name}-3`, 'one')]);
        assert.equal(refused.kind, 'undeclared');
      });
    });

    describe('sample annotations', () => {
      it('a new sample keeps its filename, tags and metadata; without them it has null, [] and {}', async () => {
        const ds = await dataset();
        const [withAll, bare] = await store.addSamples(ds.id, [
          sample(`${ds.name}-a`, 'cat', { filename: 'IMG_0001.JPG', tags: ['blurry', 'night'], metadata: { camera: 'A', iso: 800 } }),
          sample(`${ds.name}-b`, 'cat'),
        ]);
        const a = added(withAll);
        assert.deepEqual([a.filename, a.tags, a.metadata], ['IMG_0001.JPG', ['blurry', 'night'], { camera: 'A', iso: 800 }]);
        const b = added(bare);
        assert.deepEqual([b.filename, b.tags, b.metadata], [null, [], {}]);
        assert.deepEqual(await store.getSample(ds.id, a.id), a);
        assert.deepEqual((await store.listSamples(ds.id, { limit: 10 })).map((s) => s.id), [a.id, b.id]);
        assert.deepEqual((await store.listSamples(ds.id, { limit: 10 }))[0], a);
      });

      it('annotateSample replaces, adds and removes tags and replaces metadata, raising no revision', async () => {
        const ds = await dataset();
        const one = added((await store.addSamples(ds.id, [sample(`${ds.name}-x`, 'cat', { tags: ['a', 'b'] })]))[0]);
        const revision = (await store.getDataset(ds.name))!.revision;
        const changed = await store.annotateSample(ds.id, one.id, { addTags: ['c', 'a'], removeTags: ['b'], metadata: { k: 1 }, filename: 'x.png' });
        assert.deepEqual([changed!.tags, changed!.metadata, changed!.filename], [['a', 'c'], { k: 1 }, 'x.png']);
        assert.deepEqual(await store.getSample(ds.id, one.id), changed);
        const replaced = await store.annotateSample(ds.id, one.id, { tags: ['z'] });
        assert.deepEqual([replaced!.tags, replaced!.metadata, replaced!.filename], [['z'], { k: 1 }, 'x.png'], 'absent fields are kept');
        assert.equal((await store.getDataset(ds.name))!.revision, revision);
        await store.deleteSample(ds.id, one.id);
        assert.equal(await store.annotateSample(ds.id, one.id, { tags: [] }), undefined, 'a deleted sample is not annotated');
        assert.equal(await store.annotateSample(ds.id, 999_999_999, { tags: [] }), undefined);
      });

      it('listSamples filters by filename part (case ignored), by tag, and searches id, SHA-256 prefix, filename and tag', async () => {
        const ds = await dataset();
        const outcomes = await store.addSamples(ds.id, [
          sample(`${ds.name}-1`, 'cat', { filename: 'Holiday_001.jpg', tags: ['beach'] }),
          sample(`${ds.name}-2`, 'dog', { filename: 'holiday_002.jpg', tags: ['beach', 'night'] }),
          sample(`${ds.name}-3`, 'cat', { filename: 'work.png', tags: ['night'] }),
          sample(`${ds.name}-4`, 'cat'),
        ]);
        const [s1, s2, s3, s4] = outcomes.map(added);
        const ids = async (query: Parameters<MetadataStore['listSamples']>[1]) => (await store.listSamples(ds.id, query)).map((s) => s.id);
        assert.deepEqual(await ids({ limit: 10, filename: 'holiday' }), [s1.id, s2.id]);
        assert.deepEqual(await ids({ limit: 10, filename: 'HOLIDAY_00' }), [s1.id, s2.id]);
        assert.deepEqual(await ids({ limit: 10, tag: 'night' }), [s2.id, s3.id]);
        assert.deepEqual(await ids({ limit: 10, tag: 'nigh' }), [], 'tags match whole');
        assert.deepEqual(await ids({ limit: 10, tag: 'beach', category: 'cat' }), [s1.id]);
        assert.deepEqual(await ids({ limit: 1, tag: 'beach', afterId: s1.id }), [s2.id], 'filters page like the rest');
        assert.deepEqual(await ids({ limit: 10, search: { text: 'work' } }), [s3.id]);
        assert.deepEqual(await ids({ limit: 10, search: { text: 'beach' } }), [s1.id, s2.id]);
        assert.deepEqual(await ids({ limit: 10, search: { text: String(s4.id), id: s4.id } }), [s4.id]);
        const prefix = s4.sha256.slice(0, 12);
        assert.deepEqual(await ids({ limit: 10, search: { text: prefix, shaPrefix: prefix } }), [s4.id]);
        assert.deepEqual(await ids({ limit: 10, search: { text: 'nothing-like-it' } }), []);
      });

      it('listSamples newest first: descending ids, paged by the last id seen, with the filters', async () => {
        const ds = await dataset();
        const made = (
          await store.addSamples(ds.id, Array.from({ length: 7 }, (_, i) => sample(`${ds.name}-n${i}`, i % 2 ? 'odd' : 'even', { tags: i < 4 ? ['early'] : [] })))
        ).map(added);
        const descending = made.map((s) => s.id).sort((a, b) => b - a);
        const ids = async (query: Parameters<MetadataStore['listSamples']>[1]) => (await store.listSamples(ds.id, query)).map((s) => s.id);
        assert.deepEqual(await ids({ limit: 100, newestFirst: true }), descending);
        const pages: number[][] = [];
        let afterId: number | undefined;
        for (;;) {
          const page = await ids({ limit: 3, afterId, newestFirst: true });
          if (page.length === 0) break;
          pages.push(page);
          afterId = page[page.length - 1];
        }
        assert.deepEqual(pages.map((p) => p.length), [3, 3, 1]);
        assert.deepEqual(pages.flat(), descending, 'every sample once, in order');
        const odd = made.filter((s) => s.category === 'odd').map((s) => s.id).sort((a, b) => b - a);
        assert.deepEqual(await ids({ limit: 100, category: 'odd', newestFirst: true }), odd);
        assert.deepEqual(await ids({ limit: 1, category: 'odd', newestFirst: true, afterId: odd[0] }), [odd[1]]);
        const early = made.slice(0, 4).map((s) => s.id).sort((a, b) => b - a);
        assert.deepEqual(await ids({ limit: 100, tag: 'early', newestFirst: true }), early);
        await store.deleteSample(ds.id, descending[0]);
        assert.deepEqual(await ids({ limit: 2, newestFirst: true }), descending.slice(1, 3), 'deleted samples are not listed');
        assert.deepEqual(await ids({ limit: 100, newestFirst: false }), [...descending.slice(1)].reverse());
      });

      describe('listSamples by category name and by filename, paged by (key, id)', () => {
        type Query = Parameters<MetadataStore['listSamples']>[1];
        const bytes = (text: string | null | undefined) => (text == null ? null : Buffer.from(text, 'utf8'));
        /** Byte-wise on UTF-8 (code point order); no filename after every filename; ties by id. */
        function byKey(orderBy: 'category' | 'filename') {
          return (x: SampleRecord, y: SampleRecord) => {
            const a = bytes(orderBy === 'category' ? x.category : x.filename);
            const b = bytes(orderBy === 'category' ? y.category : y.filename);
            if (a === null && b !== null) return 1;
            if (b === null && a !== null) return -1;
            const c = a && b ? Buffer.compare(a, b) : 0;
            return c !== 0 ? c : x.id - y.id;
          };
        }
        const keyOf = (orderBy: 'category' | 'filename', s: SampleRecord) => (orderBy === 'category' ? s.category : (s.filename ?? null));
        /** Pages through with `limit`, calling `between` after each page; returns the pages' ids. */
        async function pageAll(dsId: number, query: Omit<Query, 'limit' | 'afterId' | 'afterKey'> & { orderBy: 'category' | 'filename' }, limit: number, between?: (page: number) => Promise<void>) {
          const pages: number[][] = [];
          let last: SampleRecord | undefined;
          for (let n = 0; n < 100; n++) {
            const page = await store.listSamples(dsId, { ...query, limit, ...(last ? { afterId: last.id, afterKey: keyOf(query.orderBy, last) } : {}) });
            if (page.length === 0) break;
            pages.push(page.map((s) => s.id));
            last = page[page.length - 1];
            await between?.(n);
          }
          return pages;
        }
        // Letter case, accents and CJK: byte order is B < a < b < zebra < Ähre < 猫, whatever the database's locale.
        const CATEGORIES = ['b', 'zebra', 'B', '猫', 'a', 'Ähre', 'b', 'a', 'b'];
        const FILENAMES = ['same.png', null, 'Zed.png', 'same.png', 'écu.png', null, 'a.png', 'same.png', 'A.png', null, 'same.png', '猫.png', 'b.png'];
        async function made() {
          const ds = await dataset();
          const samples = (
            await store.addSamples(
              ds.id,
              FILENAMES.map((filename, i) => sample(`${ds.name}-k${i}`, CATEGORIES[i % CATEGORIES.length], { ...(filename ? { filename } : {}), tags: i % 3 === 0 ? ['third'] : [] })),
            )
          ).map(added);
          return { ds, samples };
        }

        for (const orderBy of ['category', 'filename'] as const) {
          it(`by ${orderBy}: every live sample once, in order, with pages of 1, 2, 3 and 5 (equal keys across page boundaries)`, async () => {
            const { ds, samples } = await made();
            const expected = [...samples].sort(byKey(orderBy)).map((s) => s.id);
            assert.deepEqual((await store.listSamples(ds.id, { limit: 100, orderBy })).map((s) => s.id), expected);
            for (const limit of [1, 2, 3, 5]) {
              const pages = await pageAll(ds.id, { orderBy }, limit);
              assert.deepEqual(pages.flat(), expected, `pages of ${limit}`);
              assert.ok(pages.slice(0, -1).every((p) => p.length === limit));
            }
          });

          it(`by ${orderBy}: with filters (category, tag, filename part, search)`, async () => {
            const { ds, samples } = await made();
            const expect = (keep: (s: SampleRecord) => boolean) => samples.filter(keep).sort(byKey(orderBy)).map((s) => s.id);
            assert.deepEqual((await pageAll(ds.id, { orderBy, category: 'b' }, 2)).flat(), expect((s) => s.category === 'b'));
            assert.deepEqual((await pageAll(ds.id, { orderBy, tag: 'third' }, 1)).flat(), expect((s) => s.tags.includes('third')));
            assert.deepEqual((await pageAll(ds.id, { orderBy, filename: 'PNG' }, 2)).flat(), expect((s) => s.filename != null));
            assert.deepEqual((await pageAll(ds.id, { orderBy, search: { text: 'same' } }, 3)).flat(), expect((s) => s.filename === 'same.png'));
          });

          it(`by ${orderBy}: deletes between pages neither repeat nor skip the others`, async () => {
            const { ds, samples } = await made();
            const order = [...samples].sort(byKey(orderBy));
            const gone = new Set<number>();
            const pages = await pageAll(ds.id, { orderBy }, 2, async (n) => {
              if (n !== 0) return;
              // One already seen (the page's last, the cursor's own sample), one ahead, one further on.
              for (const s of [order[1], order[2], order[9]]) {
                await store.deleteSample(ds.id, s.id);
                gone.add(s.id);
              }
            });
            const expected = order.filter((s, i) => i < 2 || !gone.has(s.id)).map((s) => s.id);
            assert.deepEqual(pages.flat(), expected);
          });
        }

        it('by filename: samples without a filename come last, and a cursor among them pages by id', async () => {
          const { ds, samples } = await made();
          const none = samples.filter((s) => s.filename == null).map((s) => s.id).sort((a, b) => a - b);
          const all = (await store.listSamples(ds.id, { limit: 100, orderBy: 'filename' })).map((s) => s.id);
          assert.deepEqual(all.slice(-none.length), none);
          assert.deepEqual((await store.listSamples(ds.id, { limit: 100, orderBy: 'filename', afterId: none[0], afterKey: null })).map((s) => s.id), none.slice(1));
        });
      });
    });

    describe('bulk actions and the audit log', () => {
      const alice: Actor = { name: 'alice', roles: ['read', 'write'] };
      const boss: Actor = { name: 'boss', roles: ['admin'] };
      async function filled(n: number, categories?: string[]) {
        const ds = await dataset(categories);
        const outcomes = await store.addSamples(ds.id, Array.from({ length: n }, (_, i) => sample(`${ds.name}-${i}`, i % 2 ? 'odd' : 'even', { actor: alice, tags: i === 0 ? ['keep'] : [] })));
        return { ds, samples: outcomes.map(added) };
      }

      it('a bulk relabel is one revision with a result per item, recorded for undo and in the audit log', async () => {
        const { ds, samples } = await filled(4);
        const before = (await store.getDataset(ds.name))!.revision;
        const outcome = await store.applyBulk(ds.id, [samples[0].id, samples[1].id, samples[2].id, 999_999_999, samples[0].id], { kind: 'relabel', category: 'odd' }, boss);
        assert.deepEqual(outcome.results, [
          { id: samples[0].id, status: 'changed' },
          { id: samples[1].id, status: 'unchanged' },
          { id: samples[2].id, status: 'changed' },
          { id: 999_999_999, status: 'not_found' },
        ]);
        assert.equal(outcome.action.revision, before + 1);
        assert.deepEqual([outcome.action.kind, outcome.action.changed, outcome.action.actor, outcome.action.undoneBy], ['relabel', 2, boss, null]);
        assert.equal((await store.getDataset(ds.name))!.revision, before + 1);
        assert.equal((await store.getSample(ds.id, samples[0].id))!.category, 'odd');
        const atBefore = await store.eligibleSamples(ds.id, { revision: before, split: 'all' });
        assert.deepEqual(atBefore.map((e) => e.categoryIndex), [0, 1, 0, 1], 'the snapshot before keeps its labels');
        const log = await store.listAudit(ds.id, { limit: 10 });
        assert.deepEqual(log.slice(0, 2).map((e) => [e.action, e.actor.name, e.bulkId, e.revision, e.detail]), [
          ['relabel', 'boss', outcome.action.id, before + 1, { from: 'even', to: 'odd' }],
          ['relabel', 'boss', outcome.action.id, before + 1, { from: 'even', to: 'odd' }],
        ]);
        assert.deepEqual(log.slice(2).map((e) => [e.action, e.actor.name, e.detail]), [
          ['add', 'alice', { category: 'odd' }],
          ['add', 'alice', { category: 'even' }],
          ['add', 'alice', { category: 'odd' }],
          ['add', 'alice', { category: 'even' }],
        ]);
        const one = await store.listAudit(ds.id, { limit: 10, sampleId: samples[0].id });
        assert.deepEqual(one.map((e) => e.action), ['relabel', 'add']);
        const paged = await store.listAudit(ds.id, { limit: 2, beforeId: log[1].id });
        assert.deepEqual(paged.map((e) => e.id), [log[2].id, log[3].id]);

        const undone = await store.undoBulk(ds.id, outcome.action.id, alice);
        assert.deepEqual(undone.results, [
          { id: samples[0].id, status: 'changed' },
          { id: samples[2].id, status: 'changed' },
        ]);
        assert.equal(undone.action.kind, 'undo');
        assert.equal(undone.action.undoes, outcome.action.id);
        assert.equal(undone.action.revision, before + 2);
        assert.equal((await store.getSample(ds.id, samples[0].id))!.category, 'even');
        const actions = await store.listBulkActions(ds.id, 10);
        assert.deepEqual(actions.map((a) => [a.kind, a.undoneBy]), [['undo', null], ['relabel', undone.action.id]]);
        await assert.rejects(store.undoBulk(ds.id, outcome.action.id, alice), rejectsWith('SENSORY_ERR_UNDO_CONFLICT'));
        await assert.rejects(store.undoBulk(ds.id, undone.action.id, alice), rejectsWith('SENSORY_ERR_UNDO_CONFLICT'));
        await assert.rejects(store.undoBulk(ds.id, 987_654_321, alice), rejectsWith('SENSORY_ERR_BULK_ACTION_NOT_FOUND'));
      });

      it('a bulk delete is one revision; its undo brings the samples back as new samples, the same bytes and label', async () => {
        const { ds, samples } = await filled(3);
        const before = (await store.getDataset(ds.name))!;
        const outcome = await store.applyBulk(ds.id, samples.map((s) => s.id), { kind: 'delete' }, boss);
        assert.ok(outcome.results.every((r) => r.status === 'changed'));
        const after = (await store.getDataset(ds.name))!;
        assert.deepEqual([after.revision, after.sampleCount], [before.revision + 1, 0]);
        const undone = await store.undoBulk(ds.id, outcome.action.id, boss);
        assert.ok(undone.results.every((r) => r.status === 'restored' && r.newId && !samples.some((s) => s.id === r.newId)));
        const restored = (await store.getDataset(ds.name))!;
        assert.deepEqual([restored.revision, restored.sampleCount], [before.revision + 2, 3]);
        const live = await store.listSamples(ds.id, { limit: 10 });
        assert.deepEqual(live.map((s) => [s.sha256, s.category, s.tags]), samples.map((s) => [s.sha256, s.category, s.tags]));
        const history = await store.listAudit(ds.id, { limit: 1, sampleId: undone.results[0].newId });
        assert.deepEqual(history[0].detail, { from: samples[0].id, category: samples[0].category });
      });

      it('bulk tags raise no revision; a later action makes an earlier one impossible to undo', async () => {
        const { ds, samples } = await filled(2);
        const before = (await store.getDataset(ds.name))!.revision;
        const tagged = await store.applyBulk(ds.id, samples.map((s) => s.id), { kind: 'tag', tags: ['keep', 'new'] }, alice);
        assert.deepEqual(tagged.results.map((r) => r.status), ['changed', 'changed']);
        assert.deepEqual((await store.getSample(ds.id, samples[0].id))!.tags, ['keep', 'new']);
        assert.equal((await store.getDataset(ds.name))!.revision, before);
        const untagged = await store.applyBulk(ds.id, [samples[1].id], { kind: 'untag', tags: ['new', 'absent'] }, alice);
        assert.deepEqual(untagged.results, [{ id: samples[1].id, status: 'changed' }]);
        await assert.rejects(store.undoBulk(ds.id, tagged.action.id, alice), rejectsWith('SENSORY_ERR_UNDO_CONFLICT'));
        await store.undoBulk(ds.id, untagged.action.id, alice);
        assert.deepEqual((await store.getSample(ds.id, samples[1].id))!.tags, ['keep', 'new']);
      });

      it('a bulk relabel into a category a declaring dataset lacks changes nothing', async () => {
        const { ds, samples } = await filled(2, ['even', 'odd']);
        await assert.rejects(store.applyBulk(ds.id, [samples[0].id], { kind: 'relabel', category: 'other' }, alice), rejectsWith('SENSORY_ERR_UNDECLARED_CATEGORY'));
        assert.deepEqual(await store.listBulkActions(ds.id, 5), []);
      });

      it('single relabels, deletes and annotations are in the audit log with their actor', async () => {
        const { ds, samples } = await filled(2);
        await store.relabelSample(ds.id, samples[0].id, 'third', alice);
        await store.annotateSample(ds.id, samples[0].id, { tags: ['x'] }, alice);
        await store.deleteSample(ds.id, samples[1].id, boss);
        const log = await store.listAudit(ds.id, { limit: 3 });
        assert.deepEqual(log.map((e) => [e.sampleId, e.action, e.actor.name, e.detail]), [
          [samples[1].id, 'delete', 'boss', { category: 'odd' }],
          [samples[0].id, 'annotate', 'alice', { tags: ['x'] }],
          [samples[0].id, 'relabel', 'alice', { from: 'even', to: 'third' }],
        ]);
        assert.ok(log.every((e) => !Number.isNaN(Date.parse(e.at))));
      });
    });
  });
}

const postgres = selected.find((b) => b.name === 'postgres');
describe('PostgreSQL sorts names by code point whatever the collation of the columns', { skip: postgres ? postgres.skip : 'PostgreSQL not selected' }, () => {
  it('with the names and filenames in an ICU English collation, the order stays byte-wise', async () => {
    const schema = uniqueSchema('collation');
    const store = new PostgresMetadataStore(await useSchema(schema));
    try {
      await store.migrate();
      // What a database created with a language's locale would give (there, a < Ähre < b < B).
      await postgresQuery(`ALTER TABLE ${schema}.categories ALTER COLUMN name TYPE text COLLATE "en-x-icu"`);
      await postgresQuery(`ALTER TABLE ${schema}.samples ALTER COLUMN filename TYPE text COLLATE "en-x-icu"`);
      const { dataset: ds } = await store.putDataset({ name: uniqueName('collation'), width: 2, height: 2, channels: 1, testPercent: 0 });
      const names = ['b', 'Ähre', 'B', 'a', 'zebra', '猫'];
      const made = (await store.addSamples(ds.id, names.map((name, i) => sample(`${ds.name}-${i}`, name, { filename: `${name}.png` })))).map(added);
      const byteOrder = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(byteOrder, ['B', 'a', 'b', 'zebra', 'Ähre', '猫']);
      for (const orderBy of ['category', 'filename'] as const) {
        const listed = (await store.listSamples(ds.id, { limit: 100, orderBy })).map((s) => s.category);
        assert.deepEqual(listed, byteOrder, orderBy);
        const paged: string[] = [];
        let last: SampleRecord | undefined;
        for (;;) {
          const page = await store.listSamples(ds.id, { limit: 1, orderBy, ...(last ? { afterId: last.id, afterKey: orderBy === 'category' ? last.category : last.filename } : {}) });
          if (page.length === 0) break;
          paged.push(page[0].category);
          last = page[0];
        }
        assert.deepEqual(paged, byteOrder, `${orderBy}, in pages of one`);
      }
      assert.equal(made.length, names.length);
    } finally {
      await store.close();
    }
  });
});
