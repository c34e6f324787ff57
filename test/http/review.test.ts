/**
 * Label review fed by the trainer: per-sample reports of loss and class probabilities in, the
 * ranked review queue out, a person's decisions applied through the sample service. Real app,
 * real SQLite, real files, real images drawn by sharp: three classes of distinct shapes, one in
 * ten labelled with a wrong class, and a trainer that saw through it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { addSample, assertError, createDataset, removeDir, startTestApp, type TestApp } from '../support/harness.js';

const SHAPES = ['circle', 'square', 'triangle'] as const;

/** A shape of its class, of its own size, place and colours. */
async function shapePng(shape: (typeof SHAPES)[number], seed: number): Promise<Buffer> {
  const r = 8 + (seed % 5);
  const cx = 20 + ((seed * 7) % 24);
  const cy = 20 + ((seed * 11) % 24);
  const fill = `rgb(${(seed * 53) % 200 + 40},${(seed * 97) % 200 + 40},${(seed * 31) % 200 + 40})`;
  const background = `rgb(${(seed * 13) % 60},${(seed * 29) % 60},${(seed * 43) % 60})`;
  const body =
    shape === 'circle'
      ? `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`
      : shape === 'square'
        ? `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`
        : `<polygon points="${cx},${cy - r} ${cx - r},${cy + r} ${cx + r},${cy + r}" fill="${fill}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="${background}"/>${body}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

interface Reason {
  kind: string;
  suggested?: string;
}
interface ReviewItem {
  id: number;
  category: string;
  score: number;
  reasons: Reason[];
  suggested?: string;
  loss?: number;
}
interface ReviewPage {
  dataset: string;
  revision: number;
  total: number;
  items: ReviewItem[];
  nextCursor?: string;
}

describe('label review', () => {
  let t: TestApp;
  const DATASET = 'review-shapes';
  /** Every sample: its id, the label it was given, the shape it shows. */
  const samples: { id: number; label: number; truth: number }[] = [];
  const mislabelled = new Set<number>();

  before(async () => {
    t = await startTestApp({ SENSORY_MAX_FEEDBACK_ITEMS: '100' });
    await createDataset(t, DATASET, { width: 32, height: 32, channels: 3, categories: [...SHAPES] });
    for (let i = 0; i < 60; i++) {
      const truth = i % 3;
      // One in ten gets another class's label.
      const label = i % 10 === 9 ? (truth + 1 + (i % 2)) % 3 : truth;
      const sample = await addSample(t, DATASET, SHAPES[label], await shapePng(SHAPES[truth], i + 1));
      samples.push({ id: sample.id, label, truth });
      if (label !== truth) mislabelled.add(sample.id);
    }
    assert.equal(mislabelled.size, 6);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  /** What a trainer reports: most of the probability on the shape shown, whatever the label. */
  function report(sample: { id: number; label: number; truth: number }, seed: number) {
    const probs = [0.04, 0.04, 0.04].map((p, c) => (c === sample.truth ? 0.88 : p) + ((seed * (c + 3)) % 7) / 1000);
    const total = probs.reduce((a, b) => a + b, 0);
    const normal = probs.map((p) => p / total);
    return { id: sample.id, loss: -Math.log(normal[sample.label]), probs: normal, predicted: sample.truth };
  }

  const post = (url: string, payload: unknown, kind: 'admin' | 'write' | 'read' = 'write') =>
    t.app.inject({ method: 'POST', url, headers: { ...t.auth(kind), 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });

  async function queue(query = ''): Promise<ReviewPage> {
    const res = await t.app.inject({ method: 'GET', url: `/v1/datasets/${DATASET}/review${query}`, headers: t.auth('read') });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  async function sendFeedback(items: unknown[], extra: Record<string, unknown> = {}) {
    const res = await post(`/v1/datasets/${DATASET}/feedback`, { ...extra, items });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { stored: number; revision: number; results: { id: number; status: string }[] };
  }

  test('feedback from training ranks the deliberately mislabelled tenth first, each with the shape it shows suggested', async () => {
    // Two requests, as a trainer sends per epoch chunk; an id of no sample gets its own result.
    const first = await sendFeedback([...samples.slice(0, 30).map((s, i) => report(s, i)), { id: 999_999, loss: 1 }]);
    assert.equal(first.stored, 30);
    assert.deepEqual(first.results.at(-1), { id: 999_999, status: 'not_found' });
    const second = await sendFeedback(samples.slice(30).map((s, i) => report(s, i + 30)));
    assert.equal(second.stored, 30);

    const page = await queue('?limit=200');
    const top = page.items.slice(0, mislabelled.size);
    assert.deepEqual(new Set(top.map((item) => item.id)), mislabelled, JSON.stringify(page.items.slice(0, 10)));
    for (const item of top) {
      const sample = samples.find((s) => s.id === item.id)!;
      assert.equal(item.category, SHAPES[sample.label]);
      assert.equal(item.suggested, SHAPES[sample.truth]);
      const kinds = item.reasons.map((r) => r.kind);
      assert.ok(kinds.includes('confident_disagreement') && kinds.includes('high_loss'), JSON.stringify(item));
    }
    // Whatever follows (near-duplicates of a mislabelled one, if any) scores below every one of them.
    const lowest = Math.min(...top.map((item) => item.score));
    assert.ok(page.items.slice(mislabelled.size).every((item) => item.score < lowest));
    assert.equal(page.total, page.items.length);

    // Paged by score: the pages together are the queue, in order.
    const one = await queue('?limit=4');
    assert.equal(one.items.length, 4);
    assert.ok(one.nextCursor);
    const two = await queue(`?limit=200&cursor=${one.nextCursor}`);
    assert.deepEqual([...one.items, ...two.items].map((i) => i.id), page.items.map((i) => i.id));
    assert.equal(two.nextCursor, undefined);
  });

  test('decisions: confirm takes a sample out until its next report, relabel moves it to the suggestion, delete needs admin', async () => {
    const before = await queue('?limit=200');
    const [a, b, c] = before.items;
    const revision = before.revision;

    // Confirm: out of the queue, nothing else changes.
    let res = await post(`/v1/datasets/${DATASET}/review/${a.id}`, { decision: 'confirm' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().sample.category, a.category);
    let now = await queue('?limit=200');
    assert.equal(now.total, before.total - 1);
    assert.ok(!now.items.some((i) => i.id === a.id));
    assert.equal(now.revision, revision);

    // Relabel to the suggested class: through the sample service (revision raised, audit log kept).
    res = await post(`/v1/datasets/${DATASET}/review/${b.id}`, { decision: 'relabel' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().sample.category, b.suggested);
    now = await queue('?limit=200');
    assert.ok(!now.items.some((i) => i.id === b.id));
    assert.equal(now.revision, revision + 1);
    const audit = await t.app.inject({ method: 'GET', url: `/v1/datasets/${DATASET}/samples/${b.id}/audit`, headers: t.auth('admin') });
    assert.equal(audit.statusCode, 200, audit.body);
    const [entry] = audit.json().entries;
    assert.equal(entry.action, 'relabel');
    assert.deepEqual(entry.detail, { from: b.category, to: b.suggested });

    // Delete: the write role may not; admin may, and the sample is gone from the queue and the dataset.
    assertError(await post(`/v1/datasets/${DATASET}/review/${c.id}`, { decision: 'delete' }, 'write'), 403, 'SENSORY_ERR_FORBIDDEN');
    assert.ok((await queue('?limit=200')).items.some((i) => i.id === c.id));
    res = await post(`/v1/datasets/${DATASET}/review/${c.id}`, { decision: 'delete' }, 'admin');
    assert.equal(res.statusCode, 200, res.body);
    now = await queue('?limit=200');
    assert.ok(!now.items.some((i) => i.id === c.id));
    assert.equal(now.revision, revision + 2);
    assertError(await t.app.inject({ method: 'GET', url: `/v1/datasets/${DATASET}/samples/${c.id}`, headers: t.auth('read') }), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');

    // A new report of the confirmed sample takes it back into review.
    await sendFeedback([report(samples.find((s) => s.id === a.id)!, 1)]);
    assert.ok((await queue('?limit=200')).items.some((i) => i.id === a.id));

    // Relabelling to a given category works too; a sample with nothing suggested needs one.
    const plain = samples.find((s) => s.label === s.truth && !now.items.some((i) => i.id === s.id))!;
    res = await post(`/v1/datasets/${DATASET}/review/${plain.id}`, { decision: 'relabel' });
    const error = assertError(res, 400, 'SENSORY_ERR_BAD_REQUEST') as { error: { field?: string } };
    assert.equal(error.error.field, 'category');
    res = await post(`/v1/datasets/${DATASET}/review/${plain.id}`, { decision: 'confirm' });
    assert.equal(res.statusCode, 200, res.body);
  });

  test('relabelled elsewhere (PATCH): the loss reported under the old label no longer counts, the probabilities are read against the new one', async () => {
    const before = await queue('?limit=200');
    const item = before.items.find((i) => mislabelled.has(i.id) && i.reasons.some((r) => r.kind === 'high_loss'))!;
    assert.ok(item, JSON.stringify(before.items));
    const res = await t.app.inject({ method: 'PATCH', url: `/v1/datasets/${DATASET}/samples/${item.id}`, headers: t.auth('write'), payload: { category: item.suggested } });
    assert.equal(res.statusCode, 200, res.body);
    const now = (await queue('?limit=200')).items.find((i) => i.id === item.id);
    assert.ok(!now || now.reasons.every((r) => r.kind === 'duplicate_conflict'), JSON.stringify(now));
  });

  test('wrong feedback: a clear 4xx naming the field, and nothing stored', async () => {
    const before = await queue('?limit=200');
    const ok = samples[0].id;
    const url = `/v1/datasets/${DATASET}/feedback`;
    const cases: [unknown, number, string, string][] = [
      [{ items: [] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items'],
      [{}, 400, 'SENSORY_ERR_BAD_REQUEST', 'items'],
      [{ items: [{ id: ok, probs: [0.5, 0.5] }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].probs'],
      [{ items: [{ id: ok, loss: 1 }, { id: samples[1].id, probs: [0.5, -0.1, 0.6] }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[1].probs[1]'],
      [{ items: [{ id: ok, probs: [0.5, 0.3, 0.1] }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].probs'],
      [{ items: [{ id: ok, probs: [1.5, 0, 0] }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].probs[0]'],
      [{ items: [{ id: ok, loss: -0.5 }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].loss'],
      [{ items: [{ id: ok, loss: '1' }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].loss'],
      [{ items: [{ id: ok, predicted: 3 }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].predicted'],
      [{ items: [{ id: ok, predicted: 1.5 }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].predicted'],
      [{ items: [{ id: ok }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0]'],
      [{ items: [{ id: ok, loss: 1 }, { id: ok, loss: 2 }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[1].id'],
      [{ items: [{ id: 0, loss: 1 }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0].id'],
      [{ items: [{ id: ok, loss: 1, label: 'circle' }] }, 400, 'SENSORY_ERR_BAD_REQUEST', 'items[0]'],
      [{ revision: 10_000, items: [{ id: ok, loss: 1 }] }, 422, 'SENSORY_ERR_UNKNOWN_REVISION', 'revision'],
      [{ items: Array.from({ length: 101 }, (_, i) => ({ id: i + 1, loss: 1 })) }, 413, 'SENSORY_ERR_BODY_TOO_LARGE', 'items'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await post(url, body);
      const error = assertError(res, status, code) as { error: { field?: string; message: string } };
      assert.ok(error.error.field === field || error.error.message.includes(field), `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
    }
    // NaN and Infinity are not JSON: refused as a malformed body.
    assertError(await post(url, `{"items":[{"id":${ok},"loss":NaN}]}`), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await post(url, `{"items":[{"id":${ok},"probs":[Infinity,0,0]}]}`), 400, 'SENSORY_ERR_BAD_REQUEST');
    // Roles and the dataset.
    assertError(await post(url, { items: [{ id: ok, loss: 1 }] }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
    assertError(await post('/v1/datasets/no-such-dataset/feedback', { items: [{ id: ok, loss: 1 }] }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    assert.deepEqual(await queue('?limit=200'), before);
  });

  test('wrong queue queries and decisions: a clear 4xx naming the field, and nothing changed', async () => {
    const before = await queue('?limit=200');
    const id = before.items[0].id;
    const get = (query: string) => t.app.inject({ method: 'GET', url: `/v1/datasets/${DATASET}/review${query}`, headers: t.auth('read') });
    for (const query of ['?limit=0', '?limit=201', '?limit=x', '?cursor=bm9wZQ', '?order=score']) assertError(await get(query), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await t.app.inject({ method: 'GET', url: '/v1/datasets/no-such-dataset/review', headers: t.auth('read') }), 404, 'SENSORY_ERR_DATASET_NOT_FOUND');
    const url = `/v1/datasets/${DATASET}/review/${id}`;
    const cases: [unknown, number, string, string][] = [
      [{ decision: 'maybe' }, 400, 'SENSORY_ERR_BAD_REQUEST', 'decision'],
      [{}, 400, 'SENSORY_ERR_BAD_REQUEST', 'decision'],
      [{ decision: 'confirm', category: 'circle' }, 400, 'SENSORY_ERR_BAD_REQUEST', 'category'],
      [{ decision: 'relabel', category: 'hexagon' }, 422, 'SENSORY_ERR_UNDECLARED_CATEGORY', 'category'],
      [{ decision: 'relabel', category: '' }, 400, 'SENSORY_ERR_INVALID_NAME', 'category'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await post(url, body);
      const error = assertError(res, status, code) as { error: { field?: string; message: string } };
      assert.ok(error.error.field === field || error.error.message.includes(field), `${JSON.stringify(body)}: ${res.body}`);
    }
    assertError(await post(`/v1/datasets/${DATASET}/review/999999`, { decision: 'confirm' }), 404, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
    assertError(await post(`/v1/datasets/${DATASET}/review/abc`, { decision: 'confirm' }), 400, 'SENSORY_ERR_BAD_REQUEST');
    assertError(await post(url, { decision: 'confirm' }, 'read'), 403, 'SENSORY_ERR_FORBIDDEN');
    assert.deepEqual(await queue('?limit=200'), before);
  });
});
