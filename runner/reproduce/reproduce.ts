/**
 * `hpcflow reproduce <rev>`: re-run a recorded commit's pipeline from scratch and say whether it
 * reproduced.
 *
 * 1. Find the record (resolve.ts): a results commit's lockfile, and the input commit to re-run.
 * 2. Write the input commit's workspace tree into a temporary directory (tree.ts): the user's
 *    checkout, index and HEAD are never touched, so a kernel changed since does not matter.
 *    The lockfile and every declared output are removed from it: each output must be re-made.
 * 3. Check out the datasets the stages read, from the user's content store (never hard links).
 * 4. Pin stages to their recorded images where the tag moved and the engine still has them
 *    (images.ts); warn where it has not.
 * 5. Run `hpcflow run --force --json` on the worktree with a fresh, empty cache (run-child.ts),
 *    so nothing is restored and every stage really runs.
 * 6. Compare every recorded output and metric with the re-run (compare.ts) and report.
 * 7. Remove the worktree and the cache (unless kept).
 */
import { chmod, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { openCache } from '../cache/index.js';
import type { OutputRecord } from '../cache/records.js';
import { HpcflowError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { isInside } from '../fingerprint/paths.js';
import { canonicalJson } from '../util/canonical-json.js';
import { findGitRoot } from '../git/repo.js';
import type { LockEntry, Lockfile } from '../lockfile/lockfile.js';
import { LOCKFILE_NAME, parseLockfile, readLockfile } from '../lockfile/lockfile.js';
import type { Stage } from '../model/pipeline.js';
import { compareMetrics, compareOutput, freshSide, recordedSide } from './compare.js';
import type { ImagePlan, ImageProbe } from './images.js';
import { applyPins, planImages, shortDigest } from './images.js';
import type { ImageReport, OutputReport, ReproduceReport, StageReport } from './report.js';
import { isComplete, summarise } from './report.js';
import type { ReproduceTarget } from './resolve.js';
import { repoFile, resolveTarget } from './resolve.js';
import { defaultCli, runChild } from './run-child.js';
import type { ChildRun } from './run-child.js';
import { materialiseTree } from './tree.js';
import { materialiseDatasets, parseStages } from './worktree.js';

export interface ReproduceOptions {
  /** The user's workspace root. */
  readonly workspace: string;
  readonly rev: string;
  /** Stages to re-run (with their upstreams); default all. Compared: the recorded ones among them. */
  readonly stages?: readonly string[];
  /** The user's content store directory (datasets and recorded outputs are read from it). */
  readonly cacheDir: string;
  /** Where the temporary worktree and cache go (default: the OS temp directory). */
  readonly tmpDir?: string;
  /** Keep the worktree and cache afterwards. */
  readonly keep?: boolean;
  /** A changed or unobtainable image fails the reproduction. */
  readonly strictImages?: boolean;
  /** hpcflow.yaml's results.ref, searched for results commits besides HEAD. */
  readonly resultsRef?: string | null;
  /** Extra `hpcflow run` options: --executor, --site, --matrix, --jobs, --cpus. */
  readonly runArgs?: readonly string[];
  /** The command that starts the hpcflow CLI (default: this one). */
  readonly cli?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** The re-run's working directory (relative paths in its environment, e.g. HPCFLOW_SITE). */
  readonly cwd?: string;
  /** The container engine's images, for pinning and warnings (null: not asked). */
  readonly images?: ImageProbe | null;
  readonly onProgress?: ((line: string) => void) | undefined;
  readonly signal?: AbortSignal;
}

const short = (oid: string): string => oid.slice(0, 12);

/** Child exit codes → the error code that maps back to the same exit code. */
const CHILD_CODES: Readonly<Record<number, ErrorCode>> = {
  2: 'HPCFLOW_USAGE',
  3: 'HPCFLOW_SPEC_INVALID',
  4: 'HPCFLOW_ENGINE_UNAVAILABLE',
  5: 'HPCFLOW_WORKSPACE_LOCKED',
  130: 'HPCFLOW_ABORTED',
};

export async function reproduce(o: ReproduceOptions): Promise<ReproduceReport> {
  const t0 = Date.now();
  const progress = o.onProgress ?? (() => undefined);
  const env = o.env ?? process.env;
  const wsReal = await realpath(o.workspace).catch((e: unknown) => {
    throw new HpcflowError('HPCFLOW_NOT_A_WORKSPACE', `workspace ${o.workspace} is not accessible`, { cause: e });
  });
  const gitRoot = await findGitRoot(wsReal);
  if (gitRoot === null) throw new HpcflowError('HPCFLOW_GIT', `${o.workspace} is not in a git repository: there is no recorded commit to reproduce`, { hint: 'reproduce re-runs a commit of the workspace\'s repository' });
  const wsRel = relative(await realpath(gitRoot), wsReal).split(sep).join('/');
  if (wsRel.startsWith('..')) throw new HpcflowError('HPCFLOW_GIT', `${o.workspace} is outside its git repository ${gitRoot}`);
  const gitCache = {};
  const target = await resolveTarget({ gitRoot, wsRel, rev: o.rev, resultsRef: o.resultsRef ?? null, cache: gitCache });
  const lock = parseLockfile(target.lockText, `${short(target.resultsCommit)}:${repoFile(wsRel, LOCKFILE_NAME)}`);
  if (Object.keys(lock.stages).length === 0) {
    throw new HpcflowError('HPCFLOW_USAGE', `the lockfile of ${short(target.resultsCommit)} records no stage`, { hint: 'there is nothing to compare a re-run with' });
  }
  const warnings = [...target.warnings];
  const userStore = openCache(o.cacheDir).store;

  const checkAbort = (): void => {
    if (o.signal?.aborted === true) throw new HpcflowError('HPCFLOW_ABORTED', 'reproduce interrupted; nothing was compared');
  };
  const tmp = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'hpcflow-reproduce-'));
  // In a directory chosen for it (a filesystem Slurm nodes share), the worktree is as readable as
  // a checkout; in the OS temp directory it stays private.
  if (o.tmpDir !== undefined) await chmod(tmp, 0o755);
  const worktree = join(tmp, 'ws');
  const cacheDir = join(tmp, 'cache');
  let kept: ReproduceReport['kept'] = null;
  try {
    // 2. The input commit's workspace, without the record: every output must be made again.
    const tm = Date.now();
    const tree = await materialiseTree({ gitRoot, commit: target.inputCommit, subdir: wsRel, dest: worktree, skip: ['.hpcflow'], cache: gitCache });
    if (tree.submodules.length > 0) warnings.push(`submodules are not checked out (empty directories): ${tree.submodules.join(', ')}`);
    const stages = parseStages(worktree, target.inputCommit);
    await removeRecorded(worktree, stages, lock, warnings);
    // 3. Datasets.
    checkAbort();
    const datasets = await materialiseDatasets(worktree, stages, userStore, env, target.inputCommit, progress);
    const materialiseMs = Date.now() - tm;
    progress(`worktree of ${short(target.inputCommit)}: ${tree.files} files${datasets.length > 0 ? `, datasets ${datasets.join(', ')}` : ''} in ${((Date.now() - tm) / 1000).toFixed(1)} s`);

    checkAbort();
    // 4. Images.
    const recordedImages = Object.entries(lock.stages).map(([id, e]) => [id, e.image] as const);
    let plans: ImagePlan[] = [];
    if (o.images !== undefined && o.images !== null) {
      const p = await planImages(recordedImages, stages, o.images);
      plans = p.plans;
      warnings.push(...p.warnings);
      warnings.push(...(await applyPins(worktree, p.pins)));
      for (const pl of plans) {
        if (pl.action === 'pinned') progress(`${pl.stage}: pinned to the recorded image ${shortDigest(pl.recorded)} (${pl.tag} names ${pl.current === null ? 'no image' : shortDigest(pl.current)} now)`);
      }
    }

    checkAbort();
    // 5. The re-run.
    const tr = Date.now();
    const args = ['run', '--force', '--json', '-C', worktree, '--cache-dir', cacheDir, ...(o.runArgs ?? []), ...(o.stages ?? [])];
    progress(`re-running ${short(target.inputCommit)} with an empty cache…`);
    const child = await runChild(o.cli ?? defaultCli(), args, env, {
      onStageEnd: (id, status, ms, error) => progress(`  ${id}: ${status} (${(ms / 1000).toFixed(1)} s)${error !== undefined ? `: ${error}` : ''}`),
    }, o.signal, o.cwd);
    const runMs = Date.now() - tr;
    if (child.code !== 0 && child.code !== 1) {
      const code = CHILD_CODES[child.code];
      const tail = child.stderr.trim().split('\n').slice(-30).join('\n');
      const message = `the re-run of ${short(target.inputCommit)} stopped before comparing (hpcflow run exited with ${child.code})${tail === '' ? '' : `:\n${tail}`}`;
      if (code === undefined) throw new Error(message);
      const hints: string[] = [];
      if (child.code === 3) hints.push(`the re-run sees only what is committed at ${short(target.inputCommit)} (and the datasets its stages depend on): a file the pipeline needs may not be committed`);
      if (o.keep === true) hints.push(`the worktree is kept at ${worktree}`);
      throw new HpcflowError(code, message, hints.length > 0 ? { hint: hints.join('; ') } : {});
    }

    // 6. Comparison.
    const tc = Date.now();
    const fresh = readLockfile(join(worktree, LOCKFILE_NAME));
    const rec = recordedSide({ store: userStore, gitRoot, commit: target.resultsCommit, wsRel, cache: gitCache });
    const now = freshSide({ store: openCache(cacheDir).store, worktree });
    const { reports, skipped } = await compareStages(lock, fresh, stages, child, plans, rec, now, target);
    const compareMs = Date.now() - tc;
    for (const s of reports) {
      const i = s.image;
      if (i === null) continue;
      if (i.changed) {
        const tagNow = i.action === 'unavailable' ? ` — the recorded image can no longer be obtained (the engine no longer has it), so it ran on what ${i.tag} names now` : '';
        warnings.push(`${s.id}: re-ran on image ${i.rerun === null ? '?' : shortDigest(i.rerun)}, recorded ${shortDigest(i.recorded)} (${i.tag})${tagNow}`);
      } else if (i.action === 'unavailable' && i.rerun === null) {
        warnings.push(`${s.id}: the recorded image ${shortDigest(i.recorded)} (${i.tag}) can no longer be obtained (the engine no longer has it)`);
      }
    }
    for (const p of plans) {
      if (p.action === 'not-pinned') warnings.push(`${p.stage}: the cells of this matrix stage recorded different images, so it could not be pinned to ${shortDigest(p.recorded)}`);
    }
    if (o.keep === true) kept = { worktree, cache: cacheDir };
    const strict = o.strictImages === true;
    const { summary, reproduced } = summarise(reports, strict);
    return {
      rev: target.rev,
      commit: target.commit,
      source: target.source,
      resultsCommit: target.resultsCommit,
      inputCommit: target.inputCommit,
      runId: target.runId,
      rerunId: child.runId,
      strictImages: strict,
      reproduced,
      summary,
      stages: reports,
      skipped,
      warnings,
      kept,
      timings: { materialiseMs, runMs, compareMs, totalMs: Date.now() - t0 },
    };
  } finally {
    if (o.keep !== true) await rm(tmp, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
    else if (kept === null) progress(`kept the worktree at ${worktree}`);
  }
}

/** The worktree's resolved stages by id (stages with errors are left out: the run reports them). */
/** Removes `rel` inside `root` unless a symlinked parent leads outside. */
async function removeInside(rootReal: string, rel: string, warnings: string[]): Promise<void> {
  const abs = join(rootReal, rel);
  let parent: string;
  try {
    parent = await realpath(dirname(abs));
  } catch {
    return; // the parent does not exist: nothing to remove
  }
  if (!isInside(rootReal, parent)) {
    warnings.push(`output ${rel} is below a symlink leading outside the workspace (${parent}); it was not removed before the re-run`);
    return;
  }
  await rm(abs, { recursive: true, force: true });
}

/** The lockfile and every output path (declared now or recorded) go: the re-run must make them. */
async function removeRecorded(worktree: string, stages: ReadonlyMap<string, Stage>, lock: Lockfile, warnings: string[]): Promise<void> {
  const root = await realpath(worktree);
  const paths = new Set<string>([LOCKFILE_NAME]);
  for (const s of stages.values()) {
    for (const out of s.outs) paths.add(out.path);
    if (s.metrics !== null) paths.add(s.metrics);
  }
  for (const e of Object.values(lock.stages)) for (const r of e.outRecords) paths.add(r.path);
  for (const p of paths) {
    if (p === '' || p.startsWith('/') || p.split('/').includes('..')) continue;
    await removeInside(root, p, warnings);
  }
}

async function compareStages(
  lock: Lockfile,
  fresh: Lockfile,
  stages: ReadonlyMap<string, Stage>,
  child: ChildRun,
  plans: readonly ImagePlan[],
  rec: ReturnType<typeof recordedSide>,
  now: ReturnType<typeof freshSide>,
  target: ReproduceTarget,
): Promise<{ reports: StageReport[]; skipped: { id: string; why: string }[] }> {
  const reports: StageReport[] = [];
  const skipped: { id: string; why: string }[] = [];
  const planOf = new Map(plans.map((p) => [p.stage, p]));
  const selected = child.selected === null ? null : new Set(child.selected);
  for (const id of Object.keys(lock.stages).sort()) {
    const recorded = lock.stages[id] as LockEntry;
    const stage = stages.get(id);
    if (stage === undefined) {
      skipped.push({ id, why: `not a stage of the pipeline at ${short(target.inputCommit)}` });
      continue;
    }
    if (selected !== null && !selected.has(id)) {
      skipped.push({ id, why: 'not selected for the re-run' });
      continue;
    }
    const outcome: { status: string; error?: string } = child.outcomes.get(id) ?? { status: 'not-started' };
    const entry = isComplete(outcome.status) ? fresh.stages[id] : undefined;
    const tol = stage.tolerance ?? null;
    const notes: string[] = [];
    const plan = planOf.get(id);
    const image: ImageReport | null =
      recorded.image.digest === ''
        ? null
        : {
            tag: recorded.image.tag,
            recorded: recorded.image.digest,
            rerun: entry?.image.digest ?? null,
            action: plan?.action ?? 'unknown',
            changed: entry !== undefined && entry.image.digest !== recorded.image.digest,
          };
    const freshOuts = new Map<string, OutputRecord>((entry?.outRecords ?? []).map((r) => [r.path, r]));
    const outputs: OutputReport[] = [];
    for (const r of [...recorded.outRecords].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      if (entry === undefined) {
        outputs.push({ path: r.path, kind: r.kind, verdict: 'missing', detail: `the stage ${outcome.status === 'failed' ? 'failed' : `did not run (${outcome.status})`}` });
        continue;
      }
      outputs.push(await compareOutput(r, freshOuts.get(r.path), tol, rec, now));
    }
    // (A pinned image changes only the tag in the fingerprint: not a difference of inputs.)
    const differ = entry === undefined ? [] : componentsThatDiffer(recorded, entry);
    if (differ.length > 0) notes.push(`its inputs differ from the record's (${differ.join(', ')}), so differences may come from the inputs rather than the re-run`);
    const recordedPaths = new Set(recorded.outRecords.map((r) => r.path));
    for (const p of freshOuts.keys()) if (!recordedPaths.has(p)) notes.push(`output ${p} was not recorded (nothing to compare it with)`);
    let metrics: StageReport['metrics'] = [];
    if (stage.metrics !== null && entry !== undefined) {
      const m = await compareMetrics(stage.metrics, recorded.outRecords.find((r) => r.path === stage.metrics), freshOuts.get(stage.metrics), tol, rec, now);
      metrics = m.rows;
      if (m.note !== null) notes.push(m.note);
    }
    const failedLog = isComplete(outcome.status) ? undefined : child.logs.get(id);
    reports.push({
      id,
      status: outcome.status,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(failedLog !== undefined && failedLog.length > 0 ? { log: failedLog } : {}),
      tolerance: tol,
      image,
      outputs,
      metrics,
      notes,
    });
  }
  return { reports, skipped };
}

/** The fingerprint components (lockfile fields) in which two entries of a stage differ. */
export function componentsThatDiffer(a: LockEntry, b: LockEntry): string[] {
  const out: string[] = [];
  const same = (x: unknown, y: unknown): boolean => canonicalJson(x ?? null) === canonicalJson(y ?? null);
  if (a.cmd !== b.cmd) out.push('cmd');
  if (a.wdir !== b.wdir) out.push('wdir');
  if (a.image?.digest !== b.image?.digest) out.push('image');
  for (const [key, name] of [['deps', 'deps'], ['params', 'params'], ['env', 'env'], ['shape', 'resources'], ['upstream', 'upstream stages'], ['outs', 'outs']] as const) {
    if (!same(a[key], b[key])) out.push(name);
  }
  return out;
}
