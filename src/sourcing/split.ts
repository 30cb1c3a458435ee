// Split minimisation: the fewest locations whose stock covers every line. It is a set-cover
// problem (with quantities: a line may be served by several locations), NP-hard in general
// but small in practice. We check one location first (the usual answer), then a greedy cover
// gives an upper bound, a per-line bound gives a lower one, and an exact search runs only
// between the two, over the candidates holding stock, within a budget. Candidates are given
// best-ranked first, and every search visits them in that order, so among equally small
// covers the best-ranked one wins and the result is deterministic.

export interface CoverInput {
  /** avail[c * width + l]: units candidate c can give line l (already capped at what is needed). */
  avail: Int32Array;
  rows: number;
  width: number;
  /** Units each line needs. */
  need: Int32Array;
  /** Above this many useful candidates the exact search is skipped. */
  exactLimit: number;
  /** Maximum combinations the exact search may test. */
  budget?: number;
}

export interface Cover {
  /** Chosen candidate indices, best-ranked first. */
  chosen: number[];
  method: 'single' | 'exact' | 'greedy';
  /** A proven lower bound on the number of locations (equal to chosen.length when exact). */
  lowerBound: number;
  note: string | null;
}

/**
 * The fewest candidates that together cover `need` (which must be coverable: callers cap
 * each line at the total available).
 */
export function minimiseCover(input: CoverInput): Cover {
  const { avail, need, rows, width: L } = input;
  let total = 0;
  for (let l = 0; l < L; l++) total += need[l];
  if (total === 0) return { chosen: [], method: 'single', lowerBound: 0, note: null };
  for (let c = 0; c < rows; c++) {
    let all = true;
    for (let l = 0; l < L && all; l++) if (avail[c * L + l] < need[l]) all = false;
    if (all) return { chosen: [c], method: 'single', lowerBound: 1, note: null };
  }

  const greedy = greedyCover(input);
  const lowerBound = Math.max(2, perLineBound(input));
  if (greedy.length <= lowerBound) return { chosen: greedy, method: 'exact', lowerBound: greedy.length, note: 'greedy cover meets the lower bound' };

  const useful: number[] = [];
  for (let c = 0; c < rows; c++) {
    for (let l = 0; l < L; l++)
      if (avail[c * L + l] > 0 && need[l] > 0) {
        useful.push(c);
        break;
      }
  }
  if (useful.length > input.exactLimit) {
    return { chosen: greedy, method: 'greedy', lowerBound, note: `${useful.length} candidates hold stock, above the exact-search limit of ${input.exactLimit}` };
  }
  const budget = input.budget ?? 50_000;
  let tested = 0;
  for (let k = lowerBound; k < greedy.length; k++) {
    const found = searchSize(input, useful, k, budget - tested);
    if (found.cover) return { chosen: found.cover, method: 'exact', lowerBound: k, note: null };
    if (found.tested < 0) return { chosen: greedy, method: 'greedy', lowerBound: k, note: `exact search stopped after ${budget.toLocaleString('en')} combinations` };
    tested += found.tested;
  }
  return { chosen: greedy, method: 'exact', lowerBound: greedy.length, note: 'no smaller cover exists' };
}

/** Repeatedly take the candidate that covers the most remaining units (ties: best-ranked). */
export function greedyCover(input: CoverInput): number[] {
  const { avail, rows, width: L } = input;
  const left = Int32Array.from(input.need);
  let remaining = 0;
  for (let l = 0; l < L; l++) remaining += left[l];
  const used = new Uint8Array(rows);
  const chosen: number[] = [];
  while (remaining > 0) {
    let best = -1;
    let bestGain = 0;
    for (let c = 0; c < rows; c++) {
      if (used[c]) continue;
      let gain = 0;
      for (let l = 0; l < L; l++) gain += Math.min(avail[c * L + l], left[l]);
      if (gain > bestGain) {
        best = c;
        bestGain = gain;
      }
    }
    if (best < 0) break;
    used[best] = 1;
    chosen.push(best);
    for (let l = 0; l < L; l++) {
      const take = Math.min(avail[best * L + l], left[l]);
      left[l] -= take;
      remaining -= take;
    }
  }
  return chosen.sort((a, b) => a - b);
}

/** No cover is smaller than the number of locations the hardest single line needs. */
function perLineBound(input: CoverInput): number {
  const { avail, need, rows, width: L } = input;
  let bound = 1;
  const col = new Int32Array(rows);
  for (let l = 0; l < L; l++) {
    if (need[l] === 0) continue;
    for (let c = 0; c < rows; c++) col[c] = avail[c * L + l];
    col.sort().reverse();
    let sum = 0;
    let k = 0;
    while (sum < need[l] && k < rows) sum += col[k++];
    if (k > bound) bound = k;
  }
  return bound;
}

/** The first k-combination of `useful` (in rank order) that covers `need`; tested = -1 when the budget ran out. */
function searchSize(input: CoverInput, useful: number[], k: number, budget: number): { cover: number[] | null; tested: number } {
  const { avail, need, width: L } = input;
  const sums: Int32Array[] = Array.from({ length: k + 1 }, () => new Int32Array(L));
  const pick: number[] = new Array(k);
  let tested = 0;
  let stopped = false;
  const rec = (depth: number, from: number): boolean => {
    if (depth === k) {
      tested++;
      if (tested > budget) {
        stopped = true;
        return false;
      }
      const s = sums[k];
      for (let l = 0; l < L; l++) if (s[l] < need[l]) return false;
      return true;
    }
    for (let i = from; i <= useful.length - (k - depth); i++) {
      const base = useful[i] * L;
      const prev = sums[depth];
      const next = sums[depth + 1];
      for (let l = 0; l < L; l++) next[l] = prev[l] + avail[base + l];
      pick[depth] = useful[i];
      if (rec(depth + 1, i + 1)) return true;
      if (stopped) return false;
    }
    return false;
  };
  const ok = rec(0, 0);
  return { cover: ok ? pick.slice() : null, tested: stopped ? -1 : tested };
}
