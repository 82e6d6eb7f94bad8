/**
 * Writes a commit's tree (or one directory of it) into a plain directory: regular files with
 * their executable bit, symlinks as symlinks, no `.git`. Read-only on the repository: objects
 * are read with isomorphic-git, never checked out (a checkout into another directory would
 * still move the repository's index and HEAD).
 */
import * as fs from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { HpcflowError } from '../errors.js';
import { mapLimit } from '../util/pool.js';

export interface MaterialiseOptions {
  /** Repository root (the directory holding `.git`). */
  readonly gitRoot: string;
  readonly commit: string;
  /** Repository path of the directory to write ('' = the whole tree). */
  readonly subdir: string;
  /** Destination directory (created; should be empty). */
  readonly dest: string;
  /** Top-level names (relative to `subdir`) not to write, e.g. `.hpcflow`. */
  readonly skip?: readonly string[];
  /** isomorphic-git's object cache, shared between calls on one repository. */
  readonly cache?: object;
}

export interface MaterialiseResult {
  readonly files: number;
  readonly links: number;
  readonly bytes: number;
  /** Submodules (gitlinks): written as empty directories. */
  readonly submodules: readonly string[];
}

type Entry = Awaited<ReturnType<typeof git.readTree>>['tree'][number];

/** A tree entry name that cannot escape its directory or create git's own. */
const safeName = (n: string): boolean => n !== '' && n !== '.' && n !== '..' && n.toLowerCase() !== '.git' && !n.includes('/') && !n.includes('\\') && !n.includes('\0');

export async function materialiseTree(o: MaterialiseOptions): Promise<MaterialiseResult> {
  const { gitRoot: dir } = o;
  const cache = o.cache ?? {};
  let root: { oid: string; tree: Entry[] };
  try {
    root = await git.readTree({ fs, dir, oid: o.commit, ...(o.subdir === '' ? {} : { filepath: o.subdir }), cache });
  } catch (e) {
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${o.subdir === '' ? 'the tree' : `${o.subdir}/`} of commit ${o.commit.slice(0, 12)}: ${(e as Error).message}`, { cause: e });
  }
  const blobs: { abs: string; oid: string; exec: boolean }[] = [];
  const links: { abs: string; oid: string }[] = [];
  const submodules: string[] = [];
  const skip = new Set(o.skip ?? []);
  await mkdir(o.dest, { recursive: true });
  // Directories first (one level at a time), then the files of all of them at once.
  let level: { rel: string; abs: string; tree: Entry[] }[] = [{ rel: '', abs: o.dest, tree: root.tree }];
  while (level.length > 0) {
    const next: { rel: string; abs: string; oid: string }[] = [];
    for (const d of level) {
      for (const e of d.tree) {
        if (!safeName(e.path)) continue;
        if (d.rel === '' && skip.has(e.path)) continue;
        const rel = d.rel === '' ? e.path : `${d.rel}/${e.path}`;
        const abs = join(d.abs, e.path);
        if (e.type === 'tree') next.push({ rel, abs, oid: e.oid });
        else if (e.type === 'commit') submodules.push(rel);
        else if (e.mode === '120000') links.push({ abs, oid: e.oid });
        else blobs.push({ abs, oid: e.oid, exec: e.mode === '100755' });
      }
    }
    for (const n of next) await mkdir(n.abs);
    level = await mapLimit(next, 8, async (n) => ({ rel: n.rel, abs: n.abs, tree: (await git.readTree({ fs, dir, oid: n.oid, cache })).tree }));
  }
  for (const s of submodules) await mkdir(join(o.dest, s), { recursive: true });
  let bytes = 0;
  await mapLimit(blobs, 16, async (b) => {
    const { blob } = await git.readBlob({ fs, dir, oid: b.oid, cache });
    bytes += blob.byteLength;
    await writeFile(b.abs, blob, { flag: 'wx' });
    await chmod(b.abs, b.exec ? 0o755 : 0o644);
  });
  await mapLimit(links, 16, async (l) => {
    const { blob } = await git.readBlob({ fs, dir, oid: l.oid, cache });
    await symlink(Buffer.from(blob).toString('utf8'), l.abs);
  });
  return { files: blobs.length, links: links.length, bytes, submodules };
}
