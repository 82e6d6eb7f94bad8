/**
 * Results commits: after a run, the files hpcflow wrote (lockfile, run record, metrics, small
 * outputs, dataset manifests) are committed — and only they — either on top of the checked-out
 * branch or onto a separate results ref, with trailers naming the run and its input commit.
 *
 * The commit is O(files × depth), never O(checkout): the new tree is the parent's tree with just
 * these blobs replaced (only the trees on their paths are read and rewritten); no whole-tree status
 * or walk. In branch mode only these paths' index entries change, but isomorphic-git reads and
 * rewrites the whole index file to do it — that part grows with the checkout (bench: 48 ms at
 * 10,000 files, 480 ms at 100,000). Results-ref mode touches no index: ~30–40 ms at any size.
 *
 * Atomicity: blobs, trees and the commit are written first (unreferenced objects are harmless;
 * every file isomorphic-git writes is written whole or not at all, see git-fs.ts); the ref moves
 * last, in one compare-and-swap (`<ref>.lock` created exclusively, checked, renamed over the ref,
 * as git itself does), so a failure — or a SIGKILL — part-way leaves every ref where it was or
 * on the complete new commit. In branch mode the index follows the ref: a process killed between
 * the two leaves the results committed and their index entries at the previous commit's blobs
 * (`git status` shows them staged back; `git reset -- <paths>` or the next results commit of those
 * paths aligns them), as `git commit` killed at that point does.
 *
 * Pushing with retry lives in push.ts and is re-exported here.
 */
import { constants as fsConstants, existsSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { appendFile, copyFile, link, lstat, mkdir, open, readdir, readFile, readlink, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import git from 'isomorphic-git';
import { HpcflowError } from '../errors.js';
import { gitFs as fs, gitTempPath } from './git-fs.js';
import { repoPath } from './repo.js';

export { mergeLockfiles, pushResults } from './push.js';
export type { PushResultsOptions } from './push.js';

import { resultsMessage } from './trailers.js';

export { INPUT_TRAILER, isResultsCommit, parseTrailers, RESULTS_TRAILER, resultsMessage, resultsRunId } from './trailers.js';

export interface ResultsCommitInput {
  /** Repository root. */
  readonly dir: string;
  /** Absolute paths hpcflow wrote this run; only these are committed (a missing one is removed). */
  readonly files: readonly string[];
  readonly runId: string;
  /** The commit whose pipeline ran. */
  readonly inputCommit: string;
  /** First line of the message, e.g. "hpcflow: 3 ran, 2 up to date (run <id>)". */
  readonly summary: string;
  readonly target: { readonly kind: 'branch' } | { readonly kind: 'ref'; readonly ref: string };
  /** Author identity: HPCFLOW_GIT_AUTHOR_NAME/EMAIL, else git config, else "hpcflow". */
  readonly env?: NodeJS.ProcessEnv;
}

/** A tree entry to write at a path; null in an edit map removes the path. */
export interface BlobEntry {
  readonly oid: string;
  readonly mode: string;
}

type TreeEntry = Awaited<ReturnType<typeof git.readTree>>['tree'][number];

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** `refs/...` as given; anything else names a branch. */
export const fullRef = (ref: string): string => (ref.startsWith('refs/') ? ref : `refs/heads/${ref}`);

/** Author/committer: HPCFLOW_GIT_AUTHOR_NAME/EMAIL, else git config user.*, else hpcflow. */
export async function resultsIdentity(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<{ name: string; email: string; timestamp: number; timezoneOffset: number }> {
  const cfg = async (path: string): Promise<string | undefined> => {
    const v = (await git.getConfig({ fs, dir, path })) as unknown;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const name = nonEmpty(env.HPCFLOW_GIT_AUTHOR_NAME) ?? (await cfg('user.name')) ?? 'hpcflow';
  const email = nonEmpty(env.HPCFLOW_GIT_AUTHOR_EMAIL) ?? (await cfg('user.email')) ?? 'hpcflow@localhost';
  return { name, email, timestamp: Math.floor(Date.now() / 1000), timezoneOffset: new Date().getTimezoneOffset() };
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** The commit `ref` points to, or null when it does not exist. */
export async function refTip(dir: string, ref: string): Promise<string | null> {
  try {
    return await git.resolveRef({ fs, dir, ref });
  } catch {
    return null;
  }
}

export async function treeOf(dir: string, commit: string | null): Promise<string | null> {
  return commit === null ? null : (await git.readCommit({ fs, dir, oid: commit })).commit.tree;
}

/** The blob (or link/submodule) entry at `path` in `tree`, or null. Reads only the trees on the path. */
export async function entryAt(dir: string, tree: string | null, path: string): Promise<BlobEntry | null> {
  let cur = tree;
  const parts = path.split('/');
  for (let i = 0; i < parts.length && cur !== null; i++) {
    const e = (await git.readTree({ fs, dir, oid: cur })).tree.find((x) => x.path === parts[i]);
    if (e === undefined) return null;
    if (i === parts.length - 1) return e.type === 'tree' ? null : { oid: e.oid, mode: e.mode };
    cur = e.type === 'tree' ? e.oid : null;
  }
  return null;
}

/**
 * Writes the tree equal to `base` (null: empty) with each path of `edits` set to its entry, or
 * removed when the entry is null. Only the trees along the edited paths are read and written;
 * trees left empty are dropped. Returns the new root tree id (EMPTY_TREE when nothing is left).
 */
export async function editTree(dir: string, base: string | null, edits: ReadonlyMap<string, BlobEntry | null>): Promise<string> {
  const entries = new Map<string, TreeEntry>();
  if (base !== null) for (const e of (await git.readTree({ fs, dir, oid: base })).tree) entries.set(e.path, e);
  const below = new Map<string, Map<string, BlobEntry | null>>();
  for (const [path, edit] of edits) {
    const i = path.indexOf('/');
    if (i === -1) {
      if (edit === null) entries.delete(path);
      else entries.set(path, { mode: edit.mode, path, oid: edit.oid, type: edit.mode === '160000' ? 'commit' : 'blob' });
    } else {
      const head = path.slice(0, i);
      const sub = below.get(head) ?? new Map<string, BlobEntry | null>();
      sub.set(path.slice(i + 1), edit);
      below.set(head, sub);
    }
  }
  for (const [head, sub] of below) {
    const existing = entries.get(head);
    const oid = await editTree(dir, existing?.type === 'tree' ? existing.oid : null, sub);
    if (oid === EMPTY_TREE) entries.delete(head);
    else entries.set(head, { mode: '040000', path: head, oid, type: 'tree' });
  }
  if (entries.size === 0) return EMPTY_TREE;
  return git.writeTree({ fs, dir, tree: [...entries.values()] });
}

/**
 * The paths (files, links, submodules) whose entries differ between trees `a` and `b`; descends
 * only into subtrees whose ids differ, so unchanged parts of a large checkout cost nothing.
 */
export async function diffTrees(dir: string, a: string | null, b: string | null, prefix = ''): Promise<string[]> {
  if (a === b) return [];
  const read = async (t: string | null): Promise<Map<string, TreeEntry>> =>
    new Map(t === null ? [] : (await git.readTree({ fs, dir, oid: t })).tree.map((e) => [e.path, e] as const));
  const [ma, mb] = await Promise.all([read(a), read(b)]);
  const out: string[] = [];
  for (const name of new Set([...ma.keys(), ...mb.keys()])) {
    const x = ma.get(name);
    const y = mb.get(name);
    if (x !== undefined && y !== undefined && x.oid === y.oid && x.mode === y.mode) continue;
    const xt = x?.type === 'tree' ? x.oid : null;
    const yt = y?.type === 'tree' ? y.oid : null;
    if (xt !== null || yt !== null) out.push(...(await diffTrees(dir, xt, yt, `${prefix}${name}/`)));
    if ((x !== undefined && x.type !== 'tree') || (y !== undefined && y.type !== 'tree')) out.push(`${prefix}${name}`);
  }
  return out;
}

/** The working-tree file at `abs` as a blob written to the object store; null when it is missing. */
async function blobOfFile(dir: string, abs: string): Promise<BlobEntry | null> {
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (st.isSymbolicLink()) return { oid: await git.writeBlob({ fs, dir, blob: Buffer.from(await readlink(abs)) }), mode: '120000' };
  if (!st.isFile()) throw new HpcflowError('HPCFLOW_GIT', `${abs} is not a regular file: results commits hold files only`);
  return { oid: await git.writeBlob({ fs, dir, blob: await readFile(abs) }), mode: st.mode & 0o111 ? '100755' : '100644' };
}

/** Repository path → blob of its current content (null: missing), for absolute `files` inside `dir`. */
async function blobsOf(dir: string, files: readonly string[]): Promise<Map<string, BlobEntry | null>> {
  const edits = new Map<string, BlobEntry | null>();
  for (const abs of files) {
    const path = repoPath(dir, abs);
    if (path === '' || path.startsWith('../') || path === '..' || path.startsWith('/') || path.split('/')[0] === '.git') {
      throw new HpcflowError('HPCFLOW_GIT', `${abs} is outside the git repository ${dir}`, { hint: 'results commits hold files of the repository only' });
    }
    edits.set(path, await blobOfFile(dir, abs));
  }
  return edits;
}

/** The git directory of the checkout `dir` (`.git`, or where a `.git` file points). */
export async function gitdirOf(dir: string): Promise<string> {
  const dotgit = join(dir, '.git');
  const st = await lstat(dotgit).catch(() => null);
  if (st?.isFile()) {
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(await readFile(dotgit, 'utf8'));
    if (m !== null) return isAbsolute(m[1] as string) ? (m[1] as string) : join(dir, m[1] as string);
  }
  return dotgit;
}

/** How long a ref lock held by a live process (a git command) is waited for. */
const REF_LOCK_WAIT_MS = 1_000;

/**
 * `link(tmp, lock)`: creates the lock with its content. A lock held by a live process is waited
 * for briefly, then reported; a lock left by an hpcflow that died holding it is taken over: that
 * one still has a second name, the dead process's temp file (`.<ref>.tmp-<pid>-…`, same inode).
 */
async function takeLock(tmp: string, lock: string, ref: string): Promise<void> {
  const deadline = Date.now() + REF_LOCK_WAIT_MS;
  for (;;) {
    try {
      await link(tmp, lock);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A filesystem without hard links: an exclusive copy (the lock exists briefly half-written).
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        try {
          await copyFile(tmp, lock, fsConstants.COPYFILE_EXCL);
          return;
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
        }
      } else if (code !== 'EEXIST') throw e;
    }
    if (await removeDeadLock(lock)) continue;
    if (Date.now() > deadline) {
      throw new HpcflowError('HPCFLOW_GIT', `${ref} is locked by another git process (${lock} exists)`, { hint: `if no git process is running, remove ${lock}` });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Removes `lock` if an hpcflow process that is gone left it (see takeLock). True when it did. */
async function removeDeadLock(lock: string): Promise<boolean> {
  const st = await lstat(lock).catch(() => null);
  if (st === null) return true; // released meanwhile: try again
  if (st.nlink < 2) return false;
  const dir = dirname(lock);
  const base = basename(lock).slice(0, -'.lock'.length);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^\.(.+)\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    if (m === null || m[1] !== base || processAlive(Number(m[2]))) continue;
    const other = join(dir, name);
    if ((await lstat(other).catch(() => null))?.ino !== st.ino) continue;
    // Moved aside first: a lock another process took meanwhile is recognised and given back.
    const grave = `${other}.stale`;
    if (await rename(lock, grave).then(() => true, () => false)) {
      if ((await lstat(grave).catch(() => null))?.ino !== st.ino) await link(grave, lock).catch(() => undefined);
      await rm(grave, { force: true });
    }
    await rm(other, { force: true });
    return true;
  }
  return false;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves `ref` to `oid` if it still points to `expected` (null: must not exist), atomically.
 * The new value is written (and fsynced) to a temp file, which is hard-linked as `<ref>.lock` —
 * an exclusive create, so a concurrent git or hpcflow fails rather than races, and the lock never
 * exists half-written; the current value is checked under the lock, and the lock is renamed over
 * the ref. The temp name goes last: while it exists it says which process holds the lock, so a
 * lock left by a killed hpcflow is taken over by the next one (git's own locks are respected).
 * Appends a reflog line when the ref (or HEAD, if it points there) keeps a reflog.
 */
export async function casRef(dir: string, ref: string, oid: string, expected: string | null, reason: string, who?: { name: string; email: string }): Promise<void> {
  const gitdir = await gitdirOf(dir);
  const path = join(gitdir, ref);
  const lock = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true });
  const tmp = gitTempPath(path);
  try {
    const fh = await open(tmp, 'wx', 0o666);
    try {
      await fh.writeFile(`${oid}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await takeLock(tmp, lock, ref);
    try {
      const current = await refTip(dir, ref);
      if (current !== expected) {
        throw new HpcflowError('HPCFLOW_GIT', `${ref} moved while hpcflow was committing (now ${current ?? 'absent'}, expected ${expected ?? 'absent'}); nothing was changed`);
      }
      await rename(lock, path);
    } catch (e) {
      await rm(lock, { force: true });
      throw e;
    }
  } finally {
    await rm(tmp, { force: true });
  }
  if (who !== undefined) {
    const tz = -new Date().getTimezoneOffset();
    const line = `${expected ?? '0'.repeat(40)} ${oid} ${who.name} <${who.email}> ${Math.floor(Date.now() / 1000)} ${tz < 0 ? '-' : '+'}${String(Math.floor(Math.abs(tz) / 60)).padStart(2, '0')}${String(Math.abs(tz) % 60).padStart(2, '0')}\t${reason}\n`;
    const logs = [join(gitdir, 'logs', ref)];
    if ((await git.currentBranch({ fs, dir, fullname: true }).catch(() => undefined)) === ref) logs.push(join(gitdir, 'logs', 'HEAD'));
    for (const log of logs) {
      // Only where git keeps a reflog already (or for branches, which it logs by default).
      if (existsSync(log) || (log.endsWith(ref) && ref.startsWith('refs/heads/'))) {
        await mkdir(dirname(log), { recursive: true });
        await appendFile(log, line).catch(() => undefined);
      }
    }
  }
}

/**
 * Sets the index entries of `paths` to the working tree's files (hashing only these files), or
 * removes the entries of paths that no longer exist. The index is read and written once.
 */
export async function refreshIndex(dir: string, paths: readonly string[]): Promise<void> {
  const present: string[] = [];
  for (const p of paths) {
    if ((await lstat(join(dir, p)).catch(() => null)) === null) await git.remove({ fs, dir, filepath: p });
    else present.push(p);
  }
  if (present.length > 0) await git.add({ fs, dir, filepath: present, force: true });
}

/** Commits the run's results; null when the files are already committed as they are. */
export async function commitResults(i: ResultsCommitInput): Promise<{ oid: string; ref: string } | null> {
  const { dir } = i;
  if (!/^[^\s]+$/.test(i.runId)) throw new HpcflowError('HPCFLOW_GIT', `run id '${i.runId}' cannot be a commit trailer (it must be one word)`);
  const headBranch = (await git.currentBranch({ fs, dir, fullname: true }).catch(() => undefined)) ?? null;
  let ref: string;
  let tip: string | null;
  let parent: string | null;
  if (i.target.kind === 'branch') {
    if (headBranch === null) {
      throw new HpcflowError('HPCFLOW_GIT', `cannot commit results on the branch: HEAD of ${dir} is detached`, {
        hint: 'check out a branch, or set results.ref in hpcflow.yaml to commit onto a results ref instead',
      });
    }
    ref = headBranch;
    tip = await refTip(dir, ref);
    parent = tip;
  } else {
    ref = fullRef(i.target.ref);
    if (ref === headBranch) {
      throw new HpcflowError('HPCFLOW_GIT', `results ref ${ref} is the checked-out branch`, { hint: 'use the branch target (no results.ref) to commit on the checked-out branch, or name another ref' });
    }
    tip = await refTip(dir, ref);
    parent = tip;
    if (parent === null) {
      try {
        parent = (await git.readCommit({ fs, dir, oid: i.inputCommit })).oid;
      } catch (e) {
        throw new HpcflowError('HPCFLOW_GIT', `input commit ${i.inputCommit} is not in ${dir}`, { cause: e });
      }
    }
  }
  const base = await treeOf(dir, parent);
  const edits = await blobsOf(dir, i.files);
  const tree = await editTree(dir, base, edits);
  if (tree === (base ?? EMPTY_TREE)) return null;
  const who = await resultsIdentity(dir, i.env ?? process.env);
  const message = resultsMessage(i.summary, i.runId, i.inputCommit);
  const oid = await git.writeCommit({ fs, dir, commit: { message, tree, parent: parent === null ? [] : [parent], author: who, committer: who } });
  await casRef(dir, ref, oid, tip, `commit: ${message.split('\n')[0] ?? ''}`, who);
  if (i.target.kind === 'branch') {
    try {
      await refreshIndex(dir, [...edits.keys()]);
    } catch (e) {
      throw new HpcflowError('HPCFLOW_GIT', `results committed as ${oid} on ${ref}, but the index could not be updated: ${(e as Error).message}`, {
        hint: `git reset -- ${[...edits.keys()].join(' ')}`,
        cause: e,
      });
    }
  }
  return { oid, ref };
}
