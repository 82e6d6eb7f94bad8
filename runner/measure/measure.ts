/**
 * `hpcflow measure`: run the stages of two revisions (a pull request's base and head) alternately,
 * several rounds, on the same machine — or, on Slurm, as job steps of ONE allocation, so both
 * see the same nodes — and collect every round's metrics per side. `hpcflow report --samples`
 * then judges head against base on these paired-in-time samples instead of on two runs made at
 * different times on different nodes.
 *
 * 1. Write both commits' workspaces into directories under .hpcflow/measure (the compute nodes
 *    see them when the workspace is on a shared filesystem), with their datasets.
 * 2. One warm-up run per side (builds images, runs upstream stages, warms caches); its metrics
 *    are not kept.
 * 3. Rounds in ABBA order: `hpcflow run --force` of the measured stages on one side, then the
 *    other; after each, the metrics files of the stages that ran are appended to that side.
 * 4. Remove the directories (unless kept).
 */
import { readFile, mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openCache } from '../cache/index.js';
import { HpcflowError } from '../errors.js';
import { openHistory, resolveCommit } from '../history/git-history.js';
import type { Stage } from '../model/pipeline.js';
import { defaultCli, runChild } from '../reproduce/run-child.js';
import { materialiseTree } from '../reproduce/tree.js';
import { materialiseDatasets, parseStages } from '../reproduce/worktree.js';
import type { SamplesFile, Side, SideSamples } from './samples.js';
import { addRun, alternation } from './samples.js';

export interface MeasureOptions {
  readonly workspace: string;
  readonly base: string;
  readonly head: string;
  readonly rounds: number;
  /** Stages to measure (ids or selections as `run` takes them); default every stage with metrics. */
  readonly stages?: readonly string[];
  /** The user's content store (datasets are checked out from it). */
  readonly cacheDir: string;
  /** Extra `hpcflow run` options (--executor, --site, -j…). */
  readonly runArgs?: readonly string[];
  readonly executor: string;
  /** The Slurm allocation the runs' stages run in as steps (null: none). */
  readonly allocation?: { readonly jobId: string; readonly nodes: readonly string[] } | null;
  readonly keep?: boolean;
  readonly cli?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly onProgress?: (line: string) => void;
  readonly signal?: AbortSignal;
}

const short = (oid: string): string => oid.slice(0, 12);

interface Tree {
  readonly side: Side;
  readonly rev: string;
  readonly commit: string;
  readonly dir: string;
  readonly stages: Map<string, Stage>;
}

export async function measure(o: MeasureOptions): Promise<SamplesFile & { kept: string | null }> {
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new HpcflowError('HPCFLOW_USAGE', `rounds must be a positive integer (got ${o.rounds})`);
  const progress = o.onProgress ?? (() => undefined);
  const env = { ...(o.env ?? process.env) };
  if (o.allocation) env.HPCFLOW_SLURM_ALLOCATION = o.allocation.jobId;
  const root = await realpath(o.workspace);
  const repo = await openHistory(root);
  const commits = { base: await resolveCommit(repo, o.base), head: await resolveCommit(repo, o.head) };
  const startedAt = new Date().toISOString();
  const parent = join(root, '.hpcflow', 'measure');
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(join(parent, 'tmp-'));
  const cacheDir = join(tmp, 'cache');
  const userStore = openCache(o.cacheDir).store;
  const checkAbort = (): void => {
    if (o.signal?.aborted === true) throw new HpcflowError('HPCFLOW_ABORTED', 'measure interrupted; no samples were written');
  };
  let keep = false;
  try {
    const trees: Record<Side, Tree> = {} as Record<Side, Tree>;
    for (const side of ['base', 'head'] as const) {
      checkAbort();
      const commit = commits[side];
      const dir = join(tmp, side);
      const t = await materialiseTree({ gitRoot: repo.dir, commit, subdir: repo.prefix.replace(/\/$/, ''), dest: dir, skip: ['.hpcflow'], cache: repo.cache });
      const stages = parseStages(dir, commit);
      const datasets = await materialiseDatasets(dir, stages, userStore, env, commit, progress, 'measure');
      progress(`${side} ${short(commit)}: ${t.files} files${datasets.length > 0 ? `, datasets ${datasets.join(', ')}` : ''}`);
      trees[side] = { side, rev: side === 'base' ? o.base : o.head, commit, dir, stages };
    }
    const selection = o.stages !== undefined && o.stages.length > 0 ? [...o.stages] : [...trees.head.stages.values()].filter((s) => s.metrics !== null).map((s) => s.id);
    if (selection.length === 0) throw new HpcflowError('HPCFLOW_USAGE', `no stage of ${short(commits.head)} declares a metrics file: there is nothing to measure`, { hint: 'name the stages to measure, or give them `metrics:`' });

    const runSide = async (tree: Tree, force: boolean, what: string): Promise<{ runId: string | null; ms: number; ran: string[] }> => {
      checkAbort();
      const args = ['run', '--json', ...(force ? ['--force'] : []), '-C', tree.dir, '--cache-dir', cacheDir, ...(o.runArgs ?? []), ...selection];
      const t0 = Date.now();
      const child = await runChild(o.cli ?? defaultCli(), args, env, {}, o.signal, o.cwd);
      const ms = Date.now() - t0;
      checkAbort();
      if (child.code !== 0) {
        const failed = [...child.outcomes].filter(([, oc]) => oc.status === 'failed').map(([id, oc]) => `${id}: ${oc.error ?? 'failed'}`);
        const tail = child.stderr.trim().split('\n').slice(-20).join('\n');
        keep = o.keep === true;
        throw new HpcflowError('HPCFLOW_STAGE_FAILED', `the ${what} run of ${tree.side} ${short(tree.commit)} failed (hpcflow run exited with ${child.code})${failed.length > 0 ? `: ${failed.join('; ')}` : ''}${tail === '' ? '' : `\n${tail}`}`, {
          hint: `both sides must run cleanly to be compared; try \`hpcflow run\` at ${short(tree.commit)}`,
        });
      }
      const ran = [...child.outcomes].filter(([, oc]) => oc.status === 'ran').map(([id]) => id);
      return { runId: child.runId, ms, ran };
    };

    // 2. Warm-up, base first.
    for (const side of ['base', 'head'] as const) {
      const r = await runSide(trees[side], false, 'warm-up');
      progress(`warm-up ${side}: ${r.ran.length} stage${r.ran.length === 1 ? '' : 's'} ran in ${(r.ms / 1000).toFixed(1)} s`);
    }
    // 3. Rounds.
    const samples: Record<Side, SideSamples> = { base: {}, head: {} };
    const order: { side: Side; runId: string | null; ms: number }[] = [];
    for (const [i, side] of alternation(o.rounds).entries()) {
      const tree = trees[side];
      const r = await runSide(tree, true, `round ${Math.floor(i / 2) + 1}`);
      let values = 0;
      for (const id of r.ran) {
        const stage = tree.stages.get(id);
        if (stage?.metrics === null || stage?.metrics === undefined) continue;
        let json: unknown;
        try {
          json = JSON.parse(await readFile(join(tree.dir, stage.metrics), 'utf8'));
        } catch (e) {
          throw new HpcflowError('HPCFLOW_STAGE_FAILED', `${side} ${short(tree.commit)}: the metrics file ${stage.metrics} of ${id} cannot be read as JSON: ${(e as Error).message}`);
        }
        values += addRun(samples[side], id, json);
      }
      order.push({ side, runId: r.runId, ms: r.ms });
      progress(`round ${Math.floor(i / 2) + 1}/${o.rounds} ${side}: ${values} value${values === 1 ? '' : 's'} in ${(r.ms / 1000).toFixed(1)} s`);
    }
    keep = o.keep === true;
    return {
      format: 'hpcflow-measure/1',
      base: { rev: o.base, commit: commits.base },
      head: { rev: o.head, commit: commits.head },
      rounds: o.rounds,
      order,
      stages: selection,
      host: hostname(),
      executor: o.executor,
      allocation: o.allocation ?? null,
      startedAt,
      finishedAt: new Date().toISOString(),
      samples,
      kept: keep ? tmp : null,
    };
  } finally {
    if (!keep) await rm(tmp, { recursive: true, force: true });
  }
}
