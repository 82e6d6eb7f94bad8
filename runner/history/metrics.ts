/**
 * Metrics as the history commands see them: a metrics file's JSON flattened to named numbers,
 * snapshots of all stages' metrics at a commit, their difference between two commits, and the
 * tables showing them. Pure.
 */
import { formatNumber, renderTable } from './table.js';

/** One named number of one stage. */
export interface MetricRow {
  readonly stage: string;
  readonly metric: string;
  readonly value: number;
}

/**
 * The numeric leaves of a metrics file's JSON, named by their path: `{"time": {"solve": 1.5}}` →
 * `time.solve`; array elements by index (`residuals.0`). A bare number is `value`. Strings,
 * booleans and nulls are not metrics and are left out. Document order.
 */
export function flattenMetrics(json: unknown): { metric: string; value: number }[] {
  const out: { metric: string; value: number }[] = [];
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      if (Number.isFinite(v)) out.push({ metric: path === '' ? 'value' : path, value: v });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, path === '' ? String(i) : `${path}.${i}`));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) walk(x, path === '' ? k : `${path}.${k}`);
    }
  };
  walk(json, '');
  return out;
}

/** A stage whose metrics could not be read at a commit, and why. */
export interface MetricsProblem {
  readonly stage: string;
  readonly file: string;
  readonly problem: string;
}

/** All stages' metrics at one commit, as the newest run record there names them. */
export interface MetricsSnapshot {
  /** The revision as the user named it (or the default's name). */
  readonly rev: string;
  readonly commit: string;
  /** The run record the metrics map came from. */
  readonly runId: string;
  readonly rows: readonly MetricRow[];
  readonly problems: readonly MetricsProblem[];
}

/** One metric compared between two snapshots. */
export interface DiffRow {
  readonly stage: string;
  readonly metric: string;
  /** Null: not on that side. */
  readonly a: number | null;
  readonly b: number | null;
  /** b − a; null unless on both sides. */
  readonly change: number | null;
  /** The change in percent of |a|; null when one-sided or a is 0 (and b is not). */
  readonly percent: number | null;
}

/**
 * Every metric of either side, by stage (sorted), then in A's order, then those only B has.
 * Percent is relative to |A|: 0 → 0 is 0 %, 0 → anything else has no percentage.
 */
export function diffMetrics(a: readonly MetricRow[], b: readonly MetricRow[]): DiffRow[] {
  const key = (r: MetricRow): string => `${r.stage}\u0000${r.metric}`;
  const bByKey = new Map(b.map((r) => [key(r), r] as const));
  const aKeys = new Set(a.map(key));
  const stages = [...new Set([...a, ...b].map((r) => r.stage))].sort();
  const out: DiffRow[] = [];
  for (const stage of stages) {
    for (const r of a) {
      if (r.stage !== stage) continue;
      const other = bByKey.get(key(r));
      if (other === undefined) {
        out.push({ stage, metric: r.metric, a: r.value, b: null, change: null, percent: null });
        continue;
      }
      const change = other.value - r.value;
      const percent = r.value !== 0 ? (change / Math.abs(r.value)) * 100 : change === 0 ? 0 : null;
      out.push({ stage, metric: r.metric, a: r.value, b: other.value, change, percent });
    }
    for (const r of b) {
      if (r.stage === stage && !aKeys.has(key(r))) out.push({ stage, metric: r.metric, a: null, b: r.value, change: null, percent: null });
    }
  }
  return out;
}

const signed = (v: number): string => (v > 0 ? `+${formatNumber(v)}` : formatNumber(v));

/** `+0.5 (+25%)`, `0`, `+3 (from 0)`, `only in A`. */
export function formatChange(r: DiffRow, labels: { readonly a: string; readonly b: string } = { a: 'A', b: 'B' }): string {
  if (r.a === null) return `only in ${labels.b}`;
  if (r.b === null) return `only in ${labels.a}`;
  const change = r.change ?? r.b - r.a;
  if (change === 0) return '0';
  if (r.percent === null) return `${signed(change)} (from 0)`;
  const p = Math.abs(r.percent) >= 100 ? r.percent.toFixed(0) : Math.abs(r.percent) >= 10 ? r.percent.toFixed(1) : r.percent.toFixed(2);
  return `${signed(change)} (${r.percent > 0 ? '+' : ''}${p}%)`;
}

/** `stage  metric  value`. */
export function renderMetricsTable(rows: readonly MetricRow[]): string {
  if (rows.length === 0) return 'no metrics\n';
  return renderTable(
    ['stage', 'metric', 'value'],
    rows.map((r) => [r.stage, r.metric, formatNumber(r.value)]),
    ['left', 'left', 'right'],
  );
}

/** `stage  metric  <A>  <B>  change`, with the revisions as they were named as column titles. */
export function renderMetricsDiff(rows: readonly DiffRow[], labels: { readonly a: string; readonly b: string }): string {
  if (rows.length === 0) return 'no metrics on either side\n';
  const cell = (v: number | null): string => (v === null ? '-' : formatNumber(v));
  return renderTable(
    ['stage', 'metric', labels.a, labels.b, 'change'],
    rows.map((r) => [r.stage, r.metric, cell(r.a), cell(r.b), formatChange(r, labels)]),
    ['left', 'left', 'right', 'right', 'left'],
  );
}

/** Problems as `  note: <stage>: <file>: <problem>` lines (none: ''). */
export function renderProblems(problems: readonly MetricsProblem[], rev?: string): string {
  return problems.map((p) => `  note: ${p.stage}: ${p.file}${rev === undefined ? '' : ` at ${rev}`}: ${p.problem}\n`).join('');
}

/**
 * `STAGE:METRIC` split at the colon that leaves a stage id among `known` (stage ids may contain
 * colons in matrix values, metric names in JSON keys); without such a stage, at the first colon.
 * Null when there is no colon or either side is empty.
 */
export function splitStageMetric(spec: string, known: Iterable<string> = []): { stage: string; metric: string } | null {
  const stages = new Set(known);
  const cuts: number[] = [];
  for (let i = spec.indexOf(':'); i !== -1; i = spec.indexOf(':', i + 1)) if (i > 0 && i < spec.length - 1) cuts.push(i);
  if (cuts.length === 0) return null;
  const at = cuts.find((i) => stages.has(spec.slice(0, i))) ?? (cuts[0] as number);
  return { stage: spec.slice(0, at), metric: spec.slice(at + 1) };
}

/** `metrics-<stage>-<metric>.svg` with everything but letters, digits, `.`, `_`, `-` made `_`. */
export function plotFileName(stage: string, metric: string): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+|_+$/g, '') || 'x';
  return `metrics-${clean(stage)}-${clean(metric)}.svg`;
}
