import { mkdirSync, openSync, closeSync, writeSync, readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { HpcflowError } from '../errors.js';

/** Holder of the workspace run lock, as written in the lock file. */
interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid holding the lock `file` as acquireWorkspaceLock judges it — a live process on this host,
 * or any owner on another host — or null (free, stale, unreadable).
 */
export function liveLockOwner(file: string): number | null {
  let owner: LockOwner;
  try {
    owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return null;
  return owner.host !== hostname() || alive(owner.pid) ? owner.pid : null;
}

/**
 * Serialises runs on one workspace: an exclusive-create lock file holding the owner's pid.
 * A lock left by a dead process on this host is taken over; a live one is a clear error.
 * Returns the release function.
 */
export function acquireWorkspaceLock(file: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner: LockOwner | null = null;
      try {
        owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
      } catch {
        owner = null; // half-written by a process that died while creating it
      }
      if (owner !== null && (owner.host !== hostname() || alive(owner.pid))) {
        throw new HpcflowError(
          'HPCFLOW_WORKSPACE_LOCKED',
          `another hpcflow run (pid ${owner.pid} on ${owner.host}, since ${owner.since}) holds this workspace`,
          { hint: `wait for it to finish; if that process is gone, remove ${file}` },
        );
      }
      try {
        unlinkSync(file); // stale: its owner is dead
      } catch {
        /* someone else took it over first; retry */
      }
    }
  }
  throw new HpcflowError('HPCFLOW_WORKSPACE_LOCKED', `could not take the workspace lock ${file}`, {
    hint: 'another run is starting at the same moment; try again',
  });
}
