import { describe, expect, it } from 'vitest';
import { renderDot, renderText } from '../../../runner/cli/cmd-dag.js';
import { summaryLine } from '../../../runner/cli/cmd-run.js';
import { planRows, renderPlan } from '../../../runner/cli/cmd-status.js';
import { describeOutcome, plainReporter } from '../../../runner/cli/reporter.js';
import type { CliIO } from '../../../runner/cli/io.js';
import type { StagePlan } from '../../../runner/engine/planner.js';
import type { StageGraph } from '../../../runner/dag/graph.js';
import type { Stage } from '../../../runner/model/pipeline.js';
import type { StageRunResult } from '../../../runner/executors/executor.js';
import { failureOf } from '../../../runner/engine/run.js';

const stage = (id: string): Stage =>
  ({ id, pipeline: id.split('/')[0], name: id.split('/')[1], matrix: {}, image: { kind: 'ref', ref: 'x' }, cmd: 'true', wdir: '', deps: [], params: [], outs: [], metrics: null, resources: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1, memoryBytes: null, timeLimitSec: null }, env: {}, pos: { file: 'p', line: 1, col: 1 } }) as Stage;

const graph: StageGraph = {
  ids: ['heat/gen', 'heat/solve@n=1', 'heat/report'],
  upstream: new Map([['heat/gen', []], ['heat/solve@n=1', ['heat/gen']], ['heat/report', ['heat/solve@n=1']]]),
  downstream: new Map([['heat/gen', ['heat/solve@n=1']], ['heat/solve@n=1', ['heat/report']], ['heat/report', []]]),
  stages: new Map(['heat/gen', 'heat/solve@n=1', 'heat/report'].map((id) => [id, stage(id)])),
  producedBy: new Map(),
};

const result: StageRunResult = { exitCode: 0, signal: null, timedOut: false, canceled: false, engineError: null, wallMs: 1300, startOverheadMs: 90, commandMs: 1200, cpuMs: 2300, peakMemBytes: 64 * 2 ** 20, nodes: ['n1'] };

describe('CLI rendering (pure)', () => {
  it('status lists each stage with its decision and reasons', () => {
    const plans = new Map<string, StagePlan>([
      ['heat/gen', { stage: stage('heat/gen'), decision: { action: 'up-to-date', fingerprint: 'a', reasons: [] } }],
      ['heat/solve@n=1', { stage: stage('heat/solve@n=1'), decision: { action: 'run', fingerprint: 'b', reasons: [{ kind: 'param-changed', name: 'heat.n', before: 4000, after: 8000 }] } }],
      ['heat/report', { stage: stage('heat/report'), decision: { action: 'run', fingerprint: null, reasons: [{ kind: 'upstream-runs', stage: 'heat/solve@n=1' }] } }],
    ]);
    const rows = planRows(plans, graph.upstream);
    expect(renderPlan('status', rows, { 'up-to-date': 1, run: 2, restore: 0 })).toMatchInlineSnapshot(`
      "heat/gen        up to date
      heat/solve@n=1  will run
          param heat.n 4000→8000
      heat/report     will run
          upstream heat/solve@n=1 will run
      3 stages: 1 up to date, 2 will run, 0 restorable from cache
      "
    `);
    expect(renderPlan('plan', rows, { 'up-to-date': 1, run: 2, restore: 0 }).split('\n')[1]).toBe('2. heat/solve@n=1  will run');
  });

  it('dag as layers and as Graphviz dot', () => {
    expect(renderText(graph)).toBe('layer 0:\n  heat/gen\nlayer 1:\n  heat/solve@n=1  ← heat/gen\nlayer 2:\n  heat/report  ← heat/solve@n=1\n');
    const dot = renderDot(graph);
    expect(dot).toContain('"heat/gen" -> "heat/solve@n=1";');
    expect(dot).toContain('label="heat";');
    expect(dot).toContain('"heat/solve@n=1" [label="solve@n=1"];');
  });

  it('outcomes and failures read well', () => {
    expect(describeOutcome({ status: 'ran', fingerprint: 'f', reasons: [], result })).toBe('ran (1.20 s, start 90 ms, cpu 2.30 s, peak 64.0 MiB)');
    expect(describeOutcome({ status: 'skipped', reason: { kind: 'upstream-failed', stage: 'heat/gen' } })).toBe('skipped: upstream heat/gen failed');
    expect(failureOf({ ...result, exitCode: 3 })).toBe('exit code 3');
    expect(failureOf({ ...result, exitCode: null, timedOut: true, commandMs: 10_000 })).toBe('timed out after 10 s (time limit)');
    expect(failureOf({ ...result, exitCode: null, signal: 'SIGKILL' })).toBe('killed by SIGKILL');
    expect(failureOf({ ...result, engineError: 'boom' })).toBe('container engine error: boom');
    expect(failureOf(result)).toBeNull();
  });

  it('plain reporter: timestamped, stage-prefixed lines; stderr to stderr', () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIO = { out: (t) => out.push(t), err: (t) => err.push(t), isTTY: false, env: {}, cwd: '/' };
    const r = plainReporter(io, () => new Date('2026-01-01T00:00:00Z'));
    r.onEvent({ type: 'stage-start', stage: 'heat/gen', action: 'run', reasons: [{ kind: 'new' }] });
    r.onEvent({ type: 'stage-log', stage: 'heat/gen', stream: 'stderr', line: 'warning: x' });
    r.onEvent({ type: 'stage-end', stage: 'heat/gen', outcome: { status: 'failed', fingerprint: null, error: 'exit code 1', reasons: [] }, ms: 5 });
    expect(out.join('')).toBe('2026-01-01T00:00:00.000Z [heat/gen] running: never ran (no entry in hpcflow.lock)\n2026-01-01T00:00:00.000Z [heat/gen] FAILED: exit code 1\n');
    expect(err.join('')).toBe('2026-01-01T00:00:00.000Z [heat/gen] warning: x\n');
  });

  it('run summary line', () => {
    const counts = { 'up-to-date': 3, restored: 1, ran: 2, failed: 1, skipped: 0, canceled: 0, 'not-started': 0 };
    expect(summaryLine({ runId: 'r1', ok: false, aborted: false, counts, outcomes: new Map(), wallMs: 1234 })).toBe('run r1: 2 ran, 1 restored, 3 up to date, 1 failed in 1.23 s\n');
  });
});
