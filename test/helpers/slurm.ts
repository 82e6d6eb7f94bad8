/**
 * Helpers for tests that use the real Slurm test cluster of scripts/slurm-cluster.sh: a controller
 * and compute nodes n1..n3, each a Docker container, with this machine as the login node (the Slurm
 * CLI with SLURM_CONF). docs/slurm-cluster.md describes it.
 *
 * The suite's global setup runs `scripts/slurm-cluster.sh up`; Slurm test files also call
 * `ensureSlurmForTests()` in `beforeAll`, so they work when run alone (a no-op on a running cluster).
 *
 * Job directories, scripts and outputs must live under SLURM_SHARED (mounted at the same path in
 * every node): use `sharedTempDir()`.
 */
import { mkdtemp, chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The cluster's config, key, state, spool, TmpFS and logs (same path in every node). */
export const SLURM_RUN = process.env.HPCFLOW_SLURM_RUN ?? '/tmp/hpcflow-slurm/run';
/** The cluster's "NFS home": every node mounts it at this path. */
export const SLURM_SHARED = process.env.HPCFLOW_SLURM_SHARED ?? '/tmp/hpcflow-slurm/shared';
export const SLURM_CONF = path.join(SLURM_RUN, 'etc', 'slurm.conf');
/** Node container of node `n1`… is `hpcflow-slurm-n1`… */
export const SLURM_NODE_CONTAINER_PREFIX = 'hpcflow-slurm-';

/** The environment for the Slurm CLI (sbatch, srun, squeue, sacct, scontrol, scancel). */
export function slurmEnv(): NodeJS.ProcessEnv {
  return { ...process.env, SLURM_CONF };
}

let ensured: Promise<void> | undefined;
/** `scripts/slurm-cluster.sh up` once per test process (well under a second on a running cluster). */
export function ensureSlurmForTests(): Promise<void> {
  ensured ??= (async () => {
    const r = await execa('bash', [path.join(REPO_ROOT, 'scripts', 'slurm-cluster.sh'), 'up'], {
      reject: false,
      all: true,
      timeout: 900_000,
    });
    if (r.exitCode !== 0) throw new Error(`scripts/slurm-cluster.sh up failed (exit ${r.exitCode}):\n${r.all ?? ''}`);
  })();
  return ensured;
}

export interface SharedTempDir {
  /** An empty directory under SLURM_SHARED (visible at the same path on every node). */
  readonly path: string;
  /** Removes it and everything in it. */
  cleanup(): Promise<void>;
}

/** `mkdtemp` under SLURM_SHARED, e.g. a test's workspace or a job's working directory. */
export async function sharedTempDir(prefix: string): Promise<SharedTempDir> {
  await mkdir(SLURM_SHARED, { recursive: true });
  const dir = await mkdtemp(path.join(SLURM_SHARED, prefix));
  // readable by job containers that run as another user than the test
  await chmod(dir, 0o755);
  return { path: dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** YAML list of one path: plain when it is safe as a plain scalar, else quoted. */
function yamlPathList(p: string): string {
  return /^[\w./-]+$/.test(p) ? `[${p}]` : `[${JSON.stringify(p)}]`;
}

/**
 * The text of a site configuration for this cluster with the docker runtime: each task's container
 * joins its node container's network, IPC and PID namespaces, and binds SLURM_RUN (slurmd's spool
 * and TmpFS, where the step's PMIx server keeps its sockets and shared memory).
 * `extra` is appended verbatim (indent it by two spaces for more keys under `slurm:`).
 */
export function slurmSiteYaml(extra?: string): string {
  const node = `${SLURM_NODE_CONTAINER_PREFIX}{node}`;
  const text = [
    'slurm:',
    '  runtime: docker',
    '  partition: debug',
    `  shared_roots: ${yamlPathList(SLURM_SHARED)}`,
    '  docker:',
    `    network: "container:${node}"`,
    `    ipc: "container:${node}"`,
    `    pid: "container:${node}"`,
    `    binds: ${yamlPathList(SLURM_RUN)}`,
    '',
  ].join('\n');
  if (extra === undefined || extra === '') return text;
  return extra.endsWith('\n') ? text + extra : `${text}${extra}\n`;
}

export interface SlurmJob {
  readonly id: string;
  readonly name: string;
  /** squeue's long state: PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, … */
  readonly state: string;
  /** The job's comment (`--comment`), '' when none. */
  readonly comment: string;
}

/** States in which a job still holds (or waits for) resources: a test must leave none behind. */
export const ACTIVE_JOB_STATES: ReadonlySet<string> = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
]);

/**
 * Every job slurmctld knows: active ones and those that ended in the last MinJobAge (300 s).
 * Parsed from `squeue -h -t all -o '%i|%j|%T|%k'` (a job name must not contain '|').
 */
export async function listJobs(): Promise<SlurmJob[]> {
  const r = await execa('squeue', ['-h', '-t', 'all', '-o', '%i|%j|%T|%k'], { env: slurmEnv() });
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [id = '', name = '', state = '', ...comment] = l.split('|');
      const c = comment.join('|');
      return { id: id.trim(), name, state: state.trim(), comment: c === '(null)' ? '' : c };
    });
}

/** The jobs of `listJobs()` that are still active (see ACTIVE_JOB_STATES). */
export async function activeJobs(): Promise<SlurmJob[]> {
  return (await listJobs()).filter((j) => ACTIVE_JOB_STATES.has(j.state));
}
