import { describe, expect, it } from 'vitest';
import { mulberry32, normalRng } from '../../../runner/metrics/stats.js';
import { checkThreshold, decideVerdict, lookupReference, type ReferenceTable } from '../../../runner/metrics/verdict.js';

/** n measurements with median ≈ mean `mu` and coefficient of variation `cv` (normal noise). */
function sample(gen: () => number, n: number, mu: number, cv: number): number[] {
  return Array.from({ length: n }, () => mu * (1 + cv * gen()));
}

describe('decideVerdict: error rates on known distributions', () => {
  it('pure noise (same distribution, n=10, 5% CV): false alarm rate ≤ alpha over 1,000 trials', () => {
    const gen = normalRng(mulberry32(20240601));
    let alarms = 0;
    const trials = 1000;
    for (let t = 0; t < trials; t++) {
      const v = decideVerdict({
        metric: 'time',
        direction: 'lower-is-better',
        base: sample(gen, 10, 100, 0.05),
        head: sample(gen, 10, 100, 0.05),
        ci: 'none',
      });
      if (v.kind === 'regression' || v.kind === 'improvement') alarms++;
    }
    expect(alarms / trials).toBeLessThanOrEqual(0.07);
  });

  it('a real 10% slowdown at 3% CV with n=10 is caught in ≥ 95% of 1,000 trials', () => {
    const gen = normalRng(mulberry32(777));
    let caught = 0;
    const trials = 1000;
    for (let t = 0; t < trials; t++) {
      const v = decideVerdict({
        metric: 'time',
        direction: 'lower-is-better',
        base: sample(gen, 10, 100, 0.03),
        head: sample(gen, 10, 110, 0.03),
        ci: 'none',
      });
      if (v.kind === 'regression') caught++;
      expect(v.kind).not.toBe('improvement');
    }
    expect(caught / trials).toBeGreaterThanOrEqual(0.95);
  });

  it('the same slowdown of a higher-is-better metric (throughput) is an improvement when it goes up', () => {
    const gen = normalRng(mulberry32(5));
    const v = decideVerdict({ metric: 'GFLOP/s', direction: 'higher-is-better', base: sample(gen, 10, 100, 0.02), head: sample(gen, 10, 115, 0.02) });
    expect(v.kind).toBe('improvement');
    expect(v.change).toBeGreaterThan(0.1);
    expect(v.ci!.low).toBeGreaterThan(0.05);
    expect(v.ci!.high).toBeLessThan(0.25);
    expect(v.test).toBe('mann-whitney-exact');
    const w = decideVerdict({ metric: 'GFLOP/s', direction: 'higher-is-better', base: sample(gen, 10, 100, 0.02), head: sample(gen, 10, 85, 0.02) });
    expect(w.kind).toBe('regression');
  });
});

describe('decideVerdict: rules', () => {
  const base = [100, 101, 99, 102, 98, 100.5, 99.5, 101.5];

  it('significant but below the minimum effect → no-change', () => {
    const head = base.map((x) => x + 1.5 + (x - 100) * 0.01); // +1.5 %, perfectly separated? nearly
    const v = decideVerdict({ metric: 't', direction: 'lower-is-better', base, head });
    expect(Math.abs(v.change!)).toBeLessThan(0.02);
    expect(v.kind).toBe('no-change');
    expect(v.reason).toMatch(/minimum effect/);
  });

  it('large change that is not significant → not-significant', () => {
    const v = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [100, 50, 150, 80], head: [115, 55, 165, 95] });
    expect(v.kind).toBe('not-significant');
    expect(v.pValue).toBeGreaterThan(0.05);
  });

  it('two runs each can never be significant: the reason says so', () => {
    const v = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [100, 101], head: [150, 151] });
    expect(v.kind).toBe('not-significant');
    expect(v.reason).toMatch(/too few measurements.*smallest possible p/);
  });

  it('custom alpha and minEffect are honoured', () => {
    const head = base.map((x) => x * 1.05);
    expect(decideVerdict({ metric: 't', direction: 'lower-is-better', base, head }).kind).toBe('regression');
    expect(decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, minEffect: 0.1 }).kind).toBe('no-change');
    expect(decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, alpha: 0.0001 }).kind).toBe('not-significant');
  });

  it('verdicts are deterministic for a seed; Hodges–Lehmann CI as an alternative', () => {
    const head = base.map((x) => x * 1.1);
    const a = decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, seed: 3 });
    expect(decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, seed: 3 })).toEqual(a);
    const hl = decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, ci: 'hodges-lehmann' });
    expect(hl.ci!.low).toBeLessThanOrEqual(0.1);
    expect(hl.ci!.high).toBeGreaterThanOrEqual(0.1);
    expect(hl.ci!.level).toBe(0.95);
  });

  it('rejects bad input', () => {
    expect(() => decideVerdict({ metric: 't', direction: 'lower-is-better', base, head: [] })).toThrow(/no head/);
    expect(() => decideVerdict({ metric: 't', direction: 'lower-is-better', base: [1, Number.NaN], head: [1] })).toThrow(/finite/);
    expect(() => decideVerdict({ metric: 't', direction: 'lower-is-better', base, head: base, alpha: 0 })).toThrow(/alpha/);
  });
});

describe('thresholds (ReFrame-style references)', () => {
  const ref = { ref: 100, lower: -0.05, upper: 0.1 };

  it('bounds are ref·(1+lower) … ref·(1+upper); null is unbounded; negative refs use |ref|', () => {
    expect(checkThreshold(95, ref)).toMatchObject({ low: 95, high: 110, ok: true });
    expect(checkThreshold(110, ref).ok).toBe(true);
    expect(checkThreshold(94.9, ref).ok).toBe(false);
    expect(checkThreshold(110.1, ref).ok).toBe(false);
    expect(checkThreshold(1e9, { ref: 100, lower: -0.05, upper: null })).toMatchObject({ high: null, ok: true });
    expect(checkThreshold(-105, { ref: -100, lower: -0.1, upper: 0.1 })).toMatchObject({ low: -110, high: -90, ok: true });
    expect(() => checkThreshold(1, { ref: 1, lower: 0.1, upper: 0.2 })).toThrow(/lower/);
    expect(() => checkThreshold(1, { ref: 1, lower: -0.1, upper: -0.2 })).toThrow(/upper/);
  });

  it('head outside the bounds → threshold-violation, even when the base comparison shows no change', () => {
    const base = [120, 121, 119, 120.5, 119.5];
    const head = [120.2, 120.8, 119.2, 120.1, 119.9];
    const v = decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, reference: ref });
    expect(v.kind).toBe('threshold-violation');
    expect(v.threshold).toMatchObject({ ok: false, low: 95, high: 110 });
    expect(v.reason).toMatch(/outside \[95, 110\]/);
  });

  it('within the bounds the statistical verdict stands', () => {
    const base = [100, 101, 99, 102, 98, 100.5, 99.5, 101.5];
    const head = base.map((x) => x * 1.07);
    const v = decideVerdict({ metric: 't', direction: 'lower-is-better', base, head, reference: ref });
    expect(v.kind).toBe('regression');
    expect(v.threshold!.ok).toBe(true);
    expect(v.reason).toMatch(/within/);
  });

  it('a single measurement is judged by thresholds only, and the reason says so', () => {
    const bad = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [100], head: [120], reference: ref });
    expect(bad.kind).toBe('threshold-violation');
    expect(bad.pValue).toBeNull();
    expect(bad.reason).toMatch(/single measurement.*only the reference thresholds/);
    const ok = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [100], head: [105], reference: ref });
    expect(ok.kind).toBe('not-significant');
    expect(ok.reason).toMatch(/single measurement/);
    expect(ok.change).toBeCloseTo(0.05, 12);
    const noRef = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [100], head: [150] });
    expect(noRef.kind).toBe('not-significant');
    expect(noRef.reason).toMatch(/no reference given/);
    const newMetric = decideVerdict({ metric: 't', direction: 'lower-is-better', base: [], head: [100, 101, 102], reference: ref });
    expect(newMetric).toMatchObject({ kind: 'not-significant', change: null, baseMedian: null });
    expect(newMetric.reason).toMatch(/no base measurements/);
  });

  it('references are looked up per system: exact, then cluster, then "*"', () => {
    const table: ReferenceTable = {
      'daint:gpu': { time: { ref: 10, lower: -0.1, upper: 0.1 } },
      daint: { time: { ref: 20, lower: -0.1, upper: 0.1 }, bw: { ref: 5, lower: -0.2, upper: null } },
      '*': { time: { ref: 30, lower: null, upper: 0.5 } },
    };
    expect(lookupReference(table, 'daint:gpu', 'time')!.ref).toBe(10);
    expect(lookupReference(table, 'daint:mc', 'time')!.ref).toBe(20);
    expect(lookupReference(table, 'daint:gpu', 'bw')!.ref).toBe(5);
    expect(lookupReference(table, 'other', 'time')!.ref).toBe(30);
    expect(lookupReference(table, 'other', 'bw')).toBeUndefined();
  });
});
