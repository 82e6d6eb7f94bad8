/**
 * The run cache: stage fingerprint → the outputs that fingerprint produced, at
 * `<cacheDir>/runs/<2>/<rest>.json`. A hit lets the runner restore outputs instead of running.
 * Entries are written atomically; a damaged entry is a cache miss with a warning, never a crash.
 */
import { readFile, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HpcflowError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/fs-atomic.js';
import type { OutputRecord } from './records.js';
import { outputRecordProblem } from './records.js';
import type { ContentStore } from './store.js';

/** One cached stage run. */
export interface RunCacheEntry {
  readonly schema: 1;
  readonly fingerprint: string;
  /** Stage id, for humans and `gc` reports. */
  readonly stage: string;
  readonly outs: readonly OutputRecord[];
  /** The stage's metrics JSON, if it wrote one. */
  readonly metrics?: unknown;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** Result of {@link RunCache.get}: `warning` explains a miss caused by a damaged entry. */
export interface RunCacheLookup {
  readonly entry: RunCacheEntry | null;
  readonly warning: string | null;
}

/** Fingerprints are lowercase hex (BLAKE3 digests); anything else could escape the directory. */
const FP_RE = /^[0-9a-f]{16,128}$/;
const SHARD_RE = /^[0-9a-f]{2}$/;

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

function entryProblem(x: unknown, fingerprint: string): string | null {
  if (typeof x !== 'object' || x === null) return 'not a JSON object';
  const e = x as Record<string, unknown>;
  if (e.schema !== 1) return `unsupported schema ${JSON.stringify(e.schema)}`;
  if (e.fingerprint !== fingerprint) return 'fingerprint does not match the file name';
  if (typeof e.stage !== 'string') return 'stage is not a string';
  if (typeof e.createdAt !== 'string') return 'createdAt is not a string';
  if (!Array.isArray(e.outs)) return 'outs is not an array';
  for (const o of e.outs as unknown[]) {
    const p = outputRecordProblem(o);
    if (p !== null) return p;
  }
  return null;
}

/** Fingerprint → outputs map; see the module documentation. */
export class RunCache {
  readonly dir: string;
  readonly #fsync: boolean;

  constructor(cacheDir: string, opts: { readonly fsync?: boolean } = {}) {
    this.dir = join(cacheDir, 'runs');
    this.#fsync = opts.fsync ?? false;
  }

  /** The file holding `fingerprint`'s entry. */
  pathFor(fingerprint: string): string {
    if (!FP_RE.test(fingerprint)) {
      throw new HpcflowError('HPCFLOW_USAGE', `invalid fingerprint ${JSON.stringify(fingerprint)} (expected lowercase hex)`);
    }
    return join(this.dir, fingerprint.slice(0, 2), `${fingerprint.slice(2)}.json`);
  }

  async get(fingerprint: string): Promise<RunCacheLookup> {
    const file = this.pathFor(fingerprint);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return { entry: null, warning: null };
      return { entry: null, warning: `run cache entry ${file} is unreadable (${(e as Error).message}); treating it as a miss` };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return { entry: null, warning: `run cache entry ${file} is not valid JSON (${(e as Error).message}); treating it as a miss` };
    }
    const problem = entryProblem(parsed, fingerprint);
    if (problem !== null) return { entry: null, warning: `run cache entry ${file} is invalid (${problem}); treating it as a miss` };
    return { entry: parsed as RunCacheEntry, warning: null };
  }

  /** Writes (or replaces) the entry for `entry.fingerprint` atomically. */
  async put(entry: RunCacheEntry): Promise<void> {
    const problem = entryProblem(entry, entry.fingerprint);
    if (problem !== null) throw new HpcflowError('HPCFLOW_USAGE', `refusing to cache an invalid run entry: ${problem}`);
    const file = this.pathFor(entry.fingerprint);
    await ensureDir(dirname(file));
    await writeFileAtomic(file, `${JSON.stringify(entry)}\n`, { fsync: this.#fsync });
  }

  /** Every fingerprint with an entry, sorted. */
  async list(): Promise<string[]> {
    let shards: string[];
    try {
      shards = await readdir(this.dir);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return [];
      throw e;
    }
    const out: string[] = [];
    for (const shard of shards) {
      if (!SHARD_RE.test(shard)) continue;
      const names = await readdir(join(this.dir, shard)).catch(() => [] as string[]);
      for (const name of names) {
        // Skips in-flight temp files (".<name>.tmp-…"), which do not end in ".json".
        if (!name.endsWith('.json')) continue;
        const fp = shard + name.slice(0, -'.json'.length);
        if (FP_RE.test(fp)) out.push(fp);
      }
    }
    return out.sort();
  }

  /** Deletes an entry; false when there was none. */
  async remove(fingerprint: string): Promise<boolean> {
    try {
      await unlink(this.pathFor(fingerprint));
      return true;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      throw e;
    }
  }
}

/**
 * Every object an entry needs for a restore: file objects, tree objects and the files listed
 * in each tree. A tree that is missing or damaged contributes only its own id (what it listed
 * is unknowable; restoring it would fail anyway).
 */
export async function referencedObjects(entry: RunCacheEntry, store: ContentStore): Promise<Set<string>> {
  const out = new Set<string>();
  for (const rec of entry.outs) {
    out.add(rec.hash);
    if (rec.kind !== 'dir') continue;
    try {
      for (const e of await store.readTree(rec.hash)) out.add(e.hash);
    } catch (e) {
      if (!(e instanceof HpcflowError && e.code === 'HPCFLOW_CACHE_CORRUPT')) throw e;
    }
  }
  return out;
}
