import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../../runner/history/log-view.js';
import { logJson, renderLog, runStatus } from '../../../runner/history/log-view.js';
import { isSafeRunId, parseRunRecord, parseTrailers, resultsTrailers } from '../../../runner/history/record.js';

const RECORD = {
  schema: 1,
  runId: '20261124T230000Z-abc123',
  ok: true,
  aborted: false,
  wallMs: 12_345,
  counts: { ran: 2, restored: 1, 'up-to-date': 3, failed: 0, skipped: 0, canceled: 0, 'not-started': 0 },
  inputCommit: '1111111111111111111111111111111111111111',
  images: { 'heat/solve': { tag: 'x', digest: 'sha256:1' } },
  environment: { hpcflow: '0.1.0', executor: 'slurm', host: 'login1' },
  metrics: { 'heat/solve': 'results/solve.json' },
  stages: { 'heat/solve': { status: 'ran', fingerprint: 'f', reasons: [], result: { wallMs: 1 }, upstream: [] } },
  future: { field: 1 },
};

describe('run records', () => {
  it('keeps what history needs and ignores the rest', () => {
    expect(parseRunRecord(JSON.stringify(RECORD))).toEqual({
      runId: RECORD.runId,
      ok: true,
      aborted: false,
      wallMs: 12_345,
      counts: RECORD.counts,
      inputCommit: RECORD.inputCommit,
      environment: RECORD.environment,
      metrics: RECORD.metrics,
    });
  });

  it('is lenient about missing or odd fields, strict about the run id', () => {
    expect(parseRunRecord('{"runId":"r1","counts":{"ran":"x"},"metrics":{"a":1,"b":"m.json"}}')).toEqual({
      runId: 'r1',
      ok: null,
      aborted: false,
      wallMs: null,
      counts: {},
      inputCommit: null,
      environment: {},
      metrics: { b: 'm.json' },
    });
    expect(parseRunRecord('{"ok":true}')).toBeNull();
    expect(parseRunRecord('not json')).toBeNull();
    expect(parseRunRecord('[]')).toBeNull();
  });

  it('results commits are recognised by their trailers', () => {
    const msg = `hpcflow: 2 ran, 1 restored, 3 up to date (run ${RECORD.runId})\n\nHpcflow-Run: ${RECORD.runId}\nHpcflow-Input: ${RECORD.inputCommit}\n`;
    expect(resultsTrailers(msg)).toEqual({ runId: RECORD.runId, inputCommit: RECORD.inputCommit });
    expect(resultsTrailers('Hpcflow-Run: x')).toBeNull(); // a subject line is not a trailer
    expect(resultsTrailers('fix solver\n\nSigned-off-by: a <a@b>')).toBeNull();
    expect(resultsTrailers('hpcflow: x\r\n\r\nhpcflow-run: r2\r\n')).toEqual({ runId: 'r2', inputCommit: null });
    expect(parseTrailers('s\n\nA: 1\nA: 2\nnot a trailer line').get('a')).toEqual(['1', '2']);
    expect(isSafeRunId(RECORD.runId)).toBe(true);
    expect(isSafeRunId('../x')).toBe(false);
    expect(isSafeRunId('a/b')).toBe(false);
  });
});

describe('log rendering', () => {
  const entry = (over: Partial<LogEntry> & { rec?: Partial<Record<keyof typeof RECORD, unknown>> | null }): LogEntry => {
    const { rec, ...rest } = over;
    return {
      commit: 'c'.repeat(40),
      timestamp: Date.UTC(2026, 10, 24, 23, 5) / 1000,
      runId: RECORD.runId,
      inputTrailer: '2'.repeat(40),
      record: rec === null ? null : parseRunRecord(JSON.stringify({ ...RECORD, ...rec })),
      recordPath: `runs/${RECORD.runId}.json`,
      ...rest,
    };
  };

  it('one line per run, with counts, wall time and executor', () => {
    const entries = [
      entry({ runId: '20261125T090000Z-def456', rec: { runId: '20261125T090000Z-def456', ok: false, wallMs: 245_000, counts: { ran: 1, restored: 0, 'up-to-date': 4, failed: 1, skipped: 2, canceled: 0, 'not-started': 0 }, environment: { executor: 'docker' } } }),
      entry({}),
      entry({ runId: '20261124T100000Z-000000', rec: null, recordPath: 'runs/20261124T100000Z-000000.json' }),
    ];
    expect(renderLog(entries)).toMatchInlineSnapshot(`
      "input       date (UTC)        run                      status  ran  restored  up to date  failed    wall  executor
      1111111111  2026-11-24 23:05  20261125T090000Z-def456  FAILED    1         0           4       1  4m 05s  docker    2 skipped
      1111111111  2026-11-24 23:05  20261124T230000Z-abc123  ok        2         1           3       0  12.3 s  slurm
      2222222222  2026-11-24 23:05  20261124T100000Z-000000  ?         -         -           -       -       -  -         no run record at runs/20261124T100000Z-000000.json
      "
    `);
    expect(runStatus(entry({ rec: { ok: false, aborted: true } }))).toBe('aborted');
    expect(renderLog([])).toMatch(/^no runs/);
  });

  it('JSON: one flat object per run', () => {
    expect(logJson(entry({}))).toEqual({
      commit: 'c'.repeat(40),
      date: '2026-11-24T23:05:00.000Z',
      runId: RECORD.runId,
      inputCommit: RECORD.inputCommit,
      status: 'ok',
      ok: true,
      aborted: false,
      counts: RECORD.counts,
      wallMs: 12_345,
      executor: 'slurm',
      record: `runs/${RECORD.runId}.json`,
    });
    expect(logJson(entry({ rec: null }))).toMatchObject({ inputCommit: '2'.repeat(40), status: '?', record: null, counts: null });
  });
});
