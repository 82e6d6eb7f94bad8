import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { HpcflowError } from '../errors.js';

/** Holder of the workspace run lock, as written in the lock file. */
interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Random per acquisition: tells this holder's lock from a later one of the same pid. */
  readonly token?: string;
}

/** What a lock file held when it was read. */
interface Seen {
  readonly text: string;
  /** null: not a lock owner (empty, or half-written by a writer without atomic create). */
  readonly owner: LockOwner | null;
  readonly mtimeMs: number;
}

/** Tries before giving up when the lock keeps changing hands under us (each try takes microseconds). */
const MAX_ATTEMPTS = 50;
/** An unreadable lock file younger than this may still be being written: not stale yet. */
const UNREADABLE_GRACE_MS = 2_000;
/** A takeover guard older than this was left by a process that died inside the takeover. */
const GUARD_STALE_MS = 10_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    return typeof o === 'object' && o !== null && Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** A live process on this host, or any owner on another host (which cannot be checked from here). */
const isLive = (o: LockOwner): boolean => o.host !== hostname() || alive(o.pid);

/**
 * The pid holding the lock `file` as acquireWorkspaceLock judges it — a live process on this host,
 * or any owner on another host — or null (free, stale, unreadable).
 */
export function liveLockOwner(file: string): number | null {
  let owner: LockOwner | null;
  try {
    owner = parseOwner(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  return owner !== null && isLive(owner) ? owner.pid : null;
}

function read(file: string): Seen | null {
  try {
    const text = readFileSync(file, 'utf8');
    return { text, owner: parseOwner(text), mtimeMs: statSync(file).mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** Sleeps the thread (the lock is taken synchronously, before anything else runs). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A private file next to `file` holding `text`; the caller renames, links or removes it. */
function privateCopy(file: string, text: string): string {
  const tmp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

/**
 * Creates `file` with `text` unless something exists under that name (then false). The name
 * appears with its content complete — a hard link of a private file — so a competitor never reads
 * a lock half-written and mistakes it for a stale one. On a filesystem without hard links, an
 * exclusive create and a write (the unreadable grace period covers the gap).
 */
function createWith(file: string, text: string): boolean {
  const tmp = privateCopy(file, text);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
  } finally {
    unlinkQuiet(tmp);
  }
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Replaces the stale lock `file` (whose content was `staleText`) with `mine`, unless it changed
 * since it was judged stale. Several processes may find the same stale lock at once, so the check
 * and the replacement happen under a guard file that only one of them can create; the others try
 * again and then find the new, live, owner. (A guard left by a process that died inside these few
 * microseconds is removed once its owner is gone.) The replacement is a rename over the old file:
 * the lock name never disappears on the way, so nobody can create it in between.
 */
function takeOver(file: string, staleText: string, mine: string): boolean {
  const guard = `${file}.takeover`;
  if (!createWith(guard, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }))) {
    const g = read(guard);
    const age = g === null ? 0 : Date.now() - g.mtimeMs;
    if (g !== null && (age > GUARD_STALE_MS || (g.owner === null ? age > UNREADABLE_GRACE_MS : !isLive(g.owner)))) unlinkQuiet(guard);
    else pause(2);
    return false;
  }
  try {
    const now = read(file);
    if (now === null || now.text !== staleText) return false; // taken over or released meanwhile: judge again
    const tmp = privateCopy(file, mine);
    try {
      renameSync(tmp, file);
    } catch (e) {
      unlinkQuiet(tmp);
      throw e;
    }
    return true;
  } finally {
    unlinkQuiet(guard);
  }
}

function releaser(file: string, mine: string): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      // Only our own lock: never one another process holds now.
      if (readFileSync(file, 'utf8') === mine) unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
}

/**
 * Serialises runs on one workspace: a lock file holding the owner's pid, created atomically with
 * its content. A lock left by a dead process on this host is taken over (by exactly one of several
 * processes that find it at once); a live one is a clear error naming its holder.
 * Returns the release function.
 */
export function acquireWorkspaceLock(file: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const mine = JSON.stringify(me);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (createWith(file, mine)) return releaser(file, mine);
    const seen = read(file);
    if (seen === null) continue; // released meanwhile
    const owner = seen.owner;
    if (owner !== null && isLive(owner)) {
      throw new HpcflowError(
        'HPCFLOW_WORKSPACE_LOCKED',
        `another hpcflow run (pid ${owner.pid} on ${owner.host}, since ${owner.since}) holds this workspace`,
        { hint: `wait for it to finish; if that process is gone, remove ${file}` },
      );
    }
    if (owner === null && Date.now() - seen.mtimeMs < UNREADABLE_GRACE_MS) {
      pause(5); // being written by a writer without atomic create: look again
      continue;
    }
    if (takeOver(file, seen.text, mine)) return releaser(file, mine);
  }
  throw new HpcflowError('HPCFLOW_WORKSPACE_LOCKED', `could not take the workspace lock ${file}`, {
    hint: 'other runs are starting at the same moment; try again',
  });
}
