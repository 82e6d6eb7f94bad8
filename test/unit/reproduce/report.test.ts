import { describe, expect, it } from 'vitest';
import type { ReproduceReport, StageReport } from '../../../runner/reproduce/report.js';
import { describeVerdict, fmtErr, fmtNum, renderReport, reportJson, summarise, table } from '../../../runner/reproduce/report.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;

const stages: StageReport[] = [
  {
    id: 'p/gen',
    status: 'ran',
    tolerance: null,
    image: { tag: 'hpcflow-test/busybox:1', recorded: DIGEST, rerun: DIGEST, action: 'same', changed: false },
    outputs: [
      { path: 'metrics.json', kind: 'file', verdict: 'identical' },
      { path: 'out.txt', kind: 'file', verdict: 'identical' },
    ],
    metrics: [{ file: 'metrics.json', key: 'value', recorded: 3, value: 3, absChange: 0, relChange: 0, within: true }],
    notes: [],
  },
  {
    id: 'p/noise',
    status: 'ran',
    tolerance: { rel: 0.01, abs: 0 },
    image: { tag: 'local/solver:2', recorded: DIGEST, rerun: DIGEST, action: 'pinned', changed: false },
    outputs: [
      {
        path: 'noise.json',
        kind: 'file',
        verdict: 'within',
        numeric: { format: 'json', count: 1, outside: 0, maxAbsErr: 0.0021, maxRelErr: 0.00209, worst: '$.t', mismatch: null },
      },
      {
        path: 'field',
        kind: 'dir',
        verdict: 'different',
        counts: { identical: 8, within: 1, different: 1, missing: 0 },
        files: [
          { path: 'u.bin', verdict: 'within', numeric: { format: 'float64', count: 4096, outside: 0, maxAbsErr: 1e-9, maxRelErr: 3.2e-7, worst: 'element 17', mismatch: null } },
          { path: 'log.txt', verdict: 'different', detail: 'no numbers in the file' },
        ],
      },
      {
        path: 'noise.txt',
        kind: 'file',
        verdict: 'different',
        numeric: { format: 'text', count: 2, outside: 1, maxAbsErr: 0.04, maxRelErr: 0.02, worst: 'line 1, value 2', mismatch: null },
      },
    ],
    metrics: [
      { file: 'noise.json', key: 't', recorded: 1.0049, value: 1.0028, absChange: 0.0021, relChange: -0.00208976, within: true },
      { file: 'noise.json', key: 'zero', recorded: 0, value: 1e-9, absChange: 1e-9, relChange: null, within: false },
      { file: 'noise.json', key: 'gone', recorded: 2, value: null, absChange: null, relChange: null, within: false },
    ],
    notes: ['output extra.txt was not recorded (nothing to compare it with)'],
  },
  {
    id: 'p/solve',
    status: 'failed',
    error: 'exit code 3',
    log: ['reading input', 'solver diverged'],
    tolerance: null,
    image: { tag: 'local/solver:2', recorded: DIGEST, rerun: null, action: 'unavailable', changed: false },
    outputs: [{ path: 'solution.csv', kind: 'file', verdict: 'missing', detail: 'the stage failed' }],
    metrics: [],
    notes: [],
  },
];

function report(over: Partial<ReproduceReport> = {}, st: StageReport[] = stages): ReproduceReport {
  const strict = over.strictImages ?? false;
  const { summary, reproduced } = summarise(st, strict);
  return {
    rev: 'v1.0',
    commit: '1234567890abcdef1234567890abcdef12345678',
    source: 'results-of-input',
    resultsCommit: 'fedcba0987654321fedcba0987654321fedcba09',
    inputCommit: '1234567890abcdef1234567890abcdef12345678',
    runId: '20250101T000000Z-abcdef',
    rerunId: '20250102T000000Z-123456',
    strictImages: strict,
    reproduced,
    summary,
    stages: st,
    skipped: [{ id: 'p/old', why: 'not a stage of the pipeline at 1234567890ab' }],
    warnings: ['p/solve: the recorded image sha256:abababababab (local/solver:2) can no longer be obtained'],
    kept: null,
    timings: { materialiseMs: 120, runMs: 4210, compareMs: 35, totalMs: 4400 },
    ...over,
  };
}

describe('renderReport', () => {
  it('a table of outputs, metrics, failures, images, notes and warnings, then the verdict', () => {
    expect(renderReport(report())).toMatchInlineSnapshot(`
      "reproduce v1.0 (1234567890ab): compared with results commit fedcba098765 (run 20250101T000000Z-abcdef), input 1234567890ab
      re-ran 3 stages (run 20250102T000000Z-123456) in 4.2 s; worktree 0.1 s, comparison 0.0 s

      STAGE    OUTPUT        RESULT
      p/gen    metrics.json  identical
      p/gen    out.txt       identical
      p/noise  noise.json    within tolerance (max rel err 2.1e-3 at $.t)
      p/noise  field/        DIFFERENT (8 of 10 files identical, 1 within tolerance, 1 different)
                 u.bin       within tolerance (max rel err 3.2e-7 at element 17)
                 log.txt     DIFFERENT (no numbers in the file)
      p/noise  noise.txt     DIFFERENT (max rel err 2.0e-2 at line 1, value 2; 1 of 2 values outside tolerance rel 0.01)
      p/solve  solution.csv  MISSING (the stage failed)

      STAGE    METRIC  RECORDED  NEW     CHANGE
      p/gen    value   3         3       0                          same
      p/noise  t       1.0049    1.0028  -0.0021 (-0.209%)          within tolerance
      p/noise  zero    0         1e-9    +1e-9                      OUTSIDE TOLERANCE
      p/noise  gone    2         -       only in the recorded file  MISSING

      stage p/solve failed: exit code 3
        | reading input
        | solver diverged

      STAGE    IMAGE                   RECORDED             RE-RUN
      p/gen    hpcflow-test/busybox:1  sha256:abababababab  same
      p/noise  local/solver:2          sha256:abababababab  same (pinned: the tag names another image now)
      p/solve  local/solver:2          sha256:abababababab  not run

      note: p/noise: output extra.txt was not recorded (nothing to compare it with)
      note: p/old: not compared: not a stage of the pipeline at 1234567890ab

      WARNING: p/solve: the recorded image sha256:abababababab (local/solver:2) can no longer be obtained

      NOT REPRODUCED: 2 identical, 1 within tolerance, 2 different, 1 missing of 6 outputs; 1 stage did not complete
      "
    `);
  });

  it('reproduced; kept worktree', () => {
    const ok = stages.slice(0, 1);
    const text = renderReport(report({ kept: { worktree: '/tmp/x/ws', cache: '/tmp/x/cache' }, warnings: [], skipped: [] }, ok));
    expect(text).toMatch(/\nREPRODUCED: 2 identical, 0 within tolerance, 0 different, 0 missing of 2 outputs\n$/);
    expect(text).toContain('kept: worktree /tmp/x/ws\n      cache    /tmp/x/cache\n');
  });

  it('strict images: a changed image fails an otherwise identical reproduction', () => {
    const changed: StageReport[] = [{ ...(stages[0] as StageReport), image: { tag: 't', recorded: DIGEST, rerun: OTHER, action: 'unavailable', changed: true } }];
    expect(summarise(changed, false).reproduced).toBe(true);
    expect(summarise(changed, true).reproduced).toBe(false);
    expect(renderReport(report({ strictImages: true }, changed))).toMatch(/NOT REPRODUCED: .*; 1 stage on another image \(--strict-images\)\n$/);
    expect(renderReport(report({}, changed))).toContain('CHANGED: re-ran on sha256:cdcdcdcdcdcd');
  });
});

describe('pieces', () => {
  it('summarise counts verdicts and failed stages', () => {
    expect(summarise(stages, false)).toEqual({
      reproduced: false,
      summary: { outputs: 6, identical: 2, within: 1, different: 2, missing: 1, stagesCompared: 3, stagesFailed: 1, imagesChanged: 0 },
    });
  });
  it('JSON keeps infinite errors as strings', () => {
    const r = report({}, [{ ...(stages[1] as StageReport), outputs: [{ path: 'z', kind: 'file', verdict: 'different', numeric: { format: 'json', count: 1, outside: 1, maxAbsErr: 1, maxRelErr: Infinity, worst: '$.z', mismatch: null } }] }]);
    const j = JSON.parse(reportJson(r)) as { stages: { outputs: { numeric: { maxRelErr: unknown } }[] }[] };
    expect(j.stages[0]?.outputs[0]?.numeric.maxRelErr).toBe('Infinity');
  });
  it('number formats', () => {
    expect(fmtErr(0.00312)).toBe('3.1e-3');
    expect(fmtErr(Infinity)).toBe('inf');
    expect(fmtErr(0)).toBe('0');
    expect(fmtNum(1.0049)).toBe('1.0049');
    expect(fmtNum(0.1 + 0.2)).toBe('0.3');
    expect(fmtNum(1 / 3)).toBe('0.33333333');
    expect(fmtNum(NaN)).toBe('NaN');
    expect(fmtNum(1e-12)).toBe('1e-12');
  });
  it('verdicts', () => {
    expect(describeVerdict({ path: 'a', verdict: 'different', numeric: { format: 'json', count: 2, outside: 1, maxAbsErr: 1, maxRelErr: 0.5, worst: '$.a', mismatch: null } }, null)).toBe(
      'DIFFERENT (max rel err 5.0e-1 at $.a; no tolerance declared)',
    );
    expect(describeVerdict({ path: 'a', verdict: 'different', numeric: { format: 'json', count: 2, outside: 0, maxAbsErr: 0, maxRelErr: 0, worst: null, mismatch: '$.b: only in the new file' } }, { rel: 1, abs: 0 })).toBe(
      'DIFFERENT ($.b: only in the new file)',
    );
    expect(describeVerdict({ path: 'a', verdict: 'different' }, null)).toBe('DIFFERENT');
  });
  it('table pads all but the last column', () => {
    expect(table([['a', 'bb', 'c'], ['ccc', 'd', 'eeee']])).toBe('a    bb  c\nccc  d   eeee');
  });
});
