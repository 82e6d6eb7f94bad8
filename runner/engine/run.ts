import { createHash, randomBytes } from 'node:crypto';
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
import type { Executor, LogStream, ResolvedImage, StageRunResult, SubmittedJob } from '../executors/executor.js';
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
  // Batch executors: what downstream stages chain on — the stage's job as soon as it is
  // submitted, or (no job) its key once it has ended.
  const batch = o.executor.batch;
  const handles = new Map<string, Promise<Handle>>();
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

  /** The stage's image, or the outcome of failing to get it (canceled when the run was aborted). */
  const imageOrOutcome = async (stage: Stage): Promise<ResolvedImage | StageOutcome> => {
    try {
      return await prepare(stage.image);
    } catch (e) {
      if (cancelAll.signal.aborted) return { status: 'canceled' };
      return { status: 'failed', fingerprint: null, error: (e as Error).message, reasons: [] };
    }
  };

  const stageHooks = (stage: Stage) => ({ onLog: (stream: LogStream, line: string) => o.onEvent({ type: 'stage-log', stage: stage.id, stream, line }) });

  /** The kernel's binaries for this stage (compiled once per key), as the stage's environment. */
  const withKernel = async (stage: Stage, image: ResolvedImage): Promise<Stage> => {
    if (stage.kernel?.build == null) return stage;
    const kb = await ensureKernelBuild({ workspace: o.workspace, store: o.store, runs: o.runs, executor: o.executor, runId, hashPath: o.hashPath }, stage, image, stageHooks(stage), cancelAll.signal, kernelBuilds);
    o.onEvent({ type: 'kernel-build', stage: stage.id, key: kb.key, action: kb.action, ms: kb.ms });
    // Not part of the fingerprint (the key holds the image digest): only the container sees it.
    return { ...stage, env: { ...stage.env, [KERNEL_DIR_VAR]: kb.dir } };
  };

  /** After the process ended: check and store the outputs, record the stage. */
  const collect = async (stage: Stage, result: StageRunResult, components: StageComponents, fingerprint: string, reasons: readonly Reason[]): Promise<StageOutcome> => {
    o.invalidate(outputPaths(stage));
    const failure = failureOf(result);
    if (result.canceled) return { status: 'canceled', result };
    if (failure !== null) return { status: 'failed', fingerprint, error: failure, reasons, result };
    const missing: string[] = [];
    for (const p of outputPaths(stage)) if ((await o.hashPath(p)).kind === 'missing') missing.push(p);
    if (missing.length > 0) {
      return { status: 'failed', fingerprint, error: `declared output ${missing.join(', ')} was not produced`, reasons, result };
    }
    let records: Awaited<ReturnType<typeof recordOutputs>>;
    try {
      records = await recordOutputs(stage, o);
    } catch (e) {
      return { status: 'failed', fingerprint, error: storeFailure(e), reasons, result };
    }
    const cachedRecords = records.filter((r) => stage.outs.find((x) => x.path === r.path)?.cache !== false);
    await o.runs.put({ schema: 1, fingerprint, stage: stage.id, outs: cachedRecords, createdAt: new Date().toISOString() });
    stages[stage.id] = { ...components, fingerprint, outRecords: records };
    await persist();
    return { status: 'ran', fingerprint, reasons, result };
  };

  /**
   * A batch job for the stage: an earlier runner's, adopted, or a new one (outputs cleared
   * first, so a stale file never passes for a fresh one).
   */
  const jobFor = async (stage: Stage, key: string, image: ResolvedImage, after: readonly SubmittedJob[]): Promise<SubmittedJob> => {
    const b = batch as NonNullable<typeof batch>;
    const hooks = stageHooks(stage);
    const adopted = await b.adopt(stage.id, key, hooks);
    if (adopted !== null) {
      o.onEvent({ type: 'stage-job', stage: stage.id, jobId: adopted.id, adopted: true, after: [] });
      return adopted;
    }
    await clearOutputs(o.workspace, stage);
    o.invalidate(outputPaths(stage));
    const runStage = await withKernel(stage, image);
    const job = await b.submit({ runId, stage: runStage, key, image, workspace: o.workspace, after }, hooks, cancelAll.signal);
    o.onEvent({ type: 'stage-job', stage: stage.id, jobId: job.id, adopted: false, after: after.map((j) => j.id) });
    return job;
  };

  /**
   * A stage with an upstream job still to finish: submitted now, chained on those jobs, so the
   * scheduler starts it when they succeed (and cancels it if one fails) without this process.
   * Its fingerprint is computed once it has run, from what the upstreams actually produced.
   */
  const chained = async (stage: Stage, ups: readonly string[], upHandles: readonly Handle[], publish: (h: Handle) => void): Promise<StageOutcome> => {
    const b = batch as NonNullable<typeof batch>;
    if (stopping || cancelAll.signal.aborted) return { status: 'not-started' };
    const jobs = new Map<string, SubmittedJob>();
    const upKeys: Record<string, string> = {};
    ups.forEach((u, i) => {
      const h = upHandles[i] as Handle;
      if (h.job !== null) jobs.set(u, h.job);
      upKeys[u] = h.key ?? '';
    });
    const image = await imageOrOutcome(stage);
    if ('status' in image) return image;
    const pre = await hashDeps(stage, o.graph, (producer) => (jobs.has(producer) ? { state: 'pending' } : { state: 'disk' }), o.hashPath, o.datasetDep);
    const blockers = pre.blockers.filter((r) => r.kind !== 'upstream-runs');
    if (blockers.length > 0) return { status: 'failed', fingerprint: null, error: blockers.map(describeBlocker).join('; '), reasons: blockers };
    const key = chainKey(staticComponents(stage), image.digest, pre.deps, upKeys);
    const reasons: Reason[] = [...jobs.keys()].map((u) => ({ kind: 'upstream-runs', stage: u }));
    o.onEvent({ type: 'stage-start', stage: stage.id, action: 'run', reasons });
    let job: SubmittedJob;
    try {
      job = await jobFor(stage, key, image, [...jobs.values()]);
    } catch (e) {
      if (cancelAll.signal.aborted) return { status: 'canceled' };
      return { status: 'failed', fingerprint: null, error: (e as Error).message, reasons };
    }
    publish({ job, key });
    const upOutcomes = await Promise.all(ups.map((u) => done.get(u) as Promise<StageOutcome>));
    const bad = upOutcomes.findIndex((oc) => oc.status !== 'up-to-date' && oc.status !== 'restored' && oc.status !== 'ran');
    if (bad >= 0) {
      // Slurm cancels it already (the dependency can never be met); say so ourselves too.
      await job.cancel().catch(() => {});
      await job.result;
      return { status: 'skipped', reason: { kind: 'upstream-failed', stage: ups[bad] ?? '?' } };
    }
    const result = await job.result;
    o.invalidate(outputPaths(stage));
    const upstream: Record<string, string> = {};
    for (const [i, u] of ups.entries()) upstream[u] = fingerprintOfOutcome(upOutcomes[i]) ?? '';
    const { deps, blockers: after } = await hashDeps(stage, o.graph, () => ({ state: 'disk' }), o.hashPath, o.datasetDep);
    const components: StageComponents = { ...staticComponents(stage), image: { tag: image.tag, digest: image.digest }, deps, upstream };
    const fingerprint = fingerprintWithLock(components, stages[stage.id]);
    if (after.length > 0 && failureOf(result) === null && !result.canceled) {
      return { status: 'failed', fingerprint, error: after.map(describeBlocker).join('; '), reasons, result };
    }
    const outcome = await collect(stage, result, components, fingerprint, reasons);
    if (outcome.status === 'ran') await b.collected(stage.id, key, job, fingerprint);
    return outcome;
  };

  const process = async (stage: Stage, hold: { release?: () => void }, publish: (h: Handle) => void): Promise<StageOutcome> => {
    const ups = o.graph.upstream.get(stage.id) ?? [];
    if (batch !== undefined) {
      const upHandles = await Promise.all(ups.map((u) => handles.get(u) ?? Promise.resolve<Handle>({ job: null, key: null })));
      if (upHandles.some((h) => h.job !== null)) return chained(stage, ups, upHandles, publish);
    }
    const upOutcomes = await Promise.all(ups.map((u) => done.get(u) ?? Promise.resolve(undefined)));
    for (const [i, up] of upOutcomes.entries()) {
      if (up !== undefined && (up.status === 'failed' || up.status === 'skipped' || up.status === 'canceled' || up.status === 'not-started')) {
        return { status: 'skipped', reason: { kind: 'upstream-failed', stage: ups[i] ?? '?' } };
      }
    }
    if (stopping || cancelAll.signal.aborted) return { status: 'not-started' };

    const image = await imageOrOutcome(stage);
    if ('status' in image) return image;
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

    if (batch !== undefined) {
      // The scheduler decides when and where; no local slots or CPUs are held.
      if (stopping || cancelAll.signal.aborted) return { status: 'not-started' };
      o.onEvent({ type: 'stage-start', stage: stage.id, action: d.action, reasons: d.reasons });
      let job: SubmittedJob;
      try {
        job = await jobFor(stage, fingerprint, image, []);
      } catch (e) {
        if (cancelAll.signal.aborted) return { status: 'canceled' };
        return { status: 'failed', fingerprint, error: (e as Error).message, reasons: d.reasons };
      }
      publish({ job, key: fingerprint });
      const outcome = await collect(stage, await job.result, components, fingerprint, d.reasons);
      if (outcome.status === 'ran') await batch.collected(stage.id, fingerprint, job, fingerprint);
      return outcome;
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
    let runStage: Stage;
    try {
      runStage = await withKernel(stage, image);
    } catch (e) {
      if (cancelAll.signal.aborted) return { status: 'canceled' };
      return { status: 'failed', fingerprint, error: (e as Error).message, reasons: d.reasons };
    }
    const result = await o.executor.run({ runId, stage: runStage, fingerprint, image, workspace: o.workspace }, stageHooks(stage), cancelAll.signal);
    return collect(stage, result, components, fingerprint, d.reasons);
  };

  for (const id of o.ids) {
    const stage = o.graph.stages.get(id);
    if (stage === undefined) continue;
    const t0 = Date.now();
    const hold: { release?: () => void } = {};
    let publish: (h: Handle) => void = () => {};
    let published = false;
    if (batch !== undefined) {
      handles.set(
        id,
        new Promise<Handle>((res) => {
          publish = (h) => {
            published = true;
            res(h);
          };
        }),
      );
    }
    const p = process(stage, hold, (h) => publish(h)).catch((e: unknown): StageOutcome => ({
      status: 'failed',
      fingerprint: null,
      error: e instanceof Error ? e.message : String(e),
      reasons: [],
    }));
    done.set(
      id,
      p.then((outcome) => {
        outcomes.set(id, outcome);
        if (batch !== undefined && !published) {
          const fp = fingerprintOfOutcome(outcome);
          publish({ job: null, key: fp === undefined ? null : (batch.keyOf(id, fp) ?? fp) });
        }
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

/** What a downstream stage of a batch run chains on. */
interface Handle {
  /** The stage's job, once submitted; null when it ended without one. */
  readonly job: SubmittedJob | null;
  /** Its execution key (fingerprint, or chain key); null when it has none (failed, skipped). */
  readonly key: string | null;
}

/** The key of a chained stage's job: everything known about it before its upstreams have run. */
function chainKey(stat: ReturnType<typeof staticComponents>, imageDigest: string, deps: unknown, upstream: Readonly<Record<string, string>>): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ v: 1, stat, imageDigest, deps, upstream: Object.entries(upstream).sort(([a], [b]) => (a < b ? -1 : 1)) }));
  return `chain-${h.digest('hex')}`;
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
