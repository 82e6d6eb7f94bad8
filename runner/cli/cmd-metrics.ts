/** `hpcflow metrics show|diff|plot`: the stages' metrics files as committed with run results. */
import { dirname, resolve } from 'node:path';
import type { HistoryRepo } from '../history/git-history.js';
import { metricSeries, metricsAt, newestRecordAt, openHistory, startCommit } from '../history/git-history.js';
import type { MetricsSnapshot } from '../history/metrics.js';
import { diffMetrics, plotFileName, renderMetricsDiff, renderMetricsTable, renderProblems, splitStageMetric } from '../history/metrics.js';
import { parseCount } from '../history/options.js';
import { renderLineChart } from '../history/svg.js';
import { formatNumber } from '../history/table.js';
import { HpcflowError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/fs-atomic.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const METRICS_HELP = `hpcflow metrics — the stages' metrics as committed with run results.

Usage: hpcflow metrics <command> [options]

Commands:
  show [REV]                 the metrics at REV: the files the newest run record there (by run id)
                             names, their numbers flattened to dotted names (time.solve, err.0)
  diff A [B]                 the metrics at A and at B side by side, with the change (absolute and %);
                             metrics on one side only are marked. B defaults as REV does
  plot STAGE:METRIC          an SVG line chart of one metric over the results commits of the history,
                             oldest to newest (x: input commits), e.g. heat/solve:time.total

REV, A, B: a commit (or prefix), branch, tag, HEAD~N or ref. Default: the tip of results.ref of
hpcflow.yaml if set, else HEAD.

Options:
  --json                     machine-readable output
  --ref REF                  plot: the history to read (default as REV)
  -n, --max-count N          plot: at most the newest N results commits (default 50)
  -o, --out FILE.svg         plot: where to write the chart (default metrics-<stage>-<metric>.svg);
                             SVG only (PNG is not supported)
  -C, --workspace DIR
`;

const SUBCOMMANDS = ['show', 'diff', 'plot'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const OPTIONS = {
  ...COMMON_OPTIONS,
  ref: { type: 'string' },
  'max-count': { type: 'string', short: 'n' },
  out: { type: 'string', short: 'o' },
} as const;

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

export async function cmdMetrics(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    io.out(METRICS_HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new HpcflowError('HPCFLOW_USAGE', `unknown metrics command '${sub}'`, { hint: "run 'hpcflow metrics --help' for the list (show, diff, plot)" });
  }
  const { values, positionals } = parse(rest, OPTIONS);
  if (values.help) {
    io.out(METRICS_HELP);
    return EXIT.ok;
  }
  const usage = (u: string): HpcflowError => new HpcflowError('HPCFLOW_USAGE', `usage: hpcflow metrics ${u}`, { hint: "run 'hpcflow metrics --help'" });
  const misplaced = (flag: string, v: unknown): void => {
    if (v !== undefined) throw new HpcflowError('HPCFLOW_USAGE', `${flag} is an option of 'metrics plot' only`, { hint: sub === 'plot' ? undefined : 'name the revisions as arguments' });
  };
  if (sub !== 'plot') {
    misplaced('--ref', values.ref);
    misplaced('-n', values['max-count']);
    misplaced('--out', values.out);
  }
  const repo = await openHistory(workspaceRoot(values, io));
  switch (sub as Sub) {
    case 'show':
      if (positionals.length > 1) throw usage('show [REV]');
      return show(repo, positionals[0], values, io);
    case 'diff':
      if (positionals.length < 1 || positionals.length > 2) throw usage('diff A [B]');
      return diff(repo, positionals[0] as string, positionals[1], values, io);
    case 'plot':
      if (positionals.length !== 1) throw usage('plot STAGE:METRIC [--ref REF] [-n N] [--out FILE.svg]');
      return plot(repo, positionals[0] as string, values, io);
    default:
      throw usage(sub);
  }
}

async function snapshot(repo: HistoryRepo, rev: string | undefined): Promise<MetricsSnapshot> {
  const start = await startCommit(repo, rev);
  return metricsAt(repo, start.oid, start.name);
}

const head = (s: MetricsSnapshot): { rev: string; commit: string; runId: string } => ({ rev: s.rev, commit: s.commit, runId: s.runId });

async function show(repo: HistoryRepo, rev: string | undefined, v: Values, io: CliIO): Promise<number> {
  const s = await snapshot(repo, rev);
  if (v.json) {
    io.out(`${JSON.stringify({ ...head(s), metrics: s.rows, problems: s.problems })}\n`);
    return EXIT.ok;
  }
  io.out(`metrics at ${s.rev} (${s.commit.slice(0, 10)}), run ${s.runId}\n`);
  io.out(renderMetricsTable(s.rows));
  io.err(renderProblems(s.problems));
  return EXIT.ok;
}

async function diff(repo: HistoryRepo, revA: string, revB: string | undefined, v: Values, io: CliIO): Promise<number> {
  const a = await snapshot(repo, revA);
  const b = await snapshot(repo, revB);
  const rows = diffMetrics(a.rows, b.rows);
  if (v.json) {
    io.out(`${JSON.stringify({ a: head(a), b: head(b), rows, problems: { a: a.problems, b: b.problems } })}\n`);
    return EXIT.ok;
  }
  // Two names for the same thing (HEAD and main) would make ambiguous column titles.
  const labels = a.rev === b.rev ? { a: `${a.rev}@${a.commit.slice(0, 7)}`, b: `${b.rev}@${b.commit.slice(0, 7)}` } : { a: a.rev, b: b.rev };
  io.out(`metrics: ${a.rev} (${a.commit.slice(0, 10)}, run ${a.runId}) → ${b.rev} (${b.commit.slice(0, 10)}, run ${b.runId})\n`);
  io.out(renderMetricsDiff(rows, labels));
  io.err(renderProblems(a.problems, a.rev) + renderProblems(b.problems, b.rev));
  return EXIT.ok;
}

async function plot(repo: HistoryRepo, spec: string, v: Values, io: CliIO): Promise<number> {
  const start = await startCommit(repo, v.ref);
  const limit = parseCount(v['max-count'], 50);
  const tipRecord = await newestRecordAt(repo, start.oid);
  const sm = splitStageMetric(spec, Object.keys(tipRecord?.record.metrics ?? {}));
  if (sm === null) throw new HpcflowError('HPCFLOW_USAGE', `'${spec}' is not STAGE:METRIC`, { hint: 'e.g. heat/solve:time.total (see `hpcflow metrics show` for the names)' });
  const out = resolve(io.cwd, v.out ?? plotFileName(sm.stage, sm.metric));
  if (!out.toLowerCase().endsWith('.svg')) {
    throw new HpcflowError('HPCFLOW_USAGE', `--out ${v.out ?? ''}: only SVG charts are written`, { hint: 'name a .svg file (PNG is not supported; convert the SVG, e.g. with rsvg-convert)' });
  }
  const { points, commits } = await metricSeries(repo, start.oid, sm.stage, sm.metric, limit);
  if (points.length === 0) {
    throw new HpcflowError('HPCFLOW_USAGE', `none of the ${commits} results commit${commits === 1 ? '' : 's'} on ${start.name} has the metric ${sm.metric} of stage ${sm.stage}`, {
      hint: await knownMetricsHint(repo, start.oid, start.name),
    });
  }
  const label = (p: (typeof points)[number]): string => (p.inputCommit ?? p.commit).slice(0, 7);
  const svg = renderLineChart(
    points.map((p) => ({ label: label(p), value: p.value, note: `${label(p)} (run ${p.runId}): ${formatNumber(p.value)}` })),
    { title: `${sm.stage}: ${sm.metric}`, subtitle: `${points.length} results commit${points.length === 1 ? '' : 's'} on ${start.name}, oldest to newest` },
  );
  await ensureDir(dirname(out));
  await writeFileAtomic(out, svg);
  if (v.json) {
    io.out(`${JSON.stringify({ out, stage: sm.stage, metric: sm.metric, ref: start.name, points })}\n`);
  } else {
    const first = points[0] as (typeof points)[number];
    const last = points[points.length - 1] as (typeof points)[number];
    io.out(`wrote ${out}: ${sm.stage} ${sm.metric} at ${points.length} results commit${points.length === 1 ? '' : 's'} (${label(first)} ${formatNumber(first.value)} → ${label(last)} ${formatNumber(last.value)})\n`);
  }
  return EXIT.ok;
}

/** "metrics at the tip: a:x, a:y, …" — what could have been meant. */
async function knownMetricsHint(repo: HistoryRepo, oid: string, name: string): Promise<string> {
  try {
    const s = await metricsAt(repo, oid, name);
    const names = s.rows.map((r) => `${r.stage}:${r.metric}`);
    if (names.length === 0) return 'no metrics at the tip either: do the stages declare metrics: files?';
    return `metrics at ${name}: ${names.slice(0, 12).join(', ')}${names.length > 12 ? `, … (${names.length} in all; see \`hpcflow metrics show\`)` : ''}`;
  } catch {
    return 'see `hpcflow log` for the results commits, and `hpcflow metrics show REV` for their metrics';
  }
}
