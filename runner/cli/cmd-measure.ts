/** `hpcflow measure`: base and head of a change measured alternately, for `hpcflow report --samples`. */
import { relative, resolve } from 'node:path';
import { defaultCacheDir } from '../cache/index.js';
import { namedSiteFile } from '../config/site-digest.js';
import { HpcflowError } from '../errors.js';
import { judgeMetrics } from '../github/report-model.js';
import { KIND, num } from '../github/render.js';
import { measure } from '../measure/measure.js';
import type { SamplesFile } from '../measure/samples.js';
import { describeSamples, toSeries } from '../measure/samples.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { executorFlag, workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const MEASURE_HELP = `hpcflow measure — run base and head of a change alternately and keep every round's metrics.

Usage: hpcflow measure --base REV [--head REV] [options] [stage...]

Writes both commits' workspaces under .hpcflow/measure, runs each once to warm up (images,
upstream stages), then ROUNDS rounds in ABBA order (base head, head base, …) of
'hpcflow run --force' of the measured stages, appending each run's metrics to its side. The
samples file it writes is what 'hpcflow report --samples FILE' judges: a Mann–Whitney test over
samples taken on the same machine, interleaved in time, so that drift and noise hit both sides.

On Slurm, --allocate asks for ONE allocation (salloc --no-shell) and every stage of every round
runs as a job step in it (HPCFLOW_SLURM_ALLOCATION), so base and head run on the same nodes; the
allocation is released at the end. --allocation ID uses one you hold already.

Options:
  --base REV             the revision to compare with (required)
  --head REV             the revision measured (default HEAD)
  -n, --rounds N         rounds of base+head (default 5)
  --allocate="ARGS"      salloc options for one allocation, e.g. --allocate="-N2 --exclusive
                         --time=30" (with '=': the value starts with '-'; implies --executor slurm)
  --allocation ID        an allocation you hold (salloc's job id; implies --executor slurm)
  --out FILE             the samples file (default .hpcflow/measure/<base>-<head>.json)
  --keep                 keep the two worktrees and their cache, and print where
  --json                 print the samples file's JSON instead of the table
  -C, --workspace DIR    workspace directory
  --cache-dir DIR        your content store (datasets are checked out from it)
  --executor NAME        docker | slurm; --site FILE, --matrix KEY=V, -j N as for run

Exit codes: 0 measured; 1 a run of either side failed; 2 usage; 4 git, engine or scheduler problem;
130 interrupted.
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  base: { type: 'string' },
  head: { type: 'string' },
  rounds: { type: 'string', short: 'n' },
  allocate: { type: 'string' },
  allocation: { type: 'string' },
  out: { type: 'string' },
  keep: { type: 'boolean', default: false },
  jobs: { type: 'string', short: 'j' },
} as const;

export async function cmdMeasure(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.out(MEASURE_HELP);
    return EXIT.ok;
  }
  if (values.base === undefined || values.base === '') throw new HpcflowError('HPCFLOW_USAGE', '--base REV is required', { hint: 'the revision to compare with, e.g. the pull request\'s base' });
  const rounds = values.rounds === undefined ? 5 : /^[1-9][0-9]{0,3}$/.test(values.rounds) ? Number(values.rounds) : NaN;
  if (!Number.isInteger(rounds)) throw new HpcflowError('HPCFLOW_USAGE', `--rounds must be an integer from 1 to 9999 (got '${values.rounds}')`);
  if (values.allocate !== undefined && values.allocation !== undefined) throw new HpcflowError('HPCFLOW_USAGE', '--allocate and --allocation exclude each other');
  if (values.allocation !== undefined && !/^\d+$/.test(values.allocation)) throw new HpcflowError('HPCFLOW_USAGE', `--allocation must be a Slurm job id (got '${values.allocation}')`);
  const root = workspaceRoot(values, io);
  const cacheOpt = values['cache-dir'] ?? io.env.HPCFLOW_CACHE_DIR;
  const cacheDir = cacheOpt === undefined ? defaultCacheDir(root) : resolve(io.cwd, cacheOpt);
  const inAllocation = values.allocate !== undefined || values.allocation !== undefined;
  let executor = executorFlag(values, io);
  if (inAllocation) {
    if (executor === 'docker') throw new HpcflowError('HPCFLOW_USAGE', '--allocate/--allocation run the stages as Slurm job steps: they cannot go with --executor docker');
    executor = 'slurm';
  }
  const runArgs: string[] = [];
  if (executor !== '') runArgs.push('--executor', executor);
  if (values.site !== undefined) runArgs.push('--site', resolve(io.cwd, values.site));
  for (const m of values.matrix ?? []) runArgs.push('--matrix', m);
  if (values.jobs !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.jobs)) throw new HpcflowError('HPCFLOW_USAGE', `--jobs must be a positive integer (got '${values.jobs}')`);
    runArgs.push('--jobs', values.jobs);
  }

  const abort = new AbortController();
  const onSigint = (): void => abort.abort('SIGINT');
  const onSigterm = (): void => abort.abort('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const progress = (line: string): void => io.err(`measure: ${line}\n`);
  let allocation: { jobId: string; nodes: string[] } | null = null;
  let release: (() => Promise<void>) | null = null;
  try {
    if (inAllocation) {
      const cli = await import('../executors/slurm/slurm-cli.js');
      const cmds = cli.slurmCommands();
      let jobId: string;
      if (values.allocate !== undefined) {
        jobId = await salloc(values.allocate, io.env);
        const id = jobId;
        release = async () => {
          await cmds.scancel([id]).catch(() => undefined);
          progress(`allocation ${id} released`);
        };
        progress(`allocation ${jobId} granted`);
      } else {
        jobId = values.allocation as string;
      }
      const job = (await cmds.squeue()).get(jobId);
      if (job === undefined || job.state !== 'RUNNING') throw new HpcflowError('HPCFLOW_SCHEDULER', `allocation ${jobId} is ${job === undefined ? 'not known to Slurm' : job.state}, not running`);
      allocation = { jobId, nodes: job.nodes === '' ? [] : cli.expandHostlist(job.nodes) };
    }
    const result = await measure({
      workspace: root,
      base: values.base,
      head: values.head ?? 'HEAD',
      rounds,
      stages: positionals,
      cacheDir,
      runArgs,
      executor: executor !== '' ? executor : namedSiteFile(values.site, io.env) === undefined ? 'docker' : 'the site file\'s executor',
      allocation,
      keep: values.keep,
      env: { ...io.env },
      cwd: io.cwd,
      onProgress: values.json ? undefined : progress,
      signal: abort.signal,
    });
    const { kept, ...file } = result;
    const out = values.out !== undefined ? resolve(io.cwd, values.out) : resolve(root, '.hpcflow', 'measure', `${file.base.commit.slice(0, 12)}-${file.head.commit.slice(0, 12)}.json`);
    await writeFileAtomic(out, `${JSON.stringify(file, null, 2)}\n`);
    if (values.json) {
      io.out(`${JSON.stringify(file)}\n`);
    } else {
      io.out(renderSamples(file));
      io.out(`\nsamples: ${relative(io.cwd, out) || out}  (hpcflow report --samples ${relative(io.cwd, out) || out})\n`);
      if (kept !== null) io.out(`kept: ${kept}\n`);
    }
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    if (release !== null) await release();
  }
}

/** `salloc --no-shell ARGS` (split on blanks, no shell) → the job id (salloc says "Granted job allocation N" on stderr). */
async function salloc(argString: string, env: NodeJS.ProcessEnv): Promise<string> {
  const words = argString.trim() === '' ? [] : argString.trim().split(/\s+/);
  const { execa } = await import('execa');
  const r = await execa('salloc', ['--no-shell', '--job-name=hpcflow-measure', ...words], { env, extendEnv: false, reject: false, timeout: 15 * 60_000 });
  const m = /Granted job allocation (\d+)/.exec(`${r.stderr}\n${r.stdout}`);
  if (r.exitCode !== 0 || m === null) {
    throw new HpcflowError('HPCFLOW_SCHEDULER', `salloc ${words.join(' ')} did not grant an allocation (exit ${r.exitCode ?? r.signal}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }
  return m[1] as string;
}

/** The samples as a table: per metric, base and head medians, the change and the verdict. */
export function renderSamples(f: SamplesFile): string {
  const metrics = judgeMetrics(toSeries(f.samples.base), toSeries(f.samples.head));
  const lines = [`${describeSamples(f)}`, `base ${f.base.rev} (${f.base.commit.slice(0, 12)})  head ${f.head.rev} (${f.head.commit.slice(0, 12)})`, ''];
  const rows = metrics.map((m) => [
    `${m.stage}:${m.metric}`,
    m.verdict.baseMedian === null ? '–' : num(m.verdict.baseMedian),
    num(m.verdict.headMedian),
    m.verdict.change === null ? '–' : `${m.verdict.change >= 0 ? '+' : ''}${(m.verdict.change * 100).toFixed(1)}%`,
    `${m.verdict.n.base}/${m.verdict.n.head}`,
    KIND[m.verdict.kind].word,
  ]);
  const head = ['metric', 'base', 'head', 'change', 'n', 'verdict'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  for (const r of [head, ...rows]) lines.push(r.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd());
  return `${lines.join('\n')}\n`;
}
