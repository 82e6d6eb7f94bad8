/**
 * PURE: what a pull-request report says, assembled from the metrics of head and base and the
 * head's run record — repetitions of a metric, the verdict per metric (runner/metrics/verdict),
 * the stages that re-ran and why, and the overall verdict.
 */
import type { Direction, Reference, ReferenceTable, Verdict, VerdictKind } from '../metrics/verdict.js';
import { decideVerdict, lookupReference } from '../metrics/verdict.js';

/** One metric's measurements: several for repeated runs, else one. */
export interface MetricSeries {
  readonly stage: string;
  readonly metric: string;
  readonly values: readonly number[];
}

/**
 * The metrics of a metrics file's JSON with their repetitions: an array of numbers is ONE
 * metric measured several times (`{"time": [1.2, 1.3]}` → time: [1.2, 1.3]); other arrays are
 * walked by index as `flattenMetrics` does (`residuals.0`). Non-finite numbers are left out.
 */
export function repeatedMetrics(json: unknown): { metric: string; values: number[] }[] {
  const out: { metric: string; values: number[] }[] = [];
  const name = (path: string): string => (path === '' ? 'value' : path);
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      if (Number.isFinite(v)) out.push({ metric: name(path), values: [v] });
    } else if (Array.isArray(v)) {
      if (v.length > 0 && v.every((x) => typeof x === 'number')) {
        const values = (v as number[]).filter((x) => Number.isFinite(x));
        if (values.length > 0) out.push({ metric: name(path), values });
      } else {
        v.forEach((x, i) => walk(x, path === '' ? String(i) : `${path}.${i}`));
      }
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) walk(x, path === '' ? k : `${path}.${k}`);
    }
  };
  walk(json, '');
  return out;
}

/** One stage's outcome in the head's run record. */
export interface StageOutcomeInfo {
  readonly stage: string;
  /** 'ran', 'restored', 'up-to-date', 'failed', 'skipped', 'canceled', 'not-started'. */
  readonly status: string;
  readonly reasons: readonly string[];
  readonly error?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The stages of a run record's JSON (`stages: { id: { status, reasons, reason, error } }`), sorted by id. */
export function stageOutcomes(record: unknown): StageOutcomeInfo[] {
  if (!isObject(record) || !isObject(record.stages)) return [];
  const out: StageOutcomeInfo[] = [];
  for (const id of Object.keys(record.stages).sort()) {
    const s = record.stages[id];
    if (!isObject(s) || typeof s.status !== 'string') continue;
    const reasons = Array.isArray(s.reasons) ? s.reasons.filter((r): r is string => typeof r === 'string') : typeof s.reason === 'string' ? [s.reason] : [];
    const error = typeof s.error === 'string' ? s.error : isObject(s.error) && typeof s.error.message === 'string' ? s.error.message : undefined;
    out.push({ stage: id, status: s.status, reasons, ...(error !== undefined ? { error } : {}) });
  }
  return out;
}

/** A reference with an optional direction, as `--references FILE.json` gives them. */
export type ReportReference = Reference & { readonly direction?: Direction };

/** `--references FILE.json`: system ('cluster:partition', 'cluster' or '*') → `stage:metric` → reference. */
export type ReportReferences = Readonly<Record<string, Readonly<Record<string, ReportReference>>>>;

/** Validate the JSON of a references file; a string says what is wrong. */
export function parseReferences(json: unknown): ReportReferences | string {
  if (!isObject(json)) return 'expected an object: { "<system or *>": { "<stage>:<metric>": { "ref": N, "lower": N|null, "upper": N|null } } }';
  for (const [system, table] of Object.entries(json)) {
    if (!isObject(table)) return `${system}: expected an object of "<stage>:<metric>" keys`;
    for (const [key, r] of Object.entries(table)) {
      const at = `${system} → ${key}`;
      if (!isObject(r)) return `${at}: expected { ref, lower, upper }`;
      if (typeof r.ref !== 'number' || !Number.isFinite(r.ref)) return `${at}: ref must be a number`;
      for (const side of ['lower', 'upper'] as const) {
        const v = r[side];
        if (v !== null && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) return `${at}: ${side} must be a number or null`;
      }
      if (typeof r.lower === 'number' && r.lower > 0) return `${at}: lower must be ≤ 0 (a fraction below ref, e.g. -0.1)`;
      if (typeof r.upper === 'number' && r.upper < 0) return `${at}: upper must be ≥ 0 (a fraction above ref, e.g. 0.1)`;
      if (r.direction !== undefined && r.direction !== 'lower-is-better' && r.direction !== 'higher-is-better') {
        return `${at}: direction must be lower-is-better or higher-is-better`;
      }
    }
  }
  // Absent sides are unbounded.
  const out: Record<string, Record<string, ReportReference>> = {};
  for (const [system, table] of Object.entries(json as Record<string, Record<string, Record<string, unknown>>>)) {
    out[system] = {};
    for (const [key, r] of Object.entries(table)) {
      out[system][key] = {
        ref: r.ref as number,
        lower: typeof r.lower === 'number' ? r.lower : null,
        upper: typeof r.upper === 'number' ? r.upper : null,
        ...(typeof r.unit === 'string' ? { unit: r.unit } : {}),
        ...(r.direction !== undefined ? { direction: r.direction as Direction } : {}),
      };
    }
  }
  return out;
}

/** Names that are better when higher (throughput, rates, speedups); everything else is lower-is-better (times, errors). */
const HIGHER_IS_BETTER = /(flops|throughput|bandwidth|speedup|per_?s(ec)?\b|\/s\b|rate\b|ops\b|efficiency|score|accuracy|hits)/i;

export function guessDirection(metric: string): Direction {
  return HIGHER_IS_BETTER.test(metric) ? 'higher-is-better' : 'lower-is-better';
}

export interface MetricReport {
  readonly stage: string;
  readonly metric: string;
  readonly unit?: string;
  readonly base: readonly number[];
  readonly head: readonly number[];
  readonly verdict: Verdict;
}

export interface JudgeOptions {
  readonly references?: ReportReferences;
  /** System key for the references (default '*'). */
  readonly system?: string;
  readonly alpha?: number;
  readonly minEffect?: number;
}

/**
 * A verdict for every metric the head has (metrics only on the base are left out: nothing to
 * judge), by stage then in the head's order.
 */
export function judgeMetrics(base: readonly MetricSeries[], head: readonly MetricSeries[], opts: JudgeOptions = {}): MetricReport[] {
  const key = (s: MetricSeries): string => `${s.stage}\u0000${s.metric}`;
  const baseByKey = new Map(base.map((s) => [key(s), s] as const));
  const table = (opts.references ?? {}) as ReferenceTable;
  const stages = [...new Set(head.map((s) => s.stage))].sort();
  const out: MetricReport[] = [];
  for (const stage of stages) {
    for (const h of head) {
      if (h.stage !== stage || h.values.length === 0) continue;
      const ref = lookupReference(table, opts.system ?? '*', `${h.stage}:${h.metric}`) as ReportReference | undefined;
      const b = baseByKey.get(key(h))?.values ?? [];
      const verdict = decideVerdict({
        metric: `${h.stage}:${h.metric}`,
        direction: ref?.direction ?? guessDirection(h.metric),
        base: b,
        head: h.values,
        ...(ref ? { reference: ref } : {}),
        ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
        ...(opts.minEffect !== undefined ? { minEffect: opts.minEffect } : {}),
      });
      out.push({ stage, metric: h.metric, ...(ref?.unit ? { unit: ref.unit } : {}), base: b, head: h.values, verdict });
    }
  }
  return out;
}

export type OverallVerdict = 'failure' | 'regression' | 'improvement' | 'no-change' | 'inconclusive';

/** The worst of: a failed stage, a regression or threshold violation, an improvement, no change. */
export function overallVerdict(stages: readonly StageOutcomeInfo[], metrics: readonly MetricReport[], runOk: boolean | null = null): OverallVerdict {
  if (runOk === false || stages.some((s) => s.status === 'failed' || s.status === 'canceled')) return 'failure';
  const kinds = new Set<VerdictKind>(metrics.map((m) => m.verdict.kind));
  if (kinds.has('regression') || kinds.has('threshold-violation')) return 'regression';
  if (kinds.has('improvement')) return 'improvement';
  if (kinds.has('not-significant')) return 'inconclusive';
  return 'no-change';
}

/** The commit status of a verdict: failure blocks a merge (when required), the rest passes. */
export function statusState(v: OverallVerdict): 'success' | 'failure' {
  return v === 'failure' || v === 'regression' ? 'failure' : 'success';
}

/** The check run conclusion of a verdict: failure as the commit status; inconclusive is neutral. */
export function checkConclusion(v: OverallVerdict): 'success' | 'failure' | 'neutral' {
  if (v === 'failure' || v === 'regression') return 'failure';
  return v === 'inconclusive' ? 'neutral' : 'success';
}

/** Does `--fail-on-regression` fail on this verdict? */
export function failsOnRegression(v: OverallVerdict): boolean {
  return v === 'failure' || v === 'regression';
}
