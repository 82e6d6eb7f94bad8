/**
 * Small, dependency-free statistics for comparing repeated benchmark measurements (base vs head):
 * medians, a seeded PRNG, the two-sided Mann–Whitney U test (exact distribution for small samples
 * without ties, normal approximation with tie and continuity correction otherwise), a percentile
 * bootstrap of the relative change of medians, and the Hodges–Lehmann shift with its
 * distribution-free confidence interval. Everything here is pure and deterministic given a seed.
 */

/** A PRNG returning uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a tiny, fast, seedable 32-bit generator (good enough for resampling and tests). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviates from a uniform generator (Box–Muller). */
export function normalRng(rng: Rng): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

function sortedCopy(xs: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(xs as ArrayLike<number>);
  out.sort();
  return out;
}

function medianOfSorted(s: Float64Array): number {
  const n = s.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The median (NaN for an empty sample). */
export function median(xs: ArrayLike<number>): number {
  return medianOfSorted(sortedCopy(xs));
}

/** Relative change of `head` against `base`: (head − base) / |base|; ±Infinity when base is 0. */
export function relativeChange(base: number, head: number): number {
  if (base === 0) return head === 0 ? 0 : head > 0 ? Infinity : -Infinity;
  return (head - base) / Math.abs(base);
}

/** Complementary error function (Numerical Recipes' erfcc; fractional error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9 relative). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  }
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const plow = 0.02425;
  if (p < plow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p > 1 - plow) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
}

// ---------------------------------------------------------------------------------------------
// Mann–Whitney U

/** Largest n1 + n2 for which the exact null distribution is used (counts stay exact in doubles). */
export const EXACT_MAX_TOTAL = 50;

const exactCache = new Map<string, Float64Array>();

/**
 * Null distribution of U for sample sizes n1, n2 without ties, as counts: entry u is the number
 * of the C(n1+n2, n1) equally likely arrangements whose U equals u. Recurrence
 * f(i, j, u) = f(i−1, j, u−j) + f(i, j−1, u), computed row by row.
 */
export function mannWhitneyCounts(n1: number, n2: number): Float64Array {
  const key = `${Math.min(n1, n2)},${Math.max(n1, n2)}`;
  const hit = exactCache.get(key);
  if (hit) return hit;
  // prev[j] holds f(i−1, j, ·); cur[j] holds f(i, j, ·).
  let prev: Float64Array[] = [];
  for (let j = 0; j <= n2; j++) prev.push(Float64Array.of(1)); // f(0, j, 0) = 1
  for (let i = 1; i <= n1; i++) {
    const cur: Float64Array[] = [Float64Array.of(1)]; // f(i, 0, 0) = 1
    for (let j = 1; j <= n2; j++) {
      const arr = new Float64Array(i * j + 1);
      const up = prev[j]!; // f(i−1, j, ·), shifted by j
      for (let u = 0; u < up.length; u++) arr[u + j]! += up[u]!;
      const left = cur[j - 1]!; // f(i, j−1, ·)
      for (let u = 0; u < left.length; u++) arr[u]! += left[u]!;
      cur.push(arr);
    }
    prev = cur;
  }
  const out = prev[n2]!;
  exactCache.set(key, out);
  return out;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Exact two-sided p-value for statistic U (either U1 or U2) with sample sizes n1, n2, no ties. */
export function mannWhitneyExactP(u: number, n1: number, n2: number): number {
  const counts = mannWhitneyCounts(n1, n2);
  const total = binomial(n1 + n2, n1);
  const uMin = Math.min(u, n1 * n2 - u);
  let tail = 0;
  for (let k = 0; k <= uMin && k < counts.length; k++) tail += counts[k]!;
  return Math.min(1, (2 * tail) / total);
}

/** The smallest two-sided p-value the exact test can give for sample sizes n1, n2. */
export function minAttainableP(n1: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 1;
  return Math.min(1, 2 / binomial(n1 + n2, n1));
}

export interface MannWhitneyResult {
  /** U of the first sample: pairs (a, b) with a > b, ties counting ½. */
  readonly u1: number;
  /** U of the second sample (u1 + u2 = n1·n2). */
  readonly u2: number;
  /** Two-sided p-value. */
  readonly p: number;
  readonly method: 'exact' | 'normal';
  /** z of the normal approximation (with continuity correction); undefined for the exact test. */
  readonly z?: number;
  readonly ties: boolean;
}

export interface MannWhitneyOptions {
  /** 'auto' (default): exact when there are no ties and n1 + n2 ≤ EXACT_MAX_TOTAL. */
  readonly method?: 'auto' | 'exact' | 'normal';
  /** Continuity correction for the normal approximation (default true, as R and SciPy). */
  readonly continuity?: boolean;
}

/** Two-sided Mann–Whitney U test (Wilcoxon rank-sum) of samples a and b. */
export function mannWhitneyU(a: ArrayLike<number>, b: ArrayLike<number>, opts: MannWhitneyOptions = {}): MannWhitneyResult {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('mannWhitneyU: both samples need at least one value');
  for (const xs of [a, b]) {
    for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i]!)) throw new RangeError('mannWhitneyU: values must be finite');
  }
  // Mid-ranks over the pooled sample.
  const n = n1 + n2;
  const pooled: { v: number; g: 0 | 1 }[] = [];
  for (let i = 0; i < n1; i++) pooled.push({ v: a[i]!, g: 0 });
  for (let i = 0; i < n2; i++) pooled.push({ v: b[i]!, g: 1 });
  pooled.sort((x, y) => x.v - y.v);
  let rankSumA = 0;
  let tieTerm = 0; // Σ (t³ − t)
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && pooled[j + 1]!.v === pooled[i]!.v) j++;
    const t = j - i + 1;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (pooled[k]!.g === 0) rankSumA += rank;
    if (t > 1) tieTerm += t * t * t - t;
    i = j + 1;
  }
  const u1 = rankSumA - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const ties = tieTerm > 0;
  const method = opts.method ?? 'auto';
  const useExact = method === 'exact' || (method === 'auto' && !ties && n <= EXACT_MAX_TOTAL);
  if (useExact) {
    if (ties) throw new RangeError('mannWhitneyU: the exact test needs samples without ties');
    return { u1, u2, p: mannWhitneyExactP(u1, n1, n2), method: 'exact', ties };
  }
  const mu = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) return { u1, u2, p: 1, method: 'normal', z: 0, ties };
  const uMax = Math.max(u1, u2);
  const cc = opts.continuity === false ? 0 : 0.5;
  const z = Math.max(0, uMax - mu - cc) / Math.sqrt(variance);
  return { u1, u2, p: Math.min(1, 2 * normalCdf(-z)), method: 'normal', z, ties };
}

// ---------------------------------------------------------------------------------------------
// Confidence intervals of the change

export interface Interval {
  readonly low: number;
  readonly high: number;
  /** Confidence level, e.g. 0.95. */
  readonly level: number;
}

export interface BootstrapOptions {
  readonly seed?: number;
  /** Number of resamples (default 2000). */
  readonly resamples?: number;
  /** Confidence level (default 0.95). */
  readonly level?: number;
}

function quantileOfSorted(s: Float64Array, q: number): number {
  // Linear interpolation between order statistics (type 7, the R/NumPy default).
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}

/**
 * Percentile bootstrap CI of the relative change of medians, median(head)/median(base) − 1
 * (as (h − b)/|b|), resampling both samples independently with a seeded PRNG.
 */
export function bootstrapChangeCI(base: ArrayLike<number>, head: ArrayLike<number>, opts: BootstrapOptions = {}): Interval {
  const level = opts.level ?? 0.95;
  const resamples = opts.resamples ?? 2000;
  if (base.length === 0 || head.length === 0) throw new RangeError('bootstrapChangeCI: both samples need values');
  if (!(resamples >= 1)) throw new RangeError('bootstrapChangeCI: resamples must be ≥ 1');
  const rng = mulberry32(opts.seed ?? 0x5eed);
  const nb = base.length;
  const nh = head.length;
  const bufB = new Float64Array(nb);
  const bufH = new Float64Array(nh);
  const stats = new Float64Array(resamples);
  let kept = 0;
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < nb; i++) bufB[i] = base[Math.floor(rng() * nb)]!;
    for (let i = 0; i < nh; i++) bufH[i] = head[Math.floor(rng() * nh)]!;
    bufB.sort();
    bufH.sort();
    const c = relativeChange(medianOfSorted(bufB), medianOfSorted(bufH));
    if (Number.isFinite(c)) stats[kept++] = c;
  }
  if (kept === 0) return { low: Number.NaN, high: Number.NaN, level };
  const s = stats.subarray(0, kept).sort();
  const tail = (1 - level) / 2;
  return { low: quantileOfSorted(s, tail), high: quantileOfSorted(s, 1 - tail), level };
}

export interface ShiftEstimate {
  /** Hodges–Lehmann estimate: the median of all pairwise differences head_j − base_i. */
  readonly shift: number;
  /** Distribution-free CI of the shift from the Mann–Whitney null distribution. */
  readonly ci: Interval;
}

/**
 * Hodges–Lehmann location shift of head against base with its distribution-free confidence
 * interval (order statistics of the pairwise differences at the Mann–Whitney critical value:
 * exact counts up to EXACT_MAX_TOTAL, the normal approximation beyond). When the samples are
 * too small to reach the level, the interval is the full range of differences.
 */
export function hodgesLehmann(base: ArrayLike<number>, head: ArrayLike<number>, level = 0.95): ShiftEstimate {
  const n1 = base.length;
  const n2 = head.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('hodgesLehmann: both samples need values');
  const diffs = new Float64Array(n1 * n2);
  let k = 0;
  for (let i = 0; i < n1; i++) for (let j = 0; j < n2; j++) diffs[k++] = head[j]! - base[i]!;
  diffs.sort();
  const m = diffs.length;
  const alphaHalf = (1 - level) / 2;
  // c = the largest k with P(U ≤ k − 1) ≤ α/2 (0 when the level cannot be reached).
  let c = 0;
  if (n1 + n2 <= EXACT_MAX_TOTAL) {
    const counts = mannWhitneyCounts(n1, n2);
    const total = binomial(n1 + n2, n1);
    let cum = 0;
    // Largest c with P(U ≤ c − 1) ≤ α/2.
    for (let u = 0; u < counts.length; u++) {
      cum += counts[u]!;
      if (cum / total > alphaHalf) break;
      c = u + 1;
    }
  } else {
    const z = normalQuantile(1 - alphaHalf);
    c = Math.max(0, Math.floor(m / 2 - z * Math.sqrt((n1 * n2 * (n1 + n2 + 1)) / 12)) + 1);
  }
  // The interval [D(c), D(m + 1 − c)] (1-based) covers with probability 1 − 2·P(U ≤ c − 1).
  const lo = Math.min(Math.max(c - 1, 0), Math.floor((m - 1) / 2));
  return { shift: medianOfSorted(diffs), ci: { low: diffs[lo]!, high: diffs[m - 1 - lo]!, level } };
}
