import { isHpcflowError } from '../errors.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import type { CliIO } from './io.js';
import { processIO } from './io.js';

export const HELP = `hpcflow — run the changed stages of HPC pipelines in containers, and explain why.

Usage: hpcflow <command> [options]

Commands:
  init [dir]             create a workspace (pipelines/, containers/, kernels/, datasets/)
  status [stage...]      what would run, be restored from the cache, or is up to date — and why
  plan [stage...]        the same as a plan in topological order (--json for machines)
  run [stage...]         run changed stages (and their changed upstreams); restore cached ones
  commit [stage...]      record the outputs on disk as the result of the current inputs (no run)
  reproduce <rev> [stage...]
                         re-run a recorded commit (a results commit, or a commit with later results) in a
                         temporary worktree with an empty cache, its recorded images and dataset versions;
                         per output: identical / within the stage's tolerance / different; exit 0 if it reproduced
  dag [--dot|--mermaid]  the stage graph as text, Graphviz dot or a Mermaid flowchart
  gc [--dry-run]         remove cache entries no hpcflow.lock or dataset version in the git history refers to
  dataset <command>      versioned datasets: add, status, commit, checkout, diff, log, tag, push, pull,
                         verify, list ('hpcflow dataset --help')
  schema [--write FILE]  print or write the JSON Schema of pipeline files
  watch --url URL        follow a branch (--branch, default main) and run each new commit in a clone of
                         its own (--workdir), committing and pushing the results; --once: what is there
                         now, then exit; --queue newest (default) | all: when commits pile up, run the
                         newest only or each in order; run options after --
  hook install --repo BARE --url URL
                         a post-receive hook in a bare repository: a push runs 'watch --once' in the background
  serve --url URL        receive GitHub push webhooks (--host 127.0.0.1, --port 8080, --branches a,b;
                         secret in HPCFLOW_WEBHOOK_SECRET): signatures checked, replays ignored; runs
                         the pushed branch like watch
  log [--ref REF] [-n N] runs committed to git (results commits), newest first: input commit, date,
                         run id, ok/FAILED, counts, wall time, executor (--json: one object per line)
  metrics <command>      committed metrics: show [REV], diff A [B], plot STAGE:METRIC [--out FILE.svg]
                         ('hpcflow metrics --help')
  measure --base REV [--head REV] [stage...]
                         run base and head alternately (ABBA, -n rounds; on Slurm in one allocation
                         with --allocate) and write their metrics samples ('hpcflow measure --help')
  report --pr N          post the metrics verdict as a sticky PR comment + commit status
                         ('hpcflow report --help'; --dry-run prints the markdown)

Common options:
  -C, --workspace DIR    workspace directory (default: nearest parent with pipelines/)
  --json                 machine-readable output (JSON lines for run)
  --cache-dir DIR        content cache (default: <workspace>/.hpcflow/cache; env HPCFLOW_CACHE_DIR)
  --lenient              detect unchanged files by path+size only (for filesystems whose mtimes drift)
  --site FILE            site configuration: framework images, launcher and Slurm settings (env HPCFLOW_SITE)
  --executor NAME        docker (default) | slurm: where stages run (env HPCFLOW_EXECUTOR; the site file's
                         executor: otherwise). The pipeline is the same for both
                         (HPCFLOW_SLURM_ALLOCATION=<job id>: Slurm stages run as job steps of that
                         allocation instead of batch jobs of their own)
  --matrix KEY=V[,V…]    keep only the matrix cells whose KEY is one of the values (repeatable),
                         e.g. --matrix impl=openmp to leave out implementations whose images are missing
  -h, --help             this help

run options:
  --downstream           also run everything downstream of the named stages
  -f, --force            run the named stages (or all) even if up to date
  -j, --jobs N           stages run at once (default: number of CPUs)
  --cpus N               CPUs the running stages share: a stage takes nodes × tasks × cpus_per_task
                         of them, so wide stages do not oversubscribe the machine (default: number of CPUs)
  --on-failure MODE      stop (default: start nothing new) | continue (independent stages go on) | cancel (abort running stages)
  --commit-results       commit the lockfile, the run record (runs/<id>.json), metrics, small outputs and
                         dataset versions: only those paths, to the branch or hpcflow.yaml's results.ref
  --push                 push that commit (--remote, default origin), re-applied on the remote's tip if
                         someone pushed first; token from HPCFLOW_GIT_TOKEN

status options:
  --check                exit 1 if any stage would run or be restored

reproduce options:
  --keep                 keep the temporary worktree and cache, and print where
  --strict-images        a stage that ran on another image than recorded fails the reproduction
  --tmp-dir DIR          where the worktree goes (default: the OS temp dir; for Slurm, a directory the nodes share)

Environment:
  HPCFLOW_CACHE_DIR      default for --cache-dir
  HPCFLOW_DOCKER_NETWORK network of stage containers: host (default) | none | bridge
  DOCKER_HOST            unix:///path/to/docker.sock of the engine to use

Exit codes: 0 ok; 1 a stage failed (or --check found work); 2 usage; 3 invalid pipeline/lockfile;
4 container engine or cache problem; 5 workspace locked by another run; 130 interrupted.
`;

const COMMANDS = ['init', 'status', 'plan', 'run', 'commit', 'dag', 'gc', 'schema', 'dataset', 'watch', 'hook', 'serve', 'log', 'metrics', 'reproduce', 'measure', 'report'] as const;
type Command = (typeof COMMANDS)[number];

/** The composition root: the only place that sees argv, env and the TTY, and sets exit codes. */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    io.out(HELP);
    return cmd === undefined ? EXIT.usage : EXIT.ok;
  }
  if (cmd === '--version' || cmd === '-V') {
    io.out('hpcflow 0.1.0\n');
    return EXIT.ok;
  }
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    io.err(`hpcflow: unknown command '${cmd}'. Run 'hpcflow --help' for the list.\n`);
    return EXIT.usage;
  }
  try {
    return await dispatch(cmd as Command, rest, io);
  } catch (e) {
    return reportError(e, io);
  }
}

async function dispatch(cmd: Command, args: readonly string[], io: CliIO): Promise<number> {
  switch (cmd) {
    case 'init':
      return (await import('./cmd-init.js')).cmdInit(args, io);
    case 'status':
    case 'plan':
      return (await import('./cmd-status.js')).cmdStatus(cmd, args, io);
    case 'run':
      return (await import('./cmd-run.js')).cmdRun(args, io);
    case 'commit':
      return (await import('./cmd-commit.js')).cmdCommit(args, io);
    case 'dag':
      return (await import('./cmd-dag.js')).cmdDag(args, io);
    case 'gc':
      return (await import('./cmd-gc.js')).cmdGc(args, io);
    case 'schema':
      return (await import('./cmd-schema.js')).cmdSchema(args, io);
    case 'dataset':
      return (await import('./cmd-dataset.js')).cmdDataset(args, io);
    case 'watch':
      return (await import('./cmd-watch.js')).cmdWatch(args, io);
    case 'hook':
      return (await import('./cmd-hook.js')).cmdHook(args, io);
    case 'serve':
      return (await import('./cmd-serve.js')).cmdServe(args, io);
    case 'log':
      return (await import('./cmd-log.js')).cmdLog(args, io);
    case 'metrics':
      return (await import('./cmd-metrics.js')).cmdMetrics(args, io);
    case 'reproduce':
      return (await import('./cmd-reproduce.js')).cmdReproduce(args, io);
    case 'measure':
      return (await import('./cmd-measure.js')).cmdMeasure(args, io);
    case 'report':
      return (await import('./cmd-report.js')).cmdReport(args, io);
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

export function reportError(e: unknown, io: CliIO): number {
  if (isHpcflowError(e)) {
    for (const d of e.diagnostics) io.err(`${formatDiagnostic(d)}\n`);
    if (e.diagnostics.length === 0 || e.code !== 'HPCFLOW_SPEC_INVALID') io.err(`hpcflow: ${e.message}\n`);
    else io.err(`hpcflow: ${e.diagnostics.length} problem${e.diagnostics.length === 1 ? '' : 's'} in the pipeline files\n`);
    if (e.hint) io.err(`  hint: ${e.hint}\n`);
    return exitCodeFor(e.code);
  }
  // A bug: keep the stack, but say so.
  io.err(`hpcflow: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  io.err('  this is a bug in hpcflow; please report it with the command you ran\n');
  return 70;
}
