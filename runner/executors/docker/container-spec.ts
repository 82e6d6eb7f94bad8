/**
 * PURE: a stage task → the engine's container-create body. Everything that decides how a stage's
 * container looks is here, snapshot-tested; `run-container.ts` only sends it.
 */
import path from 'node:path';
import type { ContainerCreateOptions } from 'dockerode';
import { HpcflowError } from '../../errors.js';
import type { ResolvedImage, StageTask } from '../executor.js';

export type NetworkMode = 'host' | 'none' | 'bridge';

/** Label keys hpcflow puts on every container it creates (orphan cleanup and tests read them). */
export const LABELS = {
  runId: 'hpcflow.run-id',
  stage: 'hpcflow.stage',
  fingerprint: 'hpcflow.fingerprint',
  ownerPid: 'hpcflow.owner-pid',
  ownerHost: 'hpcflow.owner-host',
  /** Present when the container runs under a per-container parent cgroup (see cgroup-usage.ts). */
  cgroupParent: 'hpcflow.cgroup-parent',
} as const;

export interface ContainerSpecOptions {
  /** `uid:gid` the command runs as (the invoking user's, so outputs are not root-owned). */
  readonly user: string;
  readonly network: NetworkMode;
  /** More `host:container[:ro]` binds (e.g. a site's scratch directory). */
  readonly extraBinds?: readonly string[];
  readonly name: string;
  /** The process that owns the container, for orphan cleanup. */
  readonly owner: { readonly pid: number; readonly host: string };
  /** Extra labels (never overriding hpcflow's own). */
  readonly labels?: Readonly<Record<string, string>>;
  /** CPUs the engine can hand out: NanoCpus is capped to it (Docker refuses more). */
  readonly maxCpus?: number;
  /** A cgroupfs parent path (`/hpcflow/<name>`) so CPU time and peak memory survive the exit. */
  readonly cgroupParent?: string;
}

/**
 * The image reference to create from: the content identity when it is one (an image id, or a
 * `repo@sha256:` digest), so what runs is exactly what was fingerprinted even if the tag moved
 * since; else the ref.
 */
export function pinnedImageRef(image: ResolvedImage): string {
  if (/^sha256:[0-9a-f]{64}$/.test(image.digest) || /@sha256:[0-9a-f]{64}$/.test(image.digest)) {
    return image.digest;
  }
  return image.ref;
}

/** `hpcflow-<pid>-<suffix>-<stage id, sanitised>`: unique, readable in `docker ps`. */
export function containerName(stageId: string, pid: number, suffix: string): string {
  const stage = stageId
    .replace(/[^a-zA-Z0-9_.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  return `hpcflow-${pid}-${suffix}${stage === '' ? '' : `-${stage}`}`;
}

/** Absolute working directory in the container (= on the host: the workspace is mounted 1:1). */
export function workingDir(workspace: string, wdir: string): string {
  if (!path.posix.isAbsolute(workspace)) {
    throw new HpcflowError('HPCFLOW_USAGE', `workspace must be an absolute path, got '${workspace}'`);
  }
  const ws = path.posix.normalize(workspace).replace(/(.)\/+$/, '$1');
  const dir = path.posix.join(ws, wdir);
  if (dir !== ws && !dir.startsWith(ws === '/' ? '/' : `${ws}/`)) {
    throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `stage wdir '${wdir}' leaves the workspace ${ws}`);
  }
  return dir;
}

/** Sorted `KEY=value` list: the stage's env, then hpcflow's variables. */
export function containerEnv(task: StageTask): string[] {
  const { stage } = task;
  const env = new Map<string, string>(Object.entries(stage.env));
  if (!env.has('OMP_NUM_THREADS')) env.set('OMP_NUM_THREADS', String(stage.resources.cpusPerTask));
  // hpcflow's own variables are authoritative.
  env.set('HPCFLOW_STAGE', stage.id);
  env.set('HPCFLOW_RUN_ID', task.runId);
  return [...env.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
}

export function containerCreateOptions(task: StageTask, opts: ContainerSpecOptions): ContainerCreateOptions {
  const { stage } = task;
  const wdir = workingDir(task.workspace, stage.wdir);
  const ws = path.posix.normalize(task.workspace).replace(/(.)\/+$/, '$1');
  const requestedCpus = stage.resources.cpusPerTask * stage.resources.tasksPerNode;
  const cpus = opts.maxCpus !== undefined && opts.maxCpus > 0 ? Math.min(requestedCpus, opts.maxCpus) : requestedCpus;
  const labels: Record<string, string> = {
    ...opts.labels,
    [LABELS.runId]: task.runId,
    [LABELS.stage]: stage.id,
    [LABELS.fingerprint]: task.fingerprint,
    [LABELS.ownerPid]: String(opts.owner.pid),
    [LABELS.ownerHost]: opts.owner.host,
  };
  if (opts.cgroupParent !== undefined) labels[LABELS.cgroupParent] = opts.cgroupParent;

  return {
    name: opts.name,
    Image: pinnedImageRef(task.image),
    Cmd: ['/bin/sh', '-c', stage.cmd],
    // An image's ENTRYPOINT would wrap our shell; the stage's cmd is the whole command.
    Entrypoint: [],
    WorkingDir: wdir,
    Env: containerEnv(task),
    User: opts.user,
    Labels: labels,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      Binds: [`${ws}:${ws}`, ...(opts.extraBinds ?? [])],
      NetworkMode: opts.network,
      NanoCpus: Math.round(cpus * 1e9),
      ...(stage.resources.memoryBytes !== null ? { Memory: stage.resources.memoryBytes } : {}),
      ...(opts.cgroupParent !== undefined ? { CgroupParent: opts.cgroupParent } : {}),
      // We read the exit code, times and usage, then remove the container ourselves.
      AutoRemove: false,
      // Output reaches us through attach; a json-file log would write every line to disk again
      // and is deleted with the container anyway.
      LogConfig: { Type: 'none', Config: {} },
    },
  };
}
