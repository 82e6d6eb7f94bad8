/**
 * Listing a workspace's pipeline files and stat-ing paths: shared by the full loader and the
 * cache fast path, so it depends on `node:fs` only.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Pipeline file names of a workspace (`*.yaml`, `*.yml`), sorted; null when `pipelines/` is missing. */
export function listPipelineFiles(workspace: string): string[] | null {
  let entries;
  try {
    entries = readdirSync(join(workspace, 'pipelines'), { withFileTypes: true });
  } catch {
    return null;
  }
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && /\.ya?ml$/i.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** What is at an absolute path, following symlinks. */
export function kindOf(abs: string): 'file' | 'dir' | null {
  if (abs.includes('\0')) return null; // no such path can exist (and statSync would throw)
  const st = statSync(abs, { throwIfNoEntry: false });
  if (!st) return null;
  return st.isDirectory() ? 'dir' : 'file';
}
