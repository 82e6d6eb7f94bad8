import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ContentStore } from '../cache/store.js';
import type { RunCache } from '../cache/run-cache.js';
import type { StageGraph } from '../dag/graph.js';
import type { Reason } from '../dag/reasons.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { StageComponents } from '../fingerprint/stage.js';
import type { DatasetDepFn } from '../datasets/stage-dep.js';
import { fingerprintWithLock } from '../dag/decide.js';
import type { Executor, LogStream, ResolvedImage } from '../executors/executor.js';
import { failureOf } from '../executors/executor.js';
import { KERNEL_DIR_VAR } from '../frameworks/types.js';
import type { Lockfile, LockEntry } from '../lockfile/lockfile.js';
import type { ImageSpec, Stage } from '../model/pipeline.js';
import type { EngineEvent, FailureMode, OutcomeStatus, RunSummary, StageOutcome } from './events.js';
import { hashDeps, outputPaths, staticComponents } from './inputs.js';
import { decideWithCache } from './planner.js';
import { recordOutputs, sortRecords } from './outputs.js';
import { Semaphore } from './semaphore.js';
import type { KernelBuild } from './kernel-build.js';
import { ensureKernelBuild } from './kernel-build.js';

export interface RunOptions {
  readonly workspace: string;
  readonly graph: StageGraph;
  /** Stage ids to consider, in topological order. */
  readonly ids: readonly string[];
  readonly executor: Executor;
  readonly store: ContentStore;
  readonly runs: RunCache;
  /** Creates a fresh path hasher (memoised per stage, sharing one stat cache). */
  readonly hashPath: (rel: string) => Promise<PathHash>;
  /** Resolves `{ dataset }` dependencies (absent: stages with one are blocked). */
  readonly datasetDep?: DatasetDepFn;
  /** Called when outputs were rewritten, so that hashers forget what they memoised. */
  readonly invalidate: (paths: readonly string[]) => void;
  readonly lock: Lockfile;
  /** Persists the lockfile; called after every completed stage (serialised, atomic). */
  readonly saveLock: (lock: Lockfile) => Promise<void>;
  readonly forced: ReadonlySet<string>;
  /** Stages running at once (-j). */
  readonly concurrency: number;
  /** CPUs the running stages may use together (a stage takes tasks × cpus per task of it). */
  readonly cpuBudget: number;
  readonly failureMode: FailureMode;
  readonly signal: AbortSignal;
  readonly onEvent: (e: EngineEvent) => void;
  readonly runId?: string;
}

export { failureOf } from '../executors/executor.js';

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Run the stages: each waits for its upstreams, is decided with full knowledge (hashes of what
 * the upstreams actually produced), and is then left alone, restored from the cache, or run by
 * the executor. Outputs of a failed stage are never cached; the lockfile is updated after every
 * stage that completed, so an interrupted run loses no finished work.
 */
export async function runStages(o: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const runId = o.runId ?? newRunId();
  const stages: Record<string, LockEntry> = { ...o.lock.stages };
  const outcomes = new Map<string, StageOutcome>();
  const done = new Map<string, Promise<StageOutcome>>();
  const slots = new Semaphore(Math.max(1, o.concurrency));
  const cpus = new Semaphore(Math.max(1, o.cpuBudget));
  const images = new Map<string, Promise<ResolvedImage>>();
  const kernelBuilds = new Map<string, Promise<KernelBuild>>();
  const cancelAll = new AbortController();
  const onAbort = (): void => cancelAll.abort();
  o.signal.addEventListener('abort', onAbort, { once: true });
  let stopping = false;
  // Lockfile writes are coalesced: one in flight, at most one more queued with the newest
  // state. Every entry is already in the run-cache when it is queued, so a crash between writes
  // loses no work: the next run restores those stages instead of running them.
  let lockWrite: Promise<void> = Promise.resolve();
  let queued = false;
  const persist = (): Promise<void> => {
    if (queued) return lockWrite;
    queued = true;
    lockWrite = lockWrite.then(async () => {
      queued = false;
      await o.saveLock({ schema: o.lock.schema, stages: { ...stages } });
    });
    return lockWrite;
  };

  o.onEvent({ type: 'run-start', runId, stages: o.ids });

  const prepare = (spec: ImageSpec): Promise<ResolvedImage> => {
    const key = JSON.stringify(spec);
    let p = images.get(key);
    if (p === undefined) {
      p = o.executor.prepareImage(spec, o.workspace, { onLog: (_s, line) => o.onEvent({ type: 'image-log', tag: key, line }) }, cancelAll.signal);
      images.set(key, p);
    }
    return p;
  };

  const process = async (stage: Stage, hold: { release?: () => void }): Promise<StageOutcome> => {
    const ups = o.graph.upstream.get(stage.id) ?? [];
    const upOutcomes = await Promise.all(ups.map((u) => done.get(u) ?? Promise.resolve(undefined)));
    for (const [i, up] of upOutcomes.entries()) {
      if (up !== undefined && (up.status === 'failed' || up.status === 'skipped' || up.status === 'canceled' || up.status === 'not-started')) {
        return { status: 'skipped', reason: { kind: 'upstream-failed', stage: ups[i] ?? '?' } };
      }
    }
    if (stopping || cancelAll.signal.aborted) return { status: 'not-started' };

    let image: ResolvedImage;
    try {
      image = await prepare(stage.image);
    } catch (e) {
      if (cancelAll.signal.aborted) return { status: 'canceled' };
      return { status: 'failed', fingerprint: null, error: (e as Error).message, reasons: [] };
    }
    const upstream: Record<string, string> = {};
    for (const u of ups) {
      const fp = fingerprintOfOutcome(outcomes.get(u)) ?? stages[u]?.fingerprint;
      if (fp !== undefined) upstream[u] = fp;
    }
    const { deps, blockers } = await hashDeps(stage, o.graph, () => ({ state: 'disk' }), o.hashPath, o.datasetDep);
    if (blockers.length > 0) {
      return { status: 'failed', fingerprint: null, error: blockers.map(describeBlocker).join('; '), reasons: blockers };
    }
    const components: StageComponents = { ...staticComponents(stage), image: { tag: image.tag, digest: image.digest }, deps, upstream };
    const lockEntry = stages[stage.id];
    const fingerprint = fingerprintWithLock(components, lockEntry);
    const plan = await decideWithCache(o, stage, components, fingerprint, lockEntry, o.forced.has(stage.id));
    const d = plan.decision;
    if (d.action === 'up-to-date') return { status: 'up-to-date', fingerprint };

    if (d.action === 'restore' && plan.restoreFrom !== undefined) {
      o.onEvent({ type: 'stage-start', stage: stage.id, action: d.action, reasons: d.reasons });
      for (const rec of plan.restoreFrom) await o.store.restoreOutput(o.workspace, rec);
      o.invalidate(plan.restoreFrom.map((r) => r.path));
      stages[stage.id] = { ...components, fingerprint, outRecords: sortRecords(plan.restoreFrom) };
      await persist();
      return { status: 'restored', fingerprint, reasons: d.reasons };
    }

    await slots.acquire();
    const r = stage.resources;
    const heldCpus = await cpus.acquire(r.nodes * r.tasksPerNode * r.cpusPerTask);
    // Released by the caller after it has reported the stage's end, so that the events of a
    // run never show a stage starting on CPUs another stage has not yet given back.
    hold.release = () => {
      cpus.release(heldCpus);
      slots.release();
    };
    if (stopping || cancelAll.signal.aborted) return { status: 'not-started' };
    // Announced once it holds its CPUs, so "running" in the log means running.
    o.onEvent({ type: 'stage-start', stage: stage.id, action: d.action, reasons: d.reasons });
    await clearOutputs(o.workspace, stage);
    o.invalidate(outputPaths(stage));
    let runStage = stage;
    if (stage.kernel?.build != null) {
      const hooks = { onLog: (stream: LogStream, line: string) => o.onEvent({ type: 'stage-log', stage: stage.id, stream, line }) };
      let kb: KernelBuild;
      try {
        kb = await ensureKernelBuild({ workspace: o.workspace, store: o.store, runs: o.runs, executor: o.executor, runId, hashPath: o.hashPath }, stage, image, hooks, cancelAll.signal, kernelBuilds);
      } catch (e) {
        if (cancelAll.signal.aborted) return { status: 'canceled' };
        return { status: 'failed', fingerprint, error: (e as Error).message, reasons: d.reasons };
      }
      o.onEvent({ type: 'kernel-build', stage: stage.id, key: kb.key, action: kb.action, ms: kb.ms });
      // Not part of the fingerprint (the key holds the image digest): only the container sees it.
      runStage = { ...stage, env: { ...stage.env, [KERNEL_DIR_VAR]: kb.dir } };
    }
    const result = await o.executor.run(
      { runId, stage: runStage, fingerprint, image, workspace: o.workspace },
      { onLog: (stream, line) => o.onEvent({ type: 'stage-log', stage: stage.id, stream, line }) },
      cancelAll.signal,
    );
    o.invalidate(outputPaths(stage));
    const failure = failureOf(result);
    if (result.canceled) return { status: 'canceled', result };
    if (failure !== null) return { status: 'failed', fingerprint, error: failure, reasons: d.reasons, result };
    const missing: string[] = [];
    for (const p of outputPaths(stage)) if ((await o.hashPath(p)).kind === 'missing') missing.push(p);
    if (missing.length > 0) {
      return { status: 'failed', fingerprint, error: `declared output ${missing.join(', ')} was not produced`, reasons: d.reasons, result };
    }
    let records: Awaited<ReturnType<typeof recordOutputs>>;
    try {
      records = await recordOutputs(stage, o);
    } catch (e) {
      return { status: 'failed', fingerprint, error: storeFailure(e), reasons: d.reasons, result };
    }
    const cachedRecords = records.filter((r) => stage.outs.find((x) => x.path === r.path)?.cache !== false);
    await o.runs.put({ schema: 1, fingerprint, stage: stage.id, outs: cachedRecords, createdAt: new Date().toISOString() });
    stages[stage.id] = { ...components, fingerprint, outRecords: records };
    await persist();
    return { status: 'ran', fingerprint, reasons: d.reasons, result };
  };

  for (const id of o.ids) {
    const stage = o.graph.stages.get(id);
    if (stage === undefined) continue;
    const t0 = Date.now();
    const hold: { release?: () => void } = {};
    const p = process(stage, hold).catch((e: unknown): StageOutcome => ({
      status: 'failed',
      fingerprint: null,
      error: e instanceof Error ? e.message : String(e),
      reasons: [],
    }));
    done.set(
      id,
      p.then((outcome) => {
        outcomes.set(id, outcome);
        if (outcome.status === 'failed') {
          if (o.failureMode === 'stop') stopping = true;
          if (o.failureMode === 'cancel') {
            stopping = true;
            cancelAll.abort();
          }
        }
        o.onEvent({ type: 'stage-end', stage: id, outcome, ms: Date.now() - t0 });
        hold.release?.();
        return outcome;
      }),
    );
  }
  await Promise.all(done.values());
  await lockWrite;
  o.signal.removeEventListener('abort', onAbort);

  const counts = Object.fromEntries(
    (['up-to-date', 'restored', 'ran', 'failed', 'skipped', 'canceled', 'not-started'] as OutcomeStatus[]).map((s) => [s, 0]),
  ) as Record<OutcomeStatus, number>;
  for (const oc of outcomes.values()) counts[oc.status] += 1;
  const aborted = o.signal.aborted;
  const ok = !aborted && counts.failed === 0 && counts.canceled === 0 && counts.skipped === 0 && counts['not-started'] === 0;
  const summary: RunSummary = { runId, ok, aborted, counts, outcomes, wallMs: Date.now() - started };
  o.onEvent({ type: 'run-end', runId, summary });
  return summary;
}

function fingerprintOfOutcome(oc: StageOutcome | undefined): string | undefined {
  if (oc === undefined) return undefined;
  if (oc.status === 'up-to-date' || oc.status === 'restored' || oc.status === 'ran') return oc.fingerprint;
  return undefined;
}


function describeBlocker(r: Reason): string {
  if (r.kind === 'dep-missing') return `dependency ${r.path} is missing`;
  if (r.kind === 'dataset') return `dataset ${r.dataset}: ${r.detail}`;
  if (r.kind === 'upstream-runs' || r.kind === 'upstream-changed') return `upstream ${r.stage} did not produce its outputs`;
  return r.kind;
}

/** A failure to store outputs, said so that the user knows what to do. */
function storeFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return `could not store the outputs in the cache: no space left (${code}); free space or use --cache-dir on a larger filesystem, then run again (nothing was cached)`;
  }
  return `could not store the outputs in the cache: ${msg}`;
}

/** Remove declared outputs before a run, so a stale file can never pass for a fresh one. */
async function clearOutputs(workspace: string, stage: Stage): Promise<void> {
  for (const p of outputPaths(stage)) {
    const abs = join(workspace, p);
    await rm(abs, { recursive: true, force: true });
    await mkdir(dirname(abs), { recursive: true });
  }
}
