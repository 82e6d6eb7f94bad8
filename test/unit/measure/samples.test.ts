import { describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { judgeMetrics } from '../../../runner/github/report-model.js';
import { renderReport } from '../../../runner/github/render.js';
import type { SamplesFile } from '../../../runner/measure/samples.js';
import { addRun, alternation, describeSamples, parseSamples, toSeries } from '../../../runner/measure/samples.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function file(over: Partial<SamplesFile> = {}): SamplesFile {
  return {
    format: 'hpcflow-measure/1',
    base: { rev: 'origin/main', commit: A },
    head: { rev: 'HEAD', commit: B },
    rounds: 2,
    order: [],
    stages: ['p/solve'],
    host: 'login1',
    executor: 'docker',
    allocation: null,
    startedAt: '2026-11-25T00:00:00.000Z',
    finishedAt: '2026-11-25T00:01:00.000Z',
    samples: { base: { 'p/solve': { time_s: [1, 1.01] } }, head: { 'p/solve': { time_s: [1.1, 1.12] } } },
    ...over,
  };
}

describe('alternation', () => {
  it('is ABBA: base first in even rounds, head first in odd ones', () => {
    expect(alternation(1)).toEqual(['base', 'head']);
    expect(alternation(3)).toEqual(['base', 'head', 'head', 'base', 'base', 'head']);
  });
  it('runs each side once per round, and each side first equally often over an even number of rounds', () => {
    const o = alternation(6);
    expect(o.filter((s) => s === 'base')).toHaveLength(6);
    const firsts = [0, 2, 4, 6, 8, 10].map((i) => o[i]);
    expect(firsts.filter((s) => s === 'base')).toHaveLength(3);
  });
});

describe('samples', () => {
  it('appends each run: single values and arrays (repeats inside one run)', () => {
    const s = {};
    expect(addRun(s, 'p/solve', { time_s: 1.5, gflops: [10, 11], nested: { err: 0.1 }, name: 'x' })).toBe(4);
    expect(addRun(s, 'p/solve', { time_s: 1.6, gflops: [12] })).toBe(2);
    expect(s).toEqual({ 'p/solve': { time_s: [1.5, 1.6], gflops: [10, 11, 12], 'nested.err': [0.1] } });
    expect(toSeries(s).map((x) => `${x.stage}:${x.metric}=${x.values.join(',')}`)).toEqual(['p/solve:gflops=10,11,12', 'p/solve:nested.err=0.1', 'p/solve:time_s=1.5,1.6']);
  });

  it('parses what measure writes, and rejects anything else with the file named', () => {
    const f = file();
    expect(parseSamples(JSON.parse(JSON.stringify(f)), 'x.json')).toEqual(f);
    const bad: [unknown, RegExp][] = [
      [null, /not an hpcflow measure file/],
      [{ ...f, format: 'other' }, /not an hpcflow measure file/],
      [{ ...f, head: { rev: 'HEAD', commit: 'abc' } }, /head must be \{ rev, commit \}/],
      [{ ...f, rounds: 0 }, /rounds must be a positive integer/],
      [{ ...f, samples: { base: {}, head: { s: { t: [1, 'x'] } } } }, /samples\.head\.s\.t must be an array of finite numbers/],
      [{ ...f, samples: { base: { s: [] }, head: {} } }, /samples\.base\.s must be an object of metrics/],
      [{ ...f, allocation: { jobId: 5 } }, /allocation must be null or \{ jobId, nodes \}/],
    ];
    for (const [json, re] of bad) {
      let err: unknown;
      try {
        parseSamples(json, 'pr.json');
      } catch (e) {
        err = e;
      }
      expect(isHpcflowError(err, 'HPCFLOW_USAGE'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/^pr\.json: /);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('says how the samples were taken', () => {
    expect(describeSamples(file())).toBe('base and head measured alternately (ABBA), 2 rounds of each, on login1 (docker)');
    expect(describeSamples(file({ rounds: 1, allocation: { jobId: '42', nodes: ['n1', 'n2'] } }))).toBe(
      'base and head measured alternately (ABBA), 1 round of each, as job steps of one Slurm allocation (job 42 on n1,n2)',
    );
  });

  it('feed the report: a measured base without a run record, and the line saying how', () => {
    const f = file({ samples: { base: { 'p/solve': { time_s: [1.0, 1.01, 0.99, 1.0, 1.02] } }, head: { 'p/solve': { time_s: [1.1, 1.11, 1.12, 1.1, 1.09] } } } });
    const metrics = judgeMetrics(toSeries(f.samples.base), toSeries(f.samples.head));
    expect(metrics[0]?.verdict.kind).toBe('regression');
    const md = renderReport({
      pipeline: 'p',
      head: { rev: 'HEAD', commit: B, runId: 'r1' },
      base: { rev: f.base.rev, commit: f.base.commit, runId: '' },
      measured: describeSamples(f),
      stages: [],
      metrics,
    });
    expect(md).toContain('vs base `origin/main` (`aaaaaaa`):');
    expect(md).toContain('Measured: base and head measured alternately (ABBA), 2 rounds of each, on login1 (docker).');
  });
});
