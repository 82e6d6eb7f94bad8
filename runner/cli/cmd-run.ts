import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../engine/events.js';
import type { Executor } from '../executors/executor.js';
import type { ImageSpec, Stage } from '../model/pipeline.js';
import { runStages } from '../engine/run.js';
import { acquireWorkspaceLock } from '../engine/workspace-lock.js';
import { HpcflowError } from '../errors.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { orderedSelection } from './cmd-status.js';
import { executorFor, openFromArgs } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';
import type { Reporter } from './reporter.js';
import { jsonReporter, plainReporter, ttyReporter } from './reporter.js';
import { writeRunRecord } from '../engine/run-record.js';
import { datasetDeps } from '../datasets/stage-dep.js';
import { recordDatasetOutputs } from '../datasets/stage-outputs.js';
import { commitRunResults, runContext } from './run-results.js';

export async function cmdRun(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON_OPTIONS,
    downstream: { type: 'boolean', default: false },
    force: { type: 'boolean', short: 'f', default: false },
    jobs: { type: 'string', short: 'j' },
    cpus: { type: 'string' },
    'on-failure': { type: 'string', default: 'stop' },
    'commit-results': { type: 'boolean', default: false },
    push: { type: 'boolean', default: false },
    remote: { type: 'string', default: 'origin' },
  });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const mode = values['on-failure'];
  if (mode !== 'stop' && mode !== 'continue' && mode !== 'cancel') {
    throw new HpcflowError('HPCFLOW_USAGE', `--on-failure must be stop, continue or cancel (got '${mode}')`);
  }
  const jobs = values.jobs === undefined ? availableParallelism() : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new HpcflowError('HPCFLOW_USAGE', `--jobs must be a positive integer (got '${values.jobs}')`);

  const cpuBudget = values.cpus === undefined ? availableParallelism() : Number(values.cpus);
  if (!Number.isInteger(cpuBudget) || cpuBudget < 1) throw new HpcflowError('HPCFLOW_USAGE', `--cpus must be a positive integer (got '${values.cpus}')`);

  const ws = await openFromArgs(values, io);
  const release = acquireWorkspaceLock(join(ws.root, '.hpcflow', 'tmp', 'run.lock'));
  let executor: Executor;
  try {
    executor = await executorFor(ws, io);
  } catch (e) {
    release();
    await ws.close();
    throw e;
  }
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      io.err(`\nhpcflow: interrupted — stopping running stages and ${ws.executorName === 'slurm' ? 'cancelling their Slurm jobs' : 'removing their containers'} (Ctrl-C again to exit at once)\n`);
      abort.abort();
    } else {
      release();
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const reporter: Reporter = values.json ? jsonReporter(io) : io.isTTY ? await ttyReporter(io) : plainReporter(io);
  let summary: RunSummary;
  try {
    await executor.cleanupOrphans();
    const selection = positionals.length === 0 ? null : positionals;
    const ids = selection === null ? ws.graph.ids : withUpstream(ws.graph, orderedSelection(ws.graph, selection, values.downstream));
    const forced = new Set(values.force ? (selection === null ? ws.graph.ids : orderedSelection(ws.graph, selection, values.downstream)) : []);
    await preflightImages(ids.map((id) => ws.graph.stages.get(id)).filter((s): s is Stage => s !== undefined), executor, ws.root);
    summary = await runStages({
      workspace: ws.root,
      graph: ws.graph,
      ids,
      executor,
      store: ws.store,
      runs: ws.runs,
      hashPath: ws.hashPath,
      datasetDep: datasetDeps(ws.root, ws.hashPath, ws.store),
      invalidate: ws.invalidate,
      lock: ws.lock,
      saveLock: (l) => ws.saveLock(l),
      forced,
      concurrency: jobs,
      cpuBudget,
      failureMode: mode,
      signal: abort.signal,
      onEvent: (e) => reporter.onEvent(e),
    });
    const context = await runContext(ws);
    const recordFile = await writeRunRecord(ws.root, summary, ws.graph, context);
    const datasetFiles = await recordDatasetOutputs(ws.root, ws.graph, ws.lock, ws.store);
    if (values['commit-results'] && !summary.aborted) {
      await commitRunResults({ ws, summary, recordFile, datasetFiles, inputCommit: context.inputCommit ?? null, push: values.push, remote: values.remote, io });
    }
  } finally {
    reporter.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await ws.close();
    await executor.close();
    release();
  }
  if (!values.json) io.out(summaryLine(summary));
  if (summary.aborted) {
    io.err(`hpcflow: run interrupted; running stages were stopped and their ${ws.executorName === 'slurm' ? 'jobs cancelled' : 'containers removed'}; nothing of theirs was cached\n`);
    return EXIT.interrupted;
  }
  return summary.ok ? EXIT.ok : EXIT.stageFailed;
}

/**
 * Before anything starts: every image the selected stages need must be in the engine or buildable
 * from images it has. Otherwise say which images are missing, which stages need them, and the
 * ways to provide them — rather than fail one build after another halfway through a run.
 */
export async function preflightImages(stages: readonly Stage[], executor: Executor, root: string): Promise<void> {
  const bySpec = new Map<string, { spec: ImageSpec; stages: string[] }>();
  const framework = new Map(stages.map((s) => [s.id, s.kernel?.spec.framework]));
  for (const s of stages) {
    const key = JSON.stringify(s.image);
    const e = bySpec.get(key) ?? { spec: s.image, stages: [] };
    e.stages.push(s.id);
    bySpec.set(key, e);
  }
  const missing = new Map<string, { dockerfiles: Set<string>; stages: Set<string>; frameworks: Set<string> }>();
  for (const { spec, stages: ids } of bySpec.values()) {
    for (const m of await executor.missingImages(spec, root)) {
      const e = missing.get(m.ref) ?? { dockerfiles: new Set(), stages: new Set(), frameworks: new Set() };
      if (m.dockerfile !== null) e.dockerfiles.add(m.dockerfile);
      for (const id of ids) {
        e.stages.add(id);
        const fw = framework.get(id);
        if (fw !== undefined) e.frameworks.add(fw);
      }
      missing.set(m.ref, e);
    }
  }
  if (missing.size === 0) return;
  const lines: string[] = [];
  const frameworks = new Set<string>();
  for (const [ref, e] of missing) {
    for (const f of e.frameworks) frameworks.add(f);
    const from = e.dockerfiles.size > 0 ? ` (FROM in ${[...e.dockerfiles].join(', ')})` : '';
    const ids = [...e.stages];
    lines.push(`  ${ref}${from}`, `      needed by ${ids.slice(0, 6).join(', ')}${ids.length > 6 ? ` and ${ids.length - 6} more` : ''}`);
  }
  const fwHint = [...frameworks].map((f) => `frameworks.${f}.image`).join(', ');
  throw new HpcflowError('HPCFLOW_IMAGE_NOT_FOUND', `cannot start: ${missing.size} image${missing.size === 1 ? '' : 's'} cannot be obtained here (nothing was run)\n${lines.join('\n')}`, {
    hint:
      'load each image into the Docker engine (docker pull where a registry is reachable, then docker save | docker load here)' +
      `${fwHint === '' ? '' : `, or map the framework to an image this site has in a site configuration (--site FILE: ${fwHint})`}` +
      ', or leave those stages out: name the stages to run, or select matrix cells with --matrix key=value (e.g. --matrix impl=openmp)',
  });
}

/** Stages named on the command line plus every upstream they need (run only if changed). */
function withUpstream(graph: { ids: readonly string[]; upstream: ReadonlyMap<string, readonly string[]> }, selected: readonly string[]): string[] {
  const need = new Set<string>();
  const visit = (id: string): void => {
    if (need.has(id)) return;
    need.add(id);
    for (const u of graph.upstream.get(id) ?? []) visit(u);
  };
  for (const id of selected) visit(id);
  return graph.ids.filter((id) => need.has(id));
}

export function summaryLine(s: RunSummary): string {
  const c = s.counts;
  const parts = [`${c.ran} ran`, `${c.restored} restored`, `${c['up-to-date']} up to date`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.canceled) parts.push(`${c.canceled} canceled`);
  if (c['not-started']) parts.push(`${c['not-started']} not started`);
  return `run ${s.runId}: ${parts.join(', ')} in ${(s.wallMs / 1000).toFixed(2)} s\n`;
}
