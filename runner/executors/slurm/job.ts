/**
 * PURE: a stage → the sbatch options and the batch script of its job. The job script holds no
 * logic but one `srun` that starts the stage's tasks, each in a container on its node (the
 * runtime's step), so the whole job is readable in `scontrol write batch_script`.
 */
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
export function stepOf(stage: Stage): { srun: string[]; command: string; mpi: boolean } {
  const m = SRUN_PREFIX.exec(stage.cmd);
  if (m !== null) {
    const srun = (m[1] as string).trim().split(' ');
    return { srun, command: m[2] as string, mpi: srun.some((a) => a.startsWith('--mpi=') && a !== '--mpi=none') };
  }
  const r = stage.resources;
  return {
    srun: [`--nodes=${r.nodes}`, `--ntasks=${r.nodes * r.tasksPerNode}`, `--ntasks-per-node=${r.tasksPerNode}`, `--cpus-per-task=${r.cpusPerTask}`],
    command: stage.cmd,
    mpi: false,
  };
}

export function batchScript(req: JobRequest, site: SlurmSite, runtime: ContainerRuntime): string {
  const env = jobEnv(req);
  const step = stepOf(req.stage);
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
