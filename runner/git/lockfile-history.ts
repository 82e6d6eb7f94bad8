import * as fs from 'node:fs';
import { relative } from 'node:path';
import git from 'isomorphic-git';

/** Every distinct text of a workspace's lockfile in the git history reachable from any ref. */
export interface LockfileHistory {
  /** Null when the workspace is not inside a git repository. */
  readonly gitRoot: string | null;
  readonly commitsScanned: number;
  /** Distinct lockfile contents (deduplicated by blob id). */
  readonly texts: readonly string[];
}

/** {@link LockfileHistory} plus the distinct texts of the `*.yaml` files of one directory. */
export interface FilesHistory extends LockfileHistory {
  readonly dirTexts: readonly string[];
}

/**
 * Walks all branches, remote-tracking branches and tags with isomorphic-git and reads the
 * lockfile at each commit, so that `gc` keeps what any version of the project refers to.
 */
export async function lockfilesInHistory(workspace: string, lockName: string): Promise<LockfileHistory> {
  const h = await filesInHistory(workspace, [lockName], null);
  return { gitRoot: h.gitRoot, commitsScanned: h.commitsScanned, texts: h.texts };
}

/**
 * Every distinct text, in the history reachable from any ref, of the workspace files named in
 * `names` and of the `*.yaml` files directly in the workspace directory `dir` (when not null).
 */
export async function filesInHistory(workspace: string, names: readonly string[], yamlDir: string | null): Promise<FilesHistory> {
  let dir: string;
  try {
    dir = await git.findRoot({ fs, filepath: workspace });
  } catch {
    return { gitRoot: null, commitsScanned: 0, texts: [], dirTexts: [] };
  }
  const rel = (name: string): string => relative(dir, `${workspace}/${name}`).split('\\').join('/');
  const filepaths = names.map(rel);
  const dirpath = yamlDir === null ? null : rel(yamlDir);
  const refs = new Set<string>();
  for (const b of await git.listBranches({ fs, dir })) refs.add(`refs/heads/${b}`);
  for (const r of await git.listRemotes({ fs, dir })) {
    for (const b of await git.listBranches({ fs, dir, remote: r.remote })) if (b !== 'HEAD') refs.add(`refs/remotes/${r.remote}/${b}`);
  }
  for (const t of await git.listTags({ fs, dir })) refs.add(`refs/tags/${t}`);
  refs.add('HEAD');
  const seenCommits = new Set<string>();
  const seenBlobs = new Set<string>();
  const texts: string[] = [];
  const dirTexts: string[] = [];
  for (const ref of refs) {
    let log: Awaited<ReturnType<typeof git.log>>;
    try {
      log = await git.log({ fs, dir, ref });
    } catch {
      continue; // unborn HEAD, or a tag of a non-commit
    }
    for (const c of log) {
      if (seenCommits.has(c.oid)) continue;
      seenCommits.add(c.oid);
      const blobs: [string, boolean][] = [];
      for (const filepath of filepaths) {
        try {
          const tree = await git.readTree({ fs, dir, oid: c.oid, filepath: filepath.split('/').slice(0, -1).join('/') || undefined });
          blobs.push([tree.tree.find((e) => e.path === filepath.split('/').pop())?.oid ?? '', false]);
        } catch {
          /* not at that commit */
        }
      }
      if (dirpath !== null) {
        try {
          for (const e of (await git.readTree({ fs, dir, oid: c.oid, filepath: dirpath })).tree) if (e.type === 'blob' && e.path.endsWith('.yaml')) blobs.push([e.oid, true]);
        } catch {
          /* no such directory at that commit */
        }
      }
      for (const [oid, inDir] of blobs) {
        if (oid === '' || seenBlobs.has(oid)) continue;
        seenBlobs.add(oid);
        const { blob } = await git.readBlob({ fs, dir, oid });
        (inDir ? dirTexts : texts).push(Buffer.from(blob).toString('utf8'));
      }
    }
  }
  return { gitRoot: dir, commitsScanned: seenCommits.size, texts, dirTexts };
}
