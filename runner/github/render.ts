/**
 * PURE: the markdown of the pull-request report comment — a header with the overall verdict,
 * the stages that re-ran and why, a metrics table head vs base (change, spread, verdict and its
 * reason), a Mermaid bar chart of head relative to base, a link to the run, and a footer with the
 * sticky marker. Also the title and summary of the check run (headline and table).
 */
import type { VerdictKind } from '../metrics/verdict.js';
import type { MetricReport, OverallVerdict, StageOutcomeInfo } from './report-model.js';
import { overallVerdict } from './report-model.js';
import { reportMarker } from './sticky-comment.js';

export interface ReportSide {
  /** The revision as named (branch, sha, …). */
  readonly rev: string;
  readonly commit: string;
  /** '' when no run record is behind it (samples of `hpcflow measure`). */
  readonly runId: string;
}

export interface ReportInput {
  readonly pipeline: string;
  readonly head: ReportSide;
  /** Null: no base results (every metric is judged by its reference only). */
  readonly base: ReportSide | null;
  readonly stages: readonly StageOutcomeInfo[];
  readonly metrics: readonly MetricReport[];
  /** The run record's `ok` (null: not recorded). */
  readonly runOk?: boolean | null;
  readonly runUrl?: string;
  /** How the samples were taken, when `hpcflow measure` took them (base and head alternately). */
  readonly measured?: string;
  /** Stages whose metrics could not be read, and similar notes. */
  readonly notes?: readonly string[];
}

export const OVERALL: Readonly<Record<OverallVerdict, { emoji: string; word: string }>> = {
  failure: { emoji: '❌', word: 'Stage failure' },
  regression: { emoji: '🔴', word: 'Performance regression' },
  improvement: { emoji: '🟢', word: 'Improvement' },
  'no-change': { emoji: '✅', word: 'No change' },
  inconclusive: { emoji: '⚪', word: 'No significant change' },
};

export const KIND: Readonly<Record<VerdictKind, { emoji: string; word: string }>> = {
  improvement: { emoji: '🟢', word: 'improvement' },
  regression: { emoji: '🔴', word: 'regression' },
  'no-change': { emoji: '⚪', word: 'no change' },
  'not-significant': { emoji: '🟡', word: 'not significant' },
  'threshold-violation': { emoji: '⛔', word: 'threshold violation' },
};

/** Markdown table cell text: pipes escaped, line breaks flattened. */
export function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Inline code that survives backticks in the text. */
function code(s: string): string {
  const t = s.replace(/[\r\n]+/g, ' ');
  return t.includes('`') ? `\`\` ${t} \`\`` : `\`${t}\``;
}

/** A number in at most 4 significant digits, plain below 1e6. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-3) return x.toExponential(2);
  return String(+x.toPrecision(4));
}

const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%` : x > 0 ? '+∞' : '−∞');

/** The q-quantile (linear interpolation between order statistics; q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/** `1.23` for one value, `1.23 (n=5)` for the median of several; `—` for none. */
function valueCell(xs: readonly number[], unit: string | undefined): string {
  if (xs.length === 0) return '—';
  const u = unit ? ` ${unit}` : '';
  return xs.length === 1 ? `${num(xs[0] as number)}${u}` : `${num(median(xs))}${u} (n=${xs.length})`;
}

/** The confidence interval of the change when computed, else head's p25–p75, else `—`. */
function spreadCell(m: MetricReport): string {
  const ci = m.verdict.ci;
  if (ci) return `${Math.round(ci.level * 100)}% CI ${pct(ci.low)} … ${pct(ci.high)}`;
  if (m.head.length >= 2) return `p25–p75 ${num(quantile(m.head, 0.25))}–${num(quantile(m.head, 0.75))}`;
  return '—';
}

function changeCell(m: MetricReport): string {
  const c = m.verdict.change;
  return c === null ? 'new' : pct(c);
}

const STATUS_WORD: Readonly<Record<string, string>> = {
  ran: 're-ran',
  restored: 'restored from cache',
  'up-to-date': 'up to date',
  failed: '**failed**',
  skipped: 'skipped',
  canceled: 'canceled',
  'not-started': 'not started',
};

function stagesSection(stages: readonly StageOutcomeInfo[]): string[] {
  if (stages.length === 0) return [];
  const moved = stages.filter((s) => s.status !== 'up-to-date');
  const upToDate = stages.length - moved.length;
  const lines: string[] = ['### Stages', ''];
  if (moved.length === 0) {
    lines.push(`All ${stages.length} stages were up to date: nothing re-ran.`, '');
    return lines;
  }
  for (const s of moved) {
    const word = STATUS_WORD[s.status] ?? s.status;
    const why = s.reasons.length > 0 ? `: ${s.reasons.map(cell).join('; ')}` : '';
    lines.push(`- ${code(s.stage)} ${word}${why}`);
    if (s.error !== undefined) lines.push(`  - error: ${cell(s.error)}`);
  }
  if (upToDate > 0) lines.push(`- ${upToDate} other stage${upToDate === 1 ? '' : 's'} up to date`);
  lines.push('');
  return lines;
}

function metricsSection(metrics: readonly MetricReport[], base: ReportSide | null): string[] {
  if (metrics.length === 0) return ['### Metrics', '', 'No metrics were recorded at the head.', ''];
  const lines = ['### Metrics', ''];
  const baseTitle = base ? `base (${code(base.commit.slice(0, 7))})` : 'base';
  lines.push(`| stage | metric | ${baseTitle} | head | change | spread | verdict | why |`);
  lines.push('| --- | --- | ---: | ---: | ---: | --- | --- | --- |');
  for (const m of metrics) {
    const k = KIND[m.verdict.kind];
    lines.push(
      `| ${cell(m.stage)} | ${cell(m.metric)} | ${valueCell(m.base, m.unit)} | ${valueCell(m.head, m.unit)} | ${changeCell(m)} | ${spreadCell(m)} | ${k.emoji} ${k.word} | ${cell(m.verdict.reason)} |`,
    );
  }
  lines.push('');
  return lines;
}

/** Most metrics in the chart (the most changed). */
export const CHART_MAX_METRICS = 8;

/** A Mermaid string: no double quotes or line breaks (Mermaid has no escape for them). */
function mermaidString(s: string): string {
  return `"${s.replace(/"/g, "'").replace(/[\r\n]+/g, ' ').trim()}"`;
}

/**
 * A Mermaid `xychart-beta` bar chart of head relative to base (base = 100, drawn as a line) for
 * the metrics measured on both sides with a non-zero base median, the most changed first (at
 * most CHART_MAX_METRICS); [] when there are none. Pure.
 */
export function renderChart(metrics: readonly MetricReport[]): string[] {
  const points = metrics
    .filter((m) => m.base.length > 0 && m.head.length > 0)
    .map((m, i) => ({ m, i, rel: (median(m.head) / median(m.base)) * 100 }))
    .filter((p) => Number.isFinite(p.rel))
    .sort((a, b) => Math.abs(b.rel - 100) - Math.abs(a.rel - 100) || a.i - b.i)
    .slice(0, CHART_MAX_METRICS);
  if (points.length === 0) return [];
  const oneStage = new Set(points.map((p) => p.m.stage)).size === 1;
  const arrow = (m: MetricReport): string => (m.verdict.direction === 'higher-is-better' ? '↑' : '↓');
  const labels = points.map((p) => mermaidString(`${oneStage ? p.m.metric : `${p.m.stage}:${p.m.metric}`} ${arrow(p.m)}`));
  const values = points.map((p) => String(+p.rel.toFixed(1)));
  const top = Math.max(110, Math.ceil((Math.max(...points.map((p) => p.rel)) * 1.1) / 10) * 10);
  const omitted = metrics.filter((m) => m.base.length > 0 && m.head.length > 0).length - points.length;
  const lines = [
    '### Head vs base',
    '',
    '```mermaid',
    'xychart-beta',
    `  title ${mermaidString(`Head as % of base (base = 100)${oneStage ? `, stage ${points[0]?.m.stage ?? ''}` : ''}`)}`,
    `  x-axis [${labels.join(', ')}]`,
    `  y-axis "% of base" 0 --> ${top}`,
    `  bar [${values.join(', ')}]`,
    `  line [${points.map(() => '100').join(', ')}]`,
    '```',
    '',
  ];
  const tail = omitted > 0 ? ` The ${omitted} least changed metric${omitted === 1 ? ' is' : 's are'} left out.` : '';
  lines.push(`Bars: head median as % of base median, most changed first (↑ higher is better, ↓ lower is better); the line marks the base.${tail}`, '');
  return lines;
}

function summaryLine(metrics: readonly MetricReport[]): string {
  const counts = new Map<VerdictKind, number>();
  for (const m of metrics) counts.set(m.verdict.kind, (counts.get(m.verdict.kind) ?? 0) + 1);
  const order: VerdictKind[] = ['threshold-violation', 'regression', 'improvement', 'not-significant', 'no-change'];
  const parts = order.filter((k) => counts.has(k)).map((k) => `${counts.get(k)} ${KIND[k].word}`);
  return parts.length === 0 ? 'no metrics' : parts.join(', ');
}

function headline(r: ReportInput): string {
  const o = OVERALL[overallVerdict(r.stages, r.metrics, r.runOk ?? null)];
  return `${o.emoji} hpcflow · ${cell(r.pipeline)}: ${o.word}`;
}

function headBaseLine(r: ReportInput): string {
  const side = (s: ReportSide): string => `${code(s.rev)} (${code(s.commit.slice(0, 7))}${s.runId === '' ? '' : `, run ${code(s.runId)}`})`;
  return `Head ${side(r.head)} vs base ${r.base ? side(r.base) : 'no base results'}: ${summaryLine(r.metrics)}.`;
}

/** GitHub's limit on a check run's output.summary. */
export const CHECK_SUMMARY_MAX = 65535;

/** The check run's output: the comment's headline as title, its head/base line and metrics table as summary. Pure. */
export function renderCheckOutput(r: ReportInput): { title: string; summary: string } {
  let summary = [headBaseLine(r), '', ...metricsSection(r.metrics, r.base)].join('\n');
  if (summary.length > CHECK_SUMMARY_MAX) {
    const more = '\n\n… (truncated: see the pull request comment)';
    summary = summary.slice(0, CHECK_SUMMARY_MAX - more.length) + more;
  }
  return { title: headline(r), summary };
}

/** The comment's markdown, ending with the sticky marker. */
export function renderReport(r: ReportInput): string {
  const lines: string[] = [];
  lines.push(`## ${headline(r)}`, '');
  lines.push(headBaseLine(r), '');
  if (r.measured !== undefined) lines.push(`Measured: ${cell(r.measured)}.`, '');
  lines.push(...stagesSection(r.stages));
  lines.push(...metricsSection(r.metrics, r.base));
  lines.push(...renderChart(r.metrics));
  if (r.metrics.some((m) => m.verdict.n.base < 2 || m.verdict.n.head < 2)) {
    lines.push('> Single measurements are judged by their reference thresholds only; repeat the benchmark (an array of values per metric) for a statistical verdict.', '');
  }
  for (const n of r.notes ?? []) lines.push(`> note: ${cell(n)}`);
  if ((r.notes ?? []).length > 0) lines.push('');
  const footer = [r.runUrl ? `[the run](${r.runUrl})` : null, 'verdicts: Mann–Whitney U test, bootstrap CI of the change of medians, reference thresholds'].filter(
    (x): x is string => x !== null,
  );
  lines.push(`<sub>${footer.join(' · ')}</sub>`, '', reportMarker(r.pipeline), '');
  return lines.join('\n');
}
