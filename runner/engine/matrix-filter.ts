/**
 * `--matrix key=v1,v2`: keep only the matrix cells whose `key` is one of the values (stages
 * without that key are untouched). The pipeline is then exactly what it would be with the
 * shorter matrix: `{ stage: … }` dependencies see only the cells kept. It is how a site runs the
 * implementations it has (`--matrix impl=openmp`) without editing the pipeline.
 */
import { HpcflowError } from '../errors.js';
import type { Pipeline } from '../model/pipeline.js';

export type MatrixFilter = Readonly<Record<string, readonly string[]>>;

/** Parses repeated `key=v1,v2` options. */
export function parseMatrixFilter(items: readonly string[] | undefined): MatrixFilter {
  const out: Record<string, string[]> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq).trim();
    const values = item.slice(eq + 1).split(',').map((v) => v.trim()).filter((v) => v !== '');
    if (eq <= 0 || values.length === 0) throw new HpcflowError('HPCFLOW_USAGE', `--matrix wants key=value[,value…] (got '${item}')`);
    out[key] = [...new Set([...(out[key] ?? []), ...values])];
  }
  return out;
}

export function filterMatrix(pipeline: Pipeline, filter: MatrixFilter): Pipeline {
  const keys = Object.keys(filter);
  if (keys.length === 0) return pipeline;
  for (const key of keys) {
    const seen = new Set(pipeline.stages.filter((s) => key in s.matrix).map((s) => String(s.matrix[key])));
    if (seen.size === 0) throw new HpcflowError('HPCFLOW_USAGE', `--matrix ${key}=…: no stage has a matrix key '${key}'`);
    const unknown = (filter[key] as readonly string[]).filter((v) => !seen.has(v));
    if (unknown.length > 0) {
      throw new HpcflowError('HPCFLOW_USAGE', `--matrix ${key}=${unknown.join(',')}: no cell has that value (values of ${key}: ${[...seen].sort().join(', ')})`);
    }
  }
  const keep = (m: Readonly<Record<string, unknown>>): boolean => keys.every((k) => !(k in m) || (filter[k] as readonly string[]).includes(String(m[k])));
  const stages = pipeline.stages.filter((s) => keep(s.matrix));
  const ids = new Set(stages.map((s) => s.id));
  return {
    ...pipeline,
    stages: stages.map((s) => (s.deps.some((d) => d.kind === 'stage' && !ids.has(d.stage)) ? { ...s, deps: s.deps.filter((d) => d.kind !== 'stage' || ids.has(d.stage)) } : s)),
  };
}
