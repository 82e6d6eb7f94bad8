import { resolve } from 'node:path';
import { defaultCacheDir } from '../cache/index.js';
import { loadWorkspaceConfig } from '../config/workspace-config.js';
import { HpcflowError } from '../errors.js';
import type { Executor } from '../executors/executor.js';
import type { ImageProbe } from '../reproduce/images.js';
import { renderReport, reportJson } from '../reproduce/report.js';
import { reproduce } from '../reproduce/reproduce.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { dockerExecutor, executorFlag, workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const REPRODUCE_HELP = `hpcflow reproduce — re-run a recorded commit and say whether its results reproduce.

Usage: hpcflow reproduce <rev> [stage...] [options]

<rev> is a results commit (made by 'hpcflow run --commit-results'), a commit whose results
were committed later (the newest results commit naming it as its input, among the last 200
commits of HEAD and of hpcflow.yaml's results.ref), or a commit holding an hpcflow.lock.

That commit's pipeline, params, kernels and dataset versions are written to a temporary
worktree (your checkout, index and HEAD are not touched) and every stage is run again with an
empty cache, on the recorded images where the engine still has them. Then, per output:
identical, within the stage's declared tolerance (tolerance: { rel, abs } in the pipeline), or
different; per metric: the change against the recorded value.

Options:
  --json               the report as one JSON object
  --keep               keep the worktree and the re-run's cache, and print where
  --strict-images      a stage that ran on another image than recorded fails the reproduction
  --tmp-dir DIR        where the worktree goes (default: the OS temp directory; for Slurm, a
                       directory the compute nodes share)
  -C, --workspace DIR  workspace directory
  --cache-dir DIR      your content store: datasets and recorded outputs are read from it
  --executor NAME      docker | slurm; --site FILE, --matrix KEY=V, -j N, --cpus N as for run

Exit codes: 0 reproduced (every output identical or within tolerance); 1 not reproduced (an
output differs or is missing, a stage failed); 2 usage; 3 invalid pipeline or lockfile;
4 container engine, content store (e.g. a dataset version not pulled) or git problem; 130 interrupted.
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  keep: { type: 'boolean', default: false },
  'strict-images': { type: 'boolean', default: false },
  'tmp-dir': { type: 'string' },
  jobs: { type: 'string', short: 'j' },
  cpus: { type: 'string' },
} as const;

/** `hpcflow reproduce <rev> [stage...]`. */
export async function cmdReproduce(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.out(REPRODUCE_HELP);
    return EXIT.ok;
  }
  const [rev, ...stages] = positionals;
  if (rev === undefined || rev === '') throw new HpcflowError('HPCFLOW_USAGE', 'usage: hpcflow reproduce <rev> [stage...]', { hint: "name the commit to reproduce; 'hpcflow reproduce --help' says more" });
  const root = workspaceRoot(values, io);
  const cacheOpt = values['cache-dir'] ?? io.env.HPCFLOW_CACHE_DIR;
  const cacheDir = cacheOpt === undefined ? defaultCacheDir(root) : resolve(io.cwd, cacheOpt);
  const resultsRef = loadWorkspaceConfig(root).results.ref;

  const runArgs: string[] = [];
  const executor = executorFlag(values, io);
  if (executor !== '') runArgs.push('--executor', executor);
  if (values.site !== undefined) runArgs.push('--site', resolve(io.cwd, values.site));
  for (const m of values.matrix ?? []) runArgs.push('--matrix', m);
  for (const [flag, v] of [['--jobs', values.jobs], ['--cpus', values.cpus]] as const) {
    if (v === undefined) continue;
    if (!/^[1-9][0-9]*$/.test(v)) throw new HpcflowError('HPCFLOW_USAGE', `${flag} must be a positive integer (got '${v}')`);
    runArgs.push(flag, v);
  }

  // Images are looked up in the local engine (Slurm stages use images it built, too).
  let engine: Executor | undefined;
  const images: ImageProbe = {
    async digestOf(ref) {
      engine ??= await dockerExecutor(io);
      const s = await engine.imageState({ kind: 'ref', ref }, root);
      return s.state === 'present' ? s.image.digest : null;
    },
  };

  const abort = new AbortController();
  // Ctrl-C reaches a running re-run too (same process group), which stops its stages itself: wait
  // for it, then clean up. Before it starts, either signal stops reproduce at the next step; a
  // SIGTERM sent to this process alone is passed on to the re-run.
  const onSigint = (): void => abort.abort('SIGINT');
  const onSigterm = (): void => abort.abort('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const report = await reproduce({
      workspace: root,
      rev,
      stages,
      cacheDir,
      ...(values['tmp-dir'] !== undefined ? { tmpDir: resolve(io.cwd, values['tmp-dir']) } : {}),
      keep: values.keep,
      strictImages: values['strict-images'],
      resultsRef,
      runArgs,
      cwd: io.cwd,
      env: { ...io.env },
      images,
      onProgress: values.json ? undefined : (line) => io.err(`reproduce: ${line}\n`),
      signal: abort.signal,
    });
    io.out(values.json ? reportJson(report) : renderReport(report));
    return report.reproduced ? EXIT.ok : EXIT.stageFailed;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    await engine?.close();
  }
}
