import { describe, expect, it } from 'vitest';
import { explainGitHubError, isReadOnlyTokenError, apiBaseUrl, tokenFromEnv } from '../../../runner/github/client.js';
import {
  guessDirection,
  judgeMetrics,
  overallVerdict,
  parseReferences,
  repeatedMetrics,
  stageOutcomes,
  statusState,
} from '../../../runner/github/report-model.js';
import { isHpcflowError } from '../../../runner/errors.js';

describe('repeatedMetrics', () => {
  it('reads an array of numbers as repetitions of one metric, other arrays by index', () => {
    expect(repeatedMetrics({ time: { total: [1, 2, 3], setup: 0.5 }, residuals: [{ last: 2 }, 'x'], label: 'a', bad: Infinity })).toEqual([
      { metric: 'time.total', values: [1, 2, 3] },
      { metric: 'time.setup', values: [0.5] },
      { metric: 'residuals.0.last', values: [2] },
    ]);
    expect(repeatedMetrics(3)).toEqual([{ metric: 'value', values: [3] }]);
    expect(repeatedMetrics([])).toEqual([]);
  });
});

describe('stageOutcomes', () => {
  it('reads statuses, reasons and errors of a run record, sorted by stage', () => {
    const rec = {
      stages: {
        solve: { status: 'failed', reasons: ['params changed'], error: 'exit 1' },
        plot: { status: 'skipped', reason: 'upstream solve failed' },
        a: { status: 'up-to-date', fingerprint: 'x' },
        junk: 3,
      },
    };
    expect(stageOutcomes(rec)).toEqual([
      { stage: 'a', status: 'up-to-date', reasons: [] },
      { stage: 'plot', status: 'skipped', reasons: ['upstream solve failed'] },
      { stage: 'solve', status: 'failed', reasons: ['params changed'], error: 'exit 1' },
    ]);
    expect(stageOutcomes(null)).toEqual([]);
  });
});

describe('verdict mapping', () => {
  const five = (x: number, d = 0.1): number[] => [x, x + d, x - d, x + d / 2, x];

  it('maps every verdict kind to the overall verdict and the commit status', () => {
    const judged = judgeMetrics(
      [{ stage: 's', metric: 'time', values: five(10) }],
      [{ stage: 's', metric: 'time', values: five(12) }],
    );
    expect(judged[0]?.verdict.kind).toBe('regression');
    expect(overallVerdict([], judged)).toBe('regression');
    expect(statusState('regression')).toBe('failure');
    const better = judgeMetrics([{ stage: 's', metric: 'gflops', values: five(10) }], [{ stage: 's', metric: 'gflops', values: five(12) }]);
    expect(better[0]?.verdict.kind).toBe('improvement');
    expect(overallVerdict([], better)).toBe('improvement');
    expect(statusState('improvement')).toBe('success');
    const same = judgeMetrics([{ stage: 's', metric: 'time', values: five(10) }], [{ stage: 's', metric: 'time', values: five(10) }]);
    expect(overallVerdict([], same)).toBe('no-change');
    const single = judgeMetrics([{ stage: 's', metric: 'time', values: [10] }], [{ stage: 's', metric: 'time', values: [20] }]);
    expect(single[0]?.verdict.kind).toBe('not-significant');
    expect(overallVerdict([], single)).toBe('inconclusive');
    expect(overallVerdict([{ stage: 's', status: 'failed', reasons: [] }], better)).toBe('failure');
    expect(overallVerdict([], better, false)).toBe('failure');
    expect(statusState('failure')).toBe('failure');
  });

  it('judges single values by references (direction from the reference)', () => {
    const references = { '*': { 's:rate': { ref: 100, lower: -0.1, upper: null, direction: 'higher-is-better' as const } } };
    const [v] = judgeMetrics([{ stage: 's', metric: 'rate', values: [100] }], [{ stage: 's', metric: 'rate', values: [80] }], { references });
    expect(v?.verdict.kind).toBe('threshold-violation');
    expect(v?.verdict.direction).toBe('higher-is-better');
    expect(overallVerdict([], v ? [v] : [])).toBe('regression');
  });

  it('guesses directions from names', () => {
    expect(guessDirection('time.total')).toBe('lower-is-better');
    expect(guessDirection('gflops')).toBe('higher-is-better');
    expect(guessDirection('bandwidth_GBps')).toBe('higher-is-better');
  });

  it('validates references', () => {
    expect(parseReferences({ '*': { 's:t': { ref: 1, lower: -0.1 } } })).toEqual({ '*': { 's:t': { ref: 1, lower: -0.1, upper: null } } });
    expect(parseReferences({ '*': { 's:t': { ref: 'x' } } })).toMatch(/ref must be a number/);
    expect(parseReferences({ '*': { 's:t': { ref: 1, lower: 0.1 } } })).toMatch(/lower must be ≤ 0/);
    expect(parseReferences([])).toMatch(/expected an object/);
  });
});

describe('client helpers', () => {
  it('reads the token from the environment only, HPCFLOW_GITHUB_TOKEN first', () => {
    expect(tokenFromEnv({ GITHUB_TOKEN: 'a', HPCFLOW_GITHUB_TOKEN: 'b' })).toBe('b');
    expect(tokenFromEnv({ GITHUB_TOKEN: ' a ' })).toBe('a');
    expect(tokenFromEnv({})).toBeUndefined();
  });
  it('takes GitHub Enterprise URLs', () => {
    expect(apiBaseUrl({ GITHUB_API_URL: 'https://ghe.example.com/api/v3/' })).toBe('https://ghe.example.com/api/v3');
    expect(apiBaseUrl({}, 'http://127.0.0.1:1')).toBe('http://127.0.0.1:1');
    expect(apiBaseUrl({})).toBe('https://api.github.com');
    expect(() => apiBaseUrl({ GITHUB_API_URL: 'nope' })).toThrow(/not a URL/);
  });
  it('explains a read-only token', () => {
    const e = Object.assign(new Error('Resource not accessible by integration'), { status: 403, response: { data: { message: 'Resource not accessible by integration' } } });
    expect(isReadOnlyTokenError(e)).toBe(true);
    const x = explainGitHubError(e, 'post the comment', true);
    expect(isHpcflowError(x) && x.message).toMatch(/read-only.*nothing was posted/);
    expect(isHpcflowError(x) && x.hint).toMatch(/trusted workflow/);
  });
});
