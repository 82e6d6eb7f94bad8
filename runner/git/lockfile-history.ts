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

/**
 * Walks all branches, remote-tracking branches and tags with isomorphic-git and reads the
 * lockfile at each commit, so that `gc` keeps what any version of the project refers to.
 */
export async function lockfilesInHistory(workspace: string, lockName: string): Promise<LockfileHistory> {
  let dir: string;
  try {
    dir = await git.findRoot({ fs, filepath: workspace });
  } catch {
    return { gitRoot: null, commitsScanned: 0, texts: [] };
  }
  const filepath = relative(dir, `${workspace}/${lockName}`).split('\\').join('/');
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
      try {
        const { oid, blob } = await git.readBlob({ fs, dir, oid: c.oid, filepath });
        if (seenBlobs.has(oid)) continue;
        seenBlobs.add(oid);
        texts.push(Buffer.from(blob).toString('utf8'));
      } catch {
        /* no lockfile at that commit */
      }
    }
  }
  return { gitRoot: dir, commitsScanned: seenCommits.size, texts };
}
