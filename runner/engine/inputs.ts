import type { OutputRecord } from '../cache/store.js';
import type { StageGraph } from '../dag/graph.js';
import type { Reason } from '../dag/reasons.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { DepState, StageComponents } from '../fingerprint/stage.js';
import { declaredOuts, stageShape } from '../fingerprint/stage.js';
import type { Stage } from '../model/pipeline.js';
import type { DatasetDepFn } from '../datasets/stage-dep.js';
import { datasetDepKey, noDatasets } from '../datasets/stage-dep.js';

/** Every output path of a stage, metrics included. */
export function outputPaths(stage: Stage): string[] {
  const paths = stage.outs.map((o) => o.path);
  if (stage.metrics !== null) paths.push(stage.metrics);
  return paths;
}

/**
 * The path dependencies of a stage, with `{stage: X}` dependencies expanded to X's outputs,
 * each with the stage that produces it (or null for a source file). Sorted by path.
 */
export function pathDeps(stage: Stage, graph: StageGraph): { path: string; producer: string | null }[] {
  const produced = graph.producedBy.get(stage.id);
  const seen = new Map<string, string | null>();
  for (const d of stage.deps) {
    if (d.kind === 'path') {
      seen.set(d.path, produced?.get(d.path) ?? null);
    } else if (d.kind === 'stage') {
      const up = graph.stages.get(d.stage);
      if (up) for (const p of outputPaths(up)) seen.set(p, d.stage);
    }
  }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, producer]) => ({ path, producer }));
}

/** The parts of a stage's components that need no hashing and no image (for partial explanations). */
export function staticComponents(stage: Stage): Pick<StageComponents, 'cmd' | 'wdir' | 'params' | 'env' | 'shape' | 'outs'> {
  const params: Record<string, unknown> = {};
  for (const p of stage.params) params[p.name] = p.value;
  return { cmd: stage.cmd, wdir: stage.wdir, params, env: { ...stage.env }, shape: stageShape(stage), outs: declaredOuts(stage) };
}

/** Where a dependency's content comes from when it is produced upstream. */
export type ProducedView =
  /** The upstream will run: the content cannot be known yet. */
  | { readonly state: 'pending' }
  /** The upstream will be restored from these records (the files on disk are stale). */
  | { readonly state: 'records'; readonly records: readonly OutputRecord[] }
  /** The upstream's outputs on disk are current. */
  | { readonly state: 'disk' };

export interface DepResult {
  readonly deps: Record<string, DepState>;
  /** Reasons the fingerprint cannot be computed yet (pending upstream, missing file). */
  readonly blockers: Reason[];
}

/** Hash a stage's path dependencies, using upstream records where the disk is not current. */
export async function hashDeps(
  stage: Stage,
  graph: StageGraph,
  view: (producer: string) => ProducedView,
  hashPath: (rel: string) => Promise<PathHash>,
  datasetDep: DatasetDepFn = noDatasets,
): Promise<DepResult> {
  const deps: Record<string, DepState> = {};
  const blockers: Reason[] = [];
  for (const d of stage.deps) {
    if (d.kind !== 'dataset') continue;
    const r = await datasetDep(d.dataset, d.version);
    if ('state' in r) deps[datasetDepKey(d.dataset)] = r.state;
    else blockers.push(r.blocker);
  }
  const list = pathDeps(stage, graph);
  await Promise.all(
    list.map(async ({ path, producer }) => {
      if (producer !== null) {
        const v = view(producer);
        if (v.state === 'pending') {
          if (!blockers.some((b) => b.kind === 'upstream-runs' && b.stage === producer)) {
            blockers.push({ kind: 'upstream-runs', stage: producer });
          }
          return;
        }
        if (v.state === 'records') {
          const rec = v.records.find((r) => r.path === path);
          if (rec !== undefined) {
            deps[path] = { kind: rec.kind, hash: rec.hash, size: rec.size };
            return;
          }
          // A path inside (or around) a restored output directory: known only after restoring.
          blockers.push({ kind: 'upstream-changed', stage: producer });
          return;
        }
      }
      const h = await hashPath(path);
      if (h.kind === 'missing') blockers.push({ kind: 'dep-missing', path });
      else deps[path] = { kind: h.kind, hash: h.hash, size: h.size };
    }),
  );
  blockers.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return { deps, blockers };
}
