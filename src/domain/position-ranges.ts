/** Half-open ranges of stream positions, kept sorted, disjoint and non-empty. */
export interface PositionRange {
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
}

export function rangeSize(ranges: readonly PositionRange[]): number {
  return ranges.reduce((sum, range) => sum + (range.to - range.from), 0);
}

/** Sorted, disjoint, non-empty ranges covering the same positions (adjacent ones merged). */
export function normalizeRanges(ranges: readonly PositionRange[]): PositionRange[] {
  const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from);
  const merged: PositionRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range.from <= last.to) merged[merged.length - 1] = { from: last.from, to: Math.max(last.to, range.to) };
    else merged.push({ from: range.from, to: range.to });
  }
  return merged;
}

/** The positions of `ranges` inside `within`. */
export function intersectRanges(ranges: readonly PositionRange[], within: PositionRange): PositionRange[] {
  return normalizeRanges(ranges.map((r) => ({ from: Math.max(r.from, within.from), to: Math.min(r.to, within.to) })));
}

/** The positions of `ranges` not in `minus`. */
export function subtractRanges(ranges: readonly PositionRange[], minus: readonly PositionRange[]): PositionRange[] {
  const cut = normalizeRanges(minus);
  const out: PositionRange[] = [];
  for (const range of normalizeRanges(ranges)) {
    let from = range.from;
    for (const hole of cut) {
      if (hole.to <= from || hole.from >= range.to) continue;
      if (hole.from > from) out.push({ from, to: hole.from });
      from = Math.max(from, hole.to);
    }
    if (from < range.to) out.push({ from, to: range.to });
  }
  return out;
}

/** The first `count` positions of `ranges`. */
export function firstPositions(ranges: readonly PositionRange[], count: number): PositionRange[] {
  const out: PositionRange[] = [];
  let left = count;
  for (const range of normalizeRanges(ranges)) {
    if (left <= 0) break;
    const take = Math.min(left, range.to - range.from);
    out.push({ from: range.from, to: range.from + take });
    left -= take;
  }
  return out;
}

export function overlaps(a: PositionRange, b: PositionRange): boolean {
  return a.from < b.to && b.from < a.to;
}
