/**
 * PURE: the samples of `hpcflow measure` — base and head of a change run alternately, N rounds,
 * each run's metrics appended to its side — and what `hpcflow report --samples` reads back.
 *
 * The order is ABBA (base, head, head, base, …): a drift of the machine over the measurement
 * (thermal state, a neighbour's job, a filling page cache) then weighs on both sides alike,
 * instead of on whichever side always runs second.
 */
import { HpcflowError } from '../errors.js';
import type { MetricSeries } from '../github/report-model.js';
import { repeatedMetrics } from '../github/report-model.js';

export type Side = 'base' | 'head';

/** Round i runs base then head when i is even, head then base when odd. */
export function alternation(rounds: number): Side[] {
  const out: Side[] = [];
  for (let i = 0; i < rounds; i++) out.push(...(i % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)));
  return out;
}

/** stage id → metric → every value measured, in run order. */
export type SideSamples = Record<string, Record<string, number[]>>;

export interface SamplesFile {
  readonly format: 'hpcflow-measure/1';
  readonly base: { readonly rev: string; readonly commit: string };
  readonly head: { readonly rev: string; readonly commit: string };
  readonly rounds: number;
  /** The measured runs in the order they ran (warm-up runs not included). */
  readonly order: readonly { readonly side: Side; readonly runId: string | null; readonly ms: number }[];
  readonly stages: readonly string[];
  readonly host: string;
  readonly executor: string;
  /** The Slurm allocation every run's stages ran in as job steps; null when not on Slurm. */
  readonly allocation: { readonly jobId: string; readonly nodes: readonly string[] } | null;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly samples: { readonly base: SideSamples; readonly head: SideSamples };
}

/** Appends one run's metrics file (its JSON) to a side's samples. */
export function addRun(into: SideSamples, stage: string, metricsJson: unknown): number {
  let n = 0;
  for (const m of repeatedMetrics(metricsJson)) {
    const byMetric = (into[stage] ??= {});
    (byMetric[m.metric] ??= []).push(...m.values);
    n += m.values.length;
  }
  return n;
}

export function toSeries(s: SideSamples): MetricSeries[] {
  const out: MetricSeries[] = [];
  for (const stage of Object.keys(s).sort()) {
    const byMetric = s[stage] as Record<string, number[]>;
    for (const metric of Object.keys(byMetric).sort()) out.push({ stage, metric, values: byMetric[metric] as number[] });
  }
  return out;
}

/** One line for the report: how the samples were taken. */
export function describeSamples(f: SamplesFile): string {
  const where = f.allocation === null ? `on ${f.host} (${f.executor})` : `as job steps of one Slurm allocation (job ${f.allocation.jobId}${f.allocation.nodes.length > 0 ? ` on ${f.allocation.nodes.join(',')}` : ''})`;
  return `base and head measured alternately (ABBA), ${f.rounds} round${f.rounds === 1 ? '' : 's'} of each, ${where}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function sideSamples(v: unknown, where: string): SideSamples {
  if (!isObject(v)) throw new Error(`${where} must be an object of stages`);
  const out: SideSamples = {};
  for (const [stage, metrics] of Object.entries(v)) {
    if (!isObject(metrics)) throw new Error(`${where}.${stage} must be an object of metrics`);
    const m: Record<string, number[]> = {};
    for (const [name, values] of Object.entries(metrics)) {
      if (!Array.isArray(values) || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new Error(`${where}.${stage}.${name} must be an array of finite numbers`);
      m[name] = values as number[];
    }
    out[stage] = m;
  }
  return out;
}

const SHA = /^[0-9a-f]{40}$/;

/** Validates a samples file's JSON (as written by `hpcflow measure`). */
export function parseSamples(json: unknown, file: string): SamplesFile {
  try {
    if (!isObject(json) || json.format !== 'hpcflow-measure/1') throw new Error("not an hpcflow measure file (format 'hpcflow-measure/1')");
    for (const side of ['base', 'head'] as const) {
      const s = json[side];
      if (!isObject(s) || typeof s.rev !== 'string' || typeof s.commit !== 'string' || !SHA.test(s.commit)) throw new Error(`${side} must be { rev, commit } with a full commit id`);
    }
    if (typeof json.rounds !== 'number' || !Number.isInteger(json.rounds) || json.rounds < 1) throw new Error('rounds must be a positive integer');
    if (!isObject(json.samples)) throw new Error('samples must be { base, head }');
    const samples = { base: sideSamples(json.samples.base, 'samples.base'), head: sideSamples(json.samples.head, 'samples.head') };
    const alloc = json.allocation;
    if (alloc !== null && alloc !== undefined && (!isObject(alloc) || typeof alloc.jobId !== 'string' || !Array.isArray(alloc.nodes))) throw new Error('allocation must be null or { jobId, nodes }');
    return {
      ...(json as unknown as SamplesFile),
      allocation: alloc === undefined ? null : (alloc as SamplesFile['allocation']),
      host: typeof json.host === 'string' ? json.host : '?',
      executor: typeof json.executor === 'string' ? json.executor : '?',
      samples,
    };
  } catch (e) {
    throw new HpcflowError('HPCFLOW_USAGE', `${file}: ${(e as Error).message}`, { hint: 'pass the file `hpcflow measure` wrote (--out)' });
  }
}
