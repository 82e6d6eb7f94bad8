import { join } from 'node:path';
import { openCache } from '../cache/index.js';
import type { ContentStore } from '../cache/store.js';
import type { RunCache } from '../cache/run-cache.js';
import type { StageGraph } from '../dag/graph.js';
import { buildGraph } from '../dag/graph.js';
import { PathHasher } from '../fingerprint/path-hasher.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import { StatCache } from '../fingerprint/stat-cache.js';
import type { Lockfile } from '../lockfile/lockfile.js';
import { LOCKFILE_NAME, readLockfile, writeLockfile } from '../lockfile/lockfile.js';
import type { Pipeline } from '../model/pipeline.js';
import { loadWorkspaceCachedOrThrow } from '../spec/cached-load.js';
import type { SiteConfig } from '../config/site-config.js';
import type { Placement } from '../frameworks/types.js';
import type { MatrixFilter } from './matrix-filter.js';
import { filterMatrix } from './matrix-filter.js';

/** Everything a command needs about one workspace, opened once. */
export interface Workspace {
  readonly root: string;
  readonly pipeline: Pipeline;
  readonly graph: StageGraph;
  readonly lockPath: string;
  lock: Lockfile;
  readonly store: ContentStore;
  readonly runs: RunCache;
  readonly statCache: StatCache;
  hashPath(rel: string): Promise<PathHash>;
  /** Files of a directory hashed by {@link hashPath} (relative to it), or [] for a file. */
  filesIn(rel: string): Promise<readonly string[]>;
  /** Forget memoised hashes (after outputs were rewritten). */
  invalidate(paths: readonly string[]): void;
  saveLock(lock: Lockfile): Promise<void>;
  /** Persist the stat cache (cheap when nothing changed). */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Shared cache directory (several workspaces/runners may share one). */
  readonly cacheDir?: string;
  /** Compare only path + size for unchanged-file detection (filesystems whose mtimes drift). */
  readonly lenient?: boolean;
  /** Site configuration: framework images and launcher settings for kernel stages. */
  readonly site?: SiteConfig;
  /** Where kernel stages run (the executor's placement). Default local. */
  readonly placement?: Placement;
  /** Keep only these matrix cells (`--matrix key=v1,v2`). */
  readonly matrix?: MatrixFilter;
}

export async function openWorkspace(root: string, opts: OpenOptions = {}): Promise<Workspace> {
  const loaded = filterMatrix(await loadWorkspaceCachedOrThrow(root), opts.matrix ?? {});
  const placement = opts.placement ?? 'local';
  // The spec already planned kernel stages for a local run without a site: re-plan only otherwise.
  const pipeline =
    opts.site === undefined && placement === 'local'
      ? loaded
      : (await import('../frameworks/apply-site.js')).applySite(loaded, opts.site ?? (await import('../config/site-config.js')).DEFAULT_SITE, placement);
  const graph = buildGraph(pipeline);
  const lockPath = join(root, LOCKFILE_NAME);
  const lock = readLockfile(lockPath);
  const { store, runs } = openCache(opts.cacheDir ?? join(root, '.hpcflow', 'cache'));
  const statCache = StatCache.load(join(root, '.hpcflow', 'tmp', 'stat-cache.json'), { lenient: opts.lenient ?? false });
  let hasher = new PathHasher({ workspace: root, statCache });
  const ws: Workspace = {
    root,
    pipeline,
    graph,
    lockPath,
    lock,
    store,
    runs,
    statCache,
    hashPath: (rel) => hasher.hash(rel),
    filesIn: async (rel) => ((await hasher.manifest(rel)) ?? []).map((e) => e.path),
    invalidate: () => {
      hasher = new PathHasher({ workspace: root, statCache });
    },
    async saveLock(next) {
      ws.lock = next;
      await writeLockfile(lockPath, next);
    },
    async close() {
      await statCache.save();
    },
  };
  return ws;
}
