import { describe, expect, it } from 'vitest';
import { cell, num, quantile, renderReport, type ReportInput } from '../../../runner/github/render.js';
import type { MetricSeries, StageOutcomeInfo } from '../../../runner/github/report-model.js';
import { judgeMetrics } from '../../../runner/github/report-model.js';
import { hasMarker } from '../../../runner/github/sticky-comment.js';

const HEAD = { rev: 'pr-branch', commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678', runId: '20261124T120000Z-headrn' };
const BASE = { rev: 'main', commit: 'ffeeddccbbaa99887766554433221100ffeeddcc', runId: '20261124T100000Z-basern' };
const RUN_URL = 'https://github.com/octo-org/hpc-repo/actions/runs/42';

const s = (stage: string, metric: string, values: number[]): MetricSeries => ({ stage, metric, values });
const ranSolve: StageOutcomeInfo[] = [
  { stage: 'build', status: 'up-to-date', reasons: [] },
  { stage: 'solve', status: 'ran', reasons: ['param n changed: 100 → 200', 'upstream build restored'] },
  { stage: 'plot', status: 'restored', reasons: ['outputs in cache'] },
];

function report(base: MetricSeries[], head: MetricSeries[], extra: Partial<ReportInput> = {}): string {
  const references = { '*': { 'solve:time.total': { ref: 10, lower: -0.2, upper: 0.1, unit: 's' } } };
  return renderReport({
    pipeline: 'heat',
    head: HEAD,
    base: BASE,
    stages: ranSolve,
    metrics: judgeMetrics(base, head, { references }),
    runOk: true,
    runUrl: RUN_URL,
    ...extra,
  });
}

describe('renderReport snapshots', () => {
  it('no change', () => {
    const md = report(
      [s('solve', 'time.total', [10, 10.1, 9.9, 10, 10.05]), s('solve', 'gflops', [50, 50.5, 49.8, 50.2, 50])],
      [s('solve', 'time.total', [10.02, 10, 9.95, 10.1, 10]), s('solve', 'gflops', [50.1, 50.3, 49.9, 50, 50.2])],
    );
    expect(md).toContain('✅ hpcflow · heat: No change');
    expect(md).toMatchSnapshot();
  });

  it('improvement', () => {
    const md = report(
      [s('solve', 'time.total', [10, 10.2, 9.9, 10.1, 10]), s('solve', 'gflops', [50, 50.5, 49.8, 50.2, 50])],
      [s('solve', 'time.total', [8.5, 8.6, 8.4, 8.55, 8.5]), s('solve', 'gflops', [58, 58.4, 57.9, 58.1, 58.2])],
    );
    expect(md).toContain('🟢 hpcflow · heat: Improvement');
    expect(md).toContain('🟢 improvement');
    expect(md).toMatchSnapshot();
  });

  it('regression beyond the threshold', () => {
    const md = report(
      [s('solve', 'time.total', [10, 10.2, 9.9, 10.1, 10]), s('solve', 'gflops', [50, 50.5, 49.8, 50.2, 50])],
      [s('solve', 'time.total', [12, 12.1, 11.9, 12.2, 12]), s('solve', 'gflops', [42, 41.5, 42.2, 41.9, 42])],
    );
    expect(md).toContain('🔴 hpcflow · heat: Performance regression');
    expect(md).toContain('⛔ threshold violation');
    expect(md).toContain('🔴 regression');
    expect(md).toMatchSnapshot();
  });

  it('a noisy result that is not significant', () => {
    const md = report(
      [s('solve', 'gflops', [50, 70, 40, 60, 45])],
      [s('solve', 'gflops', [55, 75, 42, 65, 44])],
    );
    expect(md).toContain('⚪ hpcflow · heat: No significant change');
    expect(md).toContain('🟡 not significant');
    expect(md).toContain('could be noise');
    expect(md).toMatchSnapshot();
  });

  it('a stage failure, with single measurements judged by references only', () => {
    const stages: StageOutcomeInfo[] = [
      { stage: 'build', status: 'ran', reasons: ['source kernels/heat.c changed'] },
      { stage: 'solve', status: 'failed', reasons: ['upstream build ran'], error: 'exit code 139 (segmentation fault)\nsee log' },
      { stage: 'plot', status: 'skipped', reasons: ['upstream solve failed'] },
    ];
    const md = report([s('build', 'compile_s', [31])], [s('build', 'compile_s', [33])], { stages, runOk: false });
    expect(md).toContain('❌ hpcflow · heat: Stage failure');
    expect(md).toContain('`solve` **failed**: upstream build ran');
    expect(md).toContain('error: exit code 139 (segmentation fault) see log');
    expect(md).toContain('Single measurements are judged by their reference thresholds only');
    expect(md).toMatchSnapshot();
  });

  it('ends with the marker, links the run, and says when there is no base', () => {
    const md = renderReport({ pipeline: 'heat', head: HEAD, base: null, stages: [], metrics: judgeMetrics([], [s('solve', 't', [1])]), runOk: true });
    expect(md.trimEnd().endsWith('<!-- hpcflow:report pipeline=heat -->')).toBe(true);
    expect(hasMarker(md, 'heat')).toBe(true);
    expect(md).toContain('no base results');
    expect(md).toContain('| new |');
    expect(md).not.toContain('[the run]');
    expect(report([], [s('solve', 't', [1])])).toContain(`[the run](${RUN_URL})`);
  });

  it('says when nothing re-ran', () => {
    const md = renderReport({ pipeline: 'p', head: HEAD, base: BASE, stages: [{ stage: 'a', status: 'up-to-date', reasons: [] }], metrics: [] });
    expect(md).toContain('All 1 stages were up to date: nothing re-ran.');
    expect(md).toContain('No metrics were recorded at the head.');
  });
});

describe('render helpers', () => {
  it('escapes table cells and formats numbers', () => {
    expect(cell('a|b\nc')).toBe('a\\|b c');
    expect(num(1234.5678)).toBe('1235');
    expect(num(0.0001234)).toBe('1.23e-4');
    expect(num(0)).toBe('0');
  });
  it('quantiles interpolate', () => {
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([5], 0.75)).toBe(5);
  });
});
