/**
 * PURE: a stage → the sbatch options and the batch script of its job. The job script holds no
 * logic but one `srun` that starts the stage's tasks, each in a container on its node (the
 * runtime's step), so the whole job is readable in `scontrol write batch_script`.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { HpcflowError } from '../../errors.js';
import { shellJoin, shellWord } from '../../frameworks/common.js';
import type { Stage } from '../../model/pipeline.js';
import type { ContainerRuntime, SlurmSite } from './types.js';

export interface JobRequest {
  readonly runId: string;
  readonly stage: Stage;
  /** Identifies this execution of the stage (re-adoption matches on it). */
  readonly key: string;
  /** Absolute workspace path (shared with the nodes). */
  readonly workspace: string;
  /** Image to run (pinned) and its tag (for the runtime's image maps). */
  readonly image: string;
  readonly imageTag: string;
  /** Job ids this one starts after (afterok). */
  readonly after: readonly string[];
  /** Absolute directory for the job's stdout/stderr files. */
  readonly logDir: string;
  /** `uid:gid` the command runs as in its containers. */
  readonly user: string;
  /** Extra environment of the command (e.g. HPCFLOW_KERNEL_DIR), over the stage's. */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

/** The `--comment` tag: which run, stage and execution a job is (squeue shows it). */
export function jobComment(req: Pick<JobRequest, 'runId' | 'stage' | 'key'>): string {
  return `hpcflow run=${req.runId} stage=${req.stage.id} key=${req.key}`;
}

export function parseJobComment(comment: string): { runId: string; stage: string; key: string } | null {
  const m = /^hpcflow run=(\S+) stage=(\S+) key=(\S+)$/.exec(comment);
  return m === null ? null : { runId: m[1] as string, stage: m[2] as string, key: m[3] as string };
}

/** `hpcflow:<stage id>`, in the characters job names keep readable. */
export function jobName(stageId: string): string {
  return `hpcflow:${stageId.replace(/[^A-Za-z0-9_.@=,:/-]+/g, '_')}`.slice(0, 120);
}

/** Seconds → `--time` minutes (Slurm's time limits are whole minutes; rounded up, never below 1). */
export function timeMinutes(sec: number): number {
  return Math.max(1, Math.ceil(sec / 60));
}

export function sbatchArgs(req: JobRequest, site: SlurmSite): string[] {
  const r = req.stage.resources;
  const args = [
    '--parsable',
    `--job-name=${jobName(req.stage.id)}`,
    `--comment=${jobComment(req)}`,
    `--nodes=${r.nodes}`,
    `--ntasks-per-node=${r.tasksPerNode}`,
    `--cpus-per-task=${r.cpusPerTask}`,
    `--chdir=${req.workspace}`,
    `--output=${posix.join(req.logDir, '%j.out')}`,
    `--error=${posix.join(req.logDir, '%j.err')}`,
    // Nothing of the runner's environment (tokens, its PATH) reaches the job: the script sets it.
    '--export=NONE',
    // A job whose node fails ends as NODE_FAIL and the runner says so; requeued (Slurm's default
    // for batch jobs) it would sit pending (BeginTime, then waiting for a node) with the runner
    // waiting on it, and run again unseen. Re-running is the next run's decision.
    '--no-requeue',
  ];
  if (r.memoryBytes !== null) args.push(`--mem=${Math.max(1, Math.ceil(r.memoryBytes / 1024 ** 2))}M`);
  if (r.timeLimitSec !== null) args.push(`--time=${timeMinutes(r.timeLimitSec)}`);
  const place = { partition: r.partition ?? site.partition, account: r.account ?? site.account, qos: r.qos ?? site.qos, constraint: r.constraint ?? site.constraint };
  for (const [k, v] of Object.entries(place)) if (v !== null && v !== undefined) args.push(`--${k}=${v}`);
  if (req.after.length > 0) {
    // A failed upstream makes the dependency impossible: Slurm then cancels this job rather
    // than leaving it pending forever.
    args.push(`--dependency=afterok:${req.after.join(':')}`, '--kill-on-invalid-dep=yes');
  }
  args.push(...site.sbatchArgs);
  return args;
}

/** The environment the tasks see: the stage's, hpcflow's, and OMP_NUM_THREADS unless set. */
export function jobEnv(req: JobRequest): Record<string, string> {
  const env: Record<string, string> = { ...req.stage.env, ...req.extraEnv };
  env.OMP_NUM_THREADS ??= String(req.stage.resources.cpusPerTask);
  env.HPCFLOW_STAGE = req.stage.id;
  env.HPCFLOW_RUN_ID = req.runId;
  return Object.fromEntries(Object.keys(env).sort().map((k) => [k, env[k] as string]));
}

const SRUN_PREFIX = /^srun((?: --[a-z][a-z-]*(?:=[^\s'"]+)?)*) (.+)$/s;

/**
 * The step: kernel stages planned for Slurm already say how to launch (`srun --mpi=pmix
 * --nodes=2 … prog`); a plain command runs once per task (nodes × tasks per node) — one task
 * unless the stage asks for more.
 */
export function stepOf(stage: Stage): { srun: string[]; command: string; mpi: boolean; launcher: boolean } {
  const m = SRUN_PREFIX.exec(stage.cmd);
  if (m !== null) {
    const srun = (m[1] as string).trim().split(' ');
    return { srun, command: m[2] as string, mpi: srun.some((a) => a.startsWith('--mpi=') && a !== '--mpi=none'), launcher: false };
  }
  const r = stage.resources;
  if (stage.kernel !== undefined && LAUNCHER_MODES.has(stage.kernel.mode)) {
    // The framework's launcher runs once and starts the stage's tasks itself (srun inside the
    // allocation); its own step overlaps theirs so that they do not wait for its CPUs.
    return { srun: ['--nodes=1', '--ntasks=1', `--cpus-per-task=${r.cpusPerTask}`, '--overlap'], command: stage.cmd, mpi: false, launcher: true };
  }
  return {
    srun: [`--nodes=${r.nodes}`, `--ntasks=${r.nodes * r.tasksPerNode}`, `--ntasks-per-node=${r.tasksPerNode}`, `--cpus-per-task=${r.cpusPerTask}`],
    command: stage.cmd,
    mpi: false,
    launcher: false,
  };
}

const LAUNCHED_TASK_ENV = ['GASNET_', 'AMUDP_', 'CHPL_', 'JULIA_'];

/** Kernel launch modes whose program is a launcher that starts the tasks (Chapel locales, Julia workers). */
const LAUNCHER_MODES: ReadonlySet<string> = new Set(['locales', 'distributed']);

/**
 * The words a framework launcher puts between its `srun` options and the program it starts, so
 * that every task it starts runs in the stage's container too: the runtime's srun options and a
 * small script (written into the workspace, which every node sees) that runs its arguments in the
 * container. Exported to the launcher as HPCFLOW_TASK_WRAP; Chapel's GASNET_CSPAWN_CMD gets them
 * before its `%C`.
 */
export function taskWrap(req: JobRequest, runtime: ContainerRuntime): { words: string[]; file: { path: string; text: string } } {
  const env = jobEnv(req);
  const ws = posix.normalize(req.workspace).replace(/(.)\/+$/, '$1');
  const rt = runtime.step({
    image: req.image,
    imageTag: req.imageTag,
    workspace: ws,
    workdir: posix.join(ws, req.stage.wdir),
    envNames: Object.keys(env),
    argv: [],
    user: req.user,
    labels: { 'hpcflow.run-id': req.runId, 'hpcflow.stage': req.stage.id },
    // What a launcher hands its tasks in the environment: PMI/PMIx (ibv/ofi spawners), GASNet's
    // and Chapel's bootstrap, Julia's worker settings.
    mpi: true,
    forward: LAUNCHED_TASK_ENV,
  });
  const text = `#!/bin/sh\n# hpcflow: runs "$@" in the container of stage ${req.stage.id} (${runtime.name})\nexec ${shellJoin(rt.taskArgv)} "$@"\n`;
  const path = posix.join(ws, '.hpcflow', 'slurm', 'wrap', `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.sh`);
  return { words: [...rt.srunArgs, path], file: { path, text } };
}

export function batchScript(req: JobRequest, site: SlurmSite, runtime: ContainerRuntime): string {
  const env = jobEnv(req);
  const step = stepOf(req.stage);
  if (step.launcher) {
    const words = taskWrap(req, runtime).words.join(' ');
    env.HPCFLOW_TASK_WRAP = words;
    const cspawn = env.GASNET_CSPAWN_CMD;
    if (cspawn !== undefined && cspawn.endsWith(' %C')) env.GASNET_CSPAWN_CMD = `${cspawn.slice(0, -3)} ${words} %C`;
    // srun from inside the launcher's step: let its steps share the allocation's CPUs with it.
    env.SLURM_OVERLAP = '1';
  }
  const ws = posix.normalize(req.workspace).replace(/(.)\/+$/, '$1');
  const workdir = posix.join(ws, req.stage.wdir);
  if (workdir !== ws && !workdir.startsWith(`${ws}/`)) throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `stage wdir '${req.stage.wdir}' leaves the workspace ${ws}`);
  const rt = runtime.step({
    image: req.image,
    imageTag: req.imageTag,
    workspace: ws,
    workdir,
    envNames: Object.keys(env),
    argv: ['/bin/sh', '-c', step.command],
    user: req.user,
    labels: { 'hpcflow.run-id': req.runId, 'hpcflow.stage': req.stage.id },
    mpi: step.mpi,
    ...(step.launcher ? { binds: site.launcherBinds } : {}),
  });
  const lines = [
    '#!/bin/bash',
    `# hpcflow: stage ${req.stage.id}, run ${req.runId}`,
    `# runtime: ${runtime.name}; image: ${req.imageTag}`,
    `export PATH=${shellWord(site.path)}`,
    // sbatch --export=NONE would also leave srun's steps without the variables set below.
    'export SLURM_EXPORT_ENV=ALL',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shellWord(v)}`),
    `exec srun ${shellJoin([...step.srun, ...rt.srunArgs, ...rt.taskArgv])}`,
    '',
  ];
  return lines.join('\n');
}
