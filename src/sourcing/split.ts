// Split minimisation: the fewest locations whose stock covers every line. It is a set-cover
// problem (with quantities: a line may be served by several locations), NP-hard in general
// but small in practice. We check one location first (the usual answer), then a greedy cover
// gives an upper bound, a per-line bound gives a lower one, and an exact search runs only
// between the two, over the candidates holding stock, within a budget. Candidates are given
// best-ranked first, and every search visits them in that order, so among equally small
// covers the best-ranked one wins and the result is deterministic.

export interface CoverInput {
  /** avail[c][l]: units candidate c can give line l (already capped at what is needed). */
  avail: Int32Array[];
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

/** Candidate c covers every line alone. */
function holdsAll(row: Int32Array, need: Int32Array): boolean {
  for (let l = 0; l < need.length; l++) if (row[l] < need[l]) return false;
  return true;
}

/**
 * The fewest candidates that together cover `need` (which must be coverable: callers cap
 * each line at the total available).
 */
export function minimiseCover(input: CoverInput): Cover {
  const { avail, need } = input;
  let total = 0;
  for (let l = 0; l < need.length; l++) total += need[l];
  if (total === 0) return { chosen: [], method: 'single', lowerBound: 0, note: null };
  for (let c = 0; c < avail.length; c++) if (holdsAll(avail[c], need)) return { chosen: [c], method: 'single', lowerBound: 1, note: null };

  const greedy = greedyCover(avail, need);
  const lowerBound = Math.max(2, perLineBound(avail, need));
  if (greedy.length <= lowerBound) return { chosen: greedy, method: 'exact', lowerBound: greedy.length, note: 'greedy cover meets the lower bound' };

  const useful: number[] = [];
  for (let c = 0; c < avail.length; c++) {
    const row = avail[c];
    for (let l = 0; l < need.length; l++)
      if (row[l] > 0 && need[l] > 0) {
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
    const found = searchSize(avail, need, useful, k, budget - tested);
    tested += found.tested;
    if (found.cover) return { chosen: found.cover, method: 'exact', lowerBound: k, note: null };
    if (found.tested < 0 || tested >= budget) {
      return { chosen: greedy, method: 'greedy', lowerBound: k, note: `exact search stopped after ${budget.toLocaleString('en')} combinations` };
    }
  }
  return { chosen: greedy, method: 'exact', lowerBound: greedy.length, note: 'no smaller cover exists' };
}

/** Repeatedly take the candidate that covers the most remaining units (ties: best-ranked). */
export function greedyCover(avail: Int32Array[], need: Int32Array): number[] {
  const left = Int32Array.from(need);
  let remaining = 0;
  for (let l = 0; l < left.length; l++) remaining += left[l];
  const used = new Uint8Array(avail.length);
  const chosen: number[] = [];
  while (remaining > 0) {
    let best = -1;
    let bestGain = 0;
    for (let c = 0; c < avail.length; c++) {
      if (used[c]) continue;
      const row = avail[c];
      let gain = 0;
      for (let l = 0; l < left.length; l++) gain += Math.min(row[l], left[l]);
      if (gain > bestGain) {
        best = c;
        bestGain = gain;
      }
    }
    if (best < 0) break;
    used[best] = 1;
    chosen.push(best);
    const row = avail[best];
    for (let l = 0; l < left.length; l++) {
      const take = Math.min(row[l], left[l]);
      left[l] -= take;
      remaining -= take;
    }
  }
  return chosen.sort((a, b) => a - b);
}

/** No cover is smaller than the number of locations the hardest single line needs. */
function perLineBound(avail: Int32Array[], need: Int32Array): number {
  let bound = 1;
  for (let l = 0; l < need.length; l++) {
    if (need[l] === 0) continue;
    const col = avail.map((r) => r[l]).sort((a, b) => b - a);
    let sum = 0;
    let k = 0;
    while (sum < need[l] && k < col.length) sum += col[k++];
    if (k > bound) bound = k;
  }
  return bound;
}

/** The first k-combination of `useful` (in rank order) that covers `need`. */
function searchSize(avail: Int32Array[], need: Int32Array, useful: number[], k: number, budget: number): { cover: number[] | null; tested: number } {
  const L = need.length;
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
      const row = avail[useful[i]];
      const prev = sums[depth];
      const next = sums[depth + 1];
      for (let l = 0; l < L; l++) next[l] = prev[l] + row[l];
      pick[depth] = useful[i];
      if (rec(depth + 1, i + 1)) return true;
      if (stopped) return false;
    }
    return false;
  };
  const ok = rec(0, 0);
  return { cover: ok ? pick.slice() : null, tested: stopped ? -1 : tested };
}
