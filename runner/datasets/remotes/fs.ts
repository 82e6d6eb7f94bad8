/**
 * A dataset remote that is a directory, typically on an HPC shared or parallel filesystem
 * (Lustre, GPFS, NFS) that every node of the cluster mounts.
 *
 * Layout: `<root>/objects/<2 hex>/<62 hex>` (read-only, 0444) and `<root>/tmp/` for transfers.
 *
 * Crash and concurrency safety. An object appears under its final name only by rename(2) of a
 * complete temp file whose BLAKE3 was just checked, so no reader ever sees a prefix. Bytes are
 * never written into a file that another writer may hold: each transfer works on a private file
 * `<hash>.part.<host>-<pid>-<random>`. The resumable state between runs is the *parked* file
 * `<hash>.part` (for downloads `<destPath>.part`): a transfer takes it over by renaming it to its
 * private name (rename is atomic, so exactly one of several concurrent transfers, on any node,
 * gets it) and continues from its length; a transfer that is interrupted (AbortSignal, I/O error)
 * parks what it has written back under that name for the next run. A process killed outright
 * leaves its private file behind; a later upload adopts it once its owner is known to be gone
 * (same host, pid not running) or it has not been written for {@link ORPHAN_AGE_MS}.
 *
 * The helpers for that protocol are exported for the S3 remote, whose downloads use it too.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, chmod, mkdir, open, readdir, rename, stat, truncate } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HpcflowError, isHpcflowError } from '../../errors.js';
import { hashFile } from '../../fingerprint/hash-file.js';
import { ensureDir, fsyncDir, removeQuiet } from '../../util/fs-atomic.js';
import { createLimiter } from '../../util/pool.js';
import type { Remote } from './remote.js';

// ---------------------------------------------------------------------------------------------
// Helpers shared by the remotes
// ---------------------------------------------------------------------------------------------

const HASH_RE = /^[0-9a-f]{64}$/;

/** Stream chunk for copies: large enough that per-chunk overhead vanishes on parallel filesystems. */
const COPY_CHUNK = 1 << 20;

/** An unowned private transfer file older than this (no write for that long) may be adopted. */
export const ORPHAN_AGE_MS = 60 * 60 * 1000;

export const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/**
 * Rejects anything but 64 lowercase hex: a hash becomes part of a path or key, so this keeps a
 * damaged manifest from turning into `../../somewhere` (same rule and code as the local store).
 */
/** Distinct `hashes` (each checked) grouped by their 2-hex shard, for batched existence checks. */
export function groupByShard(hashes: readonly string[]): Map<string, string[]> {
  const byShard = new Map<string, string[]>();
  for (const h of new Set(hashes)) {
    checkHash(h);
    const s = h.slice(0, 2);
    const list = byShard.get(s);
    if (list === undefined) byShard.set(s, [h]);
    else list.push(h);
  }
  return byShard;
}

export function checkHash(hash: string): void {
  if (!HASH_RE.test(hash)) throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `invalid object id ${JSON.stringify(hash)}`);
}

export function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new HpcflowError('HPCFLOW_USAGE', `object size must be a non-negative integer, got ${String(size)}`);
  }
}

export function abortedError(signal: AbortSignal | undefined): HpcflowError {
  return new HpcflowError('HPCFLOW_ABORTED', 'operation aborted', { cause: signal?.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortedError(signal);
}

/** True when `e` is (or was caused by) `signal` aborting. */
export function isAbort(e: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) return true;
  if (isHpcflowError(e, 'HPCFLOW_ABORTED')) return true;
  const name = (e as Error | null)?.name;
  return name === 'AbortError' || errCode(e) === 'ABORT_ERR';
}

/** The error for content that does not hash to the object it should be. */
export function mismatchError(hash: string, where: string, got: string, size: number, hint: string): HpcflowError {
  return new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} ${where} is damaged: its content hashes to ${got} (${size} bytes)`, {
    hint,
  });
}

/**
 * Runs same-key operations of one remote instance one after another. A second `put` of an object
 * that is already being uploaded waits and then finds it present, instead of moving it twice.
 * (Other processes and instances are kept correct by the part-file protocol, not by this.)
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const mine = prev.then(fn, fn);
    const tail = mine.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

let ownerHost: string | undefined;

/** `<host>-<pid>-<random>`: names this process as the owner of a private transfer file. */
function ownerTag(): string {
  ownerHost ??= hostname().replace(/[^A-Za-z0-9_.-]/g, '_') || 'host';
  return `${ownerHost}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** A private transfer file and how many bytes it already holds. */
export interface WorkFile {
  readonly path: string;
  readonly offset: number;
}

/**
 * Takes over the parked partial file `parked` if there is one (atomically, by renaming it to a
 * private name), else creates an empty private file; either way the caller owns the result alone.
 * With `adoptOrphans`, private files of dead or long-silent transfers of the same object in the
 * same directory are taken over too (the longest one is kept).
 */
export async function claimPart(parked: string, opts: { adoptOrphans?: boolean } = {}): Promise<WorkFile> {
  const mine = `${parked}.${ownerTag()}`;
  try {
    await rename(parked, mine);
    return { path: mine, offset: (await stat(mine)).size };
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw e;
  }
  if (opts.adoptOrphans === true) {
    const adopted = await adoptOrphan(parked, mine);
    if (adopted !== null) return adopted;
  }
  const fh = await open(mine, 'wx');
  await fh.close();
  return { path: mine, offset: 0 };
}

function ownerGone(tag: string, st: Stats): boolean {
  if (Date.now() - st.mtimeMs > ORPHAN_AGE_MS) return true;
  const m = /^(.*)-(\d+)-[0-9a-f]{12}$/.exec(tag);
  if (m === null || m[1] !== ownerHost) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return errCode(e) === 'ESRCH';
  }
}

async function adoptOrphan(parked: string, mine: string): Promise<WorkFile | null> {
  const dir = dirname(parked);
  const stem = `${basename(parked)}.`;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith(stem) && join(dir, n) !== mine);
  } catch {
    return null;
  }
  const gone: Array<{ path: string; size: number }> = [];
  for (const n of names) {
    const p = join(dir, n);
    try {
      const st = await stat(p);
      if (st.isFile() && ownerGone(n.slice(stem.length), st)) gone.push({ path: p, size: st.size });
    } catch {
      /* taken or removed meanwhile */
    }
  }
  gone.sort((a, b) => b.size - a.size);
  for (const [i, o] of gone.entries()) {
    try {
      await rename(o.path, mine);
    } catch {
      continue; // someone else adopted it first
    }
    // The shorter leftovers hold nothing the adopted one lacks.
    for (const rest of gone.slice(i + 1)) await removeQuiet(rest.path);
    return { path: mine, offset: (await stat(mine)).size };
  }
  return null;
}

/** Puts a partial private file back under the parked name for the next run (best effort). */
export async function parkPart(work: string, parked: string): Promise<void> {
  try {
    if ((await stat(work)).size === 0) {
      await removeQuiet(work);
      return;
    }
    await rename(work, parked);
  } catch {
    await removeQuiet(work);
  }
}

/** Appends `src` to the file `work` (which the caller owns); honours `signal`. */
export async function appendStream(src: Readable, work: string, signal: AbortSignal | undefined): Promise<void> {
  const dest = createWriteStream(work, { flags: 'a', highWaterMark: COPY_CHUNK });
  await pipeline(src, dest, ...(signal === undefined ? [] : [{ signal }]));
}

/** Where a download's bytes come from: a stream starting at byte `start` of the object. */
export interface Source {
  readonly stream: Readable;
  readonly start: number;
}

/**
 * The download protocol both remotes use: bytes go into a private file next to `destPath`
 * (resuming the parked `<destPath>.part`), are verified against `hash`, and only then renamed
 * to `destPath`. `open(offset)` returns the object from `offset` (or from 0 if the remote cannot
 * seek); it throws an HpcflowError for a missing object. A resumed download that fails
 * verification is retried once from byte 0 (the parked prefix may stem from an older object);
 * a dropped connection is resumed up to twice. On a mismatch nothing is left behind; on an
 * interruption the bytes received are parked for the next run.
 */
export async function receiveVerified(opts: {
  readonly hash: string;
  readonly destPath: string;
  readonly signal: AbortSignal | undefined;
  /** `object <hash> <where> is damaged`, e.g. `on remote "x" (s3://b/p)`. */
  readonly where: string;
  readonly open: (offset: number) => Promise<Source>;
  /** Turns a transfer failure into a clear error (the abort case is handled here). */
  readonly failure: (e: unknown) => HpcflowError;
}): Promise<void> {
  const { hash, destPath, signal } = opts;
  throwIfAborted(signal);
  const parked = `${destPath}.part`;
  await ensureDir(dirname(destPath));
  const work = await claimPart(parked);
  let done = false;
  let keep = false;
  try {
    let offset = work.offset;
    let restarted = offset === 0;
    let drops = 0;
    for (;;) {
      throwIfAborted(signal);
      try {
        const src = await opts.open(offset);
        if (src.start !== offset) {
          await truncate(work.path, src.start);
          offset = src.start;
        }
        await appendStream(src.stream, work.path, signal);
      } catch (e) {
        if (isAbort(e, signal)) {
          keep = true;
          throw abortedError(signal);
        }
        if (isHpcflowError(e)) throw e;
        keep = true;
        const err = opts.failure(e);
        if (++drops > 2) throw err;
        offset = (await stat(work.path)).size;
        continue;
      }
      const got = await hashFile(work.path);
      if (got.hash === hash) break;
      if (!restarted) {
        restarted = true;
        await truncate(work.path, 0);
        offset = 0;
        continue;
      }
      keep = false;
      throw mismatchError(hash, opts.where, got.hash, got.size, 'nothing was written; the remote copy must be replaced: push the object again from a store that has it intact');
    }
    await rename(work.path, destPath);
    done = true;
  } catch (e) {
    if (isHpcflowError(e)) throw e;
    keep = true;
    throw opts.failure(e);
  } finally {
    if (!done) {
      if (keep) await parkPart(work.path, parked);
      else {
        await removeQuiet(work.path);
        await removeQuiet(parked);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// FsRemote
// ---------------------------------------------------------------------------------------------

/** hasMany reads a whole shard directory once at least this many queried hashes fall into it. */
const READDIR_MIN = 16;
/** Parallel stat/readdir calls of one hasMany (latency-bound on parallel filesystems). */
const HAS_CONCURRENCY = 16;

export class FsRemote implements Remote {
  readonly name: string;
  readonly display: string;
  readonly root: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly #serial = new KeyedSerial();
  #ready: Promise<void> | undefined;

  /** `root` must be absolute. */
  constructor(name: string, root: string) {
    this.name = name;
    this.root = root;
    this.display = root;
    this.objectsDir = join(root, 'objects');
    this.tmpDir = join(root, 'tmp');
  }

  /** Where object `hash` lives on the remote. */
  objectPath(hash: string): string {
    checkHash(hash);
    return join(this.objectsDir, hash.slice(0, 2), hash.slice(2));
  }

  async has(hash: string): Promise<boolean> {
    const p = this.objectPath(hash);
    try {
      return await exists(p);
    } catch (e) {
      throw this.#ioError(e, `look up object ${hash}`);
    }
  }

  async hasMany(hashes: readonly string[]): Promise<Set<string>> {
    const byShard = groupByShard(hashes);
    const found = new Set<string>();
    const limit = createLimiter(HAS_CONCURRENCY);
    const jobs: Array<Promise<void>> = [];
    for (const [shard, list] of byShard) {
      if (list.length >= READDIR_MIN) {
        // One readdir answers many lookups; on Lustre/GPFS a stat is a metadata-server round trip.
        jobs.push(
          limit(async () => {
            let names: Set<string>;
            try {
              names = new Set(await readdir(join(this.objectsDir, shard)));
            } catch (e) {
              if (errCode(e) === 'ENOENT') return;
              throw this.#ioError(e, 'list objects');
            }
            for (const h of list) if (names.has(h.slice(2))) found.add(h);
          }),
        );
      } else {
        for (const h of list) {
          jobs.push(
            limit(async () => {
              if (await this.has(h)) found.add(h);
            }),
          );
        }
      }
    }
    await Promise.all(jobs);
    return found;
  }

  async put(hash: string, localPath: string, size: number, signal?: AbortSignal): Promise<void> {
    const dest = this.objectPath(hash);
    checkSize(size);
    throwIfAborted(signal);
    await this.#serial.run(hash, async () => {
      throwIfAborted(signal);
      // Present with the right size: done. (A wrong size means a damaged object: replace it.)
      if ((await sizeOf(dest)) === size) return;
      await this.#prepare();
      const parked = join(this.tmpDir, `${hash}.part`);
      const work = await claimPart(parked, { adoptOrphans: true });
      let published = false;
      let keep = false;
      try {
        let offset = work.offset;
        if (offset > size) {
          await truncate(work.path, 0);
          offset = 0;
        }
        let restarted = offset === 0;
        for (;;) {
          if (offset < size) {
            try {
              // From 0 without `start`: sequential reads, so a pipe works as a source too.
              const src = createReadStream(localPath, { ...(offset > 0 ? { start: offset } : {}), end: size - 1, highWaterMark: COPY_CHUNK });
              await appendStream(src, work.path, signal);
            } catch (e) {
              keep = true;
              if (isAbort(e, signal)) throw abortedError(signal);
              if (errCode(e) === 'ENOENT' && (e as NodeJS.ErrnoException).path === localPath) {
                throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `cannot upload object ${hash} to remote "${this.name}": ${localPath} does not exist`);
              }
              throw this.#ioError(e, `upload ${localPath}`);
            }
          }
          const got = await hashFile(work.path);
          if (got.hash === hash && got.size === size) break;
          if (!restarted) {
            // The parked prefix came from an earlier run, when the local file may have differed.
            restarted = true;
            await truncate(work.path, 0);
            offset = 0;
            continue;
          }
          throw new HpcflowError(
            'HPCFLOW_CACHE_CORRUPT',
            `cannot upload object ${hash} to remote "${this.name}" (${this.display}): ${localPath} does not hash to it (got ${got.hash}, ${got.size} of ${size} bytes)`,
            { hint: 'the local file changed or is damaged; nothing was uploaded. Check the local store (it may need the file committed again)' },
          );
        }
        // The remote is where the data survives: make the bytes and the rename durable.
        const fh = await open(work.path, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        await chmod(work.path, 0o444);
        await ensureDir(dirname(dest));
        await rename(work.path, dest);
        published = true;
        await fsyncDir(dirname(dest));
      } catch (e) {
        if (isHpcflowError(e)) throw e;
        keep = true;
        throw this.#ioError(e, 'store object');
      } finally {
        if (!published) {
          if (keep) await parkPart(work.path, parked);
          else await removeQuiet(work.path);
        }
      }
    });
  }

  async get(hash: string, destPath: string, signal?: AbortSignal): Promise<void> {
    const src = this.objectPath(hash);
    await receiveVerified({
      hash,
      destPath,
      signal,
      where: `on remote "${this.name}" (${this.display})`,
      open: async (offset) => {
        let fh;
        try {
          fh = await open(src, 'r');
        } catch (e) {
          if (errCode(e) === 'ENOENT') throw this.#missing(hash);
          throw e;
        }
        const size = (await fh.stat()).size;
        const start = offset <= size ? offset : 0;
        // From 0 without `start`: sequential reads (the object may be a pipe in tests).
        return { stream: fh.createReadStream({ ...(start > 0 ? { start } : {}), highWaterMark: COPY_CHUNK }), start };
      },
      failure: (e) => this.#ioError(e, `download object ${hash}`),
    });
  }

  async close(): Promise<void> {
    /* nothing held open */
  }

  #missing(hash: string): HpcflowError {
    return new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing from remote "${this.name}" (${this.display})`, {
      hint: 'push it from a workspace whose store has it',
    });
  }

  /**
   * The remote root must exist or be creatable as one new directory: a missing parent usually
   * means the shared filesystem is not mounted here, and creating the whole path would scatter
   * objects onto a node-local disk.
   */
  async #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      try {
        await mkdir(this.root);
      } catch (e) {
        const code = errCode(e);
        if (code === 'ENOENT') {
          throw new HpcflowError('HPCFLOW_USAGE', `remote "${this.name}": the directory ${dirname(this.root)} does not exist`, {
            hint: 'is the shared filesystem mounted on this node? Otherwise create the directory or fix the url in hpcflow.yaml',
          });
        }
        if (code !== 'EEXIST') throw this.#ioError(e, 'create the remote directory');
      }
      await ensureDir(this.tmpDir);
    })();
    try {
      await this.#ready;
    } catch (e) {
      this.#ready = undefined;
      throw isHpcflowError(e) ? e : this.#ioError(e, 'prepare the remote directory');
    }
  }

  #ioError(e: unknown, what: string): HpcflowError {
    if (isHpcflowError(e)) return e;
    const code = errCode(e);
    const msg = e instanceof Error ? e.message : String(e);
    const hint =
      code === 'ENOSPC' || code === 'EDQUOT'
        ? 'no space (or quota) left; free some and run the same command again: completed objects are kept and partial ones resume'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'check the permissions of the remote directory (it must be writable to push)'
          : 'run the same command again: completed objects are kept and partial ones resume';
    return new HpcflowError('HPCFLOW_ENGINE_UNAVAILABLE', `remote "${this.name}" (${this.display}): could not ${what}: ${msg}`, {
      hint,
      cause: e,
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (e) {
    if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return false;
    throw e;
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return null;
    throw e;
  }
}
