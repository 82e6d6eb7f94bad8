/**
 * Remembers file hashes keyed by workspace-relative path and validated by stat data, so an
 * unchanged file is never read again. Persisted as one JSON document:
 *
 *   {"v":1,"entries":[[rel, dev, ino, size, mtimeNs, hash], …]}
 *
 * dev/ino/mtimeNs are decimal strings (they are 64-bit; JSON numbers are not), size a number.
 * Arrays instead of objects keep 100,000 entries at ~15 MB, and the parsed rows are used as the
 * in-memory entries as they are (compared against `BigInt#toString()` of a fresh stat), so a
 * load is one `JSON.parse` plus a Map insert per row: no per-entry objects or field parsing.
 */
import type { BigIntStats } from 'node:fs';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureDir, writeFileAtomic } from '../util/fs-atomic.js';

/** Options for {@link StatCache.load}. */
export interface StatCacheOptions {
  /**
   * Compare only the size. For NFS/Lustre, whose mtimes and inode numbers are not stable across
   * clients; the price is that a same-size rewrite goes unnoticed.
   */
  readonly lenient?: boolean;
  /**
   * Timestamp granularity guard in ms (default 2000). A file whose mtime is this close to the
   * moment it was stat'ed may be rewritten within the same timestamp tick without its mtime
   * changing (ext4 ticks are ~4 ms, NFS/Lustre up to 1 s); such "racy" entries are never
   * trusted and not persisted, exactly as git treats racily-clean index entries.
   */
  readonly racyWindowMs?: number;
}

/** [rel, dev, ino, size, mtimeNs, hash]: the persisted row, also the in-memory entry. */
type Row = [string, string, string, number, string, string];

const FORMAT_VERSION = 1;
const HASH_RE = /^[0-9a-f]{64}$/;

function isRow(x: unknown): x is Row {
  return (
    Array.isArray(x) &&
    x.length === 6 &&
    typeof x[0] === 'string' &&
    typeof x[1] === 'string' &&
    typeof x[2] === 'string' &&
    typeof x[3] === 'number' &&
    typeof x[4] === 'string' &&
    typeof x[5] === 'string' &&
    HASH_RE.test(x[5])
  );
}

/** Persistent path → (stat, hash) map; see the module documentation. */
export class StatCache {
  /** Where {@link save} writes; null for an in-memory cache. */
  readonly file: string | null;
  readonly lenient: boolean;
  /** Set when the file existed but could not be used (it is then ignored and rewritten). */
  readonly loadWarning: string | undefined;
  readonly #racyWindowNs: bigint;
  readonly #entries: Map<string, Row>;
  /** Entries recorded within the racy window: not trusted by lookups, not saved. */
  readonly #racy = new Set<string>();
  readonly #touched = new Set<string>();
  #dirty = false;

  private constructor(
    file: string | null,
    opts: StatCacheOptions,
    entries: Map<string, Row>,
    loadWarning: string | undefined,
  ) {
    this.file = file;
    this.lenient = opts.lenient ?? false;
    this.#racyWindowNs = BigInt(Math.round((opts.racyWindowMs ?? 2000) * 1e6));
    this.#entries = entries;
    this.loadWarning = loadWarning;
  }

  /**
   * Loads the cache persisted at `file`. A missing file gives an empty cache; an unreadable or
   * foreign one also does (with {@link loadWarning} set): losing it only costs re-hashing.
   * Synchronous: one read and one `JSON.parse` at startup (~120 ms for 100,000 entries, 15 MB).
   */
  static load(file: string, opts: StatCacheOptions = {}): StatCache {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new StatCache(file, opts, new Map(), undefined);
      return new StatCache(file, opts, new Map(), `stat cache ${file} unreadable: ${(e as Error).message}`);
    }
    const entries = new Map<string, Row>();
    try {
      const doc = JSON.parse(text) as { v?: unknown; entries?: unknown };
      if (doc.v !== FORMAT_VERSION || !Array.isArray(doc.entries)) throw new Error('unknown format');
      for (const row of doc.entries as unknown[]) {
        if (!isRow(row)) throw new Error('malformed entry');
        entries.set(row[0], row);
      }
    } catch (e) {
      const c = new StatCache(file, opts, new Map(), `stat cache ${file} ignored: ${(e as Error).message}`);
      c.#dirty = true;
      return c;
    }
    return new StatCache(file, opts, entries, undefined);
  }

  /** A cache that is never persisted ({@link save} is a no-op). */
  static inMemory(opts: StatCacheOptions = {}): StatCache {
    return new StatCache(null, opts, new Map(), undefined);
  }

  /** Number of entries held (including racy ones). */
  get size(): number {
    return this.#entries.size;
  }

  /** True when {@link save} would write. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** The recorded hash of `rel` if `st` (a bigint stat taken now) still matches, else undefined. */
  lookup(rel: string, st: BigIntStats): string | undefined {
    this.#touched.add(rel);
    const e = this.#entries.get(rel);
    if (e === undefined || e[3] !== Number(st.size)) return undefined;
    if (this.lenient) return e[5];
    if (
      e[4] !== st.mtimeNs.toString() ||
      e[2] !== st.ino.toString() ||
      e[1] !== st.dev.toString() ||
      this.#racy.has(rel)
    ) {
      return undefined;
    }
    return e[5];
  }

  /**
   * Records that the file `rel` with stat `st` has content hash `hash`.
   *
   * @param observedAtMs wall-clock time (ms) taken *before* the stat; a file modified less than
   *   the racy window before that moment is remembered for nothing (see {@link StatCacheOptions}).
   */
  record(rel: string, st: BigIntStats, hash: string, observedAtMs: number = Date.now()): void {
    this.#touched.add(rel);
    const racy = !this.lenient && BigInt(Math.floor(observedAtMs)) * 1_000_000n - st.mtimeNs < this.#racyWindowNs;
    const next: Row = [rel, st.dev.toString(), st.ino.toString(), Number(st.size), st.mtimeNs.toString(), hash];
    const prev = this.#entries.get(rel);
    const same = prev !== undefined && prev.every((v, i) => v === next[i]) && this.#racy.has(rel) === racy;
    if (same) return;
    this.#entries.set(rel, next);
    if (racy) this.#racy.add(rel);
    else this.#racy.delete(rel);
    this.#dirty = true;
  }

  /** Forgets one path (e.g. a file the runner knows it just replaced). */
  forget(rel: string): void {
    this.#racy.delete(rel);
    if (this.#entries.delete(rel)) this.#dirty = true;
  }

  /** Drops entries neither looked up nor recorded since load; returns how many. */
  prune(): number {
    let n = 0;
    for (const rel of this.#entries.keys()) {
      if (!this.#touched.has(rel)) {
        this.#entries.delete(rel);
        this.#racy.delete(rel);
        n++;
      }
    }
    if (n > 0) this.#dirty = true;
    return n;
  }

  /**
   * Writes the cache atomically if anything changed; returns whether it wrote. Concurrent
   * runners on one workspace may each save: the last one wins, which only costs re-hashing.
   */
  async save(): Promise<boolean> {
    if (this.file === null || !this.#dirty) return false;
    const rows: Row[] = [];
    for (const [rel, row] of this.#entries) if (!this.#racy.has(rel)) rows.push(row);
    await ensureDir(dirname(this.file));
    await writeFileAtomic(this.file, JSON.stringify({ v: FORMAT_VERSION, entries: rows }));
    this.#dirty = false;
    return true;
  }
}
