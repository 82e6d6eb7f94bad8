/**
 * `hpcflow run --commit-results [--push]`: after the run, the lockfile, the run record, the metrics
 * and small outputs of what ran, and the dataset versions it recorded are committed — to the
 * checked-out branch, or to the results ref of hpcflow.yaml — and pushed, retrying on a
 * non-fast-forward by re-applying onto what the remote has. Only these paths are staged.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { RunContext } from '../engine/run-record.js';
import type { RunSummary } from '../engine/events.js';
import { resultsFiles } from '../engine/results-files.js';
import { HpcflowError } from '../errors.js';
import { findGitRoot, resolveRev } from '../git/repo.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import type { CliWorkspace } from './context.js';
import type { CliIO } from './io.js';

export const HPCFLOW_VERSION = '0.1.0';

/** What the run record says about the run's inputs and environment. */
export async function runContext(ws: CliWorkspace): Promise<RunContext> {
  const gitRoot = await findGitRoot(ws.root);
  const inputCommit = gitRoot === null ? null : await resolveRev(gitRoot, 'HEAD');
  const images: Record<string, { tag: string; digest: string }> = {};
  for (const [id, e] of Object.entries(ws.lock.stages)) images[id] = { tag: e.image.tag, digest: e.image.digest };
  const metrics: Record<string, string> = {};
  for (const s of ws.graph.stages.values()) if (s.metrics !== null) metrics[s.id] = s.metrics;
  return {
    inputCommit,
    images,
    metrics,
    environment: {
      hpcflow: HPCFLOW_VERSION,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      executor: ws.executorName,
      host: hostname(),
      site: ws.siteConfig?.digest ?? '',
    },
  };
}

export interface CommitRunResultsOptions {
  readonly ws: CliWorkspace;
  readonly summary: RunSummary;
  /** The run record under .hpcflow/runs (copied into the runs directory of the repository). */
  readonly recordFile: string;
  readonly datasetFiles: readonly string[];
  readonly inputCommit: string | null;
  readonly push: boolean;
  readonly remote: string;
  readonly io: CliIO;
}

export async function commitRunResults(o: CommitRunResultsOptions): Promise<void> {
  const { ws, summary, io } = o;
  const gitRoot = await findGitRoot(ws.root);
  if (gitRoot === null || o.inputCommit === null) {
    throw new HpcflowError('HPCFLOW_GIT', `--commit-results: ${ws.root} is not in a git repository with a commit`, { hint: 'run from a clone of the pipeline repository' });
  }
  const { loadWorkspaceConfig } = await import('../config/workspace-config.js');
  const cfg = loadWorkspaceConfig(ws.root).results;
  const record = join(ws.root, cfg.runsDir, `${summary.runId}.json`);
  await mkdir(dirname(record), { recursive: true });
  // Whole or not at all: a run killed here must not leave a truncated record in the checkout.
  await writeFileAtomic(record, await readFile(o.recordFile));
  const files = await resultsFiles({ root: ws.root, graph: ws.graph, summary, always: [ws.lockPath, record, ...o.datasetFiles], maxFileBytes: cfg.maxFileBytes });
  const { commitResults, pushResults } = await import('../git/results.js');
  const c = summary.counts;
  const line = `hpcflow: ${c.ran} ran, ${c.restored} restored, ${c['up-to-date']} up to date${c.failed ? `, ${c.failed} failed` : ''} (run ${summary.runId})`;
  const target = cfg.ref === null ? ({ kind: 'branch' } as const) : ({ kind: 'ref', ref: cfg.ref } as const);
  const made = await commitResults({ dir: gitRoot, files, runId: summary.runId, inputCommit: o.inputCommit, summary: line, target, env: io.env });
  if (made === null) {
    io.out('results: nothing new to commit\n');
    return;
  }
  io.out(`results: committed ${files.length} file${files.length === 1 ? '' : 's'} as ${made.oid.slice(0, 12)} on ${made.ref}\n`);
  if (!o.push) return;
  const token = io.env.HPCFLOW_GIT_TOKEN;
  const pushed = await pushResults({
    dir: gitRoot,
    remote: o.remote,
    ref: made.ref,
    files,
    runId: summary.runId,
    ...(token !== undefined && token !== '' ? { token } : {}),
    onRetry: (n, why) => io.err(`results: push attempt ${n} rejected (${why}); re-applying onto the remote's tip\n`),
  });
  io.out(`results: pushed ${pushed.oid.slice(0, 12)} to ${o.remote} (${pushed.attempts} attempt${pushed.attempts === 1 ? '' : 's'})\n`);
}
