import type { OutputRecord } from '../cache/store.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { StageComponents } from '../fingerprint/stage.js';
import { fingerprintOf } from '../fingerprint/stage.js';
import type { LockEntry } from '../lockfile/lockfile.js';
import type { Reason } from './reasons.js';
import { canonicalJson } from '../util/canonical-json.js';

/**
 * What the runner will do with a stage. `fingerprint` is null when it cannot be known before
 * something upstream has run (or the image has been built).
 */
export type Decision =
  | { readonly action: 'up-to-date'; readonly fingerprint: string; readonly reasons: readonly Reason[] }
  | { readonly action: 'restore'; readonly fingerprint: string; readonly reasons: readonly Reason[] }
  | { readonly action: 'run'; readonly fingerprint: string | null; readonly reasons: readonly Reason[] };

export type Action = Decision['action'];

/** Component-by-component difference between the last recorded run and now. Pure. */
export function diffComponents(before: LockEntry | undefined, now: Partial<StageComponents>): Reason[] {
  if (before === undefined) return [{ kind: 'new' }];
  const out: Reason[] = [];
  if (now.cmd !== undefined && now.cmd !== before.cmd) out.push({ kind: 'cmd', before: before.cmd, after: now.cmd });
  if (now.wdir !== undefined && now.wdir !== before.wdir) out.push({ kind: 'wdir', before: before.wdir, after: now.wdir });
  if (now.image !== undefined) {
    if (now.image.tag !== before.image.tag) {
      out.push({ kind: 'image-tag', before: before.image.tag, after: now.image.tag });
    } else if (now.image.digest !== before.image.digest) {
      out.push({ kind: 'image-digest', tag: now.image.tag, before: before.image.digest, after: now.image.digest });
    }
  }
  if (now.deps !== undefined) {
    for (const [path, d] of Object.entries(now.deps)) {
      const old = before.deps[path];
      if (old === undefined) out.push({ kind: 'dep-added', path });
      else if (old.hash !== d.hash || old.kind !== d.kind) {
        // A dataset's hash is its version id: worth showing.
        out.push(path.startsWith('dataset:') ? { kind: 'dep-changed', path, before: old.hash, after: d.hash } : { kind: 'dep-changed', path });
      }
    }
    for (const path of Object.keys(before.deps)) {
      if (!(path in now.deps)) out.push({ kind: 'dep-removed', path });
    }
  }
  if (now.params !== undefined) {
    for (const [name, v] of Object.entries(now.params)) {
      if (!(name in before.params)) out.push({ kind: 'param-added', name, after: v });
      else if (!sameJson(before.params[name], v)) out.push({ kind: 'param-changed', name, before: before.params[name], after: v });
    }
    for (const name of Object.keys(before.params)) {
      if (!(name in now.params)) out.push({ kind: 'param-removed', name, before: before.params[name] });
    }
  }
  if (now.env !== undefined) {
    const keys = new Set([...Object.keys(before.env), ...Object.keys(now.env)]);
    for (const key of [...keys].sort()) {
      const a = before.env[key] ?? null;
      const b = now.env[key] ?? null;
      if (a !== b) out.push({ kind: 'env', key, before: a, after: b });
    }
  }
  if (now.shape !== undefined && !sameJson(now.shape, before.shape)) {
    out.push({ kind: 'shape', before: shapeText(before.shape), after: shapeText(now.shape) });
  }
  if (now.upstream !== undefined) {
    for (const [id, fp] of Object.entries(now.upstream)) {
      if (before.upstream[id] !== fp) out.push({ kind: 'upstream-changed', stage: id });
    }
    for (const id of Object.keys(before.upstream)) {
      if (!(id in now.upstream)) out.push({ kind: 'upstream-changed', stage: id });
    }
  }
  if (now.outs !== undefined && !sameJson(now.outs, before.outs)) {
    out.push({ kind: 'outs-declared', before: before.outs, after: now.outs });
  }
  return out;
}

/**
 * The fingerprint of `components`, reusing the lock entry's when no component differs: every
 * field of the fingerprint is compared by {@link diffComponents} (a unit test changes each one
 * and checks both agree), so an unchanged stage costs comparisons instead of serialising and
 * hashing its components — the bulk of a no-op `status` on thousands of stages.
 */
export function fingerprintWithLock(components: StageComponents, lockEntry: LockEntry | undefined): string {
  if (lockEntry !== undefined && diffComponents(lockEntry, components).length === 0) return lockEntry.fingerprint;
  return fingerprintOf(components);
}

/** Outputs on disk against the records of the last run. Pure. */
export function diffOutputs(records: readonly OutputRecord[], onDisk: ReadonlyMap<string, PathHash>): Reason[] {
  const out: Reason[] = [];
  for (const rec of records) {
    const cur = onDisk.get(rec.path);
    if (cur === undefined || cur.kind === 'missing') out.push({ kind: 'out-missing', path: rec.path });
    else if (cur.kind !== rec.kind || cur.hash !== rec.hash) out.push({ kind: 'out-modified', path: rec.path });
  }
  return out;
}

/**
 * The decision for a stage whose components are all known. Pure.
 * - same fingerprint as the lockfile and outputs intact → up-to-date;
 * - same fingerprint, outputs damaged, outputs in the cache → restore; else run;
 * - different fingerprint, fingerprint in the run-cache → restore (no compute); else run.
 */
export function decide(input: {
  readonly fingerprint: string;
  readonly components: StageComponents;
  readonly lockEntry: LockEntry | undefined;
  /** Reasons from comparing outputs on disk with the lock entry (only used when fingerprints match). */
  readonly outputReasons: readonly Reason[];
  /** Whether the run-cache holds complete outputs for `fingerprint`. */
  readonly cached: boolean;
  readonly forced: boolean;
}): Decision {
  const { fingerprint, lockEntry, cached } = input;
  if (input.forced) return { action: 'run', fingerprint, reasons: [{ kind: 'forced' }] };
  if (lockEntry !== undefined && lockEntry.fingerprint === fingerprint) {
    if (input.outputReasons.length === 0) return { action: 'up-to-date', fingerprint, reasons: [] };
    return cached
      ? { action: 'restore', fingerprint, reasons: [...input.outputReasons, { kind: 'run-cache-hit' }] }
      : { action: 'run', fingerprint, reasons: input.outputReasons };
  }
  const reasons = diffComponents(lockEntry, input.components);
  // A different fingerprint with no visible component change means the recipe itself changed.
  if (reasons.length === 0) reasons.push({ kind: 'new' });
  return cached
    ? { action: 'restore', fingerprint, reasons: [...reasons, { kind: 'run-cache-hit' }] }
    : { action: 'run', fingerprint, reasons };
}

function shapeText(s: StageComponents['shape']): string {
  return `${s.nodes}×${s.tasksPerNode}×${s.cpusPerTask} (nodes×tasks×cpus)`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
