/**
 * The local Docker executor: images from the engine or built from `containers/<ctx>/`, one
 * container per stage (see container-spec.ts for its shape, run-container.ts for its lifecycle).
 *
 * Import cost matters (`status` loads this module): dockerode and tar-fs are loaded only when an
 * image is built or a stage runs; image lookups use the tiny `engine-api.ts` client.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { HpcflowError } from '../../errors.js';
import type { ImageSpec } from '../../model/pipeline.js';
import type { Executor, ImageState, MissingImage, ResolvedImage, RunHooks, StageRunResult, StageTask } from '../executor.js';
import {
  canManageCgroups,
  cgroupParentPath,
  detectCgroupLayout,
  listCgroupParents,
  removeCgroup,
} from './cgroup-usage.js';
import type { CgroupLayout } from './cgroup-usage.js';
import { LABELS, containerCreateOptions, containerName, workingDir } from './container-spec.js';
import type { NetworkMode } from './container-spec.js';
import { contextImageTag, hashBuildContext, resolveBuildContext } from './context-hash.js';
import type { BuildContext, ContextHash } from './context-hash.js';
import { createEngineApi, describeEngineError, engineUnavailable, isConnectionError, resolveSocketPath, statusCode } from './engine-api.js';
import type { EngineApi } from './engine-api.js';
import { closeDockerode, loadDockerode } from './load-dockerode.js';
import { ownerPidFromName, selectOrphans } from './orphans.js';
import { runContainer } from './run-container.js';

export interface DockerExecutorOptions {
  /** Default: `DOCKER_HOST=unix://…`, else /var/run/docker.sock. */
  readonly socketPath?: string;
  /** Default 'host' (the HPC convention; also the cheapest start, ~120 ms vs ~240 ms for bridge). */
  readonly network?: NetworkMode;
  /** `uid:gid` stages run as. Default: this process's uid:gid. */
  readonly user?: string;
  /** A ready dockerode instance; default: created (and imported) on first build/run. */
  readonly docker?: Dockerode;
  readonly extraBinds?: readonly string[];
  /** Measure CPU time and peak memory through per-container parent cgroups when the engine and
   * this process allow it (cgroup-usage.ts). Default true. */
  readonly measureUsage?: boolean;
  /** Recorded in labels and results. Default os.hostname(). */
  readonly hostname?: string;
  /** Default process.env (only DOCKER_HOST is read). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

interface EngineFacts {
  readonly ncpu: number;
  readonly cgroup: CgroupLayout | null;
}

interface LiveContainer {
  readonly docker: Dockerode;
  /** Cancels the run that owns it (so its result says canceled, not a bare exit 137). */
  readonly cancel: () => void;
}

/** Containers any executor of this process is running: `removeAllLive()` is for signal handlers. */
const LIVE = new Map<string, LiveContainer>();

/**
 * Cancels every run of this process's executors and force-removes their containers (for a
 * SIGINT handler; normally aborting each run's signal is enough). Returns how many were removed.
 */
export async function removeAllLive(): Promise<number> {
  const entries = [...LIVE.entries()];
  for (const [, live] of entries) live.cancel();
  const results = await Promise.all(
    entries.map(async ([id, { docker }]) => {
      try {
        await docker.getContainer(id).remove({ force: true, v: true });
      } catch (e) {
        if (statusCode(e) !== 404) return false;
      }
      LIVE.delete(id);
      return true;
    }),
  );
  return results.filter(Boolean).length;
}

/** `process.kill(pid, 0)`: ESRCH → gone; EPERM → alive (someone else's process). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isMissingDir(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class DockerExecutor implements Executor {
  readonly name = 'docker';
  readonly socketPath: string;
  private readonly api: EngineApi;
  private readonly network: NetworkMode;
  private readonly user: string;
  private readonly host: string;
  private readonly extraBinds: readonly string[];
  private readonly measureUsage: boolean;
  private dockerP: Promise<Dockerode> | undefined;
  private factsP: Promise<EngineFacts> | undefined;
  /** This executor's containers → cancel their run. */
  private readonly live = new Map<string, () => void>();
  private readonly building = new Map<string, Promise<ResolvedImage>>();

  constructor(opts: DockerExecutorOptions = {}) {
    this.socketPath = resolveSocketPath(opts.env ?? process.env, opts.socketPath);
    this.api = createEngineApi({ socketPath: this.socketPath });
    this.network = opts.network ?? 'host';
    this.user = opts.user ?? `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    this.host = opts.hostname ?? os.hostname();
    this.extraBinds = opts.extraBinds ?? [];
    this.measureUsage = opts.measureUsage ?? true;
    if (opts.docker !== undefined) this.dockerP = Promise.resolve(opts.docker);
  }

  async imageState(spec: ImageSpec, workspace: string): Promise<ImageState> {
    if (spec.kind === 'ref') {
      const img = await this.api.inspectImage(spec.ref);
      if (img !== null) return { state: 'present', image: { ref: img.id, digest: img.id, tag: spec.ref } };
      return {
        state: 'missing',
        tag: spec.ref,
        reason: `image ${spec.ref} is not in the local Docker engine (hpcflow never pulls: build it or set a site image)`,
      };
    }
    const ctx = resolveBuildContext(workspace, spec);
    const hash = await hashContextIfPresent(ctx);
    if (hash === null) {
      return { state: 'missing', tag: contextImageTag(ctx.name, ''), reason: `build context ${ctx.dir} does not exist` };
    }
    const img = await this.api.inspectImage(hash.tag);
    if (img !== null) return { state: 'present', image: { ref: img.id, digest: img.id, tag: hash.tag } };
    return { state: 'needs-build', tag: hash.tag, reason: `image ${hash.tag} not built yet` };
  }

  async missingImages(spec: ImageSpec, workspace: string): Promise<MissingImage[]> {
    if (spec.kind === 'ref') return (await this.api.inspectImage(spec.ref)) === null ? [{ ref: spec.ref, dockerfile: null }] : [];
    const ctx = resolveBuildContext(workspace, spec);
    const hash = await hashContextIfPresent(ctx);
    if (hash === null || (await this.api.inspectImage(hash.tag)) !== null) return []; // a missing context is reported by the build
    const file = path.join(ctx.dir, ctx.dockerfile);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return [];
    }
    const out: MissingImage[] = [];
    for (const base of dockerfileBases(text)) {
      if ((await this.api.inspectImage(base)) === null) out.push({ ref: base, dockerfile: path.relative(workspace, file) });
    }
    return out;
  }

  async prepareImage(
    spec: ImageSpec,
    workspace: string,
    hooks: RunHooks,
    signal: AbortSignal,
  ): Promise<ResolvedImage> {
    if (signal.aborted) throw new HpcflowError('HPCFLOW_ABORTED', 'aborted before the image was prepared');
    if (spec.kind === 'ref') {
      const img = await this.api.inspectImage(spec.ref);
      if (img !== null) return { ref: img.id, digest: img.id, tag: spec.ref };
      throw new HpcflowError('HPCFLOW_IMAGE_NOT_FOUND', `image ${spec.ref} is not in the local Docker engine`, {
        hint:
          'hpcflow never pulls, and no image registry may be reachable from here: build the image ' +
          '(docker build / docker import), or set a site image that exists locally',
      });
    }
    const ctx = resolveBuildContext(workspace, spec);
    const hash = await hashContextIfPresent(ctx);
    if (hash === null) {
      throw new HpcflowError('HPCFLOW_IMAGE_BUILD_FAILED', `build context ${ctx.dir} does not exist`, {
        hint: `create ${path.join(ctx.dir, ctx.dockerfile)}`,
      });
    }
    const present = await this.api.inspectImage(hash.tag);
    if (present !== null) return { ref: present.id, digest: present.id, tag: hash.tag };
    // Two stages asking for the same image at once share one build.
    let p = this.building.get(hash.tag);
    if (p === undefined) {
      p = this.build(ctx, hash, hooks, signal).finally(() => this.building.delete(hash.tag));
      this.building.set(hash.tag, p);
    }
    return p;
  }

  private async build(ctx: BuildContext, hash: ContextHash, hooks: RunHooks, signal: AbortSignal): Promise<ResolvedImage> {
    const docker = await this.docker();
    const { buildImage } = await import('./build.js');
    const built = await buildImage(docker, {
      contextDir: ctx.dir,
      dockerfile: ctx.dockerfile,
      tag: hash.tag,
      paths: hash.paths,
      onLog: (line) => hooks.onLog('stdout', line),
      signal,
      socketPath: this.socketPath,
    });
    return { ref: built.id, digest: built.id, tag: hash.tag };
  }

  async run(task: StageTask, hooks: RunHooks, signal: AbortSignal): Promise<StageRunResult> {
    const [docker, facts] = await Promise.all([this.docker(), this.facts()]);
    // The engine would create a missing working directory itself — inside the bind mount, owned
    // by root, where a non-root stage then cannot write. Create it as the invoking user.
    await mkdir(workingDir(task.workspace, task.stage.wdir), { recursive: true });
    const name = containerName(task.stage.id, process.pid, randomBytes(3).toString('hex'));
    const cgroupParent = facts.cgroup !== null ? cgroupParentPath(name) : undefined;
    const createOpts = containerCreateOptions(task, {
      user: this.user,
      network: this.network,
      extraBinds: this.extraBinds,
      name,
      owner: { pid: process.pid, host: this.host },
      maxCpus: facts.ncpu,
      ...(cgroupParent !== undefined ? { cgroupParent } : {}),
    });
    // The run's own signal: the caller's, or removeAllLive()/close() cancelling it.
    const own = new AbortController();
    const follow = (): void => own.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener('abort', follow, { once: true });
    try {
      return await runContainer(docker, createOpts, {
        onLog: (stream, line) => hooks.onLog(stream, line),
        signal: own.signal,
        timeoutSec: task.stage.resources.timeLimitSec,
        cgroup: facts.cgroup,
        node: this.host,
        socketPath: this.socketPath,
        onCreated: (id) => {
          this.live.set(id, () => own.abort());
          LIVE.set(id, { docker, cancel: () => own.abort() });
        },
        onRemoved: (id) => {
          this.live.delete(id);
          LIVE.delete(id);
        },
      });
    } finally {
      signal.removeEventListener('abort', follow);
    }
  }

  async cleanupOrphans(): Promise<number> {
    try {
      return await this.removeOrphans();
    } catch (e) {
      // The first call of a run to the engine: an engine that is down is said so, not a stack trace.
      if (isConnectionError(e)) throw engineUnavailable(this.socketPath, e);
      if (e instanceof HpcflowError) throw e;
      throw new HpcflowError('HPCFLOW_ENGINE_UNAVAILABLE', `the Docker engine failed to list or remove leftover containers: ${describeEngineError(e)}`, { cause: e });
    }
  }

  private async removeOrphans(): Promise<number> {
    const docker = await this.docker();
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.ownerHost}=${this.host}`] } });
    const orphans = selectOrphans(
      list.map((c) => ({ id: c.Id, labels: c.Labels ?? {} })),
      this.host,
      isProcessAlive,
    );
    const facts = await this.facts();
    let removed = 0;
    for (const o of orphans) {
      try {
        await docker.getContainer(o.id).remove({ force: true, v: true });
        removed++;
      } catch (e) {
        if (statusCode(e) !== 404) throw e;
      }
      const parent = o.labels[LABELS.cgroupParent];
      if (facts.cgroup !== null && parent !== undefined) await removeCgroup(facts.cgroup, parent);
    }
    // Parents whose run died between removing its container and removing the parent.
    if (facts.cgroup !== null) {
      for (const name of await listCgroupParents(facts.cgroup)) {
        const pid = ownerPidFromName(name);
        if (pid !== null && !isProcessAlive(pid)) await removeCgroup(facts.cgroup, cgroupParentPath(name));
      }
    }
    return removed;
  }

  /** Cancels and removes whatever this executor still runs (normally nothing: runs clean up). */
  async close(): Promise<void> {
    if (this.dockerP === undefined) return;
    const docker = await this.dockerP;
    try {
      await this.removeLive(docker);
    } finally {
      closeDockerode(docker);
    }
  }

  private async removeLive(docker: Dockerode): Promise<void> {
    if (this.live.size === 0) return;
    for (const cancel of this.live.values()) cancel();
    await Promise.all(
      [...this.live.keys()].map(async (id) => {
        try {
          await docker.getContainer(id).remove({ force: true, v: true });
        } catch (e) {
          if (statusCode(e) !== 404) return;
        }
        this.live.delete(id);
        LIVE.delete(id);
      }),
    );
  }

  private docker(): Promise<Dockerode> {
    this.dockerP ??= loadDockerode(this.socketPath);
    return this.dockerP;
  }

  /** Read once per executor: CPU count (NanoCpus cap) and whether usage can be measured. */
  private facts(): Promise<EngineFacts> {
    this.factsP ??= (async (): Promise<EngineFacts> => {
      const info = await this.api.info();
      let cgroup: CgroupLayout | null = null;
      if (this.measureUsage && info.cgroupDriver === 'cgroupfs') {
        const layout = await detectCgroupLayout();
        const sameVersion = layout !== null && (info.cgroupVersion === '' || info.cgroupVersion === String(layout.version));
        if (layout !== null && sameVersion && (await canManageCgroups(layout))) cgroup = layout;
      }
      return { ncpu: info.ncpu, cgroup };
    })().catch((e: unknown) => {
      this.factsP = undefined;
      throw e;
    });
    return this.factsP;
  }
}

/** The build context's hash, or null when its directory does not exist. */
async function hashContextIfPresent(ctx: Parameters<typeof hashBuildContext>[0]): Promise<ContextHash | null> {
  try {
    return await hashBuildContext(ctx);
  } catch (e) {
    if (isMissingDir(e)) return null;
    throw e;
  }
}

/**
 * PURE. The external images a Dockerfile starts FROM: not `scratch`, not an earlier stage's name,
 * not a reference built from ARGs (unknowable before the build).
 */
export function dockerfileBases(text: string): string[] {
  const stages = new Set<string>();
  const bases: string[] = [];
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const line of lines) {
    const m = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (m === null) continue;
    const ref = m[1] as string;
    if (m[2] !== undefined) stages.add(m[2].toLowerCase());
    if (ref.toLowerCase() === 'scratch' || stages.has(ref.toLowerCase()) || ref.includes('$')) continue;
    if (!bases.includes(ref)) bases.push(ref);
  }
  return bases;
}
