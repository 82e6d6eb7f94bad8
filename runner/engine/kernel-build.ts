/**
 * The compile step of kernel stages. A compiled kernel (Chapel, C) is built once per compile key
 * — the hash of its source directory, the image digest, the compile command and its environment
 * (CHPL_* settings...) — and cached like a stage output: the binaries go into the content store
 * and a run-cache entry under the key lists them. A run that finds the entry restores the binaries
 * (or finds them in place) and compiles nothing; a run that does not compiles in the stage's own
 * image, in a container of its own, before the stage's run.
 *
 * Binaries live in `.hpcflow/bin/<key>/` in the workspace (mounted at the same path in every
 * container and on every node of a shared filesystem); commands find them via $HPCFLOW_KERNEL_DIR.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { restoreOutput, saveOutput } from '../cache/outputs.js';
import type { ContentStore } from '../cache/store.js';
import type { RunCache } from '../cache/run-cache.js';
import { HpcflowError } from '../errors.js';
import type { Executor, ResolvedImage, RunHooks } from '../executors/executor.js';
import { failureOf } from '../executors/executor.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import { KERNEL_DIR_VAR, renderCommand } from '../frameworks/index.js';
import type { Stage } from '../model/pipeline.js';
import { hashBytes } from '../fingerprint/hash-file.js';
import { canonicalJson } from '../util/canonical-json.js';
import { pathExists } from '../util/fs-atomic.js';

/** Bump when the key recipe or the layout of `.hpcflow/bin` changes. */
export const KERNEL_BUILD_VERSION = 1;
export const KERNEL_BIN_DIR = '.hpcflow/bin';

export interface KernelBuildContext {
  readonly workspace: string;
  readonly store: ContentStore;
  readonly runs: RunCache;
  readonly executor: Executor;
  readonly runId: string;
  hashPath(rel: string): Promise<PathHash>;
}

export interface KernelBuild {
  /** The compile key. */
  readonly key: string;
  /** Absolute directory holding the binaries (the value of $HPCFLOW_KERNEL_DIR). */
  readonly dir: string;
  /** compiled: ran the compiler; cached: binaries were in place; restored: copied from the store. */
  readonly action: 'compiled' | 'cached' | 'restored';
  readonly ms: number;
}

/** The compile key of a kernel stage in an image. */
export async function kernelBuildKey(stage: Stage, image: ResolvedImage, hashPath: (rel: string) => Promise<PathHash>): Promise<string> {
  const k = stage.kernel;
  if (k?.build == null) throw new Error(`stage ${stage.id} has nothing to compile`);
  const unit = await hashPath(k.unit);
  if (unit.kind === 'missing') throw new HpcflowError('HPCFLOW_USAGE', `kernel directory ${k.unit} of stage ${stage.id} is missing`);
  return hashBytes(
    canonicalJson({
      v: KERNEL_BUILD_VERSION,
      framework: k.spec.framework,
      unit: { path: k.unit, hash: unit.hash },
      image: image.digest,
      argv: k.build.argv,
      env: k.build.env,
      outputs: k.build.outputs,
    }),
  );
}

/**
 * Makes the stage's binaries available; compiles at most once per key for concurrent callers
 * (`memo` is per run). Throws HPCFLOW_STAGE_FAILED with the compiler's exit status on failure
 * (its output went to `hooks`).
 */
export function ensureKernelBuild(
  ctx: KernelBuildContext,
  stage: Stage,
  image: ResolvedImage,
  hooks: RunHooks,
  signal: AbortSignal,
  memo: Map<string, Promise<KernelBuild>>,
): Promise<KernelBuild> {
  return kernelBuildKey(stage, image, ctx.hashPath).then((key) => {
    const shared = memo.get(key);
    // Another stage of this run is compiling (or has compiled) the same key: for this one the
    // binaries are simply there.
    if (shared !== undefined) return shared.then((b) => ({ ...b, action: b.action === 'compiled' ? ('cached' as const) : b.action, ms: 0 }));
    const p = build(ctx, stage, image, key, hooks, signal);
    memo.set(key, p);
    return p;
  });
}

async function build(ctx: KernelBuildContext, stage: Stage, image: ResolvedImage, key: string, hooks: RunHooks, signal: AbortSignal): Promise<KernelBuild> {
  const t0 = Date.now();
  const b = stage.kernel?.build;
  if (b == null) throw new Error('unreachable: no build');
  const rel = posix.join(KERNEL_BIN_DIR, key);
  const dir = join(ctx.workspace, rel);
  const { entry } = await ctx.runs.get(key);
  if (entry !== null && entry.outs.length === b.outputs.length) {
    // The record says what the binaries are: trust files in place only if they hash the same.
    let inPlace = true;
    for (const r of entry.outs) {
      const h = await ctx.hashPath(r.path);
      if (h.kind === 'missing' || h.hash !== r.hash) inPlace = false;
    }
    if (inPlace) return { key, dir, action: 'cached', ms: Date.now() - t0 };
    try {
      for (const r of entry.outs) await restoreOutput(ctx.store, ctx.workspace, r);
      return { key, dir, action: 'restored', ms: Date.now() - t0 };
    } catch {
      // An object is gone from the store (gc, damage): compile again below.
    }
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const compile: Stage = {
    ...stage,
    id: `${stage.id}#compile`,
    cmd: renderCommand({ argv: b.argv, env: {} }),
    env: { ...b.env, [KERNEL_DIR_VAR]: dir },
    outs: [],
    metrics: null,
    // One compiler process, whatever the kernel's launch shape (on Slurm: one task on one node).
    resources: { ...stage.resources, nodes: 1, tasksPerNode: 1 },
  };
  hooks.onLog('stderr', `hpcflow: compiling ${stage.kernel?.spec.source}: ${renderCommand(b)}`);
  const result = await ctx.executor.run({ runId: ctx.runId, stage: compile, fingerprint: key, image, workspace: ctx.workspace }, hooks, signal);
  const failure = failureOf(result);
  if (failure !== null) {
    await rm(dir, { recursive: true, force: true });
    throw new HpcflowError('HPCFLOW_STAGE_FAILED', result.canceled ? 'canceled while compiling' : `compile failed (${failure}): ${renderCommand(b)}`);
  }
  const missing: string[] = [];
  for (const o of b.outputs) if (!(await pathExists(join(dir, o)))) missing.push(o);
  if (missing.length > 0) {
    await rm(dir, { recursive: true, force: true });
    throw new HpcflowError('HPCFLOW_STAGE_FAILED', `the compiler did not write ${missing.join(', ')} into $${KERNEL_DIR_VAR}: ${renderCommand(b)}`);
  }
  const outs = [];
  for (const o of b.outputs) outs.push(await saveOutput(ctx.store, ctx.workspace, posix.join(rel, o)));
  await ctx.runs.put({ schema: 1, fingerprint: key, stage: `${stage.id}#compile`, outs, createdAt: new Date().toISOString() });
  return { key, dir, action: 'compiled', ms: Date.now() - t0 };
}
