/**
 * The git operations hpcflow needs on the user's repository, through isomorphic-git (no git
 * binary needed on compute nodes, no shell quoting). Commits made here contain *only* the
 * named files: anything else the user has staged stays staged and uncommitted, as with
 * `git commit --only <paths>`.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { inflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import { HpcflowError } from '../errors.js';
import { gitFs as fs } from './git-fs.js';

/** The repository containing `path`, or null. */
export async function findGitRoot(path: string): Promise<string | null> {
  try {
    return await git.findRoot({ fs, filepath: path });
  } catch {
    return null;
  }
}

/** `abs` as a repository path (POSIX, relative to the git root). */
export const repoPath = (gitRoot: string, abs: string): string => relative(gitRoot, abs).split('\\').join('/');

/**
 * Resolves a revision: a full or abbreviated commit id, a branch, a tag, or HEAD. Annotated
 * tags are peeled to their commit. Returns null when nothing matches.
 */
export async function resolveRev(dir: string, rev: string): Promise<string | null> {
  // `HEAD~2`, `main^`: resolve the base, then follow first parents.
  const m = /^(.+?)((?:~\d*|\^)+)$/.exec(rev);
  if (m !== null) {
    let oid = await resolveRev(dir, m[1] as string);
    for (const step of (m[2] as string).match(/~\d*|\^/g) ?? []) {
      const n = step === '^' || step === '~' ? 1 : Number(step.slice(1));
      for (let i = 0; i < n && oid !== null; i++) oid = (await git.readCommit({ fs, dir, oid })).commit.parent[0] ?? null;
    }
    return oid;
  }
  const peel = async (oid: string): Promise<string> => {
    for (let i = 0; i < 10; i++) {
      const o = await git.readObject({ fs, dir, oid, format: 'parsed' });
      if (o.type !== 'tag') return oid;
      oid = (o.object as { object: string }).object;
    }
    return oid;
  };
  for (const ref of [rev, `refs/tags/${rev}`, `refs/heads/${rev}`]) {
    try {
      return await peel(await git.resolveRef({ fs, dir, ref }));
    } catch {
      /* try the next form */
    }
  }
  if (/^[0-9a-f]{4,40}$/.test(rev)) {
    try {
      return await peel(await git.expandOid({ fs, dir, oid: rev }));
    } catch {
      return null;
    }
  }
  return null;
}

/** The text of `filepath` (repository path) at commit `oid`, or null if it is not there. */
export async function readFileAt(dir: string, oid: string, filepath: string): Promise<string | null> {
  try {
    // A loose object is inflated here, in one piece: isomorphic-git's readBlob makes four copies
    // of it on the way, which for a dataset version of a million files is 400 MB. (A packed
    // object comes back as content; either way the type is checked.)
    const r = await git.readObject({ fs, dir, oid, filepath, format: 'deflated' });
    const raw = r.object as Uint8Array;
    if (r.format === 'content') return r.type === 'blob' ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8') : null;
    const wrapped = r.format === 'deflated' ? inflateSync(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const nul = wrapped.indexOf(0);
    if (nul === -1 || !wrapped.subarray(0, nul).toString('latin1').startsWith('blob ')) return null;
    return wrapped.toString('utf8', nul + 1);
  } catch {
    return null;
  }
}

/** One commit that changed a file, newest first. */
export interface FileCommit {
  readonly oid: string;
  readonly message: string;
  readonly author: string;
  /** Seconds since the epoch. */
  readonly timestamp: number;
  /** The file's text at this commit (null: deleted here). */
  readonly text: string | null;
}

/**
 * The commits reachable from HEAD that changed `filepath`, newest first (first-parent order is
 * not enforced: merges that brought a change in are listed, as `git log -- path` does).
 */
export async function fileHistory(dir: string, filepath: string, limit = 1000): Promise<FileCommit[]> {
  let log: Awaited<ReturnType<typeof git.log>>;
  try {
    log = await git.log({ fs, dir, ref: 'HEAD' });
  } catch {
    return []; // unborn HEAD
  }
  const out: FileCommit[] = [];
  // The blob id from the parent directory's tree, without reading the blob: readBlob would
  // inflate the whole file twice per commit (a million-file dataset version is 100 MB).
  const slash = filepath.lastIndexOf('/');
  const parentDir = slash === -1 ? null : filepath.slice(0, slash);
  const name = filepath.slice(slash + 1);
  const blobAt = async (oid: string): Promise<string | null> => {
    try {
      const { tree } = await git.readTree({ fs, dir, oid, ...(parentDir === null ? {} : { filepath: parentDir }) });
      return tree.find((e) => e.path === name && e.type === 'blob')?.oid ?? null;
    } catch {
      return null;
    }
  };
  for (const c of log) {
    const here = await blobAt(c.oid);
    const parents = c.commit.parent;
    const before = parents.length === 0 ? [null] : await Promise.all(parents.map(blobAt));
    // Changed relative to every parent (a merge that took one side unchanged is not a change).
    if (before.every((b) => b !== here)) {
      out.push({
        oid: c.oid,
        message: c.commit.message.trim(),
        author: c.commit.author.name,
        timestamp: c.commit.author.timestamp,
        text: here === null ? null : await readFileAt(dir, c.oid, filepath),
      });
      if (out.length >= limit) break;
    }
  }
  return out;
}

/** Author/committer for commits hpcflow makes: git config, then the GIT_* environment, then a default. */
async function identity(dir: string, env: NodeJS.ProcessEnv): Promise<{ name: string; email: string }> {
  const name = env.GIT_AUTHOR_NAME ?? ((await git.getConfig({ fs, dir, path: 'user.name' })) as string | undefined) ?? 'hpcflow';
  const email = env.GIT_AUTHOR_EMAIL ?? ((await git.getConfig({ fs, dir, path: 'user.email' })) as string | undefined) ?? 'hpcflow@localhost';
  return { name, email };
}

type TreeEntry = Awaited<ReturnType<typeof git.readTree>>['tree'][number];

/** Writes a tree equal to `baseTree` (or empty) with the blob at `parts` replaced; returns its id. */
async function replaceInTree(dir: string, baseTree: string | null, parts: readonly string[], blob: string): Promise<string> {
  const entries: TreeEntry[] = baseTree === null ? [] : [...(await git.readTree({ fs, dir, oid: baseTree })).tree];
  const [head, ...rest] = parts as [string, ...string[]];
  const i = entries.findIndex((e) => e.path === head);
  const existing = i === -1 ? undefined : entries[i];
  let entry: TreeEntry;
  if (rest.length === 0) {
    entry = { mode: '100644', path: head, oid: blob, type: 'blob' };
  } else {
    const sub = existing?.type === 'tree' ? existing.oid : null;
    entry = { mode: '040000', path: head, oid: await replaceInTree(dir, sub, rest, blob), type: 'tree' };
  }
  if (i === -1) entries.push(entry);
  else entries[i] = entry;
  return git.writeTree({ fs, dir, tree: entries });
}

/**
 * Commits the current content of `files` (absolute paths inside the repository) on the current
 * branch, and only them: the new tree is HEAD's tree with these blobs replaced, and the index
 * entries of these files are updated to match. Returns the commit id, or null when the files
 * are already committed as they are.
 */
export async function commitFiles(dir: string, files: readonly string[], message: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  let parent: string | null;
  try {
    parent = await git.resolveRef({ fs, dir, ref: 'HEAD' });
  } catch {
    parent = null; // first commit of the repository
  }
  let tree: string | null = parent === null ? null : (await git.readCommit({ fs, dir, oid: parent })).commit.tree;
  const before = tree;
  for (const abs of files) {
    const path = repoPath(dir, abs);
    if (path.startsWith('..')) throw new HpcflowError('HPCFLOW_GIT', `${abs} is outside the git repository ${dir}`);
    const blob = await git.writeBlob({ fs, dir, blob: readFileSync(abs) });
    tree = await replaceInTree(dir, tree, path.split('/'), blob);
  }
  if (tree === before) return null;
  const who = await identity(dir, env);
  const oid = await git.commit({
    fs,
    dir,
    message,
    author: who,
    committer: who,
    tree: tree as string,
    parent: parent === null ? [] : [parent],
  });
  for (const abs of files) await git.add({ fs, dir, filepath: repoPath(dir, abs) });
  return oid;
}

/** Creates a lightweight tag; an existing tag with the same name is an error unless `force`. */
export async function createTag(dir: string, name: string, oid: string, force = false): Promise<void> {
  try {
    await git.tag({ fs, dir, ref: name, object: oid, force });
  } catch (e) {
    if ((e as { code?: string }).code === 'AlreadyExistsError') {
      throw new HpcflowError('HPCFLOW_USAGE', `tag ${name} already exists`, { hint: 'choose another name, or pass --force to move it' });
    }
    throw e;
  }
}

/** Tags whose name starts with `prefix`, with the commit each points to. */
export async function listTags(dir: string, prefix: string): Promise<{ name: string; oid: string }[]> {
  const out: { name: string; oid: string }[] = [];
  for (const t of await git.listTags({ fs, dir })) {
    if (!t.startsWith(prefix)) continue;
    const oid = await resolveRev(dir, `refs/tags/${t}`);
    if (oid !== null) out.push({ name: t, oid });
  }
  return out;
}
