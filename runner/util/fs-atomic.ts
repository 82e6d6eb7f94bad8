/**
 * Crash- and concurrency-safe file writes. Everything that other processes may read while we
 * write (caches shared by several runners, state files) goes through a temp file in the same
 * directory plus rename(2), which is atomic on POSIX filesystems, so a reader sees either the
 * old file or the new one, never a prefix.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Options for {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Permission bits of the created file (before umask). Default 0o666, like `fs.writeFile`. */
  readonly mode?: number;
  /**
   * fsync the data (and the directory after the rename) before returning. Costs a disk flush;
   * use it for files whose loss after a power failure matters, not for caches.
   */
  readonly fsync?: boolean;
}

/**
 * A unique, hidden path next to `path`: `.<base>.<tag>-<pid>-<random>`. Same directory so a
 * rename onto `path` never crosses filesystems.
 */
export function tempSiblingPath(path: string, tag = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Writes `data` to `path` so that `path` is never observed half-written: the data goes to a temp
 * sibling which is renamed over `path`. The temp file is removed on any error.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: WriteFileAtomicOptions = {},
): Promise<void> {
  const tmp = tempSiblingPath(path);
  let renamed = false;
  try {
    // 'wx': the name is random, but O_EXCL guarantees we never write into someone else's file.
    const fh = await open(tmp, 'wx', opts.mode ?? 0o666);
    try {
      await fh.writeFile(data);
      if (opts.fsync === true) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    renamed = true;
    if (opts.fsync === true) await fsyncDir(dirname(path));
  } finally {
    if (!renamed) await removeQuiet(tmp);
  }
}

/** Flushes a directory's entries (makes a preceding rename durable). Best effort. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    await fh.sync();
  } catch {
    // Some filesystems (and all of Windows) refuse to fsync a directory; durability of the
    // rename is then up to the filesystem, which is the best we can do.
  } finally {
    await fh?.close();
  }
}

/** `mkdir -p`. Succeeds when the directory already exists (also when created concurrently). */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

/**
 * `rm -rf` that never throws: used on cleanup paths, where an error would mask the original
 * failure. A leftover temp file is harmless (they are hidden and swept by gc).
 */
export async function removeQuiet(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // Deliberately ignored; see above.
  }
}

const REPLACE_BLOCKED = new Set(['EISDIR', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR']);

/**
 * Moves `src` to `dest`, replacing whatever is at `dest` (file, symlink or directory tree).
 * rename(2) alone cannot replace a non-empty directory or swap a file for a directory, so in
 * those cases the old `dest` is first renamed to a hidden trash sibling, `src` renamed into
 * place, and the trash removed. At every instant `dest` is either the complete old content,
 * absent (only between the two renames), or the complete new content, never a mix.
 */
export async function replacePath(src: string, dest: string): Promise<void> {
  try {
    await rename(src, dest);
    return;
  } catch (e) {
    if (!REPLACE_BLOCKED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
  const trash = tempSiblingPath(dest, 'trash');
  await rename(dest, trash);
  try {
    await rename(src, dest);
  } catch (e) {
    // Put the old content back rather than leave the path empty.
    await rename(trash, dest).catch(() => undefined);
    throw e;
  }
  await removeQuiet(trash);
}

/** Whether something exists at `abs` (any failure to see it counts as no). */
export async function pathExists(abs: string): Promise<boolean> {
  try {
    await access(abs);
    return true;
  } catch {
    return false;
  }
}
