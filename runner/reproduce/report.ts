/**
 * The reproduction report: what `hpcflow reproduce` found per output and metric, as data (the
 * `--json` form) and as the terminal table. Pure.
 */
import type { Tolerance } from '../model/pipeline.js';
import type { ImageAction } from './images.js';
import { shortDigest } from './images.js';
import type { NumericComparison } from './numeric.js';
import type { TargetSource } from './resolve.js';

/** How one output (or one file of a directory output) compares with its recorded version. */
export type Verdict = 'identical' | 'within' | 'different' | 'missing';

export interface FileReport {
  /** Workspace-relative (directory outputs: the file's path inside the directory). */
  readonly path: string;
  readonly verdict: Verdict;
  /** Why it is different or missing, or what could not be compared. */
  readonly detail?: string;
  readonly numeric?: NumericComparison;
}

export interface OutputReport extends FileReport {
  readonly kind: 'file' | 'dir';
  /** Directories: how many files got each verdict. */
  readonly counts?: Readonly<Record<Verdict, number>>;
  /** Directories: the files that are not identical. */
  readonly files?: readonly FileReport[];
}

/** One numeric leaf of a stage's metrics file. */
export interface MetricRow {
  readonly file: string;
  /** JSON path inside the file, e.g. `loss` or `runs[0].time`. */
  readonly key: string;
  /** null: only in the new file. */
  readonly recorded: number | null;
  /** null: only in the recorded file. */
  readonly value: number | null;
  readonly absChange: number | null;
  /** (new − recorded) / |recorded|; null when it is undefined (a zero or missing recorded value). */
  readonly relChange: number | null;
  readonly within: boolean;
}

export interface ImageReport {
  readonly tag: string;
  readonly recorded: string;
  /** The digest the re-run used (null: the stage did not run). */
  readonly rerun: string | null;
  readonly action: ImageAction;
  /** The re-run used another image than the recorded one. */
  readonly changed: boolean;
}

export interface StageReport {
  readonly id: string;
  /** The stage's outcome in the re-run: ran, failed, skipped, canceled, not-started. */
  readonly status: string;
  readonly error?: string;
  /** Last log lines of a stage that did not run to completion. */
  readonly log?: readonly string[];
  readonly tolerance: Tolerance | null;
  readonly image: ImageReport | null;
  readonly outputs: readonly OutputReport[];
  readonly metrics: readonly MetricRow[];
  readonly notes: readonly string[];
}

export interface ReproduceSummary {
  readonly outputs: number;
  readonly identical: number;
  readonly within: number;
  readonly different: number;
  readonly missing: number;
  readonly stagesCompared: number;
  readonly stagesFailed: number;
  readonly imagesChanged: number;
}

export interface ReproduceReport {
  readonly rev: string;
  readonly commit: string;
  readonly source: TargetSource;
  readonly resultsCommit: string;
  readonly inputCommit: string;
  /** The recorded run (results commits). */
  readonly runId: string | null;
  /** The re-run's id. */
  readonly rerunId: string | null;
  readonly strictImages: boolean;
  readonly reproduced: boolean;
  readonly summary: ReproduceSummary;
  readonly stages: readonly StageReport[];
  /** Recorded stages that were not compared, and why. */
  readonly skipped: readonly { readonly id: string; readonly why: string }[];
  readonly warnings: readonly string[];
  /** With --keep: where the worktree and the re-run's cache are. */
  readonly kept: { readonly worktree: string; readonly cache: string } | null;
  readonly timings: { readonly materialiseMs: number; readonly runMs: number; readonly compareMs: number; readonly totalMs: number };
}

/** Did these stages reproduce? (Every compared output identical or within tolerance, no failed stage, and with strict images no changed image.) */
export function summarise(stages: readonly StageReport[], strictImages: boolean): { summary: ReproduceSummary; reproduced: boolean } {
  const s = { outputs: 0, identical: 0, within: 0, different: 0, missing: 0, stagesCompared: stages.length, stagesFailed: 0, imagesChanged: 0 };
  for (const st of stages) {
    if (!isComplete(st.status)) s.stagesFailed++;
    if (st.image?.changed === true) s.imagesChanged++;
    for (const o of st.outputs) {
      s.outputs++;
      s[o.verdict]++;
    }
  }
  const reproduced = s.different === 0 && s.missing === 0 && s.stagesFailed === 0 && (!strictImages || s.imagesChanged === 0);
  return { summary: s, reproduced };
}

/** Outcomes after which a stage's outputs are there to compare. */
export const isComplete = (status: string): boolean => status === 'ran' || status === 'restored' || status === 'up-to-date';

/** The `--json` text: non-finite numbers (relative errors against zero) as strings. */
export function reportJson(r: ReproduceReport): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}\n`;
}

/** 3.1e-3; "inf" for an undefined relative error. */
export function fmtErr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return 'inf';
  if (x === 0) return '0';
  return x.toExponential(1);
}

/** A value as short as it can be without hiding a difference: up to 8 significant digits. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  const s = String(x);
  if (s.length <= 12) return s;
  const p = x.toPrecision(8);
  return p.includes('e') ? p.replace(/\.?0+e/, 'e') : p.replace(/\.?0+$/, '');
}

const signed = (x: number, f: (n: number) => string): string => (x > 0 ? `+${f(x)}` : f(x));

export function fmtTolerance(t: Tolerance | null): string {
  if (t === null) return 'no tolerance declared';
  const parts = [];
  if (t.rel > 0) parts.push(`rel ${t.rel}`);
  if (t.abs > 0) parts.push(`abs ${t.abs}`);
  return parts.length === 0 ? 'tolerance 0' : `tolerance ${parts.join(', ')}`;
}

/** "identical", "within tolerance (max rel err 3.1e-3)", "DIFFERENT (…)", "MISSING (…)". */
export function describeVerdict(o: FileReport & Partial<Pick<OutputReport, 'counts'>>, tol: Tolerance | null): string {
  const n = o.numeric;
  const err = n !== undefined && n.mismatch === null && n.count > 0 ? `max rel err ${fmtErr(n.maxRelErr)}${n.worst !== null ? ` at ${n.worst}` : ''}` : '';
  const files = o.counts === undefined ? '' : dirCounts(o.counts);
  const join = (...xs: string[]): string => xs.filter((x) => x !== '').join('; ');
  switch (o.verdict) {
    case 'identical':
      return files === '' ? 'identical' : `identical (${files})`;
    case 'within':
      return `within tolerance (${join(err, files)})`;
    case 'different': {
      const outside = n === undefined || n.mismatch !== null || n.outside === 0 ? '' : tol === null ? 'no tolerance declared' : `${n.outside} of ${n.count} values outside ${fmtTolerance(tol)}`;
      const why = join(n?.mismatch ?? '', err, o.detail ?? '', files, outside);
      return why === '' ? 'DIFFERENT' : `DIFFERENT (${why})`;
    }
    case 'missing':
      return o.detail === undefined ? 'MISSING' : `MISSING (${o.detail})`;
    default: {
      const never: never = o.verdict;
      return never;
    }
  }
}

function dirCounts(c: Readonly<Record<Verdict, number>>): string {
  const total = c.identical + c.within + c.different + c.missing;
  const parts = [`${c.identical} of ${total} files identical`];
  if (c.within > 0) parts.push(`${c.within} within tolerance`);
  if (c.different > 0) parts.push(`${c.different} different`);
  if (c.missing > 0) parts.push(`${c.missing} missing`);
  return parts.join(', ');
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))).join('  ').trimEnd()).join('\n');
}

const short = (oid: string): string => oid.slice(0, 12);

function metricChange(m: MetricRow): string {
  if (m.recorded === null) return 'only in the new file';
  if (m.value === null) return 'only in the recorded file';
  if (m.absChange === 0 || (Number.isNaN(m.recorded) && Number.isNaN(m.value))) return '0';
  const abs = m.absChange === null ? 'n/a' : signed(m.value - m.recorded, fmtNum);
  const rel = m.relChange === null ? '' : ` (${signed(m.relChange * 100, (x) => `${Number(x.toPrecision(3))}`)}%)`;
  return `${abs}${rel}`;
}

/** The report for people. */
export function renderReport(r: ReproduceReport): string {
  const lines: string[] = [];
  const origin =
    r.source === 'lockfile-in-commit'
      ? `the lockfile committed in ${short(r.commit)}`
      : `results commit ${short(r.resultsCommit)}${r.runId !== null ? ` (run ${r.runId})` : ''}, input ${short(r.inputCommit)}`;
  lines.push(`reproduce ${r.rev} (${short(r.commit)}): compared with ${origin}`);
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  lines.push(`re-ran ${r.stages.length} stage${r.stages.length === 1 ? '' : 's'}${r.rerunId !== null ? ` (run ${r.rerunId})` : ''} in ${secs(r.timings.runMs)}; worktree ${secs(r.timings.materialiseMs)}, comparison ${secs(r.timings.compareMs)}`);
  lines.push('');

  const outRows: string[][] = [['STAGE', 'OUTPUT', 'RESULT']];
  for (const s of r.stages) {
    if (s.outputs.length === 0) outRows.push([s.id, '-', s.status === 'ran' ? 'no outputs recorded' : s.status.toUpperCase()]);
    for (const o of s.outputs) {
      outRows.push([s.id, o.kind === 'dir' ? `${o.path}/` : o.path, describeVerdict(o, s.tolerance)]);
      for (const f of o.files ?? []) outRows.push(['', `  ${f.path}`, describeVerdict(f, s.tolerance)]);
    }
  }
  lines.push(table(outRows));

  const metricRows: string[][] = [['STAGE', 'METRIC', 'RECORDED', 'NEW', 'CHANGE', '']];
  for (const s of r.stages) {
    for (const m of s.metrics) {
      const same = m.absChange === 0 || (m.recorded !== null && m.value !== null && Number.isNaN(m.recorded) && Number.isNaN(m.value));
      const verdict = m.recorded === null ? 'new' : m.value === null ? 'MISSING' : same ? 'same' : m.within ? 'within tolerance' : s.tolerance === null ? 'CHANGED' : 'OUTSIDE TOLERANCE';
      metricRows.push([s.id, m.key === '' ? m.file : m.key, m.recorded === null ? '-' : fmtNum(m.recorded), m.value === null ? '-' : fmtNum(m.value), metricChange(m), verdict]);
    }
  }
  if (metricRows.length > 1) {
    lines.push('');
    lines.push(table(metricRows));
  }

  const failed = r.stages.filter((s) => !isComplete(s.status));
  for (const s of failed) {
    lines.push('');
    lines.push(`stage ${s.id} ${s.status}${s.error !== undefined ? `: ${s.error}` : ''}`);
    for (const l of s.log ?? []) lines.push(`  | ${l}`);
  }

  const imageRows: string[][] = [];
  for (const s of r.stages) {
    const i = s.image;
    if (i === null) continue;
    const how = i.changed
      ? `CHANGED: re-ran on ${i.rerun === null ? '?' : shortDigest(i.rerun)}`
      : i.action === 'pinned'
        ? 'same (pinned: the tag names another image now)'
        : i.rerun === null
          ? 'not run'
          : 'same';
    imageRows.push([s.id, i.tag, shortDigest(i.recorded), how]);
  }
  if (imageRows.length > 0) {
    lines.push('');
    lines.push(table([['STAGE', 'IMAGE', 'RECORDED', 'RE-RUN'], ...imageRows]));
  }

  const notes = r.stages.flatMap((s) => s.notes.map((n) => `${s.id}: ${n}`));
  for (const k of r.skipped) notes.push(`${k.id}: not compared: ${k.why}`);
  if (notes.length > 0) {
    lines.push('');
    for (const n of notes) lines.push(`note: ${n}`);
  }
  if (r.warnings.length > 0) {
    lines.push('');
    for (const w of r.warnings) lines.push(`WARNING: ${w}`);
  }
  if (r.kept !== null) {
    lines.push('');
    lines.push(`kept: worktree ${r.kept.worktree}`);
    lines.push(`      cache    ${r.kept.cache}`);
  }
  lines.push('');
  const c = r.summary;
  const counts = `${c.identical} identical, ${c.within} within tolerance, ${c.different} different, ${c.missing} missing of ${c.outputs} output${c.outputs === 1 ? '' : 's'}`;
  if (r.reproduced) {
    lines.push(`REPRODUCED: ${counts}${c.imagesChanged > 0 ? ` (${c.imagesChanged} stage${c.imagesChanged === 1 ? '' : 's'} on another image: see the warnings)` : ''}`);
  } else {
    const why = [counts];
    if (c.stagesFailed > 0) why.push(`${c.stagesFailed} stage${c.stagesFailed === 1 ? '' : 's'} did not complete`);
    if (r.strictImages && c.imagesChanged > 0) why.push(`${c.imagesChanged} stage${c.imagesChanged === 1 ? '' : 's'} on another image (--strict-images)`);
    lines.push(`NOT REPRODUCED: ${why.join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}
