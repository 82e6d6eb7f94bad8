import { readFileSync } from 'node:fs';
import type { StageComponents } from '../fingerprint/stage.js';
import { FINGERPRINT_VERSION } from '../fingerprint/stage.js';
import type { OutputRecord } from '../cache/store.js';
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

/** Parse lockfile text; `file` names it in errors. Pure. */
export function parseLockfile(text: string, file = LOCKFILE_NAME): Lockfile {
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
  for (const [id, e] of Object.entries(raw.stages)) {
    if (!isRecord(e) || typeof e.fingerprint !== 'string' || !Array.isArray(e.outRecords) || !isRecord(e.deps)) {
      throw new HpcflowError('HPCFLOW_LOCKFILE_INVALID', `${file}: entry for stage ${id} is malformed`, {
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
  return parseLockfile(text, LOCKFILE_NAME);
}

export async function writeLockfile(path: string, lock: Lockfile): Promise<void> {
  await writeFileAtomic(path, serializeLockfile(lock));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
