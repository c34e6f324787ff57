/**
 * Small batches served while uploads and relabels run: every answer is the dataset at the one
 * revision it names (a quiet replay pinned to that revision gives the same bytes), its pixels
 * are the pixels of the samples it names, and no answer mixes two states.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { addSample, makePng, patternPixels, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

const SAFETENSORS = 'application/x-safetensors';
const SHAPE = { width: 8, height: 6, channels: 3 } as const;
const RECORD = SHAPE.width * SHAPE.height * SHAPE.channels;
const CATEGORIES = ['cat', 'dog', 'eel', 'fox'];

interface Answer {
  readonly body: Record<string, unknown>;
  readonly accept: string | undefined;
  readonly payload: Buffer;
}

describe('batches while uploads and relabels run', () => {
  let t: TestApp;
  /** Pixel seed of every sample id, as uploaded. */
  const seedOf = new Map<number, number>();

  before(async () => {
    t = await startTestApp();
    const { samples } = await seedDataset(t, 'busy', SHAPE, 30, CATEGORIES);
    samples.forEach((sample, i) => seedOf.set(sample.id, 1 + i));
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const batch = (body: Record<string, unknown>, accept?: string) =>
    t.app.inject({ method: 'POST', url: '/v1/datasets/busy/batches', headers: { ...t.auth('read'), ...(accept ? { accept } : {}) }, payload: body });

  it('each answer is consistent with the one revision it names, and is what that revision gives when replayed', async () => {
    const answers: Answer[] = [];
    const ids = [...seedOf.keys()];
    let writes = 0;
    const writer = async (lane: number) => {
      for (let i = 0; i < 25; i++) {
        if ((i + lane) % 2 === 0) {
          const seed = 1000 + lane * 100 + i;
          const sample = await addSample(t, 'busy', CATEGORIES[(seed * 7) % CATEGORIES.length], await makePng(SHAPE.width, SHAPE.height, SHAPE.channels, seed));
          seedOf.set(sample.id, seed);
          ids.push(sample.id);
        } else {
          const id = ids[(i * 31 + lane * 7) % ids.length];
          const res = await t.app.inject({ method: 'PATCH', url: `/v1/datasets/busy/samples/${id}`, headers: t.auth('write'), payload: { category: CATEGORIES[(i + lane) % CATEGORIES.length] } });
          assert.equal(res.statusCode, 200, res.body);
        }
        writes++;
      }
    };
    let writing = true;
    const reader = async (lane: number) => {
      // Reads until the writes are done (at least 10 batches, at most 300).
      for (let i = 0; (writing || i < 10) && i < 300; i++) {
        const body = { size: 20, seed: lane * 1000 + i, noise: i % 3 === 0 ? 1 : 0, ...(i % 4 === 1 ? { layout: 'nchw', labelDtype: 'int64' } : {}) };
        const accept = i % 2 ? SAFETENSORS : undefined;
        const res = await batch(body, accept);
        assert.equal(res.statusCode, 200, res.body);
        answers.push({ body, accept, payload: res.rawPayload });
      }
    };
    const writers = Promise.all([writer(0), writer(1), writer(2)]).finally(() => {
      writing = false;
    });
    await Promise.all([writers, reader(0), reader(1), reader(2)]);
    assert.equal(writes, 75);
    const revisions = new Set<number>();
    for (const answer of answers) {
      let revision: number;
      let answerIds: number[];
      if (answer.accept === SAFETENSORS) {
        const file = parseSafetensors(answer.payload);
        revision = Number(file.metadata.revision);
        answerIds = JSON.parse(file.metadata.ids) as number[];
        if (!answer.body.noise && !answer.body.layout) {
          // The pixels of the samples it names, as uploaded.
          answerIds.forEach((id, i) => {
            const expected = patternPixels(SHAPE.width, SHAPE.height, SHAPE.channels, seedOf.get(id)!);
            assert.ok(file.tensors.data.data.subarray(i * RECORD, (i + 1) * RECORD).equals(expected), `pixels of sample ${id}`);
          });
        }
      } else {
        const json = JSON.parse(answer.payload.toString('utf8')) as { revision: number; ids: number[] };
        revision = json.revision;
        answerIds = json.ids;
      }
      revisions.add(revision);
      assert.equal(new Set(answerIds).size, answerIds.length, 'no sample twice');
      const replay = await batch({ ...answer.body, revision }, answer.accept);
      assert.equal(replay.statusCode, 200, replay.body);
      assert.ok(replay.rawPayload.equals(answer.payload), `the answer at revision ${revision} (${JSON.stringify(answer.body)}) is what a quiet replay at that revision gives`);
    }
    assert.ok(revisions.size >= 10, `batches saw ${revisions.size} revisions: the writes really ran between them`);
  });
});
