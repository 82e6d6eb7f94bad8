/**
 * Helpers for tests that use the real Slurm test cluster of scripts/slurm-cluster.sh: a controller
 * and compute nodes n1..n3 (partition `debug`, the default) plus the fault node n4 (alone in
 * partition `faults`), each a Docker container, with this machine as the login node (the Slurm
 * CLI with SLURM_CONF). docs/slurm-cluster.md describes it.
 *
 * The suite's global setup runs `scripts/slurm-cluster.sh up`; Slurm test files also call
 * `ensureSlurmForTests()` in `beforeAll`, so they work when run alone (a no-op on a running cluster).
 *
 * Job directories, scripts and outputs must live under SLURM_SHARED (mounted at the same path in
 * every node): use `sharedTempDir()`.
 */
import { mkdtemp, chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
/**
 * The node fault tests may take down or drain: the one after the `debug` nodes, alone in its
 * partition, so that no other test's job runs there. Use it under `withFaultNode()`.
 */
export const FAULT_NODE = `n${Number(process.env.HPCFLOW_SLURM_NODES ?? '3') + 1}`;
export const FAULT_PARTITION = 'faults';

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

/** Slurm's state of a node, upper case with its flags (`IDLE`, `DOWN+NOT_RESPONDING`, `IDLE+DRAIN`, `MIXED`…). */
export async function nodeState(node: string): Promise<string> {
  const r = await execa('scontrol', ['show', 'node', '-o', node], { env: slurmEnv() });
  return /\bState=(\S+)/.exec(r.stdout)?.[1] ?? 'UNKNOWN';
}

/** `scontrol update nodename=… state=…` (reason required by Slurm for down and drain). */
export async function setNodeState(node: string, state: 'down' | 'drain' | 'resume', reason = 'hpcflow fault test'): Promise<void> {
  const args = ['update', `nodename=${node}`, `state=${state}`, ...(state === 'resume' ? [] : [`reason=${reason}`])];
  await execa('scontrol', args, { env: slurmEnv() });
}

/**
 * Back in service and idle: resumes the node when it is down or drained (ReturnToService=2 may
 * already have brought a downed node back), then waits until it is idle.
 */
export async function restoreNode(node: string, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const state = await nodeState(node);
    if (state === 'IDLE') return;
    if (/DOWN|DRAIN|FAIL/.test(state)) await setNodeState(node, 'resume').catch(() => undefined);
    if (Date.now() - t0 > timeoutMs) throw new Error(`node ${node} is still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Runs `fn` holding the fault node: a lock directory under SLURM_RUN, so that two test runs (two
 * engineers on one machine) never take the node down under each other's jobs. A lock whose
 * process is gone is taken over. The node is back in service and idle before and after `fn`.
 */
export async function withFaultNode<T>(fn: (node: string) => Promise<T>, waitMs = 300_000): Promise<T> {
  const lock = path.join(SLURM_RUN, 'fault-node.lock');
  const t0 = Date.now();
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path.join(lock, 'pid'), 'utf8').catch(() => '')).trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (err) {
          alive = (err as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      // No pid yet: its owner is between mkdir and writing it, unless that was long ago.
      const age = Date.now() - ((await stat(lock).catch(() => null))?.mtimeMs ?? 0);
      if (!alive && (pid > 0 || age > 10_000)) await rm(lock, { recursive: true, force: true });
      else if (Date.now() - t0 > waitMs) throw new Error(`the fault node ${FAULT_NODE} stayed locked by process ${pid} (${lock})`);
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    await writeFile(path.join(lock, 'pid'), `${process.pid}\n`);
    await restoreNode(FAULT_NODE);
    return await fn(FAULT_NODE);
  } finally {
    await restoreNode(FAULT_NODE).catch(() => undefined);
    await rm(lock, { recursive: true, force: true });
  }
}
