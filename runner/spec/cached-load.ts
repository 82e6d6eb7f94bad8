/**
 * The fast path: the resolved model cached in `.hpcflow/tmp/spec-cache.json`, valid while
 * every file the load read and every existence check it made still give the same answer.
 *
 * A hit must cost almost nothing (a no-op `status` of a 1,000-stage pipeline has ~150 ms
 * including Node start, and importing zod alone takes ~60 ms), so this module imports only
 * `node:` built-ins and types statically; the loader, yaml and zod are imported on a miss.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Pipeline } from '../model/pipeline.js';
import type { LoadTrace } from './load.js';
import { pipelineOrThrow } from './result.js';
import type { LoadResult } from './types.js';
import { kindOf, listPipelineFiles } from './workspace-files.js';

/** Bump when the cache layout or the `Pipeline` model changes. */
export const SPEC_CACHE_VERSION = 1;
/** Workspace-relative location of the cache file. */
export const SPEC_CACHE_PATH = '.hpcflow/tmp/spec-cache.json';
/** Files modified this close to the load (or after it) may change without changing mtime. */
const RACY_WINDOW_NS = 2_000_000_000n;

interface CacheFile {
  readonly version: number;
  readonly trace: LoadTrace;
  readonly pipeline: Pipeline;
}

/** Is every recorded input unchanged? */
export function specTraceValid(root: string, trace: LoadTrace): boolean {
  const names = listPipelineFiles(root);
  if (names === null || names.length !== trace.pipelineFiles.length) return false;
  if (names.some((n, i) => n !== trace.pipelineFiles[i])) return false;
  const racyFrom = BigInt(trace.startedNs) - RACY_WINDOW_NS;
  for (const f of trace.files) {
    const abs = join(root, f.path);
    const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!st || Number(st.size) !== f.size || st.mtimeNs.toString() !== f.mtimeNs || st.ino.toString() !== f.ino) return false;
    // Same stamp but written around the time of the load: an edit within one mtime tick would
    // be invisible, so compare content (as git does for "racily clean" entries).
    if (st.mtimeNs >= racyFrom && createHash('sha256').update(readFileSync(abs)).digest('hex') !== f.sha256) return false;
  }
  for (const [path, kind] of trace.checks) if (kindOf(join(root, path)) !== kind) return false;
  return true;
}

/** The cached model when it is still valid, else null. Never throws. */
export function readSpecCache(workspace: string): Pipeline | null {
  const root = resolve(workspace);
  try {
    const cache = JSON.parse(readFileSync(join(root, SPEC_CACHE_PATH), 'utf8')) as CacheFile;
    if (cache.version !== SPEC_CACHE_VERSION || !cache.trace || !cache.pipeline) return null;
    return specTraceValid(root, cache.trace) ? cache.pipeline : null;
  } catch {
    return null;
  }
}

/** Write the cache atomically (temp file + rename); a read-only workspace just goes uncached. */
export function writeSpecCache(workspace: string, pipeline: Pipeline, trace: LoadTrace): void {
  const file = join(resolve(workspace), SPEC_CACHE_PATH);
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    const body: CacheFile = { version: SPEC_CACHE_VERSION, trace, pipeline };
    writeFileSync(tmp, JSON.stringify(body));
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/** Like `loadWorkspace`, answered from the cache when nothing it depends on changed. */
export async function loadWorkspaceCached(workspace: string): Promise<LoadResult> {
  const hit = readSpecCache(workspace);
  if (hit) return { ok: true, pipeline: hit };
  const { loadWorkspaceTraced } = await import('./load.js');
  const { result, trace } = await loadWorkspaceTraced(workspace);
  if (result.ok) writeSpecCache(workspace, result.pipeline, trace);
  return result;
}

/** Like `loadWorkspaceOrThrow`, through the cache. */
export async function loadWorkspaceCachedOrThrow(workspace: string): Promise<Pipeline> {
  return pipelineOrThrow(await loadWorkspaceCached(workspace));
}

/** The trace of the cached load, when the cache is present and still valid (for snapshots). */
export function readSpecTrace(workspace: string): LoadTrace | null {
  const root = resolve(workspace);
  try {
    const cache = JSON.parse(readFileSync(join(root, SPEC_CACHE_PATH), 'utf8')) as CacheFile;
    return cache.version === SPEC_CACHE_VERSION && cache.trace && specTraceValid(root, cache.trace) ? cache.trace : null;
  } catch {
    return null;
  }
}
