import { describe, expect, it } from 'vitest';
import { CHART_MAX_METRICS, CHECK_SUMMARY_MAX, cell, num, quantile, renderChart, renderCheckOutput, renderReport, type ReportInput } from '../../../runner/github/render.js';
import type { MetricSeries, StageOutcomeInfo } from '../../../runner/github/report-model.js';
import { checkConclusion, failsOnRegression, judgeMetrics } from '../../../runner/github/report-model.js';
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

describe('renderChart', () => {
  it('charts head as % of base, the most changed first, at most CHART_MAX_METRICS', () => {
    const base = Array.from({ length: 10 }, (_, i) => s(i % 2 === 0 ? 'solve' : 'post', `m${i}`, [100]));
    const head = Array.from({ length: 10 }, (_, i) => s(i % 2 === 0 ? 'solve' : 'post', `m${i}`, [100 + i * (i % 3 === 0 ? -3 : 2)]));
    const lines = renderChart(judgeMetrics(base, head));
    const text = lines.join('\n');
    expect(text).toContain('```mermaid\nxychart-beta\n');
    const xAxis = lines.find((l) => l.trim().startsWith('x-axis')) ?? '';
    const labels = xAxis.match(/"[^"]*"/g) ?? [];
    expect(labels).toHaveLength(CHART_MAX_METRICS);
    // |change|: m9 27, m6 18, m8 16, m7 14, m5 10, m3 9, m4 8, m2 4; m1 (2) and m0 (0) are left out.
    expect(labels.slice(0, 3)).toEqual(['"post:m9 ↓"', '"solve:m6 ↓"', '"solve:m8 ↓"']);
    expect(xAxis).not.toContain('m0 ');
    expect(xAxis).not.toContain('m1 ');
    expect(lines.find((l) => l.trim().startsWith('bar'))).toBe('  bar [73, 82, 116, 114, 110, 91, 108, 104]');
    expect(lines.find((l) => l.trim().startsWith('line'))).toBe(`  line [${Array(CHART_MAX_METRICS).fill('100').join(', ')}]`);
    expect(text).toContain('The 2 least changed metrics are left out.');
  });

  it('only charts metrics measured on both sides, with a usable base', () => {
    expect(renderChart(judgeMetrics([], [s('solve', 't', [1])]))).toEqual([]);
    expect(renderChart(judgeMetrics([s('solve', 't', [0])], [s('solve', 't', [1])]))).toEqual([]);
    const lines = renderChart(judgeMetrics([s('solve', 'a"b', [2])], [s('solve', 'a"b', [3]), s('solve', 'new', [1])]));
    expect(lines.find((l) => l.trim().startsWith('x-axis'))).toBe(`  x-axis ["a'b ↓"]`);
    expect(lines.find((l) => l.trim().startsWith('y-axis'))).toBe('  y-axis "% of base" 0 --> 170');
  });

  it('leaves the chart out of a report without base metrics', () => {
    const md = renderReport({ pipeline: 'heat', head: HEAD, base: null, stages: [], metrics: judgeMetrics([], [s('solve', 't', [1])]) });
    expect(md).not.toContain('mermaid');
  });
});

describe('check run output and verdict mapping', () => {
  it('is the headline and the metrics table', () => {
    const input: ReportInput = {
      pipeline: 'heat',
      head: HEAD,
      base: BASE,
      stages: ranSolve,
      metrics: judgeMetrics([s('solve', 'gflops', [50, 50.5, 49.8, 50.2, 50])], [s('solve', 'gflops', [58, 58.4, 57.9, 58.1, 58.2])]),
      runOk: true,
    };
    const out = renderCheckOutput(input);
    expect(out.title).toBe('🟢 hpcflow · heat: Improvement');
    expect(out.summary).toMatch(/^Head `pr-branch` .* vs base `main`/);
    expect(out.summary).toContain('| solve | gflops |');
    expect(out.summary).not.toContain('hpcflow:report');
    const many = { ...input, metrics: judgeMetrics([], Array.from({ length: 2000 }, (_, i) => s('solve', `metric_${i}_${'x'.repeat(20)}`, [i]))) };
    const big = renderCheckOutput(many).summary;
    expect(big.length).toBeLessThanOrEqual(CHECK_SUMMARY_MAX);
    expect(big).toMatch(/truncated: see the pull request comment\)$/);
  });

  it('maps the overall verdict', () => {
    expect(checkConclusion('failure')).toBe('failure');
    expect(checkConclusion('regression')).toBe('failure');
    expect(checkConclusion('improvement')).toBe('success');
    expect(checkConclusion('no-change')).toBe('success');
    expect(checkConclusion('inconclusive')).toBe('neutral');
    expect(['failure', 'regression', 'improvement', 'no-change', 'inconclusive'].filter((v) => failsOnRegression(v as never))).toEqual(['failure', 'regression']);
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
