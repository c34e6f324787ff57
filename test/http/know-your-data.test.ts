/**
 * Knowing a dataset: near-duplicate groups and the leakage report from the perceptual hashes
 * computed at ingest (and by the background pass for samples stored before), and the diff
 * between two revisions. Real app, real SQLite, real files, real images re-encoded by sharp.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { perceptualHash } from '../../src/domain/perceptual-hash.js';
import type { SqliteMetadataStore } from '../../src/adapters/sqlite/sqlite.metadata-store.js';
import { HashBackfill } from '../../src/services/hash-backfill.service.js';
import { assertError, createDataset, removeDir, startTestApp, type TestApp } from '../support/harness.js';
import { DIGIT_HANDS, digitPng, jpeg, resized, scenePng, shifted } from '../support/look-alike-images.js';
import { dropSchemas, postgresQuery, postgresSkip, uniqueSchema, useSchema } from '../support/postgres.js';

interface Member {
  id: number;
  category: string;
  split: 'train' | 'test';
  hash: string;
  distance: number;
}
interface Group {
  members: Member[];
  identical?: boolean;
  straddlesSplit: boolean;
  categories?: string[];
}

describe('know your data', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  async function upload(dataset: string, category: string, bytes: Buffer, query = ''): Promise<{ statusCode: number; body: { id: number; split: 'train' | 'test' } & Record<string, unknown> }> {
    const res = await t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/samples?category=${category}${query}`, headers: { ...t.auth('admin'), 'content-type': sharpType(bytes) }, payload: bytes });
    return { statusCode: res.statusCode, body: res.json() };
  }

  async function add(dataset: string, category: string, bytes: Buffer): Promise<{ id: number; split: 'train' | 'test' }> {
    const res = await upload(dataset, category, bytes);
    assert.equal(res.statusCode, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function get(url: string, kind: 'admin' | 'read' = 'read') {
    return t.app.inject({ method: 'GET', url, headers: t.auth(kind) });
  }

  async function groups(dataset: string, distance: number): Promise<Group[]> {
    const res = await get(`/v1/datasets/${dataset}/duplicates?distance=${distance}&limit=1000`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().groups;
  }

  const idsOf = (list: Group[]) => list.map((g) => g.members.map((m) => m.id).sort((a, b) => a - b));

  test('the hash stored at ingest is the hash of the stored pixels', async () => {
    await createDataset(t, 'kyd-hash', { width: 64, height: 64, channels: 3 });
    const png = await scenePng(41, 100);
    const sample = await add('kyd-hash', 'a', png);
    const copy = await add('kyd-hash', 'a', await jpeg(png, 95));
    const stored = await sharp(png).resize(64, 64, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    const [group] = await groups('kyd-hash', 12);
    const member = group.members.find((m) => m.id === sample.id)!;
    assert.ok(group.members.some((m) => m.id === copy.id));
    assert.equal(member.hash, perceptualHash(new Uint8Array(stored), { width: 64, height: 64, channels: 3 }));
  });

  test('near-duplicates are found across resizing, re-encoding to JPEG q90 and small shifts; different scenes are not grouped', async () => {
    await createDataset(t, 'kyd-scenes', { width: 64, height: 64, channels: 3 });
    const originals: number[] = [];
    for (let seed = 1; seed <= 8; seed++) originals.push((await add('kyd-scenes', `c${seed % 3}`, await scenePng(seed))).id);
    const big = await add('kyd-scenes', 'c1', await scenePng(1, 160)); // drawn at 160×160, stored at 64×64
    const small = await add('kyd-scenes', 'c2', await resized(await scenePng(2), 48));
    const q90 = await add('kyd-scenes', 'c0', await jpeg(await scenePng(3), 90));
    const moved = await add('kyd-scenes', 'c1', await shifted(await scenePng(4), 1, 1));

    const expected = [
      [originals[0], big.id],
      [originals[1], small.id],
      [originals[2], q90.id],
      [originals[3], moved.id],
    ];
    assert.deepEqual(idsOf(await groups('kyd-scenes', 10)), expected);
    // At 4 bits the resized and re-encoded copies are found; the shifted one needs more.
    const tight = idsOf(await groups('kyd-scenes', 4));
    for (const pair of expected.slice(0, 3)) assert.ok(tight.some((g) => pair.every((id) => g.includes(id))), `pair ${pair} at distance 4`);

    // Paging: one group per page, in order, the cursor carrying on.
    const seen: number[][] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const res = await get(`/v1/datasets/kyd-scenes/duplicates?distance=10&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      const body = res.json();
      assert.equal(body.totals.groups, 4);
      assert.equal(body.totals.samples, 8);
      assert.equal(body.hashed, 12);
      assert.equal(body.unhashed, 0);
      seen.push(...idsOf(body.groups));
      if (!body.nextCursor) break;
      cursor = body.nextCursor;
    }
    assert.deepEqual(seen, expected);
  });

  test('different hands of the same digit are not near-duplicates; a resized or re-encoded copy of one is', async () => {
    await createDataset(t, 'kyd-digits', { width: 28, height: 28, channels: 1 });
    const hands: number[] = [];
    for (const [digit, list] of Object.entries(DIGIT_HANDS)) {
      for (let hand = 0; hand < list.length; hand++) hands.push((await add('kyd-digits', digit, await digitPng(digit, hand))).id);
    }
    assert.deepEqual(await groups('kyd-digits', 12), [], 'no two different hands within 12 bits');
    const copy = await add('kyd-digits', 'seven', await digitPng('seven', 1, 112));
    const recoded = await add('kyd-digits', 'three', await jpeg(await digitPng('three', 0), 90));
    assert.deepEqual(idsOf(await groups('kyd-digits', 4)), [
      [hands[1], copy.id],
      [hands[3], recoded.id],
    ]);
  });

  test('pixel-identical samples (the same picture in other bytes) are marked identical', async () => {
    await createDataset(t, 'kyd-exact', { width: 32, height: 32, channels: 3 });
    const png = await scenePng(77, 32);
    const a = await add('kyd-exact', 'x', png);
    const b = await add('kyd-exact', 'x', await sharp(png).png({ compressionLevel: 1 }).toBuffer()); // other bytes, same pixels
    const c = await add('kyd-exact', 'x', await jpeg(png, 80));
    const [group] = await groups('kyd-exact', 12);
    assert.deepEqual(group.members.map((m) => m.id).sort((x, y) => x - y), [a.id, b.id, c.id].sort((x, y) => x - y));
    assert.equal(group.identical, false, 'the JPEG copy has other pixels');
    // At distance 0 the JPEG copy is out (its hash differs); the two PNGs are the same pixels.
    const [exact] = await groups('kyd-exact', 0);
    assert.deepEqual(exact.members.map((m) => m.id), [a.id, b.id]);
    assert.equal(exact.identical, true);
  });

  test('the leakage report lists groups straddling the split and groups with conflicting labels, counted first', async () => {
    await createDataset(t, 'kyd-leak', { width: 64, height: 64, channels: 3, testPercent: 50 });
    // A scene whose re-encodings land in both splits (the split follows the bytes' SHA-256).
    const original = await add('kyd-leak', 'cat', await scenePng(11));
    let leak: { id: number; split: string } | undefined;
    for (let quality = 95; quality > 60 && !leak; quality -= 1) {
      const copy = await add('kyd-leak', 'cat', await jpeg(await scenePng(11), quality));
      if (copy.split !== original.split) leak = copy;
    }
    assert.ok(leak, 'some re-encoding landed in the other split');
    // A scene and its copy with another label, in the same split.
    const dog = await add('kyd-leak', 'dog', await scenePng(12));
    let conflict: { id: number; split: string } | undefined;
    for (let size = 63; size > 40 && !conflict; size--) {
      const res = await upload('kyd-leak', 'cat', await resized(await scenePng(12), size));
      if (res.body.split === dog.split) conflict = res.body;
      else await t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-leak/samples/${res.body.id}`, headers: t.auth('admin') });
    }
    assert.ok(conflict);
    // A clean pair: same label, same split.
    const clean = await add('kyd-leak', 'bird', await scenePng(13));
    for (let size = 63; size > 40; size--) {
      const res = await upload('kyd-leak', 'bird', await resized(await scenePng(13), size));
      if (res.body.split === clean.split) break;
      await t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-leak/samples/${res.body.id}`, headers: t.auth('admin') });
    }
    await add('kyd-leak', 'fish', await scenePng(14));

    const res = await get('/v1/datasets/kyd-leak/leakage?distance=8');
    assert.equal(res.statusCode, 200, res.body);
    const report = res.json();
    assert.equal(report.splitLeaks.groups, 1);
    assert.equal(report.labelConflicts.groups, 1);
    assert.equal(report.labelConflicts.samples, 2);
    assert.equal(report.groups.length, 2);
    const [first, second] = report.groups as Group[];
    assert.equal(first.straddlesSplit, true);
    assert.ok(first.members.some((m) => m.id === original.id) && first.members.some((m) => m.id === leak!.id));
    assert.deepEqual(new Set(first.members.map((m) => m.split)), new Set(['train', 'test']));
    // At the revision of the original alone there was nothing to leak.
    const early = (await get(`/v1/datasets/kyd-leak/leakage?distance=8&revision=${1}`)).json();
    assert.deepEqual({ revision: early.revision, hashed: early.hashed, leaks: early.splitLeaks.groups }, { revision: 1, hashed: 1, leaks: 0 });
    assert.equal(first.categories, undefined);
    assert.equal(second.straddlesSplit, false);
    assert.deepEqual(second.categories?.sort(), ['cat', 'dog']);
    // The clean pair is a duplicate group, not a leak.
    const all = await groups('kyd-leak', 8);
    assert.equal(all.length, 3);
  });

  test('the diff between revisions counts, per category, what was added, deleted and relabelled, then pages the samples', async () => {
    await createDataset(t, 'kyd-diff', { width: 16, height: 16, channels: 3 });
    const s: number[] = [];
    for (let i = 0; i < 5; i++) s.push((await add('kyd-diff', i < 3 ? 'cat' : 'dog', await scenePng(100 + i, 16))).id); // revisions 1-5
    const patch = (id: number, category: string) => t.app.inject({ method: 'PATCH', url: `/v1/datasets/kyd-diff/samples/${id}`, headers: t.auth('admin'), payload: { category } });
    const remove = (id: number) => t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-diff/samples/${id}`, headers: t.auth('admin') });
    assert.equal((await patch(s[0], 'dog')).statusCode, 200); // 6
    assert.equal((await patch(s[1], 'bird')).statusCode, 200); // 7: a new category
    assert.equal((await remove(s[3])).statusCode, 200); // 8
    const late = await add('kyd-diff', 'cat', await scenePng(200, 16)); // 9
    assert.equal((await patch(s[2], 'dog')).statusCode, 200); // 10
    assert.equal((await patch(s[2], 'cat')).statusCode, 200); // 11: back where it was

    const res = await get('/v1/datasets/kyd-diff/diff?from=5&to=11');
    assert.equal(res.statusCode, 200, res.body);
    const diff = res.json();
    assert.deepEqual(diff.totals, { added: 1, deleted: 1, relabelled: 2 });
    assert.deepEqual(diff.categories, [
      { name: 'cat', index: 0, added: 1, deleted: 0, relabelledIn: 0, relabelledOut: 2 },
      { name: 'dog', index: 1, added: 0, deleted: 1, relabelledIn: 1, relabelledOut: 0 },
      { name: 'bird', index: 2, added: 0, deleted: 0, relabelledIn: 1, relabelledOut: 0 },
    ]);
    assert.deepEqual(diff.relabels, [
      { from: 'cat', to: 'dog', count: 1 },
      { from: 'cat', to: 'bird', count: 1 },
    ]);
    assert.deepEqual(diff.changes, [
      { id: s[0], change: 'relabelled', from: 'cat', to: 'dog' },
      { id: s[1], change: 'relabelled', from: 'cat', to: 'bird' },
      { id: s[3], change: 'deleted', category: 'dog' },
      { id: late.id, change: 'added', category: 'cat' },
    ]);
    // A revision in between sees s[2] relabelled; paging by one gives the same changes in order.
    const mid = (await get('/v1/datasets/kyd-diff/diff?from=9&to=10')).json();
    assert.deepEqual(mid.changes, [{ id: s[2], change: 'relabelled', from: 'cat', to: 'dog' }]);
    const paged: unknown[] = [];
    let cursor = '';
    for (let i = 0; i < 10; i++) {
      const page = (await get(`/v1/datasets/kyd-diff/diff?from=5&to=11&limit=1${cursor ? `&cursor=${cursor}` : ''}`)).json();
      assert.deepEqual(page.totals, diff.totals);
      paged.push(...page.changes);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(paged, diff.changes);
    assert.deepEqual((await get('/v1/datasets/kyd-diff/diff?from=11&to=11')).json().changes, []);

    // Once the deleted sample is purged, revisions before its deletion cannot be compared.
    const purge = await t.app.inject({ method: 'POST', url: '/v1/admin/compaction', headers: t.auth('admin'), payload: { retentionSeconds: 0 } });
    assert.equal(purge.statusCode, 200, purge.body);
    const gone = assertError(await get('/v1/datasets/kyd-diff/diff?from=5&to=11'), 422, 'SENSORY_ERR_REVISION_PURGED');
    assert.match(gone.error.message, /from 5/);
    assert.deepEqual((await get('/v1/datasets/kyd-diff/diff?from=8&to=11')).json().totals, { added: 1, deleted: 0, relabelled: 0 });
  });

  test('wrong inputs to every report: a clear 4xx naming the field, and nothing changed', async () => {
    await createDataset(t, 'kyd-wrong', { width: 16, height: 16, channels: 3 });
    await add('kyd-wrong', 'a', await scenePng(300, 16));
    const before = (await get('/v1/datasets/kyd-wrong')).json();
    const cases: [string, number, string, RegExp][] = [
      ['/v1/datasets/kyd-wrong/duplicates?distance=13', 400, 'SENSORY_ERR_BAD_REQUEST', /distance/],
      ['/v1/datasets/kyd-wrong/duplicates?distance=-1', 400, 'SENSORY_ERR_BAD_REQUEST', /distance/],
      ['/v1/datasets/kyd-wrong/duplicates?distance=near', 400, 'SENSORY_ERR_BAD_REQUEST', /distance/],
      ['/v1/datasets/kyd-wrong/duplicates?limit=0', 400, 'SENSORY_ERR_BAD_REQUEST', /limit/],
      ['/v1/datasets/kyd-wrong/duplicates?cursor=nonsense', 400, 'SENSORY_ERR_BAD_REQUEST', /cursor/],
      ['/v1/datasets/kyd-wrong/duplicates?threshold=3', 400, 'SENSORY_ERR_BAD_REQUEST', /threshold/],
      ['/v1/datasets/kyd-wrong/leakage?distance=99', 400, 'SENSORY_ERR_BAD_REQUEST', /distance/],
      ['/v1/datasets/kyd-wrong/leakage?cursor=%21', 400, 'SENSORY_ERR_BAD_REQUEST', /cursor/],
      ['/v1/datasets/kyd-wrong/duplicates?revision=2', 422, 'SENSORY_ERR_UNKNOWN_REVISION', /revision 2/],
      ['/v1/datasets/kyd-wrong/leakage?revision=-1', 400, 'SENSORY_ERR_BAD_REQUEST', /revision/],
      ['/v1/datasets/no-such-set/duplicates', 404, 'SENSORY_ERR_DATASET_NOT_FOUND', /no-such-set/],
      ['/v1/datasets/bad%20name/leakage', 400, 'SENSORY_ERR_INVALID_NAME', /dataset/],
      ['/v1/datasets/kyd-wrong/diff?to=1', 400, 'SENSORY_ERR_BAD_REQUEST', /from/],
      ['/v1/datasets/kyd-wrong/diff?from=0', 400, 'SENSORY_ERR_BAD_REQUEST', /to/],
      ['/v1/datasets/kyd-wrong/diff?from=1&to=0', 400, 'SENSORY_ERR_BAD_REQUEST', /from/],
      ['/v1/datasets/kyd-wrong/diff?from=x&to=1', 400, 'SENSORY_ERR_BAD_REQUEST', /from/],
      ['/v1/datasets/kyd-wrong/diff?from=0&to=2', 422, 'SENSORY_ERR_UNKNOWN_REVISION', /to 2/],
      ['/v1/datasets/kyd-wrong/diff?from=0&to=1&limit=1001', 400, 'SENSORY_ERR_BAD_REQUEST', /limit/],
      ['/v1/datasets/kyd-wrong/diff?from=0&to=1&cursor=zz', 400, 'SENSORY_ERR_BAD_REQUEST', /cursor/],
      ['/v1/datasets/no-such-set/diff?from=0&to=0', 404, 'SENSORY_ERR_DATASET_NOT_FOUND', /no-such-set/],
    ];
    for (const [url, status, code, field] of cases) {
      const res = await get(url);
      const body = assertError(res, status, code);
      assert.match(body.error.message, field, `${url}: ${res.body}`);
    }
    // An empty dataset has empty reports.
    await createDataset(t, 'kyd-empty', { width: 8, height: 8, channels: 1 });
    const empty = (await get('/v1/datasets/kyd-empty/duplicates')).json();
    assert.deepEqual({ groups: empty.groups, totals: empty.totals, hashed: empty.hashed }, { groups: [], totals: { groups: 0, samples: 0 }, hashed: 0 });
    assert.deepEqual((await get('/v1/datasets/kyd-empty/leakage')).json().splitLeaks, { groups: 0, samples: 0 });
    assert.deepEqual((await get('/v1/datasets/kyd-empty/diff?from=0&to=0')).json().totals, { added: 0, deleted: 0, relabelled: 0 });

    const noKey = await t.app.inject({ method: 'GET', url: '/v1/datasets/kyd-wrong/duplicates' });
    assertError(noKey, 401, 'SENSORY_ERR_UNAUTHORIZED');
    assert.deepEqual((await get('/v1/datasets/kyd-wrong')).json(), before);
  });

  test('samples stored without a hash get one from the background pass, which resumes where it stopped', async () => {
    await createDataset(t, 'kyd-backfill', { width: 32, height: 32, channels: 3 });
    for (let seed = 0; seed < 12; seed++) await add('kyd-backfill', 'a', await scenePng(500 + seed, 32));
    const copy = await add('kyd-backfill', 'a', await jpeg(await scenePng(500, 32), 90));
    const reference = (await get('/v1/datasets/kyd-backfill/duplicates?distance=12')).json();
    assert.equal(reference.totals.groups, 1);
    const store = t.runtime.store as SqliteMetadataStore;
    const db = store.database.connection;
    const hashes = () => db.prepare('SELECT s.id, s.phash FROM samples s JOIN datasets d ON d.id = s.dataset_id WHERE d.name = ? ORDER BY s.id').all('kyd-backfill') as { id: number; phash: string | null }[];
    const computed = hashes();
    // As if stored by a release that did not hash: the report leaves them out and says so.
    db.exec(`UPDATE samples SET phash = NULL WHERE dataset_id = (SELECT id FROM datasets WHERE name = 'kyd-backfill')`);
    // (Hashes never go back to NULL in service: the index kept in memory is dropped as a restart would.)
    t.runtime.deps.nearDuplicates.forgetDataset((await t.runtime.store.getDataset('kyd-backfill'))!.id);
    const waiting = (await get('/v1/datasets/kyd-backfill/duplicates?distance=12')).json();
    assert.equal(waiting.unhashed, 13);
    assert.equal(waiting.hashed, 0);
    // A pass stopped after its first step (batch of 5) leaves the rest, and a new pass finishes them.
    const partial = new HashBackfill(store, t.runtime.pixels, () => undefined, { batch: 5, pauseMs: 60_000 });
    partial.start();
    for (let i = 0; i < 200 && partial.progress.hashed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await partial.stop();
    assert.equal(hashes().filter((row) => row.phash === null).length, 8);
    const resumed = await new HashBackfill(store, t.runtime.pixels, () => undefined, { batch: 5 }).runToEnd();
    assert.equal(resumed.hashed, 8);
    assert.deepEqual(hashes(), computed);
    const after = (await get('/v1/datasets/kyd-backfill/duplicates?distance=12')).json();
    assert.deepEqual(after.groups, reference.groups);
    assert.ok(after.groups[0].members.some((m: Member) => m.id === copy.id));
  });
});

function sharpType(bytes: Buffer): string {
  return bytes[0] === 0xff ? 'image/jpeg' : 'image/png';
}

describe('an upload refused as a near-duplicate', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    await createDataset(t, 'kyd-reject', { width: 64, height: 64, channels: 3 });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const post = (bytes: Buffer, query: string, category = 'a') =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/kyd-reject/samples?category=${category}${query}`, headers: { ...t.auth('admin'), 'content-type': sharpType(bytes) }, payload: bytes });
  const revision = async () => (await t.app.inject({ method: 'GET', url: '/v1/datasets/kyd-reject', headers: t.auth('read') })).json().revision as number;

  test('answers 409 with the matching sample id and stores nothing; a distinct image, or no option, is stored', async () => {
    const original = await post(await scenePng(61), '&rejectNearDuplicate=4');
    assert.equal(original.statusCode, 201, original.body);
    const id = original.json().id as number;
    const other = await post(await scenePng(62), '&rejectNearDuplicate=4');
    assert.equal(other.statusCode, 201, other.body);
    const before = await revision();

    const copy = await jpeg(await scenePng(61), 90);
    const refused = assertError(await post(copy, '&rejectNearDuplicate=4'), 409, 'SENSORY_ERR_NEAR_DUPLICATE') as { error: { message: string; sampleId?: number } };
    assert.equal(refused.error.sampleId, id);
    assert.match(refused.error.message, new RegExp(`sample ${id}`));
    const bigger = assertError(await post(await scenePng(61, 160), '&rejectNearDuplicate=2'), 409, 'SENSORY_ERR_NEAR_DUPLICATE') as { error: { sampleId?: number } };
    assert.equal(bigger.error.sampleId, id);
    assert.equal(await revision(), before, 'nothing stored');

    // Without the option the copy is an ordinary new sample; then a relabel and a delete are seen by the next check.
    const kept = await post(copy, '');
    assert.equal(kept.statusCode, 201);
    await t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-reject/samples/${id}`, headers: t.auth('admin') });
    await t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-reject/samples/${kept.json().id}`, headers: t.auth('admin') });
    const again = await post(await resized(await scenePng(61), 50), '&rejectNearDuplicate=4');
    assert.equal(again.statusCode, 201, `the near samples were deleted: ${again.body}`);
  });

  test('wrong values of rejectNearDuplicate: 400 naming it, nothing stored', async () => {
    const before = await revision();
    for (const value of ['-1', '13', 'near', '2.5']) {
      const res = await post(await scenePng(63), `&rejectNearDuplicate=${value}`);
      const body = assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(body.error.message, /rejectNearDuplicate/, res.body);
    }
    assert.equal(await revision(), before);
  });
});

describe('know your data on PostgreSQL', { skip: await postgresSkip() }, () => {
  const schema = uniqueSchema('kyd');
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SENSORY_DATABASE_URL: await useSchema(schema) });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
    await dropSchemas();
  });

  test('hashes at ingest and by the background pass, groups, diffs and refuses near-duplicates as on SQLite', async () => {
    await createDataset(t, 'kyd-pg', { width: 64, height: 64, channels: 3 });
    const post = (bytes: Buffer, category: string, query = '') =>
      t.app.inject({ method: 'POST', url: `/v1/datasets/kyd-pg/samples?category=${category}${query}`, headers: { ...t.auth('admin'), 'content-type': sharpType(bytes) }, payload: bytes });
    const ids: number[] = [];
    for (let seed = 1; seed <= 5; seed++) ids.push((await post(await scenePng(seed), 'a')).json().id);
    const copy = (await post(await jpeg(await scenePng(2), 90), 'b')).json().id as number;
    const get = (url: string) => t.app.inject({ method: 'GET', url, headers: t.auth('read') });
    const groupsOf = async () => (await get('/v1/datasets/kyd-pg/duplicates?distance=8')).json().groups.map((g: Group) => g.members.map((m) => m.id));
    assert.deepEqual(await groupsOf(), [[ids[1], copy]]);
    assert.equal((await get('/v1/datasets/kyd-pg/leakage?distance=8')).json().labelConflicts.groups, 1);

    // Relabel the copy, delete an original: the diff says so; the refused upload sees both.
    const revision = (await get('/v1/datasets/kyd-pg')).json().revision as number;
    await t.app.inject({ method: 'PATCH', url: `/v1/datasets/kyd-pg/samples/${copy}`, headers: t.auth('admin'), payload: { category: 'a' } });
    await t.app.inject({ method: 'DELETE', url: `/v1/datasets/kyd-pg/samples/${ids[1]}`, headers: t.auth('admin') });
    const diff = (await get(`/v1/datasets/kyd-pg/diff?from=${revision}&to=${revision + 2}`)).json();
    assert.deepEqual(diff.totals, { added: 0, deleted: 1, relabelled: 1 });
    assert.deepEqual(diff.relabels, [{ from: 'b', to: 'a', count: 1 }]);
    const refused = assertError(await post(await resized(await scenePng(2), 48), 'a', '&rejectNearDuplicate=8'), 409, 'SENSORY_ERR_NEAR_DUPLICATE') as { error: { sampleId?: number } };
    assert.equal(refused.error.sampleId, copy, 'the deleted original is not a match; its copy is');

    // Hashes cleared as if stored before they existed; the pass computes the same ones again.
    const before = await postgresQuery<{ id: string; phash: string }>(`SELECT id, phash FROM ${schema}.samples ORDER BY id`);
    await postgresQuery(`UPDATE ${schema}.samples SET phash = NULL`);
    const pass = await new HashBackfill(t.runtime.store, t.runtime.pixels, () => undefined, { batch: 4 }).runToEnd();
    assert.equal(pass.hashed, before.length);
    assert.deepEqual(await postgresQuery(`SELECT id, phash FROM ${schema}.samples ORDER BY id`), before);
  });
});
