import { posix } from 'node:path';

/** Outcome of normalising a user-written path. */
export type NormalisedPath =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: 'absolute' | 'escape' | 'nul' };

/** How a refused path is described after it: `dep path 'x' <this>`. */
export function pathProblemText(reason: 'absolute' | 'escape' | 'nul'): string {
  return reason === 'absolute' ? 'is absolute' : reason === 'nul' ? 'contains a NUL byte' : 'leads outside the workspace';
}

/**
 * Workspace-relative POSIX form: backslashes become slashes, `.`/`..` segments are folded,
 * no leading `./`, no trailing slash; the workspace root itself is ''. Absolute paths and
 * paths that climb out of the workspace are refused, since stages run with the workspace
 * mounted and must not read or write outside it. A NUL byte is refused too: no file system
 * call accepts one.
 */
export function normaliseWorkspacePath(raw: string): NormalisedPath {
  if (raw.includes('\0')) return { ok: false, reason: 'nul' };
  const s = raw.replace(/\\/g, '/');
  if (s.startsWith('/') || /^[A-Za-z]:\//.test(s) || s.startsWith('~')) return { ok: false, reason: 'absolute' };
  const n = posix.normalize(s);
  if (n === '..' || n.startsWith('../')) return { ok: false, reason: 'escape' };
  const trimmed = n.replace(/\/+$/, '');
  return { ok: true, path: trimmed === '.' ? '' : trimmed };
}

/** True when `inner` is `outer` or lies inside the directory `outer` (both normalised). */
export function isWithin(inner: string, outer: string): boolean {
  return outer === '' || inner === outer || inner.startsWith(`${outer}/`);
}

/** `a/b/c` → [`a/b/c`, `a/b`, `a`]: the path and each ancestor, nearest first. */
export function selfAndAncestors(p: string): string[] {
  const out: string[] = [];
  let cur = p;
  while (cur !== '') {
    out.push(cur);
    const i = cur.lastIndexOf('/');
    cur = i < 0 ? '' : cur.slice(0, i);
  }
  return out;
}

/** Parent directory of a normalised path ('' for a top-level entry). */
export function parentDir(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Code-unit order, the order `Array.prototype.sort` uses without a comparator. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
