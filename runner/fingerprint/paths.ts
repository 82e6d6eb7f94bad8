/**
 * Workspace-relative path rules shared by the hasher and the cache: what a valid `rel` is, and
 * when a symlink leads outside the workspace. Everything works on the workspace's *real* path,
 * so a workspace under a symlinked home (/home → /gpfs/home) still compares correctly.
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { HpcflowError } from '../errors.js';

/** What a workspace-relative path currently is on disk (after following symlinks). */
export type ResolvedPath =
  | { readonly kind: 'missing' }
  | { readonly kind: 'file'; readonly real: string }
  | { readonly kind: 'dir'; readonly real: string };

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/**
 * Normalises a workspace-relative POSIX path (`a//b/./c/` → `a/b/c`). Rejects absolute paths and
 * paths that climb out with `..`, and the workspace root itself (hashing it would include the
 * cache and VCS directories).
 */
export function normalizeRel(rel: string): string {
  if (rel.includes('\0')) throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `path ${JSON.stringify(rel)} contains a NUL byte`);
  if (isAbsolute(rel) || posix.isAbsolute(rel)) {
    throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `path "${rel}" is absolute; paths must be relative to the workspace`);
  }
  const norm = posix.normalize(rel).replace(/\/+$/, '');
  if (norm === '..' || norm.startsWith('../')) {
    throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `path "${rel}" leads outside the workspace`);
  }
  if (norm === '.' || norm === '') {
    throw new HpcflowError('HPCFLOW_USAGE', `path "${rel}" names the workspace itself, not something inside it`);
  }
  return norm;
}

/** True when `p` is `root` or below it (both absolute, normalised). */
export function isInside(root: string, p: string): boolean {
  if (root === '/') return true;
  return p === root || p.startsWith(`${root}/`);
}

/** The workspace's real path; the workspace must exist. */
export function realWorkspace(workspace: string): string {
  try {
    return realpathSync.native(workspace);
  } catch (e) {
    throw new HpcflowError('HPCFLOW_NOT_A_WORKSPACE', `workspace ${workspace} is not accessible`, { cause: e });
  }
}

function escapeError(linkRel: string, target: string, scope = 'the workspace'): HpcflowError {
  return new HpcflowError(
    'HPCFLOW_PATH_ESCAPE',
    `symlink "${linkRel}" points to "${target}", outside ${scope}`,
    { hint: `copy the data into ${scope}, or make the link point inside it` },
  );
}

function loopError(linkRel: string): HpcflowError {
  return new HpcflowError('HPCFLOW_PATH_ESCAPE', `symlink "${linkRel}" forms a loop`);
}

/**
 * Follows the symlink at `linkAbs` (named `linkRel` in errors). Returns its real target, or
 * null when it dangles. Throws HPCFLOW_PATH_ESCAPE when the target, existing or not, lies
 * outside `wsReal` (the workspace, or a dataset directory: `scope` names it in the error), or
 * the link loops.
 */
export function followLink(wsReal: string, linkAbs: string, linkRel: string, scope?: string): string | null {
  let real: string;
  try {
    real = realpathSync.native(linkAbs);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ELOOP') throw loopError(linkRel);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    // Dangling: judge by where it would point, so a link to a not-yet-existing outside path is
    // still reported rather than silently treated as missing.
    const lexical = resolve(realpathSync.native(dirname(linkAbs)), readlinkSync(linkAbs));
    if (!isInside(wsReal, lexical)) throw escapeError(linkRel, lexical, scope);
    return null;
  }
  if (!isInside(wsReal, real)) throw escapeError(linkRel, real, scope);
  return real;
}

/** Finds the first symlinked component of `rel` that leads outside (for the error message). */
function escapingComponent(wsReal: string, rel: string, real: string): HpcflowError {
  const parts = rel.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const abs = join(wsReal, sub);
    if (lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
      const target = realpathSync.native(abs);
      if (!isInside(wsReal, target)) return escapeError(sub, target);
    }
  }
  return escapeError(rel, real);
}

/**
 * Resolves a normalised `rel` (see {@link normalizeRel}) against the real workspace, following
 * symlinks that stay inside. Sockets, FIFOs and devices are rejected: they have no content.
 */
export function resolveRel(wsReal: string, rel: string, dirMemo?: Map<string, string>): ResolvedPath {
  const abs = join(wsReal, rel);
  if (dirMemo !== undefined) {
    // Fast path for the common case, a regular file (not a link) in a directory already
    // resolved: one lstat instead of realpath + stat per file.
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(abs, { throwIfNoEntry: false });
    } catch {
      st = undefined; // ENOTDIR and friends: the slow path below classifies them
    }
    if (st?.isFile() === true) {
      const dir = dirname(abs);
      let dirReal = dirMemo.get(dir);
      if (dirReal === undefined) {
        dirReal = realpathSync.native(dir);
        dirMemo.set(dir, dirReal);
      }
      if (isInside(wsReal, dirReal)) return { kind: 'file', real: join(dirReal, basename(abs)) };
    }
  }
  let real: string;
  try {
    real = realpathSync.native(abs);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ELOOP') throw loopError(rel);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    let isLink = false;
    try {
      isLink = lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink() === true;
    } catch {
      // ENOTDIR from a file used as a directory: plainly missing.
    }
    if (isLink) followLink(wsReal, abs, rel);
    return { kind: 'missing' };
  }
  if (!isInside(wsReal, real)) throw escapingComponent(wsReal, rel, real);
  const st = statSync(real);
  if (st.isFile()) return { kind: 'file', real };
  if (st.isDirectory()) return { kind: 'dir', real };
  throw new HpcflowError('HPCFLOW_USAGE', `"${rel}" is neither a regular file nor a directory`);
}
