/**
 * The verdict on one performance metric of a pull request: repeated measurements on the base
 * and on the head, the metric's direction, and optionally a ReFrame-style reference
 * (`{ ref, lower, upper }`: head must lie within ref·(1+lower) … ref·(1+upper)).
 *
 * - threshold-violation: a reference is given and the head's median lies outside its bounds
 *   (checked first, and the only judgement possible for a single measurement).
 * - regression / improvement: Mann–Whitney p < alpha AND |relative change of medians| >
 *   minEffect, so that runner noise (a few percent between runs) does not raise alarms.
 * - no-change: |change| ≤ minEffect (whatever the p-value: a real but tiny change is noise-level).
 * - not-significant: the change is larger than minEffect but the test cannot tell it from noise
 *   (p ≥ alpha), or there are too few measurements to test at all (n = 1, or so few that even
 *   the most extreme ordering cannot reach alpha).
 */
import { bootstrapChangeCI, hodgesLehmann, mannWhitneyU, median, minAttainableP, relativeChange, type Interval } from './stats.js';

export type Direction = 'lower-is-better' | 'higher-is-better';

export type VerdictKind = 'improvement' | 'regression' | 'no-change' | 'not-significant' | 'threshold-violation';

/**
 * A ReFrame-style reference: the value must lie within ref + |ref|·lower … ref + |ref|·upper
 * (for a positive ref: ref·(1+lower) … ref·(1+upper)). `null` leaves a side unbounded.
 */
export interface Reference {
  readonly ref: number;
  readonly lower: number | null;
  readonly upper: number | null;
  readonly unit?: string;
}

/** References per system, then per metric. System keys: 'cluster:partition', 'cluster' or '*'. */
export type ReferenceTable = Readonly<Record<string, Readonly<Record<string, Reference>>>>;

/** The reference of a metric on a system: exact system key, then its cluster part, then '*'. */
export function lookupReference(table: ReferenceTable, system: string, metric: string): Reference | undefined {
  const keys = [system];
  const colon = system.indexOf(':');
  if (colon > 0) keys.push(system.slice(0, colon));
  keys.push('*');
  for (const k of keys) {
    const r = table[k]?.[metric];
    if (r) return r;
  }
  return undefined;
}

export interface ThresholdCheck {
  readonly ref: number;
  /** Bounds (null: unbounded on that side). */
  readonly low: number | null;
  readonly high: number | null;
  /** The value checked: the head's median. */
  readonly value: number;
  readonly ok: boolean;
}

/** Check a value against a reference. Throws on lower > 0 or upper < 0 (as ReFrame does). */
export function checkThreshold(value: number, reference: Reference): ThresholdCheck {
  const { ref, lower, upper } = reference;
  if (!Number.isFinite(ref)) throw new RangeError(`reference value must be finite, got ${ref}`);
  if (lower !== null && !(lower <= 0)) throw new RangeError(`lower threshold must be ≤ 0, got ${lower}`);
  if (upper !== null && !(upper >= 0)) throw new RangeError(`upper threshold must be ≥ 0, got ${upper}`);
  const low = lower === null ? null : ref + Math.abs(ref) * lower;
  const high = upper === null ? null : ref + Math.abs(ref) * upper;
  const ok = (low === null || value >= low) && (high === null || value <= high);
  return { ref, low, high, value, ok };
}

export interface VerdictInput {
  readonly metric: string;
  readonly direction: Direction;
  /** Measurements on the base (may be empty: a new metric, judged by its reference only). */
  readonly base: readonly number[];
  /** Measurements on the head (at least one). */
  readonly head: readonly number[];
  readonly reference?: Reference;
  /** Significance level of the two-sided Mann–Whitney test (default 0.05). */
  readonly alpha?: number;
  /** Minimum relative change of medians that counts (default 0.02 = 2 %). */
  readonly minEffect?: number;
  /** How the CI of the change is computed (default 'bootstrap'). */
  readonly ci?: 'bootstrap' | 'hodges-lehmann' | 'none';
  /** Bootstrap PRNG seed (default fixed, so a verdict is reproducible). */
  readonly seed?: number;
  /** Bootstrap resamples (default 2000). */
  readonly resamples?: number;
}

export interface Verdict {
  readonly metric: string;
  readonly kind: VerdictKind;
  readonly direction: Direction;
  readonly n: { readonly base: number; readonly head: number };
  readonly baseMedian: number | null;
  readonly headMedian: number;
  /** Relative change of medians (head − base)/|base|; null without a base. */
  readonly change: number | null;
  /** CI of the relative change (confidence level 1 − alpha); null when not computed. */
  readonly ci: Interval | null;
  /** Two-sided Mann–Whitney p-value; null when not tested. */
  readonly pValue: number | null;
  readonly test: 'mann-whitney-exact' | 'mann-whitney-normal' | null;
  readonly threshold: ThresholdCheck | null;
  readonly alpha: number;
  readonly minEffect: number;
  /** One sentence a person can read in a PR comment. */
  readonly reason: string;
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
const fmtP = (p: number): string => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));

function assertFinite(name: string, xs: readonly number[]): void {
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`${name}: measurements must be finite numbers, got ${x}`);
}

/** Decide the verdict for one metric (pure; deterministic for a given seed). */
export function decideVerdict(input: VerdictInput): Verdict {
  const alpha = input.alpha ?? 0.05;
  const minEffect = input.minEffect ?? 0.02;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!(minEffect >= 0)) throw new RangeError(`minEffect must be ≥ 0, got ${minEffect}`);
  const { base, head, metric, direction } = input;
  if (head.length === 0) throw new RangeError(`${metric}: no head measurements`);
  assertFinite(`${metric} (base)`, base);
  assertFinite(`${metric} (head)`, head);

  const headMedian = median(head);
  const baseMedian = base.length > 0 ? median(base) : null;
  const change = baseMedian === null ? null : relativeChange(baseMedian, headMedian);
  const threshold = input.reference ? checkThreshold(headMedian, input.reference) : null;
  const n = { base: base.length, head: head.length };

  const common = { metric, direction, n, baseMedian, headMedian, change, threshold, alpha, minEffect };
  const thresholdText = (t: ThresholdCheck): string => {
    const lo = t.low === null ? '−∞' : String(+t.low.toPrecision(6));
    const hi = t.high === null ? '+∞' : String(+t.high.toPrecision(6));
    return `${+t.value.toPrecision(6)} ${t.ok ? 'within' : 'outside'} [${lo}, ${hi}] (ref ${t.ref})`;
  };

  const single = base.length < 2 || head.length < 2;
  const singleNote = single
    ? base.length === 0
      ? 'no base measurements: only the reference thresholds can judge it'
      : `single measurement (n=${Math.min(base.length, head.length)}): only the reference thresholds can judge it, not the statistical test`
    : '';

  // Thresholds first: a violation is reported whatever the comparison with the base says.
  if (threshold && !threshold.ok) {
    const changeText = change === null ? '' : `; change vs base ${pct(change)}`;
    return {
      ...common,
      kind: 'threshold-violation',
      ci: null,
      pValue: null,
      test: null,
      reason: `head ${thresholdText(threshold)}${changeText}${single ? `; ${singleNote}` : ''}`,
    };
  }

  if (single) {
    const ref = threshold ? `head ${thresholdText(threshold)}` : 'no reference given';
    const changeText = change === null ? '' : `, change ${pct(change)}`;
    return { ...common, kind: 'not-significant', ci: null, pValue: null, test: null, reason: `${singleNote}; ${ref}${changeText}` };
  }

  const mw = mannWhitneyU(base, head);
  const level = 1 - alpha;
  let ci: Interval | null = null;
  if (input.ci === 'hodges-lehmann') {
    const hl = hodgesLehmann(base, head, level);
    const denom = Math.abs(baseMedian!);
    ci = denom === 0 ? null : { low: hl.ci.low / denom, high: hl.ci.high / denom, level };
  } else if (input.ci !== 'none') {
    ci = bootstrapChangeCI(base, head, { seed: input.seed, resamples: input.resamples, level });
  }
  const test = mw.method === 'exact' ? ('mann-whitney-exact' as const) : ('mann-whitney-normal' as const);
  const c = change!;
  const ciText = ci ? `, ${Math.round(level * 100)}% CI [${pct(ci.low)}, ${pct(ci.high)}]` : '';
  const stat = `median ${+baseMedian!.toPrecision(6)} → ${+headMedian.toPrecision(6)} (${pct(c)}${ciText}), p=${fmtP(mw.p)}, n=${n.base}/${n.head}`;
  const refText = threshold ? `; head ${thresholdText(threshold)}` : '';

  let kind: VerdictKind;
  let why: string;
  if (Math.abs(c) <= minEffect) {
    kind = 'no-change';
    why = `change within ±${(minEffect * 100).toFixed(1)}% (the minimum effect)`;
  } else if (mw.p < alpha) {
    const worse = direction === 'lower-is-better' ? c > 0 : c < 0;
    kind = worse ? 'regression' : 'improvement';
    why = `${worse ? 'worse' : 'better'} (${direction}), significant at alpha=${alpha}`;
  } else {
    kind = 'not-significant';
    const floor = mw.method === 'exact' ? minAttainableP(n.base, n.head) : 0;
    why =
      floor >= alpha
        ? `too few measurements to be significant at alpha=${alpha} (smallest possible p is ${fmtP(floor)})`
        : `not significant at alpha=${alpha}: could be noise`;
  }
  return { ...common, kind, ci, pValue: mw.p, test, reason: `${why}: ${stat}${refText}` };
}
