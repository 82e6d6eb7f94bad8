import { readFileSync } from 'node:fs';
import type { StageComponents } from '../fingerprint/stage.js';
import { FINGERPRINT_VERSION } from '../fingerprint/stage.js';
import type { OutputRecord } from '../cache/store.js';
import { outputRecordProblem } from '../cache/records.js';
import { HpcflowError } from '../errors.js';
import { sortKeys } from '../util/canonical-json.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

/**
 * `hpcflow.lock`: committed to git, one entry per stage that has completed, holding the
 * components of its fingerprint (so a later run can explain *what* changed) and the content
 * records of its outputs.
 *
 * JSON rather than YAML: `JSON.parse` of a 10,000-stage lockfile takes milliseconds where a YAML
 * parser takes hundreds, and with sorted keys and one key per line the diffs read just as well.
 */
export const LOCKFILE_NAME = 'hpcflow.lock';
export const LOCKFILE_SCHEMA = 1;

export interface LockEntry extends StageComponents {
  readonly fingerprint: string;
  readonly outRecords: readonly OutputRecord[];
}

export interface Lockfile {
  readonly schema: number;
  /** The fingerprint recipe the entries were made with (fingerprint/stage.ts). */
  readonly fingerprintVersion?: number;
  readonly stages: Readonly<Record<string, LockEntry>>;
}

export const emptyLockfile = (): Lockfile => ({ schema: LOCKFILE_SCHEMA, fingerprintVersion: FINGERPRINT_VERSION, stages: {} });

/** Nesting a lockfile never needs (param values are the deepest part); deeper is damage. */
const MAX_DEPTH = 64;

/**
 * Parse lockfile text; `file` names it in errors. Pure. Every component an entry has must have
 * its type (a damaged entry would otherwise surface later as a crash while explaining a
 * decision); with `complete`, an entry must have them all, as hpcflow writes them — what
 * `status` and `run` need. Without it, partial entries pass (merging only needs fingerprints).
 */
export function parseLockfile(text: string, file = LOCKFILE_NAME, opts: { complete?: boolean } = {}): Lockfile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new HpcflowError('HPCFLOW_LOCKFILE_INVALID', `${file} is not valid JSON: ${(e as Error).message}`, {
      hint: `restore it from git (git checkout -- ${file}) or delete it to re-run every stage`,
      cause: e,
    });
  }
  if (!isRecord(raw) || raw.schema !== LOCKFILE_SCHEMA || !isRecord(raw.stages)) {
    throw new HpcflowError('HPCFLOW_LOCKFILE_INVALID', `${file} has an unknown layout (expected schema ${LOCKFILE_SCHEMA})`, {
      hint: `restore it from git or delete it to re-run every stage`,
    });
  }
  if (tooDeep(raw)) {
    throw new HpcflowError('HPCFLOW_LOCKFILE_INVALID', `${file} is nested deeper than ${MAX_DEPTH} levels`, {
      hint: `restore it from git (git checkout -- ${file}) or delete it to re-run every stage`,
    });
  }
  for (const [id, e] of Object.entries(raw.stages)) {
    const problem = entryProblem(e, opts.complete === true);
    if (problem !== null) {
      throw new HpcflowError('HPCFLOW_LOCKFILE_INVALID', `${file}: entry for stage ${id} is malformed: ${problem}`, {
        hint: `restore it from git or remove that entry to re-run the stage`,
      });
    }
  }
  const lock = raw as unknown as Lockfile;
  if ((lock.fingerprintVersion ?? 1) !== FINGERPRINT_VERSION) {
    // Made with another fingerprint recipe: keep the components (for explanations) but drop the
    // fingerprints, so no entry is mistaken for current; every stage reruns once.
    const stages: Record<string, LockEntry> = {};
    for (const [id, e] of Object.entries(lock.stages)) stages[id] = { ...e, fingerprint: '' };
    return { schema: lock.schema, fingerprintVersion: FINGERPRINT_VERSION, stages };
  }
  return lock;
}

/** Stable text: keys sorted at every level, 2-space indent, trailing newline. Pure. */
export function serializeLockfile(lock: Lockfile): string {
  return `${JSON.stringify(sortKeys({ ...lock, fingerprintVersion: FINGERPRINT_VERSION }), null, 2)}\n`;
}

export function readLockfile(path: string): Lockfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyLockfile();
    throw e;
  }
  return parseLockfile(text, LOCKFILE_NAME, { complete: true });
}

export async function writeLockfile(path: string, lock: Lockfile): Promise<void> {
  await writeFileAtomic(path, serializeLockfile(lock));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isString = (v: unknown): boolean => typeof v === 'string';
const recordOf = (v: unknown, ok: (x: unknown) => boolean): boolean => isRecord(v) && Object.values(v).every(ok);

/** Each component: what it must be, and a check. */
const COMPONENTS: readonly [string, string, (v: unknown) => boolean][] = [
  ['cmd', 'a string', isString],
  ['wdir', 'a string', isString],
  ['image', '{ tag, digest } strings', (v) => isRecord(v) && isString(v.tag) && isString(v.digest)],
  ['deps', 'a mapping path → { kind, hash, size }', (v) => recordOf(v, (d) => isRecord(d) && isString(d.kind) && isString(d.hash) && isCount(d.size))],
  ['params', 'a mapping', isRecord],
  ['env', 'a mapping of strings', (v) => recordOf(v, isString)],
  ['shape', '{ nodes, tasksPerNode, cpusPerTask } counts', (v) => isRecord(v) && isCount(v.nodes) && isCount(v.tasksPerNode) && isCount(v.cpusPerTask)],
  ['upstream', 'a mapping stage → fingerprint', (v) => recordOf(v, isString)],
  ['outs', 'a list of strings', (v) => Array.isArray(v) && v.every(isString)],
];

/** What is wrong with a lock entry, or null. */
function entryProblem(e: unknown, complete: boolean): string | null {
  if (!isRecord(e)) return 'not a mapping';
  if (typeof e.fingerprint !== 'string') return 'fingerprint is not a string';
  // '' is an entry of another fingerprint recipe (see below); anything else is a BLAKE3 digest.
  if (complete && e.fingerprint !== '' && !/^[0-9a-f]{64}$/.test(e.fingerprint)) return 'fingerprint is not 64 lowercase hex digits';
  if (!Array.isArray(e.outRecords)) return 'outRecords is not a list';
  for (const r of e.outRecords) {
    const p = outputRecordProblem(r);
    if (p !== null) return `outRecords: ${p}`;
    // Outputs are restored to these paths: only normalised paths inside the workspace.
    const path = (r as OutputRecord).path;
    if (!isWorkspacePath(path)) return `outRecords: output path ${JSON.stringify(path)} is not a relative path inside the workspace`;
  }
  if (!isRecord(e.deps)) return 'deps is not a mapping';
  for (const [key, what, ok] of COMPONENTS) {
    const v = e[key];
    if (v === undefined) {
      if (complete) return `${key} is missing (expected ${what})`;
    } else if (!ok(v)) {
      return `${key} is not ${what}`;
    }
  }
  return null;
}

/** A normalised workspace-relative path: no '', '.', '..' segments, not absolute, no NUL or backslash. */
function isWorkspacePath(p: string): boolean {
  return !p.startsWith('/') && !/[\0\\]/.test(p) && p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** True when a JSON value nests deeper than {@link MAX_DEPTH} (checked without recursion). */
function tooDeep(v: unknown): boolean {
  const todo: [unknown, number][] = [[v, 0]];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [x, d] = next;
    if (x === null || typeof x !== 'object') continue;
    if (d >= MAX_DEPTH) return true;
    for (const c of Object.values(x)) todo.push([c, d + 1]);
  }
  return false;
}
