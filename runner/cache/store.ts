/**
 * Content-addressed object store: `<cacheDir>/objects/<2 hex>/<62 hex>`, named by the BLAKE3
 * of the content. Safe to share between workspaces and concurrent runner processes: objects are
 * only ever created by renaming a complete temp file from `<cacheDir>/tmp/` into place, so a
 * reader sees an object completely or not at all, and two processes storing the same content
 * both succeed (the second rename replaces identical bytes).
 *
 * Objects are read-only (0444) and are never hardlinked into a workspace: users edit outputs in
 * place, which would silently corrupt a hardlinked store. Copies use FICLONE, so on
 * reflink-capable filesystems (btrfs, XFS, some Lustre/NFS setups) they cost no data I/O; elsewhere
 * libuv falls back to an in-kernel copy.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, copyFile, link, open, readFile, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { LinkKind } from '../config/workspace-config.js';
import { HpcflowError } from '../errors.js';
import type { FileHash } from '../fingerprint/hash-file.js';
import { hashBytes, hashFile, hashFileAdaptive } from '../fingerprint/hash-file.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { parseManifest } from '../fingerprint/manifest.js';
import { ensureDir, fsyncDir, removeQuiet, replacePath, tempSiblingPath } from '../util/fs-atomic.js';
import { restoreOutput, saveOutput } from './outputs.js';
import type { OutputRecord } from './records.js';

export type { OutputRecord } from './records.js';

/** Options for {@link ContentStore}. */
export interface ContentStoreOptions {
  /** fsync every new object before it becomes visible (default false: a cache, and verify() detects damage). */
  readonly fsync?: boolean;
  /** Files copied at once when saving or restoring a directory (default 4). */
  readonly concurrency?: number;
}

/** Options for {@link ContentStore.gc}. */
export interface GcOptions {
  /**
   * Unreferenced objects younger than this (by mtime, which a put of existing content refreshes)
   * are kept, so a gc never deletes what a concurrent run just stored but has not recorded yet.
   * Default one hour; pass 0 to remove every unreferenced object.
   */
  readonly graceMs?: number;
  /** Temp files in `tmp/` older than this are removed (default one hour). */
  readonly tmpMaxAgeMs?: number;
}

/** What {@link ContentStore.gc} removed. */
export interface GcResult {
  /** Objects removed. */
  readonly removed: number;
  /** Their total size. */
  readonly bytes: number;
  /** Stale temp files/directories removed from `tmp/`. */
  readonly tempRemoved: number;
}

const HOUR_MS = 3_600_000;
const HASH_RE = /^[0-9a-f]{64}$/;
const SHARD_RE = /^[0-9a-f]{2}$/;
const REST_RE = /^[0-9a-f]{62}$/;
const COPY_FLAGS = fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE;

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/** The error for a record whose content is gone from the store. */
export function missingObjectError(hash: string, outputPath: string): HpcflowError {
  return new HpcflowError(
    'HPCFLOW_CACHE_CORRUPT',
    `object ${hash} for output ${outputPath} is missing; run the stage again with --force`,
  );
}

/** Content-addressed object store; see the module documentation. */
export class ContentStore {
  readonly root: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly concurrency: number;
  readonly #fsync: boolean;
  #tmpReady: Promise<void> | undefined;
  readonly #unsupported = new Set<LinkKind>();

  constructor(cacheDir: string, opts: ContentStoreOptions = {}) {
    this.root = cacheDir;
    this.objectsDir = join(cacheDir, 'objects');
    this.tmpDir = join(cacheDir, 'tmp');
    this.concurrency = opts.concurrency ?? 4;
    this.#fsync = opts.fsync ?? false;
  }

  /** Where object `hash` lives. Throws HPCFLOW_CACHE_CORRUPT for anything but 64 lowercase hex. */
  path(hash: string): string {
    // Hashes come from cache records on disk; validating them keeps a tampered record from
    // turning into a path like "../../etc".
    if (!HASH_RE.test(hash)) throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `invalid object id ${JSON.stringify(hash)}`);
    return join(this.objectsDir, hash.slice(0, 2), hash.slice(2));
  }

  async has(hash: string): Promise<boolean> {
    try {
      await access(this.path(hash));
      return true;
    } catch (e) {
      if (e instanceof HpcflowError) throw e;
      return false;
    }
  }

  /**
   * Stores a copy of the file at `absPath`. With `known` (a hash just computed by the caller),
   * an existing object is a no-op without reading the file. Otherwise the file is copied to a
   * temp file and the *copy* is hashed, so a file modified during the copy is stored under the
   * hash of what was actually stored. Returns that hash (which may differ from `known`).
   * `hashCopy` hashes the copy instead of this thread (a caller with a worker pool passes it, so
   * storing many large files uses every core, not just the main thread).
   */
  async putFile(
    absPath: string,
    known?: { readonly hash: string; readonly size: number },
    hashCopy?: (tmpAbs: string, size: number) => Promise<FileHash>,
  ): Promise<FileHash> {
    if (known !== undefined && HASH_RE.test(known.hash) && (await this.#touch(known.hash))) {
      return { hash: known.hash, size: known.size };
    }
    const tmp = await this.#tempPath();
    try {
      await copyFile(absPath, tmp, COPY_FLAGS);
      const size = (await stat(tmp)).size;
      const actual = hashCopy === undefined ? await hashFileAdaptive(tmp, size) : await hashCopy(tmp, size);
      await this.#commit(tmp, actual.hash);
      return actual;
    } finally {
      await removeQuiet(tmp);
    }
  }

  /** Stores bytes (tree manifests, small blobs). */
  async putBytes(data: string | Uint8Array): Promise<FileHash> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const hash = hashBytes(buf);
    if (await this.#touch(hash)) return { hash, size: buf.length };
    const tmp = await this.#tempPath();
    try {
      // The temp name is private to this call; #commit makes it visible atomically.
      await writeFile(tmp, buf, { flag: 'wx', mode: 0o444 });
      await this.#commit(tmp, hash);
    } finally {
      await removeQuiet(tmp);
    }
    return { hash, size: buf.length };
  }

  /** The content of an object (for tree manifests; use {@link materialize} for files). */
  async readObject(hash: string): Promise<Buffer> {
    try {
      return await readFile(this.path(hash));
    } catch (e) {
      if (errCode(e) === 'ENOENT') throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing`, { cause: e });
      throw e;
    }
  }

  /** Reads a directory's tree object, checking it is intact and canonical. */
  async readTree(hash: string): Promise<ManifestEntry[]> {
    const buf = await this.readObject(hash);
    if (hashBytes(buf) !== hash) throw this.#corrupt(hash, 'its content does not match its name');
    try {
      return parseManifest(buf.toString('utf8'));
    } catch (e) {
      throw this.#corrupt(hash, `it is not a valid tree manifest (${(e as Error).message})`);
    }
  }

  /** Re-hashes an object; throws HPCFLOW_CACHE_CORRUPT naming it when missing or damaged. */
  async verify(hash: string): Promise<FileHash> {
    let actual: FileHash;
    try {
      actual = await hashFile(this.path(hash));
    } catch (e) {
      if (errCode(e) === 'ENOENT') throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing`, { cause: e });
      throw e;
    }
    if (actual.hash !== hash) throw this.#corrupt(hash, `its content hashes to ${actual.hash}`);
    return actual;
  }

  /**
   * Writes a copy of object `hash` to `destAbs` (mode 0644, or 0755 with `exec`), replacing
   * whatever is there in one rename, so `destAbs` is never seen half-written.
   */
  async materialize(hash: string, destAbs: string, opts: { readonly exec: boolean }): Promise<void> {
    await ensureDir(dirname(destAbs));
    const tmp = tempSiblingPath(destAbs);
    try {
      await this.copyObjectTo(hash, tmp, opts.exec);
      await replacePath(tmp, destAbs);
    } catch (e) {
      await removeQuiet(tmp);
      throw e;
    }
  }

  /**
   * Copies object `hash` to a path that must not exist yet, then sets its mode. Low-level: use
   * {@link materialize} unless the destination is itself inside a temp tree.
   *
   * @param expectedSize when given, a copy of another size is reported as a corrupt object.
   */
  async copyObjectTo(hash: string, destAbs: string, exec: boolean, expectedSize?: number): Promise<void> {
    const src = this.path(hash);
    try {
      await copyFile(src, destAbs, COPY_FLAGS);
    } catch (e) {
      if (errCode(e) === 'ENOENT' && !(await this.has(hash))) {
        throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing`, { cause: e });
      }
      throw e;
    }
    await chmod(destAbs, exec ? 0o755 : 0o644);
    if (expectedSize !== undefined) {
      const size = (await stat(destAbs)).size;
      if (size !== expectedSize) throw this.#corrupt(hash, `it has ${size} bytes, the record says ${expectedSize}`);
    }
  }

  /**
   * Makes `destAbs` (which must not exist) a file with object `hash`'s content, trying `kinds`
   * in order: a reflink (shares blocks copy-on-write; needs btrfs/XFS/…), a hardlink (shares the
   * inode: the file is read-only, and writing it in place as root would damage the store — opt
   * in only), or a plain copy. Executable files are never hardlinked (the object's mode is
   * 0444). Kinds the filesystem refuses are remembered and not tried again. Returns what was used.
   */
  async linkObjectTo(hash: string, destAbs: string, exec: boolean, kinds: readonly LinkKind[]): Promise<LinkKind> {
    const src = this.path(hash);
    for (const kind of kinds) {
      if (this.#unsupported.has(kind) || (kind === 'hardlink' && exec)) continue;
      try {
        if (kind === 'hardlink') {
          await link(src, destAbs);
          return kind;
        }
        await copyFile(src, destAbs, kind === 'reflink' ? fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE_FORCE : COPY_FLAGS);
        await chmod(destAbs, exec ? 0o755 : 0o644);
        return kind;
      } catch (e) {
        const code = errCode(e);
        if (code === 'ENOENT' && !(await this.has(hash))) throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} is missing`, { cause: e });
        // The filesystem cannot do this kind (or not across these two filesystems): next one.
        if (kind !== 'copy' && (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV' || code === 'EINVAL' || code === 'EPERM' || code === 'EMLINK' || code === 'ENOSYS')) {
          if (code !== 'EMLINK') this.#unsupported.add(kind);
          continue;
        }
        throw e;
      }
    }
    throw new HpcflowError('HPCFLOW_USAGE', `none of the link kinds ${kinds.join(', ')} works here for ${destAbs}`, { hint: 'add copy to datasets.link in hpcflow.yaml' });
  }

  /** A fresh temp path inside the store's tmp/ (same filesystem as the objects). */
  tempPath(): Promise<string> {
    return this.#tempPath();
  }

  /**
   * Moves a complete file the caller has verified to hash to `hash` (e.g. a download) into
   * place as that object. The file must be inside {@link tmpDir}.
   */
  async adopt(tmpAbs: string, hash: string): Promise<void> {
    try {
      await this.#commit(tmpAbs, hash);
    } finally {
      await removeQuiet(tmpAbs);
    }
  }

  /** Stores the output at workspace-relative `rel` (a file or a whole directory); see outputs.ts. */
  saveOutput(workspace: string, rel: string): Promise<OutputRecord> {
    return saveOutput(this, workspace, rel);
  }

  /**
   * Puts a recorded output back at its path. Fails with HPCFLOW_CACHE_CORRUPT before touching
   * the workspace when any object is missing; see outputs.ts.
   */
  restoreOutput(workspace: string, record: OutputRecord): Promise<void> {
    return restoreOutput(this, workspace, record);
  }

  /** Every object id in the store, in sorted order. */
  async *listObjects(): AsyncGenerator<string> {
    let shards: string[];
    try {
      shards = (await readdir(this.objectsDir)).sort();
    } catch (e) {
      if (errCode(e) === 'ENOENT') return;
      throw e;
    }
    for (const shard of shards) {
      if (!SHARD_RE.test(shard)) continue;
      let names: string[];
      try {
        names = (await readdir(join(this.objectsDir, shard))).sort();
      } catch (e) {
        if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') continue;
        throw e;
      }
      for (const name of names) if (REST_RE.test(name)) yield shard + name;
    }
  }

  /** Deletes an object; false when it did not exist. */
  async removeObject(hash: string): Promise<boolean> {
    try {
      await unlink(this.path(hash));
      return true;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /**
   * Removes every object not in `keep` (subject to {@link GcOptions.graceMs}) and temp files
   * left behind by crashed processes. Callers build `keep` from the run cache
   * (`referencedObjects`) and whatever else must survive (e.g. lockfile records).
   */
  async gc(keep: ReadonlySet<string>, opts: GcOptions = {}): Promise<GcResult> {
    const now = Date.now();
    const graceMs = opts.graceMs ?? HOUR_MS;
    const tmpMaxAgeMs = opts.tmpMaxAgeMs ?? HOUR_MS;
    let removed = 0;
    let bytes = 0;
    for await (const hash of this.listObjects()) {
      if (keep.has(hash)) continue;
      const p = this.path(hash);
      const st = await stat(p).catch(() => undefined);
      if (st === undefined || now - st.mtimeMs < graceMs) continue;
      if (await this.removeObject(hash)) {
        removed++;
        bytes += st.size;
      }
    }
    let tempRemoved = 0;
    const temps = await readdir(this.tmpDir).catch(() => [] as string[]);
    for (const name of temps) {
      const p = join(this.tmpDir, name);
      const st = await stat(p).catch(() => undefined);
      if (st === undefined || now - st.mtimeMs <= tmpMaxAgeMs) continue;
      await rm(p, { recursive: true, force: true });
      tempRemoved++;
    }
    return { removed, bytes, tempRemoved };
  }

  #corrupt(hash: string, why: string): HpcflowError {
    return new HpcflowError('HPCFLOW_CACHE_CORRUPT', `object ${hash} (${this.path(hash)}) is corrupt: ${why}`, {
      hint: 'remove the object and run the stage again with --force',
    });
  }

  async #tempPath(): Promise<string> {
    this.#tmpReady ??= ensureDir(this.tmpDir);
    try {
      await this.#tmpReady;
    } catch (e) {
      this.#tmpReady = undefined;
      throw e;
    }
    return join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
  }

  /**
   * Marks an existing object as recently used (its mtime is what gc's grace period looks at).
   * Returns whether the object exists.
   */
  async #touch(hash: string): Promise<boolean> {
    const p = this.path(hash);
    const now = new Date();
    try {
      await utimes(p, now, now);
      return true;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      // Owned by another user of a shared cache: it exists, we just cannot refresh it.
      return this.has(hash);
    }
  }

  /** Moves a complete temp file into place as object `hash` (no-op if it already exists). */
  async #commit(tmp: string, hash: string): Promise<void> {
    if (await this.#touch(hash)) return;
    await chmod(tmp, 0o444);
    if (this.#fsync) {
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    const dest = this.path(hash);
    await ensureDir(dirname(dest));
    // Replaces an identical object if another process won the race; both callers succeed.
    await rename(tmp, dest);
    if (this.#fsync) await fsyncDir(dirname(dest));
  }
}
