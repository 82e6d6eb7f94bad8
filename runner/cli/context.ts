import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Executor } from '../executors/executor.js';
import type { ImageSpec } from '../model/pipeline.js';
import type { ImageState } from '../executors/executor.js';
import type { Workspace } from '../engine/workspace.js';
import { namedSiteFile } from '../config/site-digest.js';
import type { SiteConfig } from '../config/site-config.js';
import { parseMatrixFilter } from '../engine/matrix-filter.js';
import { HpcflowError } from '../errors.js';
import type { CliIO } from './io.js';

export interface CommonValues {
  readonly workspace?: string | undefined;
  readonly 'cache-dir'?: string | undefined;
  readonly lenient?: boolean | undefined;
  readonly site?: string | undefined;
  readonly executor?: string | undefined;
  readonly matrix?: readonly string[] | undefined;
}

/** The workspace directory named by -C, or the nearest one above the current directory. */
export function workspaceRoot(v: CommonValues, io: CliIO): string {
  return v.workspace !== undefined ? resolve(io.cwd, v.workspace) : findRoot(io.cwd);
}

/**
 * The nearest directory at or above `from` that has a `pipelines/` directory. Here rather than
 * imported from engine/workspace.ts: that module loads the cache, the lockfile, the graph and
 * the hashers, which the no-op `status` fast path (workspaceRoot, then the stat snapshot) must
 * not pay for; `openFromArgs` imports it when a workspace is really opened.
 */
function findRoot(from: string): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'pipelines'))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new HpcflowError('HPCFLOW_NOT_A_WORKSPACE', `no pipelines/ directory in ${resolve(from)} or any parent`, {
        hint: 'run `hpcflow init` to create a workspace, or cd into one',
      });
    }
    dir = up;
  }
}

/** `--executor`, else $HPCFLOW_EXECUTOR, as given ('' when neither): the site file may name one too. */
export function executorFlag(v: CommonValues, io: CliIO): string {
  const e = v.executor ?? io.env.HPCFLOW_EXECUTOR ?? '';
  if (e !== '' && e !== 'docker' && e !== 'slurm') throw new HpcflowError('HPCFLOW_USAGE', `--executor must be docker or slurm (got '${e}')`);
  return e;
}

/** A workspace opened for a command, with the executor it runs on and the site file it read. */
export type CliWorkspace = Workspace & { readonly executorName: 'docker' | 'slurm'; readonly siteConfig: SiteConfig | undefined };

export async function openFromArgs(v: CommonValues, io: CliIO): Promise<CliWorkspace> {
  const root = workspaceRoot(v, io);
  const cacheDir = v['cache-dir'] ?? io.env.HPCFLOW_CACHE_DIR;
  // The site file's parser (and the adapters that re-plan for it) load only when there is one.
  const site = namedSiteFile(v.site, io.env) === undefined ? undefined : (await import('../config/site-config.js')).loadSiteConfig(v.site, io.env, io.cwd);
  const executor = (executorFlag(v, io) || (site?.executor ?? 'docker')) as 'docker' | 'slurm';
  // Kernel stages on Slurm launch inside their job's allocation (srun), not in one container.
  const placement = executor === 'slurm' ? 'slurm' : 'local';
  const { openWorkspace } = await import('../engine/workspace.js');
  const ws = await openWorkspace(root, { cacheDir: cacheDir === undefined ? undefined : resolve(io.cwd, cacheDir), lenient: v.lenient ?? false, ...(site !== undefined ? { site } : {}), placement, matrix: parseMatrixFilter(v.matrix) });
  return Object.assign(ws, { executorName: executor, siteConfig: site });
}

/** The executor the run uses: the local Docker engine, or Slurm (images still built by the local engine). */
export async function executorFor(ws: CliWorkspace, io: CliIO): Promise<Executor> {
  const docker = await dockerExecutor(io);
  if (ws.executorName !== 'slurm') return docker;
  const { DEFAULT_SLURM_SITE } = await import('../executors/slurm/types.js');
  const site = ws.siteConfig?.slurm ?? DEFAULT_SLURM_SITE;
  const allocation = io.env.HPCFLOW_SLURM_ALLOCATION;
  if (allocation !== undefined && allocation !== '') {
    // Inside an allocation the caller holds: every stage is a job step of it.
    const { SlurmStepExecutor, parseAllocation } = await import('../executors/slurm/step-executor.js');
    const { expandHostlist, slurmCommands } = await import('../executors/slurm/slurm-cli.js');
    const id = parseAllocation(allocation);
    const job = (await slurmCommands().squeue()).get(id);
    if (job === undefined || job.state !== 'RUNNING') {
      throw new HpcflowError('HPCFLOW_SCHEDULER', `HPCFLOW_SLURM_ALLOCATION names job ${id}, which is ${job === undefined ? 'not a job of yours that Slurm knows' : job.state}`, {
        hint: 'run inside a granted allocation (salloc), or unset HPCFLOW_SLURM_ALLOCATION to submit batch jobs',
      });
    }
    return new SlurmStepExecutor({ site, workspace: ws.root, allocation: id, nodes: job.nodes === '' ? [] : expandHostlist(job.nodes), images: docker, env: io.env });
  }
  const { SlurmExecutor } = await import('../executors/slurm/slurm-executor.js');
  const ex = new SlurmExecutor({ site, workspace: ws.root, images: docker });
  await ex.init();
  return ex;
}

/** The local Docker executor, configured from the environment. */
export async function dockerExecutor(io: CliIO): Promise<Executor> {
  const network = dockerNetwork(io);
  const { DockerExecutor } = await import('../executors/docker/docker-executor.js');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return new DockerExecutor({ network, user: `${uid}:${gid}` });
}

/** $HPCFLOW_DOCKER_NETWORK, checked. */
function dockerNetwork(io: CliIO): 'host' | 'none' | 'bridge' {
  const network = io.env.HPCFLOW_DOCKER_NETWORK ?? 'host';
  if (network !== 'host' && network !== 'none' && network !== 'bridge') {
    throw new HpcflowError('HPCFLOW_USAGE', `HPCFLOW_DOCKER_NETWORK must be host, none or bridge (got '${network}')`);
  }
  return network;
}

/** Image lookups of `status`/`plan`, and the executor they were answered by (created on demand). */
export interface StatusImages {
  /** Memoised like memoImageState: one engine query per distinct image. */
  readonly imageState: (spec: ImageSpec) => Promise<ImageState>;
  /** Closes the executor if one was created. */
  close(): Promise<void>;
}

/**
 * Image lookups for `status` and `plan` that load the Docker executor only when needed. An image
 * named by a tag is asked of the engine through its small HTTP client alone — what the executor's
 * own `imageState` does for a tag — so the no-op fast path (the stat snapshot, whose images are
 * usually tags) never loads the executor and its modules; a build context (hashed by the executor)
 * goes through the executor, created on first need like `dockerExecutor(io)`.
 */
export function statusImages(io: CliIO, workspace: string): StatusImages {
  dockerNetwork(io); // the same usage error, at the same moment, as creating the executor
  let executor: Promise<Executor> | undefined;
  const viaExecutor = (spec: ImageSpec): Promise<ImageState> => {
    executor ??= dockerExecutor(io);
    return executor.then((ex) => ex.imageState(spec, workspace));
  };
  // Loaded at once (it is small), so that the first query goes out while the caller still reads its snapshot.
  const api = import('../executors/docker/engine-api.js').then((m) => m.createEngineApi({ socketPath: m.resolveSocketPath(process.env) }));
  api.catch(() => undefined);
  const byTag = async (ref: string): Promise<ImageState> => {
    const img = await (await api).inspectImage(ref);
    if (img !== null) return { state: 'present', image: { ref: img.id, digest: img.id, tag: ref } };
    // The executor words the missing image (and the state) itself.
    return viaExecutor({ kind: 'ref', ref });
  };
  const memo = new Map<string, Promise<ImageState>>();
  return {
    imageState: (spec) => {
      const key = JSON.stringify(spec);
      let p = memo.get(key);
      if (p === undefined) {
        p = spec.kind === 'ref' ? byTag(spec.ref) : viaExecutor(spec);
        memo.set(key, p);
      }
      return p;
    },
    async close() {
      if (executor !== undefined) await (await executor).close();
    },
  };
}

/** Memoised image lookups: one engine query per distinct image, however many stages use it. */
export function memoImageState(ex: Executor, workspace: string): (spec: ImageSpec) => Promise<ImageState> {
  const memo = new Map<string, Promise<ImageState>>();
  return (spec) => {
    const key = JSON.stringify(spec);
    let p = memo.get(key);
    if (p === undefined) {
      p = ex.imageState(spec, workspace);
      memo.set(key, p);
    }
    return p;
  };
}
