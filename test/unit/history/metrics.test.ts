import { describe, expect, it } from 'vitest';
import type { MetricRow } from '../../../runner/history/metrics.js';
import {
  diffMetrics,
  flattenMetrics,
  formatChange,
  plotFileName,
  renderMetricsDiff,
  renderMetricsTable,
  renderProblems,
  splitStageMetric,
} from '../../../runner/history/metrics.js';
import { parseCount } from '../../../runner/history/options.js';
import { formatDuration, formatNumber, renderTable } from '../../../runner/history/table.js';
import { isHpcflowError } from '../../../runner/errors.js';

const row = (stage: string, metric: string, value: number): MetricRow => ({ stage, metric, value });

describe('flattenMetrics', () => {
  it('names numeric leaves by their dotted path, in document order', () => {
    expect(flattenMetrics({ time: { total: 1.5, solve: 1 }, err: 0.25, residuals: [3, { last: 2 }] })).toEqual([
      { metric: 'time.total', value: 1.5 },
      { metric: 'time.solve', value: 1 },
      { metric: 'err', value: 0.25 },
      { metric: 'residuals.0', value: 3 },
      { metric: 'residuals.1.last', value: 2 },
    ]);
  });

  it('leaves out strings, booleans and nulls; a bare number is "value"', () => {
    expect(flattenMetrics({ name: 'x', ok: true, nothing: null, n: 0, deep: { s: '1' } })).toEqual([{ metric: 'n', value: 0 }]);
    expect(flattenMetrics(42)).toEqual([{ metric: 'value', value: 42 }]);
    expect(flattenMetrics([1, 2])).toEqual([
      { metric: '0', value: 1 },
      { metric: '1', value: 2 },
    ]);
    expect(flattenMetrics('text')).toEqual([]);
    expect(flattenMetrics({})).toEqual([]);
  });
});

describe('diffMetrics', () => {
  it('pairs metrics by stage and name, with absolute and relative change', () => {
    const d = diffMetrics([row('b', 'x', 10), row('a', 'y', 4)], [row('a', 'y', 5), row('b', 'x', 8)]);
    expect(d).toEqual([
      { stage: 'a', metric: 'y', a: 4, b: 5, change: 1, percent: 25 },
      { stage: 'b', metric: 'x', a: 10, b: 8, change: -2, percent: -20 },
    ]);
  });

  it('marks metrics on one side only, keeping them with their stage', () => {
    const d = diffMetrics([row('s', 'gone', 1), row('s', 'kept', 2)], [row('s', 'kept', 2), row('s', 'new', 3), row('t', 'only-b', 4)]);
    expect(d.map((r) => [r.stage, r.metric, r.a, r.b, r.change])).toEqual([
      ['s', 'gone', 1, null, null],
      ['s', 'kept', 2, 2, 0],
      ['s', 'new', null, 3, null],
      ['t', 'only-b', null, 4, null],
    ]);
    expect(formatChange(d[0] as never, { a: 'HEAD~1', b: 'HEAD' })).toBe('only in HEAD~1');
    expect(formatChange(d[2] as never, { a: 'HEAD~1', b: 'HEAD' })).toBe('only in HEAD');
  });

  it('zero baselines: 0 → 0 is no change, 0 → x has no percentage', () => {
    const [same, grew, neg] = diffMetrics([row('s', 'a', 0), row('s', 'b', 0), row('s', 'c', -4)], [row('s', 'a', 0), row('s', 'b', 3), row('s', 'c', -2)]);
    expect(same).toMatchObject({ change: 0, percent: 0 });
    expect(grew).toMatchObject({ change: 3, percent: null });
    expect(formatChange(same as never)).toBe('0');
    expect(formatChange(grew as never)).toBe('+3 (from 0)');
    // Relative to |A|: -4 → -2 is an increase of 50 %.
    expect(neg).toMatchObject({ change: 2, percent: 50 });
    expect(formatChange(neg as never)).toBe('+2 (+50.0%)');
  });

  it('formats changes without floating-point noise', () => {
    const [r] = diffMetrics([row('s', 'm', 0.1)], [row('s', 'm', 0.3)]);
    expect(formatChange(r as never)).toBe('+0.2 (+200%)');
    const [small] = diffMetrics([row('s', 'm', 100)], [row('s', 'm', 99.5)]);
    expect(formatChange(small as never)).toBe('-0.5 (-0.50%)');
  });
});

describe('tables', () => {
  it('renderTable pads columns, right-aligns numbers and trims line ends', () => {
    expect(renderTable(['a', 'num', 'c'], [['x', '1', ''], ['longer', '100', 'z']], ['left', 'right', 'left'])).toBe('a       num  c\nx         1\nlonger  100  z\n');
  });

  it('metrics show table', () => {
    expect(renderMetricsTable([row('heat/gen', 'rows', 1000), row('heat/solve@n=1', 'time.total', 12.345678), row('heat/solve@n=1', 'err', 1e-7)])).toMatchInlineSnapshot(`
      "stage           metric        value
      heat/gen        rows           1000
      heat/solve@n=1  time.total  12.3457
      heat/solve@n=1  err            1e-7
      "
    `);
    expect(renderMetricsTable([])).toBe('no metrics\n');
  });

  it('metrics diff table', () => {
    const d = diffMetrics([row('heat/solve', 'time', 10), row('heat/solve', 'err', 0.5), row('heat/gen', 'rows', 0)], [row('heat/solve', 'time', 8), row('heat/solve', 'iters', 7), row('heat/gen', 'rows', 100)]);
    expect(renderMetricsDiff(d, { a: 'HEAD~2', b: 'HEAD' })).toMatchInlineSnapshot(`
      "stage       metric  HEAD~2  HEAD  change
      heat/gen    rows         0   100  +100 (from 0)
      heat/solve  time        10     8  -2 (-20.0%)
      heat/solve  err        0.5     -  only in HEAD~2
      heat/solve  iters        -     7  only in HEAD
      "
    `);
  });

  it('problems are notes', () => {
    expect(renderProblems([{ stage: 's', file: 'm.json', problem: 'not valid JSON' }], 'HEAD')).toBe('  note: s: m.json at HEAD: not valid JSON\n');
    expect(renderProblems([])).toBe('');
  });

  it('numbers and durations', () => {
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber(0.1 + 0.2)).toBe('0.3');
    expect(formatNumber(1234.56789)).toBe('1234.57');
    expect(formatNumber(1e-7)).toBe('1e-7');
    expect(formatNumber(2.5e20)).toBe('2.5e+20');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(245_000)).toBe('4m 05s');
    expect(formatDuration(7_380_000)).toBe('2h 03m');
  });
});

describe('plot arguments', () => {
  it('STAGE:METRIC splits where a known stage ends', () => {
    expect(splitStageMetric('heat/solve:time.total')).toEqual({ stage: 'heat/solve', metric: 'time.total' });
    expect(splitStageMetric('p/s@img=a:b:time', ['p/s@img=a:b'])).toEqual({ stage: 'p/s@img=a:b', metric: 'time' });
    expect(splitStageMetric('p/s:a:b', ['p/s'])).toEqual({ stage: 'p/s', metric: 'a:b' });
    expect(splitStageMetric('nocolon')).toBeNull();
    expect(splitStageMetric(':x')).toBeNull();
    expect(splitStageMetric('x:')).toBeNull();
  });

  it('default file names are sanitised', () => {
    expect(plotFileName('heat/solve@n=1,impl=omp', 'time.total')).toBe('metrics-heat_solve_n_1_impl_omp-time.total.svg');
    expect(plotFileName('../../etc', 'x/y')).toBe('metrics-etc-x_y.svg');
  });

  it('-n must be a positive number', () => {
    expect(parseCount(undefined, 20)).toBe(20);
    expect(parseCount('5', 20)).toBe(5);
    for (const bad of ['0', '-1', 'x', '1.5']) {
      try {
        parseCount(bad, 20);
        expect.unreachable();
      } catch (e) {
        expect(isHpcflowError(e, 'HPCFLOW_USAGE')).toBe(true);
      }
    }
  });
});
