/**
 * Stage outputs declared with `dataset: <name>`: after a run (or commit) the output directory's
 * record becomes the dataset's version file. The record's hash is the directory manifest's
 * hash, i.e. the version id, and the manifest is already in the store as a tree object, so this
 * reads no file content.
 */
import type { ContentStore } from '../cache/store.js';
import type { StageGraph } from '../dag/graph.js';
import type { Lockfile } from '../lockfile/lockfile.js';
import { makeVersion, readVersionFile, writeVersionFile } from './version-file.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes the version files of produced datasets that changed; returns the datasets written. */
export async function recordDatasetOutputs(root: string, graph: StageGraph, lock: Lockfile, store: ContentStore): Promise<string[]> {
  const written: string[] = [];
  for (const stage of graph.stages.values()) {
    for (const out of stage.outs) {
      if (out.dataset === undefined) continue;
      const rec = lock.stages[stage.id]?.outRecords.find((r) => r.path === out.path);
      if (rec === undefined || rec.kind !== 'dir' || !(await store.has(rec.hash))) continue;
      const cur = readVersionFile(root, out.dataset, { headerOnly: true });
      if (cur !== null && cur.version === rec.hash && cur.path === out.path) continue;
      const v = makeVersion(out.dataset, out.path, await store.readTree(rec.hash));
      await mkdir(join(root, 'datasets'), { recursive: true });
      await writeVersionFile(root, v);
      written.push(out.dataset);
    }
  }
  return written;
}
