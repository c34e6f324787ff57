import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lossSpread, rankMislabels, type RankingInput } from '../../src/domain/mislabel-ranking.js';

/** 300 samples of 3 classes, one in ten labelled with the wrong class; the model saw through it. */
function trainerReport(seed: number) {
  let state = seed;
  // A small linear congruential generator: the same report every run.
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const inputs: RankingInput[] = [];
  const mislabelled = new Set<number>();
  for (let id = 1; id <= 300; id++) {
    const truth = id % 3;
    const wrong = id % 10 === 0;
    const label = wrong ? (truth + 1 + Math.floor(random() * 2)) % 3 : truth;
    if (wrong) mislabelled.add(id);
    const probs = [0.05, 0.05, 0.05];
    probs[truth] = 0.9;
    const noisy = probs.map((p) => p + random() * 0.02);
    const total = noisy.reduce((a, b) => a + b, 0);
    const normal = noisy.map((p) => p / total);
    inputs.push({ id, label, probs: normal, loss: -Math.log(normal[label]) });
  }
  return { inputs, mislabelled };
}

describe('mislabel ranking', () => {
  it('ranks a deliberately mislabelled tenth first, each with the true class suggested', () => {
    const { inputs, mislabelled } = trainerReport(7);
    const ranked = rankMislabels(inputs);
    const top = ranked.slice(0, mislabelled.size);
    assert.deepEqual(new Set(top.map((r) => r.id)), mislabelled);
    for (const r of top) {
      assert.equal(r.suggested, r.id % 3);
      assert.deepEqual(r.reasons.map((reason) => reason.kind).sort(), ['confident_disagreement', 'high_loss']);
    }
    // Nothing else has a reason to be there.
    assert.equal(ranked.length, mislabelled.size);
  });

  it('ranks by loss alone when only losses are reported', () => {
    const { inputs, mislabelled } = trainerReport(11);
    const ranked = rankMislabels(inputs.map(({ id, label, loss }) => ({ id, label, loss })));
    assert.deepEqual(new Set(ranked.slice(0, mislabelled.size).map((r) => r.id)), mislabelled);
    assert.ok(ranked.every((r) => r.suggested === undefined && r.reasons[0].kind === 'high_loss'));
  });

  it('a predicted class alone, unlike the label, suggests it', () => {
    const ranked = rankMislabels([
      { id: 1, label: 0, predicted: 0 },
      { id: 2, label: 0, predicted: 2 },
    ]);
    assert.deepEqual(ranked, [{ id: 2, label: 0, score: 0.5, reasons: [{ kind: 'predicted_other', suggested: 2 }], suggested: 2 }]);
  });

  it('an unsure model is no reason, nor a confident one that agrees', () => {
    const ranked = rankMislabels([
      { id: 1, label: 0, probs: [0.4, 0.45, 0.15] },
      { id: 2, label: 1, probs: [0.05, 0.9, 0.05] },
    ]);
    assert.deepEqual(ranked, []);
  });

  it('near-duplicates with another label: the odd one out ranks first, suggested the label of the others', () => {
    const groups = [
      { members: [{ id: 1, label: 0 }, { id: 2, label: 0 }, { id: 3, label: 1 }] },
      { members: [{ id: 4, label: 2 }, { id: 5, label: 2 }] },
    ];
    const ranked = rankMislabels([], groups);
    assert.equal(ranked[0].id, 3);
    assert.equal(ranked[0].suggested, 0);
    assert.equal(ranked[0].score, 1);
    assert.deepEqual(ranked[0].reasons, [{ kind: 'duplicate_conflict', groupSize: 3, others: 2, suggested: 0 }]);
    assert.deepEqual(ranked.slice(1).map((r) => [r.id, r.score, r.suggested]), [
      [1, 0.5, 1],
      [2, 0.5, 1],
    ]);
  });

  it('signals add up: a sample two signals point at ranks above one only one does', () => {
    const groups = [{ members: [{ id: 1, label: 0 }, { id: 2, label: 1 }, { id: 3, label: 1 }] }];
    const ranked = rankMislabels(
      [
        { id: 1, label: 0, probs: [0.1, 0.9] },
        { id: 9, label: 0, probs: [0.1, 0.9] },
      ],
      groups,
    );
    assert.equal(ranked[0].id, 1);
    assert.ok(ranked[0].score > ranked[1].score);
  });

  it('the loss spread is robust: one huge loss does not hide the others', () => {
    const { median, spread } = lossSpread([1, 1.1, 0.9, 1.05, 0.95, 1000]);
    assert.ok(Math.abs(median - 1.025) < 1e-9);
    assert.ok(spread > 0 && spread < 0.2);
    assert.deepEqual(lossSpread([2, 2, 2]).spread, 0);
    assert.deepEqual(rankMislabels([{ id: 1, label: 0, loss: 2 }, { id: 2, label: 0, loss: 2 }]), []);
  });
});
