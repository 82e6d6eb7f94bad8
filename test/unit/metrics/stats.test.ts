import { describe, expect, it } from 'vitest';
import {
  bootstrapChangeCI,
  hodgesLehmann,
  mannWhitneyCounts,
  mannWhitneyExactP,
  mannWhitneyU,
  median,
  minAttainableP,
  mulberry32,
  normalCdf,
  normalQuantile,
  normalRng,
} from '../../../runner/metrics/stats.js';

/** All ways to choose which k of n pooled ranks belong to the first sample. */
function* combinations(n: number, k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) {
    yield acc.slice();
    return;
  }
  for (let i = start; i < n; i++) {
    acc.push(i);
    yield* combinations(n, k, i + 1, acc);
    acc.pop();
  }
}

describe('basic helpers', () => {
  it('median of odd, even and unsorted samples', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('seeded PRNG is reproducible and roughly uniform; normals have mean 0, sd 1', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    for (let i = 0; i < 10; i++) expect(a()).toBe(b());
    const n = normalRng(mulberry32(7));
    let s = 0;
    let s2 = 0;
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const x = n();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / N)).toBeLessThan(0.03);
    expect(Math.abs(Math.sqrt(s2 / N) - 1)).toBeLessThan(0.03);
  });

  it('normal CDF and quantile agree with tables', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963985)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-2.575829304)).toBeCloseTo(0.005, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 6);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 6);
  });
});

describe('Mann–Whitney U: exact distribution', () => {
  it('counts match brute-force enumeration and sum to C(n1+n2, n1)', () => {
    for (const [n1, n2] of [
      [1, 1],
      [2, 3],
      [3, 3],
      [4, 6],
      [5, 5],
    ] as const) {
      const brute = new Array<number>(n1 * n2 + 1).fill(0);
      for (const firstRanks of combinations(n1 + n2, n1)) {
        // U1 = Σ ranks(first) − n1(n1+1)/2 with 1-based ranks.
        const u = firstRanks.reduce((s, r) => s + r + 1, 0) - (n1 * (n1 + 1)) / 2;
        brute[u]! += 1;
      }
      expect(Array.from(mannWhitneyCounts(n1, n2))).toEqual(brute);
      expect(Array.from(mannWhitneyCounts(n2, n1))).toEqual(brute);
    }
  });

  it('exact p-values of completely separated samples: 2/C(n1+n2, n1)', () => {
    expect(mannWhitneyU([1, 2, 3], [4, 5, 6]).p).toBeCloseTo(0.1, 12); // 2/20
    expect(mannWhitneyU([1, 2, 3, 4], [5, 6, 7, 8]).p).toBeCloseTo(2 / 70, 12);
    expect(mannWhitneyU([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p).toBeCloseTo(0.007936507936507936, 12); // R: wilcox.test → 0.007937
    expect(minAttainableP(5, 5)).toBeCloseTo(2 / 252, 12);
    expect(minAttainableP(2, 2)).toBeCloseTo(1 / 3, 12);
  });

  it('known exact p-values (SciPy mannwhitneyu(method="exact") and the n = 10 table)', () => {
    // SciPy: mannwhitneyu([1,2,4,5], [3,6,7,8], method='exact') → U = 2, p = 0.11428571428571428.
    const r = mannWhitneyU([1, 2, 4, 5], [3, 6, 7, 8]);
    expect(r.method).toBe('exact');
    expect(r.u1).toBe(2);
    // P(U ≤ 2) for 4,4 = (1+1+2)/70 → p = 8/70.
    expect(r.p).toBeCloseTo(8 / 70, 12);
    // n1 = n2 = 10, U = 23: P(U ≤ 23) = 0.0216 (table value), two-sided 0.0433; U = 24: 0.0524.
    expect(mannWhitneyExactP(23, 10, 10)).toBeCloseTo(0.0433, 4);
    expect(mannWhitneyExactP(24, 10, 10)).toBeCloseTo(0.0524, 4);
    // Symmetric in U1/U2 and capped at 1.
    expect(mannWhitneyExactP(100 - 23, 10, 10)).toBeCloseTo(mannWhitneyExactP(23, 10, 10), 12);
    expect(mannWhitneyExactP(50, 10, 10)).toBe(1);
  });

  it('critical values of the two-sided 0.05 table: p(U_crit) ≤ 0.05 < p(U_crit + 1)', () => {
    // Standard Mann–Whitney table (two-tailed α = .05).
    const table: [number, number, number][] = [
      [4, 4, 0],
      [4, 5, 1],
      [5, 5, 2],
      [5, 6, 3],
      [5, 7, 5],
      [5, 8, 6],
      [5, 10, 8],
      [6, 6, 5],
      [6, 8, 8],
      [7, 7, 8],
      [8, 8, 13],
      [8, 10, 17],
      [10, 10, 23],
      [12, 12, 37],
      [15, 15, 64],
      [20, 20, 127],
    ];
    for (const [n1, n2, crit] of table) {
      expect(mannWhitneyExactP(crit, n1, n2), `${n1},${n2} U=${crit}`).toBeLessThanOrEqual(0.05);
      expect(mannWhitneyExactP(crit + 1, n1, n2), `${n1},${n2} U=${crit + 1}`).toBeGreaterThan(0.05);
    }
  });
});

describe('Mann–Whitney U: normal approximation', () => {
  it('is used with ties and applies the tie correction (matches SciPy mannwhitneyu(method="asymptotic"))', () => {
    // SciPy 1.17: mannwhitneyu([1,2,2,3,4], [2,3,5,6,6], method='asymptotic') → U = 4.5, p = 0.11049202405566802
    const r = mannWhitneyU([1, 2, 2, 3, 4], [2, 3, 5, 6, 6]);
    expect(r.method).toBe('normal');
    expect(r.ties).toBe(true);
    expect(r.u1).toBe(4.5);
    // Ties: three 2s, two 3s, two 6s → Σ(t³ − t) = 36; variance = 25/12·(11 − 36/90).
    const z = (25 - 4.5 - 12.5 - 0.5) / Math.sqrt((25 / 12) * (11 - 36 / 90));
    expect(r.p).toBeCloseTo(2 * normalCdf(-z), 12);
    expect(r.p).toBeCloseTo(0.11049202405566802, 6);
  });

  it('agrees with the exact test for moderate samples without ties', () => {
    const rng = normalRng(mulberry32(3));
    const a = Array.from({ length: 20 }, () => rng());
    const b = Array.from({ length: 20 }, () => rng() + 0.6);
    const exact = mannWhitneyU(a, b, { method: 'exact' }).p;
    const approx = mannWhitneyU(a, b, { method: 'normal' }).p;
    expect(Math.abs(exact - approx)).toBeLessThan(0.01);
  });

  it('large samples use the normal approximation; all-equal samples give p = 1', () => {
    const a = Array.from({ length: 40 }, (_, i) => i);
    const b = Array.from({ length: 40 }, (_, i) => i + 0.5);
    expect(mannWhitneyU(a, b).method).toBe('normal');
    expect(mannWhitneyU([1, 1, 1], [1, 1, 1]).p).toBe(1);
    expect(() => mannWhitneyU([], [1])).toThrow(RangeError);
    expect(() => mannWhitneyU([1, 1], [1, 2], { method: 'exact' })).toThrow(/ties/);
  });
});

describe('confidence intervals', () => {
  it('bootstrap CI is reproducible for a seed and covers the true ratio in most trials', () => {
    const base = [100, 101, 99, 102, 98, 100, 103, 97];
    const head = base.map((x) => x * 1.1);
    const a = bootstrapChangeCI(base, head, { seed: 1 });
    expect(bootstrapChangeCI(base, head, { seed: 1 })).toEqual(a);
    expect(a.low).toBeLessThanOrEqual(0.1);
    expect(a.high).toBeGreaterThanOrEqual(0.1);

    const rng = normalRng(mulberry32(99));
    let covered = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const b = Array.from({ length: 10 }, () => 100 * (1 + 0.03 * rng()));
      const h = Array.from({ length: 10 }, () => 110 * (1 + 0.03 * rng()));
      const ci = bootstrapChangeCI(b, h, { seed: t, resamples: 1000 });
      if (ci.low <= 0.1 && 0.1 <= ci.high) covered++;
    }
    // The percentile bootstrap of a median undercovers a little at n = 10.
    expect(covered / trials).toBeGreaterThan(0.85);
  });

  it('Hodges–Lehmann shift and its exact CI', () => {
    const base = [1, 2, 3, 4, 5];
    const head = [11, 12, 13, 14, 15];
    const hl = hodgesLehmann(base, head);
    expect(hl.shift).toBe(10);
    // n1 = n2 = 5: P(U ≤ 2) = 4/252 ≤ 0.025 < P(U ≤ 3) → c = 3: the 3rd smallest / largest of 25 differences.
    expect(hl.ci).toEqual({ low: 7, high: 13, level: 0.95 });
    // Too small to reach the level: the full range.
    expect(hodgesLehmann([1, 2], [3, 5]).ci).toMatchObject({ low: 1, high: 4 });
  });
});
