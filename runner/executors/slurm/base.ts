/**
 * What both Slurm executors (batch jobs, and job steps of a held allocation) share: the workspace
 * must be on a filesystem the compute nodes see; stages run as the runner's user in the site's
 * container runtime; images are built and resolved by the Docker engine of this (login) machine,
 * and the nodes run them by digest.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { HpcflowError } from '../../errors.js';
import type { ImageSpec, Stage } from '../../model/pipeline.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { pinnedImageRef } from '../docker/container-spec.js';
import type { Executor, ImageState, MissingImage, ResolvedImage, RunHooks } from '../executor.js';
import type { JobRequest } from './job.js';
import { batchScript, stepOf, taskWrap } from './job.js';
import { runtimeFor } from './runtimes.js';
import type { ContainerRuntime, SlurmSite } from './types.js';

export type LoginImages = Pick<Executor, 'imageState' | 'prepareImage' | 'missingImages' | 'cleanupOrphans' | 'close'>;

export abstract class SlurmExecutorBase {
  readonly name = 'slurm';
  protected readonly runtime: ContainerRuntime;
  protected readonly user: string;
  /** The workspace's .hpcflow/slurm: journal, job scripts and output files. */
  protected readonly dir: string;

  constructor(
    protected readonly images: LoginImages,
    site: SlurmSite,
    workspace: string,
    user: string | undefined,
  ) {
    const ws = posix.normalize(workspace);
    if (site.sharedRoots.length > 0 && !site.sharedRoots.some((r) => ws === r || ws.startsWith(`${r.replace(/\/+$/, '')}/`))) {
      throw new HpcflowError('HPCFLOW_USAGE', `the workspace ${ws} is not under a directory the compute nodes share (${site.sharedRoots.join(', ')})`, {
        hint: "clone the repository under one of the site's shared_roots, or run with --executor docker",
      });
    }
    this.runtime = runtimeFor(site);
    this.user = user ?? `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    this.dir = join(ws, '.hpcflow', 'slurm');
  }

  /**
   * A stage's job request and batch script: its log directory created, and for a framework
   * launcher the task-wrap script written where every node sees it.
   */
  protected async prepareJob(
    site: SlurmSite,
    t: { readonly runId: string; readonly stage: Stage; readonly key: string; readonly workspace: string; readonly image: ResolvedImage; readonly after: readonly string[] },
  ): Promise<{ req: JobRequest; script: string; logDir: string }> {
    const logDir = join(this.dir, 'logs', t.runId);
    await mkdir(logDir, { recursive: true });
    const req: JobRequest = { runId: t.runId, stage: t.stage, key: t.key, workspace: t.workspace, image: pinnedImageRef(t.image), imageTag: t.image.tag, after: t.after, logDir, user: this.user };
    const script = batchScript(req, site, this.runtime);
    if (stepOf(t.stage).launcher) {
      const { file } = taskWrap(req, this.runtime);
      await mkdir(dirname(file.path), { recursive: true });
      await writeFileAtomic(file.path, file.text, { mode: 0o755 });
    }
    return { req, script, logDir };
  }

  imageState(spec: ImageSpec, workspace: string): Promise<ImageState> {
    return this.images.imageState(spec, workspace);
  }

  prepareImage(spec: ImageSpec, workspace: string, hooks: RunHooks, signal: AbortSignal): Promise<ResolvedImage> {
    return this.images.prepareImage(spec, workspace, hooks, signal);
  }

  missingImages(spec: ImageSpec, workspace: string): Promise<MissingImage[]> {
    return this.images.missingImages(spec, workspace);
  }
}
