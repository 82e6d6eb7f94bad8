/** The shared content cache: object store plus run cache under one directory. */
import { join } from 'node:path';
import { RunCache } from './run-cache.js';
import { ContentStore } from './store.js';
import type { ContentStoreOptions } from './store.js';

export { ContentStore, missingObjectError } from './store.js';
export type { ContentStoreOptions, GcOptions, GcResult, OutputRecord } from './store.js';
export { RunCache, referencedObjects } from './run-cache.js';
export type { RunCacheEntry, RunCacheLookup } from './run-cache.js';
export { outputRecordProblem } from './records.js';

/** An opened cache directory. */
export interface Cache {
  readonly dir: string;
  readonly store: ContentStore;
  readonly runs: RunCache;
}

/** Where a workspace keeps its cache unless told otherwise. */
export function defaultCacheDir(workspace: string): string {
  return join(workspace, '.hpcflow', 'cache');
}

/**
 * Opens (lazily creates) the cache at `cacheDir`. Several workspaces and runner processes may
 * share one directory: every write is an atomic rename of a complete temp file.
 */
export function openCache(cacheDir: string, opts: ContentStoreOptions = {}): Cache {
  return {
    dir: cacheDir,
    store: new ContentStore(cacheDir, opts),
    runs: new RunCache(cacheDir, opts.fsync === undefined ? {} : { fsync: opts.fsync }),
  };
}
