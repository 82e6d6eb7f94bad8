/**
 * Pushing a results commit, with retry when someone pushed first.
 *
 * On a non-fast-forward rejection the remote ref is fetched. If one of its recent commits already
 * records this run (trailer `Hpcflow-Run: <id>`), an earlier push landed and only its answer was
 * lost: nothing is pushed again. Otherwise the local results commits not on the remote are
 * re-applied onto the remote tip — the remote's tree with our files' blobs, except `hpcflow.lock`,
 * which is merged stage by stage (the remote's entries, overlaid with the entries we changed) — the
 * local ref is moved to the re-applied commit and the push is tried again, after a jittered backoff.
 *
 * The local ref always holds our results (the original commit or its re-application), so they are
 * never lost: a push that gives up says where they are and how to push them by hand. The token
 * goes only to isomorphic-git's onAuth, never into a URL, and every message is scrubbed of it.
 */
import { chmod, lstat, mkdir, readFile, readlink, rm, rmdir, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { HpcflowError } from '../errors.js';
import { LOCKFILE_NAME, parseLockfile, serializeLockfile } from '../lockfile/lockfile.js';
import { canonicalJson } from '../util/canonical-json.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { gitFs as fs } from './git-fs.js';
import { repoPath } from './repo.js';
import type { BlobEntry } from './results.js';
import { casRef, diffTrees, editTree, entryAt, fullRef, isResultsCommit, refTip, resultsIdentity, resultsRunId, treeOf } from './results.js';

export interface PushResultsOptions {
  readonly dir: string;
  /** Remote name, e.g. origin (its pushurl, else url; http(s) only). */
  readonly remote: string;
  /** The local ref just committed, e.g. refs/heads/main or refs/hpcflow/results/main. */
  readonly ref: string;
  /** The ref on the remote; default: the same name as `ref`. */
  readonly remoteRef?: string;
  /** The absolute paths the results commit holds. */
  readonly files: readonly string[];
  readonly runId: string;
  /** Sent through onAuth only (from HPCFLOW_GIT_TOKEN, read by the caller); never logged. */
  readonly token?: string;
  /** Push attempts before giving up (default 5). */
  readonly maxAttempts?: number;
  onRetry?(attempt: number, why: string): void;
}

/** How many of the remote's latest commits are searched for this run's trailer. */
const RECENT_COMMITS = 50;
/** How many unpushed local results commits are re-applied at most. */
const MAX_CHAIN = 50;
const RACE = /non-fast-forward|fetch first|failed to (update|lock)|cannot lock|stale info|incorrect old value|but expected|reference already exists/i;
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET']);

/**
 * Three-way merge of lockfile texts: the remote's (`theirs`) stage entries, with every entry we
 * changed relative to our parent (`base`) — added, modified or removed — overlaid. So two runners
 * that ran different stages both keep their entries; for a stage both ran, ours wins (it is the
 * newer run of that stage). Returns canonical lockfile text (the lockfile's own serializer). Pure.
 */
export function mergeLockfiles(base: string | null, ours: string, theirs: string | null): string {
  const o = parseLockfile(ours);
  if (theirs === null) return serializeLockfile(o);
  const b = base === null ? {} : parseLockfile(base).stages;
  const t = parseLockfile(theirs);
  const stages = { ...t.stages };
  for (const id of new Set([...Object.keys(b), ...Object.keys(o.stages)])) {
    const mine = o.stages[id];
    const before = b[id];
    if ((mine === undefined ? null : canonicalJson(mine)) === (before === undefined ? null : canonicalJson(before))) continue;
    if (mine === undefined) delete stages[id];
    else stages[id] = mine;
  }
  return serializeLockfile({ ...t, stages });
}

type Kind = 'rejected' | 'transient' | 'fatal';

/** Pushes `ref` to the remote, re-applying onto the remote's tip as often as needed (see module doc). */
export async function pushResults(o: PushResultsOptions): Promise<{ oid: string; attempts: number }> {
  const { dir } = o;
  const ref = fullRef(o.ref);
  const remoteRef = fullRef(o.remoteRef ?? o.ref);
  const max = Math.max(1, o.maxAttempts ?? 5);
  const token = o.token === '' ? undefined : o.token;
  const scrub = (s: string): string => {
    let out = s.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
    if (token !== undefined) out = out.split(token).join('***');
    return out;
  };
  let shown = o.remote;
  const auth = token === undefined ? {} : { onAuth: () => ({ username: 'x-access-token', password: token }) };
  const kept = async (): Promise<string> => {
    const oid = await refTip(dir, ref);
    return `The results commit ${oid?.slice(0, 12) ?? '(none)'} is kept locally on ${ref}; push it with: git push ${o.remote} ${ref}:${remoteRef}`;
  };
  const fail = async (why: string, cause?: unknown): Promise<never> => {
    const how = await kept();
    throw new HpcflowError('HPCFLOW_GIT', scrub(`pushing the results of run ${o.runId} to ${shown} failed: ${why}. ${how}`), {
      hint: scrub(how),
      ...(cause instanceof Error ? { cause: new Error(scrub(cause.message)) } : {}),
    });
  };
  if ((await refTip(dir, ref)) === null) throw new HpcflowError('HPCFLOW_GIT', `cannot push results: ${ref} does not exist in ${dir}`);
  let url: string;
  try {
    url = await remoteUrl(dir, o.remote);
  } catch (e) {
    return fail((e as Error).message, e);
  }
  shown = `${o.remote} (${scrub(url)})`;

  let stale = false;
  for (let attempt = 1; ; attempt++) {
    let why: string;
    try {
      if (stale) {
        const tip = await fetchTip(dir, o.remote, url, ref, remoteRef, auth);
        if (tip !== null) {
          const landed = await findRun(dir, tip, o.runId, (await refTip(dir, ref)) as string);
          if (landed !== null) return { oid: landed, attempts: attempt - 1 };
          await reapply(dir, ref, tip, o.files);
        }
        stale = false;
      }
      const local = (await refTip(dir, ref)) as string;
      await git.push({ fs, http, dir, remote: o.remote, url, ref, remoteRef, headers: {}, ...auth });
      // isomorphic-git records every pushed ref as refs/remotes/<remote>/<name minus refs/heads/>:
      // right for a branch, an odd refs/remotes/<remote>/refs/... for a results ref. Drop that one.
      if (!remoteRef.startsWith('refs/heads/')) await git.deleteRef({ fs, dir, ref: `refs/remotes/${o.remote}/${remoteRef}` }).catch(() => undefined);
      return { oid: local, attempts: attempt };
    } catch (e) {
      const c = classify(e, token !== undefined);
      if (c.kind === 'fatal') return fail(c.why, e);
      if (c.kind === 'rejected') stale = true;
      why = scrub(c.why);
    }
    if (attempt >= max) return fail(`gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} (last: ${why})`);
    o.onRetry?.(attempt, why);
    await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** (attempt - 1)) * (0.5 + Math.random())));
  }
}

/** The push URL of a remote (pushurl, else url); http(s) only, as isomorphic-git speaks nothing else. */
async function remoteUrl(dir: string, remote: string): Promise<string> {
  const get = async (path: string): Promise<string | undefined> => {
    const v = (await git.getConfig({ fs, dir, path })) as unknown;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const url = (await get(`remote.${remote}.pushurl`)) ?? (await get(`remote.${remote}.url`));
  if (url === undefined) throw new HpcflowError('HPCFLOW_GIT', `no git remote named '${remote}' in ${dir}`, { hint: 'git remote -v lists the remotes' });
  if (!/^https?:\/\//i.test(url)) {
    throw new HpcflowError('HPCFLOW_GIT', `remote '${remote}' is not an http(s) URL: hpcflow pushes over HTTPS only`, {
      hint: `set an https push URL: git remote set-url --push ${remote} https://...`,
    });
  }
  return url;
}

function classify(e: unknown, withToken: boolean): { kind: Kind; why: string } {
  if (e instanceof HpcflowError) return { kind: 'fatal', why: e.hint === undefined ? e.message : `${e.message} (${e.hint})` };
  const err = e as { code?: string; message?: string; data?: Record<string, unknown> };
  const msg = err.message ?? String(e);
  switch (err.code) {
    case 'PushRejectedError':
      return err.data?.reason === 'not-fast-forward' ? { kind: 'rejected', why: 'the remote has commits this clone does not (non-fast-forward)' } : { kind: 'fatal', why: msg };
    case 'GitPushError': {
      const details = String(err.data?.prettyDetails ?? msg).trim();
      return RACE.test(details) ? { kind: 'rejected', why: `the remote refused the update (${details})` } : { kind: 'fatal', why: `the remote refused the update: ${details}` };
    }
    case 'HttpError': {
      const status = Number(err.data?.statusCode);
      if (status === 401 || status === 403) {
        return { kind: 'fatal', why: `authentication failed (HTTP ${status}): ${withToken ? 'the token in HPCFLOW_GIT_TOKEN was refused or lacks write access' : 'no token given; set HPCFLOW_GIT_TOKEN'}` };
      }
      if (status === 408 || status === 429 || status >= 500) return { kind: 'transient', why: `HTTP ${status}` };
      return { kind: 'fatal', why: msg };
    }
    case 'UserCanceledError':
      return { kind: 'fatal', why: 'authentication failed (credentials refused)' };
    case 'EmptyServerResponseError':
    case 'ParseError':
      return { kind: 'transient', why: msg };
  }
  if ((err.code !== undefined && NETWORK.has(err.code)) || /socket hang up|network|timed? ?out/i.test(msg)) return { kind: 'transient', why: `network error: ${msg}` };
  return { kind: 'fatal', why: msg };
}

/** Fetches the remote ref; its tip, or null when the remote does not have it. */
async function fetchTip(dir: string, remote: string, url: string, ref: string, remoteRef: string, auth: object): Promise<string | null> {
  try {
    const r = await git.fetch({ fs, http, dir, remote, url, ref, remoteRef, singleBranch: true, tags: false, headers: {}, ...auth });
    return r.fetchHead;
  } catch (e) {
    if ((e as { code?: string }).code === 'NotFoundError') return null;
    throw e;
  }
}

/** A commit among the remote's recent ones that records `runId` (or is `local` itself), or null. */
async function findRun(dir: string, tip: string, runId: string, local: string): Promise<string | null> {
  const queue = [tip];
  const seen = new Set<string>();
  while (queue.length > 0 && seen.size < RECENT_COMMITS) {
    const oid = queue.shift() as string;
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (oid === local) return oid;
    let c;
    try {
      c = (await git.readCommit({ fs, dir, oid })).commit;
    } catch {
      continue; // beyond a shallow boundary
    }
    if (resultsRunId(c.message) === runId) return oid;
    queue.push(...c.parent);
  }
  return null;
}

/** `tip` and its ancestors, breadth first, at most `limit` (stopping at a shallow boundary). */
async function ancestors(dir: string, tip: string, limit: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [tip];
  while (queue.length > 0 && seen.size < limit) {
    const oid = queue.shift() as string;
    if (seen.has(oid)) continue;
    seen.add(oid);
    try {
      queue.push(...(await git.readCommit({ fs, dir, oid })).commit.parent);
    } catch {
      /* not here: beyond a shallow boundary */
    }
  }
  return seen;
}

const sameEntry = (a: BlobEntry | null, b: BlobEntry | null): boolean => (a === null ? b === null : b !== null && a.oid === b.oid && a.mode === b.mode);

async function blobText(dir: string, e: BlobEntry | null): Promise<string | null> {
  return e === null ? null : Buffer.from((await git.readBlob({ fs, dir, oid: e.oid })).blob).toString('utf8');
}

/**
 * Re-applies the local results commits that the remote does not have onto `tip` and moves `ref`
 * to the result (compare-and-swap). In branch mode (ref checked out) the index and working tree
 * follow, for the paths that differ between the old and the new local commit.
 */
async function reapply(dir: string, ref: string, tip: string, files: readonly string[]): Promise<void> {
  const local = (await refTip(dir, ref)) as string;
  const checkedOut = (await git.currentBranch({ fs, dir, fullname: true }).catch(() => undefined)) === ref;
  // Where our history joins the remote's; if that cannot be computed (e.g. a shallow clone), the
  // remote tip's recent ancestors stand in, so nothing already on the remote is applied twice.
  let bases = new Set<string>(await git.findMergeBase({ fs, dir, oids: [local, tip] }).catch(() => []));
  if (bases.size === 0) bases = await ancestors(dir, tip, 2000);
  const chain: string[] = [];
  for (let cur: string | undefined = local; cur !== undefined && !bases.has(cur) && chain.length < MAX_CHAIN; ) {
    const { commit } = await git.readCommit({ fs, dir, oid: cur });
    if (!isResultsCommit(commit.message)) {
      if (checkedOut) {
        throw new HpcflowError('HPCFLOW_GIT', `${ref} has a commit of its own that the remote does not have (${cur.slice(0, 12)} "${commit.message.split('\n')[0] ?? ''}"), so the results cannot be re-applied automatically`, {
          hint: 'git pull --rebase, then git push',
        });
      }
      break; // a results ref's base (the input commit): replaced by the remote tip
    }
    chain.push(cur);
    cur = commit.parent[0];
  }
  if (chain.length === 0) throw new HpcflowError('HPCFLOW_GIT', `the tip of ${ref} (${local.slice(0, 12)}) is not a results commit: nothing to re-apply`);
  chain.reverse();
  const who = await resultsIdentity(dir);
  let next = tip;
  for (const [k, oid] of chain.entries()) {
    const { commit } = await git.readCommit({ fs, dir, oid });
    const parentTree = await treeOf(dir, commit.parent[0] ?? null);
    const nextTree = (await treeOf(dir, next)) as string;
    // Our changes: for the commit being pushed, our files; for older unpushed ones, what they changed.
    const paths = k === chain.length - 1 && files.length > 0 ? files.map((f) => repoPath(dir, f)) : await diffTrees(dir, parentTree, commit.tree);
    const edits = new Map<string, BlobEntry | null>();
    for (const p of paths) {
      const ours = await entryAt(dir, commit.tree, p);
      const base = await entryAt(dir, parentTree, p);
      if (sameEntry(ours, base)) continue;
      if (basename(p) === LOCKFILE_NAME && ours !== null && ours.mode !== '120000') {
        const merged = mergeLockfiles(await blobText(dir, base), (await blobText(dir, ours)) as string, await blobText(dir, await entryAt(dir, nextTree, p)));
        edits.set(p, { oid: await git.writeBlob({ fs, dir, blob: Buffer.from(merged) }), mode: ours.mode });
      } else edits.set(p, ours);
    }
    const tree = await editTree(dir, nextTree, edits);
    next = await git.writeCommit({ fs, dir, commit: { message: commit.message, tree, parent: [next], author: commit.author, committer: who } });
  }
  await casRef(dir, ref, next, local, `hpcflow: results re-applied onto the remote's ${tip.slice(0, 12)}`, who);
  if (checkedOut) {
    try {
      await syncWorktree(dir, await treeOf(dir, local), await treeOf(dir, next));
    } catch (e) {
      throw new HpcflowError('HPCFLOW_GIT', `results re-applied as ${next} on ${ref}, but the working tree could not be updated: ${(e as Error).message}`, {
        hint: 'inspect git status; git checkout -- <path> restores a file from the new commit',
        cause: e,
      });
    }
  }
}

/** The working-tree content at `abs` as a blob id (not written), null when missing, '' when not a file. */
async function workingBlob(abs: string): Promise<string | null> {
  const st = await lstat(abs).catch(() => null);
  if (st === null) return null;
  if (st.isSymbolicLink()) return (await git.hashBlob({ object: Buffer.from(await readlink(abs)) })).oid;
  if (!st.isFile()) return '';
  return (await git.hashBlob({ object: await readFile(abs) })).oid;
}

/**
 * Brings the index and working tree from `oldTree` to `newTree` for the paths that differ, leaving
 * local modifications alone: a file whose working content is neither the old nor the new version
 * keeps its content (its index entry follows the new commit, so the change shows as unstaged).
 */
async function syncWorktree(dir: string, oldTree: string | null, newTree: string | null): Promise<void> {
  const toAdd: string[] = [];
  for (const p of await diffTrees(dir, oldTree, newTree)) {
    const before = await entryAt(dir, oldTree, p);
    const after = await entryAt(dir, newTree, p);
    if (before?.mode === '160000' || after?.mode === '160000') continue; // submodules: not ours to touch
    const abs = join(dir, p);
    const wt = await workingBlob(abs);
    const untouched = wt === (before?.oid ?? null) || wt === (after?.oid ?? null);
    if (!untouched) {
      if (after === null) await git.remove({ fs, dir, filepath: p });
      else await git.updateIndex({ fs, dir, filepath: p, oid: after.oid, mode: Number.parseInt(after.mode, 8), add: true });
      continue;
    }
    if (after === null) {
      await rm(abs, { force: true });
      for (let d = dirname(abs); d.length > dir.length; d = dirname(d)) if (!(await rmdir(d).then(() => true, () => false))) break;
      await git.remove({ fs, dir, filepath: p });
      continue;
    }
    const { blob } = await git.readBlob({ fs, dir, oid: after.oid });
    await mkdir(dirname(abs), { recursive: true });
    if (after.mode === '120000') {
      await rm(abs, { force: true });
      await symlink(Buffer.from(blob).toString('utf8'), abs);
    } else {
      const st = await lstat(abs).catch(() => null);
      if (st?.isSymbolicLink()) await rm(abs);
      // Whole or not at all: a kill here must not leave a truncated lockfile in the checkout.
      await writeFileAtomic(abs, blob);
      const mode = (await lstat(abs)).mode & 0o777;
      const want = after.mode === '100755' ? mode | ((mode & 0o444) >> 2) : mode & ~0o111;
      if (want !== mode) await chmod(abs, want);
    }
    toAdd.push(p);
  }
  if (toAdd.length > 0) await git.add({ fs, dir, filepath: toAdd, force: true });
}
