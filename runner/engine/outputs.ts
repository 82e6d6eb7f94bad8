import type { ContentStore, OutputRecord } from '../cache/store.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { Stage } from '../model/pipeline.js';

/**
 * Records every output of a stage (metrics included), sorted by path: cached outputs are stored
 * in the content store, uncached ones only hashed. Every output must exist.
 */
export async function recordOutputs(
  stage: Stage,
  env: { readonly workspace: string; readonly store: ContentStore; readonly hashPath: (rel: string) => Promise<PathHash> },
): Promise<OutputRecord[]> {
  const records: OutputRecord[] = [];
  const outs = stage.metrics === null ? stage.outs : [...stage.outs, { path: stage.metrics, cache: true }];
  for (const out of outs) {
    if (out.cache) {
      records.push(await env.store.saveOutput(env.workspace, out.path));
      continue;
    }
    const h = await env.hashPath(out.path);
    if (h.kind === 'file') records.push({ path: out.path, kind: 'file', hash: h.hash, size: h.size, exec: h.exec });
    else if (h.kind === 'dir') records.push({ path: out.path, kind: 'dir', hash: h.hash, size: h.size, files: h.files });
  }
  return sortRecords(records);
}

export function sortRecords(r: readonly OutputRecord[]): OutputRecord[] {
  return [...r].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
