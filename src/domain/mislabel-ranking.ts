/**
 * Likely mislabels, ranked from what a trainer reported of each sample (no I/O): a loss high
 * against the dataset's own losses, a confident prediction of another class, and near-duplicates
 * that carry other labels. Each signal gives a score from 0 to 1 and a reason; a sample's score is
 * their sum, so a sample two signals point at ranks above one that only one does.
 */

export interface RankingInput {
  readonly id: number;
  /** The sample's current category index. */
  readonly label: number;
  readonly loss?: number | null;
  /** One probability per category index. */
  readonly probs?: readonly number[] | null;
  readonly predicted?: number | null;
}

/** A near-duplicate group (two or more samples), by id with each member's category index. */
export interface DuplicateGroupLabels {
  readonly members: readonly { readonly id: number; readonly label: number }[];
}

export type MislabelReason =
  /** The loss is far above the dataset's: `z` robust deviations (median, MAD) above its median, higher than `percentile` % of the losses. */
  | { readonly kind: 'high_loss'; readonly loss: number; readonly z: number; readonly percentile: number }
  /** The model gives another class `suggestedProbability` and the label only `labelProbability`. */
  | { readonly kind: 'confident_disagreement'; readonly labelProbability: number; readonly suggestedProbability: number; readonly suggested: number }
  /** Only a predicted class was reported, and it is not the label. */
  | { readonly kind: 'predicted_other'; readonly suggested: number }
  /** `others` of the `groupSize` near-duplicates of this sample carry another label; `suggested` is the label most of them carry. */
  | { readonly kind: 'duplicate_conflict'; readonly groupSize: number; readonly others: number; readonly suggested: number };

export interface RankedSample {
  readonly id: number;
  readonly label: number;
  readonly score: number;
  readonly reasons: MislabelReason[];
  /** The class the signals point at (the most probable one, else the predicted one, else the near-duplicates' label). */
  readonly suggested?: number;
}

export interface RankingOptions {
  /** A loss counts when this many robust deviations above the median (default 3). */
  readonly lossZ?: number;
  /** Another class counts as confident at this probability or above (default 0.5)… */
  readonly confident?: number;
  /** …while the label's probability is at most this (default 0.2). */
  readonly labelLow?: number;
  /** Score of a predicted class alone, without probabilities (default 0.5). */
  readonly predictedScore?: number;
}

const MAD_TO_SIGMA = 1.4826;

/** Median and scaled median absolute deviation of the losses (the mean absolute deviation when the MAD is 0). */
export function lossSpread(losses: readonly number[]): { median: number; spread: number; sorted: Float64Array } {
  const sorted = Float64Array.from(losses).sort();
  if (sorted.length === 0) return { median: 0, spread: 0, sorted };
  const median = medianOf(sorted);
  const deviations = sorted.map((loss) => Math.abs(loss - median)).sort();
  let spread = MAD_TO_SIGMA * medianOf(deviations);
  if (spread === 0) spread = deviations.reduce((sum, d) => sum + d, 0) / deviations.length;
  return { median, spread, sorted };
}

function medianOf(sorted: Float64Array): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** How many of the sorted values are below `value`, as a percentage. */
function percentileOf(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return sorted.length === 0 ? 0 : (100 * lo) / sorted.length;
}

/**
 * The samples at least one signal points at, best first (score descending, then id ascending).
 * `groups` are near-duplicate groups of the dataset (its members need no report: a sample whose
 * near-duplicates disagree with it is ranked even without one).
 */
export function rankMislabels(inputs: readonly RankingInput[], groups: readonly DuplicateGroupLabels[] = [], options: RankingOptions = {}): RankedSample[] {
  const lossZ = options.lossZ ?? 3;
  const confident = options.confident ?? 0.5;
  const labelLow = options.labelLow ?? 0.2;
  const predictedScore = options.predictedScore ?? 0.5;
  const losses = inputs.flatMap((input) => (input.loss === null || input.loss === undefined ? [] : [input.loss]));
  const { median, spread, sorted } = lossSpread(losses);

  const found = new Map<number, { label: number; score: number; reasons: MislabelReason[]; suggested?: number }>();
  const entry = (id: number, label: number) => {
    let e = found.get(id);
    if (!e) found.set(id, (e = { label, score: 0, reasons: [] }));
    return e;
  };

  for (const input of inputs) {
    const { id, label } = input;
    if (input.loss !== null && input.loss !== undefined && spread > 0) {
      const z = (input.loss - median) / spread;
      if (z >= lossZ) {
        const e = entry(id, label);
        // 0 at the threshold, towards 1 far above it.
        e.score += 1 - lossZ / z;
        e.reasons.push({ kind: 'high_loss', loss: input.loss, z: round(z), percentile: round(percentileOf(sorted, input.loss)) });
      }
    }
    if (input.probs) {
      let best = -1;
      for (let c = 0; c < input.probs.length; c++) if (c !== label && (best < 0 || input.probs[c] > input.probs[best])) best = c;
      const labelProbability = input.probs[label] ?? 0;
      if (best >= 0 && input.probs[best] >= confident && labelProbability <= labelLow) {
        const e = entry(id, label);
        e.score += input.probs[best] - labelProbability;
        e.suggested ??= best;
        e.reasons.push({ kind: 'confident_disagreement', labelProbability, suggestedProbability: input.probs[best], suggested: best });
      }
    } else if (input.predicted !== null && input.predicted !== undefined && input.predicted !== label) {
      const e = entry(id, label);
      e.score += predictedScore;
      e.suggested ??= input.predicted;
      e.reasons.push({ kind: 'predicted_other', suggested: input.predicted });
    }
  }

  for (const group of groups) {
    const counts = new Map<number, number>();
    for (const member of group.members) counts.set(member.label, (counts.get(member.label) ?? 0) + 1);
    if (counts.size < 2) continue;
    for (const member of group.members) {
      const others = group.members.length - (counts.get(member.label) ?? 0);
      // The label most of the others carry (the smaller index on a tie).
      let suggested = -1;
      for (const [label, count] of counts) {
        if (label === member.label) continue;
        if (suggested < 0 || count > counts.get(suggested)! || (count === counts.get(suggested)! && label < suggested)) suggested = label;
      }
      const e = entry(member.id, member.label);
      e.score += others / (group.members.length - 1);
      e.suggested ??= suggested;
      e.reasons.push({ kind: 'duplicate_conflict', groupSize: group.members.length, others, suggested });
    }
  }

  const ranked: RankedSample[] = [];
  for (const [id, e] of found) {
    ranked.push({ id, label: e.label, score: round(e.score), reasons: e.reasons, ...(e.suggested !== undefined ? { suggested: e.suggested } : {}) });
  }
  return ranked.sort(compareRanked);
}

/** Score descending, then id ascending: the queue's order, and what its cursor walks. */
export function compareRanked(a: { score: number; id: number }, b: { score: number; id: number }): number {
  return b.score - a.score || a.id - b.id;
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
