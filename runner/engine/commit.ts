import type { StageComponents } from '../fingerprint/stage.js';
import { fingerprintOf } from '../fingerprint/stage.js';
import { HpcflowError } from '../errors.js';
import type { ImageSpec } from '../model/pipeline.js';
import type { ImageState } from '../executors/executor.js';
import type { LockEntry, Lockfile } from '../lockfile/lockfile.js';
import { datasetDeps } from '../datasets/stage-dep.js';
import { hashDeps, outputPaths, staticComponents } from './inputs.js';
import { recordOutputs } from './outputs.js';
import type { Workspace } from './workspace.js';

/**
 * `hpcflow commit`: record the outputs now on disk as the result of the stages' current inputs,
 * without running anything (like `dvc commit`) — for adopting results produced outside hpcflow,
 * or after fixing an output by hand. Outputs are stored in the cache, so they are restorable.
 * Every selected stage must have its image present and all its outputs on disk.
 */
export async function commitStages(
  ws: Workspace,
  ids: readonly string[],
  imageState: (spec: ImageSpec) => Promise<ImageState>,
): Promise<{ committed: string[] }> {
  const stages: Record<string, LockEntry> = { ...ws.lock.stages };
  const committed: string[] = [];
  for (const id of ids) {
    const stage = ws.graph.stages.get(id);
    if (stage === undefined) continue;
    const img = await imageState(stage.image);
    if (img.state !== 'present') {
      throw new HpcflowError('HPCFLOW_IMAGE_NOT_FOUND', `cannot commit ${id}: image ${img.tag} is not available (${img.reason})`, {
        hint: 'run the stage once, or build the image first',
      });
    }
    const { deps, blockers } = await hashDeps(stage, ws.graph, () => ({ state: 'disk' }), ws.hashPath, datasetDeps(ws.root, ws.hashPath, ws.store));
    if (blockers.length > 0) {
      throw new HpcflowError('HPCFLOW_STAGE_FAILED', `cannot commit ${id}: a dependency is missing`, { hint: 'produce it first' });
    }
    const upstream: Record<string, string> = {};
    for (const u of ws.graph.upstream.get(id) ?? []) {
      const fp = stages[u]?.fingerprint;
      if (fp !== undefined) upstream[u] = fp;
    }
    const components: StageComponents = { ...staticComponents(stage), image: { tag: img.image.tag, digest: img.image.digest }, deps, upstream };
    for (const p of outputPaths(stage)) {
      if ((await ws.hashPath(p)).kind === 'missing') {
        throw new HpcflowError('HPCFLOW_STAGE_FAILED', `cannot commit ${id}: output ${p} does not exist`, { hint: 'run the stage instead' });
      }
    }
    const records = await recordOutputs(stage, { workspace: ws.root, store: ws.store, hashPath: ws.hashPath });
    const fingerprint = fingerprintOf(components);
    if (!stage.outs.some((o) => !o.cache)) {
      await ws.runs.put({ schema: 1, fingerprint, stage: id, outs: records, createdAt: new Date().toISOString() });
    }
    stages[id] = { ...components, fingerprint, outRecords: records };
    committed.push(id);
  }
  const next: Lockfile = { schema: ws.lock.schema, stages };
  await ws.saveLock(next);
  return { committed };
}
