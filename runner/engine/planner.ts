import type { ContentStore, OutputRecord } from '../cache/store.js';
import type { RunCache, RunCacheEntry } from '../cache/run-cache.js';
import type { Decision } from '../dag/decide.js';
import { decide, diffComponents, diffOutputs, fingerprintWithLock } from '../dag/decide.js';
import type { StageGraph } from '../dag/graph.js';
import type { Reason } from '../dag/reasons.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { StageComponents } from '../fingerprint/stage.js';
import type { ImageState } from '../executors/executor.js';
import type { LockEntry, Lockfile } from '../lockfile/lockfile.js';
import type { ImageSpec, Stage } from '../model/pipeline.js';
import type { DatasetDepFn } from '../datasets/stage-dep.js';
import type { ProducedView } from './inputs.js';
import { hashDeps, outputPaths, staticComponents } from './inputs.js';

/** What the planner needs from the outside world (all read-only). */
export interface PlanEnv {
  readonly graph: StageGraph;
  readonly lock: Lockfile;
  readonly imageState: (spec: ImageSpec) => Promise<ImageState>;
  readonly hashPath: (rel: string) => Promise<PathHash>;
  /** Resolves `{ dataset }` dependencies (absent: stages with one are blocked). */
  readonly datasetDep?: DatasetDepFn;
  readonly runs: RunCache;
  readonly store: ContentStore;
}

export interface StagePlan {
  readonly stage: Stage;
  readonly decision: Decision;
  /** Present when the decision is `restore`: the outputs that will be restored. */
  readonly restoreFrom?: readonly OutputRecord[];
}

/**
 * Decide, for every stage in `ids` (topological order), what the runner would do and why,
 * without running, building or writing anything.
 */
export async function planStages(env: PlanEnv, ids: readonly string[], forced: ReadonlySet<string>): Promise<Map<string, StagePlan>> {
  const plans = new Map<string, StagePlan>();
  const view = (producer: string): ProducedView => {
    const p = plans.get(producer);
    if (p === undefined) return { state: 'disk' }; // not selected: take the disk as it is
    if (p.decision.action === 'run') return { state: 'pending' };
    if (p.decision.action === 'restore') return { state: 'records', records: p.restoreFrom ?? [] };
    return { state: 'disk' };
  };
  // Stages at the same depth are independent: decide them concurrently (hashing overlaps I/O).
  const depth = new Map<string, number>();
  for (const id of ids) {
    const ups = env.graph.upstream.get(id) ?? [];
    depth.set(id, Math.max(0, ...ups.map((u) => (depth.get(u) ?? -1) + 1)));
  }
  const layers: string[][] = [];
  for (const id of ids) (layers[depth.get(id) ?? 0] ??= []).push(id);
  for (const layer of layers) {
    const decided = await Promise.all(
      (layer ?? []).map(async (id) => {
        const stage = env.graph.stages.get(id);
        if (stage === undefined) throw new Error(`unknown stage ${id}`);
        return [id, await planStage(env, stage, view, plans, forced.has(id))] as const;
      }),
    );
    for (const [id, p] of decided) plans.set(id, p);
  }
  return plans;
}

async function planStage(
  env: PlanEnv,
  stage: Stage,
  view: (producer: string) => ProducedView,
  plans: ReadonlyMap<string, StagePlan>,
  forced: boolean,
): Promise<StagePlan> {
  const lockEntry = env.lock.stages[stage.id];
  const blockers: Reason[] = [];
  const upstream: Record<string, string> = {};
  for (const u of env.graph.upstream.get(stage.id) ?? []) {
    const up = plans.get(u);
    const fp = up === undefined ? env.lock.stages[u]?.fingerprint : up.decision.fingerprint;
    if (fp === null || fp === undefined) blockers.push({ kind: 'upstream-runs', stage: u });
    else upstream[u] = fp;
  }
  const img = await env.imageState(stage.image);
  if (img.state !== 'present') blockers.push({ kind: 'image-build', tag: img.tag, detail: img.reason });
  const { deps, blockers: depBlockers } = await hashDeps(stage, env.graph, view, env.hashPath, env.datasetDep);
  for (const b of depBlockers) if (!blockers.some((x) => JSON.stringify(x) === JSON.stringify(b))) blockers.push(b);

  const statics = staticComponents(stage);
  if (blockers.length > 0 || img.state !== 'present') {
    // The fingerprint cannot be known yet: explain with what is known, then the blockers.
    // Deps that could not be hashed are blockers, not removals, so `dep-removed` is left out here.
    const known = diffComponents(lockEntry, { ...statics, deps });
    const reasons = forced ? [{ kind: 'forced' } as Reason] : [...known.filter((r) => r.kind !== 'dep-removed'), ...blockers];
    return { stage, decision: { action: 'run', fingerprint: null, reasons } };
  }
  const components: StageComponents = { ...statics, image: { tag: img.image.tag, digest: img.image.digest }, deps, upstream };
  const fingerprint = fingerprintWithLock(components, lockEntry);
  return decideWithCache(env, stage, components, fingerprint, lockEntry, forced);
}

/** Shared by the planner and the engine: outputs check, run-cache lookup, decision. */
export async function decideWithCache(
  env: Pick<PlanEnv, 'hashPath' | 'runs' | 'store'>,
  stage: Stage,
  components: StageComponents,
  fingerprint: string,
  lockEntry: LockEntry | undefined,
  forced: boolean,
): Promise<StagePlan> {
  let outputReasons: Reason[] = [];
  if (lockEntry !== undefined && lockEntry.fingerprint === fingerprint) {
    const onDisk = new Map<string, PathHash>();
    await Promise.all(lockEntry.outRecords.map(async (r) => onDisk.set(r.path, await env.hashPath(r.path))));
    outputReasons = diffOutputs(lockEntry.outRecords, onDisk);
    if (outputReasons.length === 0 && !forced) {
      return { stage, decision: { action: 'up-to-date', fingerprint, reasons: [] } };
    }
  }
  const entry = forced ? null : await restorableEntry(env, stage, fingerprint);
  const decision = decide({ fingerprint, components, lockEntry, outputReasons, cached: entry !== null, forced });
  return entry !== null && decision.action === 'restore' ? { stage, decision, restoreFrom: entry.outs } : { stage, decision };
}

/** A run-cache entry holding every output of the stage, with the objects present in the store. */
async function restorableEntry(env: Pick<PlanEnv, 'runs' | 'store'>, stage: Stage, fp: string): Promise<RunCacheEntry | null> {
  if (stage.outs.some((o) => !o.cache)) return null;
  const hit = await env.runs.get(fp);
  const entry = hit.entry;
  if (entry === null) return null;
  const have = new Set(entry.outs.map((o) => o.path));
  if (!outputPaths(stage).every((p) => have.has(p))) return null;
  for (const rec of entry.outs) if (!(await env.store.has(rec.hash))) return null;
  return entry;
}
