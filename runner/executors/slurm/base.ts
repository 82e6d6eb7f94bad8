/**
 * What both Slurm executors (batch jobs, and job steps of a held allocation) share: the workspace
 * must be on a filesystem the compute nodes see; stages run as the runner's user in the site's
 * container runtime; images are built and resolved by the Docker engine of this (login) machine,
 * and the nodes run them by digest.
 */
import { join, posix } from 'node:path';
import { HpcflowError } from '../../errors.js';
import type { ImageSpec } from '../../model/pipeline.js';
import type { Executor, ImageState, MissingImage, ResolvedImage, RunHooks } from '../executor.js';
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
