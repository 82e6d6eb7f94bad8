/**
 * Which files a run's results commit holds: the lockfile, the run record, the metrics and small
 * outputs of the run's stages that completed, and the dataset versions the run recorded —
 * only paths hpcflow knows it wrote (never a whole-tree status: far too slow on large checkouts).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageGraph } from '../dag/graph.js';
import type { RunSummary } from './events.js';

export interface ResultsFilesInput {
  readonly root: string;
  readonly graph: StageGraph;
  readonly summary: RunSummary;
  /** Absolute paths always committed: the lockfile, the run record, dataset version files. */
  readonly always: readonly string[];
  /** Outputs larger than this (a directory: in total) stay in the cache only. */
  readonly maxFileBytes: number;
}

/** Absolute paths, sorted, unique. */
export async function resultsFiles(i: ResultsFilesInput): Promise<string[]> {
  const out = new Set(i.always);
  for (const [id, oc] of i.summary.outcomes) {
    // Up-to-date stages too: their outputs may not be committed yet (a run that was killed after
    // the stage and before its results commit); unchanged blobs leave the tree as it was.
    if (oc.status !== 'ran' && oc.status !== 'restored' && oc.status !== 'up-to-date') continue;
    const stage = i.graph.stages.get(id);
    if (stage === undefined) continue;
    if (stage.metrics !== null) for (const f of await filesUnder(join(i.root, stage.metrics), Infinity)) out.add(f);
    for (const o of stage.outs) for (const f of await filesUnder(join(i.root, o.path), i.maxFileBytes)) out.add(f);
  }
  return [...out].sort();
}

/** The files of a file or directory, or [] when it is missing or larger than `max` bytes in total. */
async function filesUnder(abs: string, max: number): Promise<string[]> {
  let st;
  try {
    st = await stat(abs);
  } catch {
    return [];
  }
  if (st.isFile()) return st.size <= max ? [abs] : [];
  if (!st.isDirectory()) return [];
  const files: string[] = [];
  let total = 0;
  for (const e of await readdir(abs, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const f = join(e.parentPath, e.name);
    total += (await stat(f)).size;
    if (total > max) return [];
    files.push(f);
  }
  return files;
}
