/**
 * A commit's workspace written into a plain directory, ready to run: its stages (parsed from the
 * commit's pipelines/) and the datasets they read, checked out from the user's content store.
 * Shared by `reproduce` and `measure`.
 */
import type { openCache } from '../cache/index.js';
import type { DatasetContext } from '../datasets/datasets.js';
import { checkoutDataset, listDatasets } from '../datasets/datasets.js';
import { readVersionFile, shortVersion, versionFileRel } from '../datasets/version-file.js';
import { HpcflowError, isHpcflowError } from '../errors.js';
import type { Stage } from '../model/pipeline.js';
import { fsSpecContext } from '../spec/load.js';
import { parsePipelineFile } from '../spec/parse.js';
import { listPipelineFiles } from '../spec/workspace-files.js';

const short = (oid: string): string => oid.slice(0, 12);

/** The stages of the pipelines in a written-out worktree of `commit`. */
export function parseStages(worktree: string, commit: string): Map<string, Stage> {
  const names = listPipelineFiles(worktree);
  if (names === null) {
    throw new HpcflowError('HPCFLOW_NOT_A_WORKSPACE', `commit ${short(commit)} has no pipelines/ directory in the workspace`, { hint: 'name a commit of this workspace\'s pipeline' });
  }
  const ctx = fsSpecContext(worktree);
  const out = new Map<string, Stage>();
  for (const name of names) {
    const rel = `pipelines/${name}`;
    for (const s of parsePipelineFile(ctx.stampAndRead(rel) ?? '', rel, ctx).stages) out.set(s.id, s);
  }
  return out;
}

const overlaps = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/**
 * Checks out, from the user's store, every dataset a stage depends on (`{ dataset }`, or a path
 * dep inside or around its directory) that no stage produces. Missing objects are an error
 * naming the dataset, its version and the pull command.
 */
export async function materialiseDatasets(
  worktree: string,
  stages: ReadonlyMap<string, Stage>,
  store: ReturnType<typeof openCache>['store'],
  env: NodeJS.ProcessEnv,
  commit: string,
  progress: (l: string) => void,
  /** What the checkout is for, in messages: `reproduce`, `measure`. */
  purpose = 'reproduce',
): Promise<string[]> {
  const outputs: string[] = [];
  for (const s of stages.values()) {
    for (const out of s.outs) outputs.push(out.path);
    if (s.metrics !== null) outputs.push(s.metrics);
  }
  const wanted = new Set<string>();
  const pathDeps: string[] = [];
  for (const s of stages.values()) {
    for (const d of s.deps) {
      if (d.kind === 'dataset') wanted.add(d.dataset);
      else if (d.kind === 'path') pathDeps.push(d.path);
    }
  }
  for (const name of listDatasets(worktree)) {
    if (wanted.has(name)) continue;
    let path: string;
    try {
      path = readVersionFile(worktree, name, { headerOnly: true })?.path ?? '';
    } catch {
      continue; // an unreadable version file: only an error for a stage that needs it
    }
    if (path !== '' && pathDeps.some((p) => overlaps(p, path))) wanted.add(name);
  }
  const ctx: DatasetContext = { root: worktree, store, lenient: false, link: ['reflink', 'copy'], gitCommit: false, env };
  const done: string[] = [];
  for (const name of [...wanted].sort()) {
    let head;
    try {
      head = readVersionFile(worktree, name, { headerOnly: true });
    } catch (e) {
      throw new HpcflowError('HPCFLOW_USAGE', `cannot ${purpose} ${short(commit)}: ${versionFileRel(name)} there is invalid: ${(e as Error).message}`, { cause: e });
    }
    if (head === null) continue; // the stage's run reports the missing dataset
    if (outputs.some((p) => p === head.path || head.path.startsWith(`${p}/`))) continue; // a stage makes it
    try {
      await checkoutDataset(ctx, name, { force: true });
    } catch (e) {
      if (isHpcflowError(e, 'HPCFLOW_CACHE_CORRUPT')) {
        throw new HpcflowError(
          'HPCFLOW_CACHE_CORRUPT',
          `cannot ${purpose} ${short(commit)}: dataset "${name}" version ${shortVersion(head.version)} (${versionFileRel(name)} at ${short(commit)}) is not in the local content store (${e.message})`,
          { hint: `fetch it with \`hpcflow dataset pull --no-checkout ${name}@${short(commit)}\` (your working copy stays as it is), then reproduce again`, cause: e },
        );
      }
      throw e;
    }
    progress(`dataset ${name}: version ${shortVersion(head.version)} checked out from the content store`);
    done.push(name);
  }
  return done;
}

