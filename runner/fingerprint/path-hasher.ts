/**
 * Content identity of workspace paths (stage dependencies and outputs on disk).
 *
 * A PathHasher is a snapshot: every path and every file is hashed at most once per instance,
 * so 1,000 stages depending on the same dataset cost one hash. Create a new instance after the
 * workspace may have changed (e.g. after a stage ran).
 */
import type { BigIntStats } from 'node:fs';
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { createLimiter } from '../util/pool.js';
import type { Limiter } from '../util/pool.js';
import { SMALL_FILE_MAX, hashFile, hashFileSync } from './hash-file.js';
import { digestManifest } from './manifest.js';
import type { ManifestEntry } from './manifest.js';
import { normalizeRel, realWorkspace, resolveRel } from './paths.js';
import type { StatCache } from './stat-cache.js';
import { walkDir } from './walk.js';

/** What a workspace path is, by content. */
export type PathHash =
  | { readonly kind: 'file'; readonly hash: string; readonly size: number; readonly exec: boolean }
  /** `hash` is the BLAKE3 of the directory's manifest (see manifest.ts); `size` sums all files. */
  | { readonly kind: 'dir'; readonly hash: string; readonly size: number; readonly files: number }
  | { readonly kind: 'missing' };

/** Work done by a {@link PathHasher}, for tests and benchmarks. */
export interface HashCounters {
  /** Files whose content was read (stat-cache misses). */
  filesHashed: number;
  bytesHashed: number;
  /** Files answered from the stat cache without reading. */
  statHits: number;
}

/** Options for {@link PathHasher}. */
export interface PathHasherOptions {
  /** Workspace root; must exist. */
  readonly workspace: string;
  readonly statCache: StatCache;
  /** Files hashed at once through async reads (default 4). */
  readonly concurrency?: number;
  /**
   * Hash files up to 1 MiB with blocking reads (default true): ~5× faster for many small,
   * page-cached files. Turn off on high-latency filesystems where overlapping reads wins.
   */
  readonly syncSmallFiles?: boolean;
}

interface FileResult {
  readonly hash: string;
  readonly size: number;
  readonly exec: boolean;
}

type Result = { readonly hash: PathHash; readonly manifest: readonly ManifestEntry[] | null };

// Keep the event loop responsive (spinners, log streaming) during long synchronous stretches.
const SLICE_MS = 20;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const EXEC_BIT = 0o100n;

/** Hashes workspace paths; see the module documentation. */
export class PathHasher {
  readonly workspace: string;
  /** Live counters (mutated as work happens). */
  readonly counters: HashCounters = { filesHashed: 0, bytesHashed: 0, statHits: 0 };
  readonly #wsReal: string;
  readonly #statCache: StatCache;
  readonly #limit: Limiter;
  readonly #syncSmall: boolean;
  readonly #paths = new Map<string, Promise<Result>>();
  readonly #files = new Map<string, Promise<FileResult | null>>();
  /** Real paths of directories seen, for resolveRel's fast path (lives as long as the memo). */
  readonly #dirReal = new Map<string, string>();

  constructor(opts: PathHasherOptions) {
    this.workspace = opts.workspace;
    this.#wsReal = realWorkspace(opts.workspace);
    this.#statCache = opts.statCache;
    this.#limit = createLimiter(opts.concurrency ?? 4);
    this.#syncSmall = opts.syncSmallFiles ?? true;
  }

  /**
   * Hashes a workspace-relative path. Rejects absolute paths and `..` escapes, and symlinks
   * leading outside the workspace, with HPCFLOW_PATH_ESCAPE.
   */
  async hash(rel: string): Promise<PathHash> {
    return (await this.#get(rel)).hash;
  }

  /** Hashes several paths concurrently; the map is keyed by the paths as given. */
  async hashMany(rels: readonly string[]): Promise<Map<string, PathHash>> {
    const settled = await Promise.allSettled(rels.map((r) => this.hash(r)));
    const out = new Map<string, PathHash>();
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected') throw s.reason;
      out.set(rels[i] as string, s.value);
    }
    return out;
  }

  /**
   * The manifest behind a directory's hash (for explaining which files changed), or null when
   * `rel` is not a directory.
   */
  async manifest(rel: string): Promise<readonly ManifestEntry[] | null> {
    return (await this.#get(rel)).manifest;
  }

  #get(rel: string): Promise<Result> {
    const norm = normalizeRel(rel);
    let p = this.#paths.get(norm);
    if (p === undefined) {
      p = this.#compute(norm);
      // Memoised promises may reject before anyone awaits them again; never report them as unhandled.
      p.catch(() => undefined);
      this.#paths.set(norm, p);
    }
    return p;
  }

  async #compute(rel: string): Promise<Result> {
    const r = resolveRel(this.#wsReal, rel, this.#dirReal);
    if (r.kind === 'missing') return { hash: { kind: 'missing' }, manifest: null };
    if (r.kind === 'file') {
      const f = await this.#file(rel, r.real);
      return f === null
        ? { hash: { kind: 'missing' }, manifest: null }
        : { hash: { kind: 'file', hash: f.hash, size: f.size, exec: f.exec }, manifest: null };
    }
    const entries = walkDir(this.#wsReal, r.real, rel);
    const pending: Array<Promise<FileResult | null>> = [];
    let sliceStart = performance.now();
    for (const e of entries) {
      // Small files are hashed synchronously inside #file, so this loop can run long.
      pending.push(this.#file(posix.join(rel, e.rel), e.abs));
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
    // allSettled: never leave hashes running behind a rejection.
    const settled = await Promise.allSettled(pending);
    const manifest: ManifestEntry[] = [];
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected') throw s.reason;
      // null: the file vanished between listing and stat; it is not part of the directory.
      if (s.value !== null) manifest.push({ path: (entries[i] as (typeof entries)[number]).rel, ...s.value });
    }
    const d = digestManifest(manifest);
    return { hash: { kind: 'dir', hash: d.hash, size: d.size, files: d.files }, manifest };
  }

  /** One file by its logical workspace-relative path, memoised across directories. */
  #file(rel: string, abs: string): Promise<FileResult | null> {
    let p = this.#files.get(rel);
    if (p === undefined) {
      p = this.#hashFile(rel, abs);
      p.catch(() => undefined);
      this.#files.set(rel, p);
    }
    return p;
  }

  async #hashFile(rel: string, abs: string): Promise<FileResult | null> {
    const observedAt = Date.now();
    const st: BigIntStats | undefined = statSync(abs, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) return null;
    const exec = (st.mode & EXEC_BIT) !== 0n;
    const cached = this.#statCache.lookup(rel, st);
    if (cached !== undefined) {
      this.counters.statHits++;
      return { hash: cached, size: Number(st.size), exec };
    }
    const statSize = Number(st.size);
    const h =
      this.#syncSmall && statSize <= SMALL_FILE_MAX ? hashFileSync(abs) : await this.#limit(() => hashFile(abs));
    this.counters.filesHashed++;
    this.counters.bytesHashed += h.size;
    // A size mismatch means the file changed while we read it; remember nothing about it.
    if (h.size === statSize) this.#statCache.record(rel, st, h.hash, observedAt);
    return { hash: h.hash, size: h.size, exec };
  }
}
