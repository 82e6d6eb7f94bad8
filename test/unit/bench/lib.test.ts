/** The statistics of the benchmark report: quartiles, and the least-squares fit of the scaling study. */
import { describe, expect, it } from 'vitest';
import { linearFit, summarize } from '../../../bench/lib.js';

describe('bench statistics', () => {
  it('summarize: median and quartiles by linear interpolation', () => {
    expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, p25: 1.75, p75: 3.25, min: 1, n: 4 });
    expect(summarize([]).n).toBe(0);
  });

  it('linearFit: slope, intercept and R² of ordinary least squares', () => {
    const f = linearFit([1, 2, 3, 4], [3, 5, 7, 9]);
    expect(f.slope).toBeCloseTo(2, 12);
    expect(f.intercept).toBeCloseTo(1, 12);
    expect(f.r2).toBeCloseTo(1, 12);
    const g = linearFit([0, 1, 2], [0, 2, 1]);
    expect(g.slope).toBeCloseTo(0.5, 12);
    expect(g.intercept).toBeCloseTo(0.5, 12);
    expect(g.r2).toBeCloseTo(0.25, 12);
    expect(Number.isNaN(linearFit([5, 5], [1, 2]).slope)).toBe(true);
  });
});
