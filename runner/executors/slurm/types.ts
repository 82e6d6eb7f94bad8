/**
 * The Slurm executor's vocabulary: the site's Slurm settings, and what a container runtime turns a
 * job step into. Everything that generates a command line is a pure function of these, so the
 * sbatch options, batch scripts and per-runtime step commands are snapshot-tested without a cluster.
 */

/** How the container of each task is started on its node. */
export const RUNTIMES = ['docker', 'podman', 'apptainer', 'pyxis', 'oci'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

/** Docker/Podman on the compute nodes. */
export interface DockerRuntimeSite {
  /**
   * `--network` of each task's container; `{node}` becomes the node's name ($SLURMD_NODENAME) at run
   * time. Default `host` (the node's own network: the HPC convention). A site whose "nodes" are
   * themselves containers uses `container:<prefix>{node}`.
   */
  readonly network: string;
  /** `--ipc` (shared memory between ranks on a node), same `{node}` rule; default `host`. */
  readonly ipc: string;
  /** `--pid` (PMIx checks its clients' pids); same `{node}` rule; default `host`. */
  readonly pid: string;
  /** More binds `host[:container[:ro]]`, e.g. the directory of slurmd's PMIx sockets (TmpFS). */
  readonly binds: readonly string[];
}

export interface ApptainerRuntimeSite {
  /** Image reference → what `apptainer exec` takes (a .sif path, `docker-daemon://…`, `oras://…`). */
  readonly images: Readonly<Record<string, string>>;
  readonly binds: readonly string[];
}

export interface PyxisRuntimeSite {
  /** Image reference → what `--container-image` takes (`registry#repo:tag`, a squashfs path). */
  readonly images: Readonly<Record<string, string>>;
  readonly mounts: readonly string[];
}

export interface OciRuntimeSite {
  /** Image reference → the OCI bundle directory `srun --container` takes. */
  readonly bundles: Readonly<Record<string, string>>;
}

export interface SlurmSite {
  readonly runtime: RuntimeName;
  /** Defaults for stages that do not name them (the stage wins). */
  readonly partition: string | null;
  readonly account: string | null;
  readonly qos: string | null;
  readonly constraint: string | null;
  /** More sbatch options, verbatim (e.g. `--gres=gpu:1`, `--reservation=x`). */
  readonly sbatchArgs: readonly string[];
  /** PATH of batch scripts (jobs start with `--export=NONE`: nothing of the runner's environment). */
  readonly path: string;
  /** Directories every node mounts at the same path; a workspace outside them cannot run here. Empty = not checked. */
  readonly sharedRoots: readonly string[];
  /** squeue polling: first interval, and the cap the backoff grows to (ms). */
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  /**
   * Host paths bound into the container of a framework launcher (Chapel multi-locale, Julia
   * Distributed), which starts its own tasks with srun from inside it: the Slurm client, its
   * configuration and the munge socket (e.g. /usr/bin/srun, /etc/slurm, /run/munge).
   */
  readonly launcherBinds: readonly string[];
  /** 'auto': sacct when accounting storage answers, else scontrol + the job completion log. */
  readonly accounting: 'auto' | 'sacct' | 'none';
  readonly docker: DockerRuntimeSite;
  readonly apptainer: ApptainerRuntimeSite;
  readonly pyxis: PyxisRuntimeSite;
  readonly oci: OciRuntimeSite;
}

export const DEFAULT_SLURM_SITE: SlurmSite = {
  runtime: 'docker',
  partition: null,
  account: null,
  qos: null,
  constraint: null,
  sbatchArgs: [],
  path: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  sharedRoots: [],
  pollMinMs: 250,
  pollMaxMs: 5000,
  launcherBinds: [],
  accounting: 'auto',
  docker: { network: 'host', ipc: 'host', pid: 'host', binds: [] },
  apptainer: { images: {}, binds: [] },
  pyxis: { images: {}, mounts: [] },
  oci: { bundles: {} },
};

/** One job step as a runtime sees it: what to run, where, in which image. */
export interface StepInput {
  /** The image to run: a pinned reference (`sha256:…` id, `repo@sha256:…`) or a tag. */
  readonly image: string;
  /** The image reference as the pipeline/site wrote it (the key of the runtime's image maps). */
  readonly imageTag: string;
  /** Absolute workspace path: mounted at the same path in the container. */
  readonly workspace: string;
  /** Absolute working directory of the command (inside the workspace). */
  readonly workdir: string;
  /** Names of the environment variables the command must see; the batch script exports their values. */
  readonly envNames: readonly string[];
  /** The program and its arguments, run in the container on every task of the step. */
  readonly argv: readonly string[];
  /** `uid:gid` the command runs as. */
  readonly user: string;
  /** Labels to put on containers (runtimes that have labels), e.g. the run id and stage. */
  readonly labels: Readonly<Record<string, string>>;
  /** MPI ranks: forward the PMIx/Slurm task environment into the container. */
  readonly mpi: boolean;
  /** More environment prefixes to forward into the container (runtimes that filter the environment). */
  readonly forward?: readonly string[];
  /** More host paths to bind for this step only (a launcher's Slurm client). */
  readonly binds?: readonly string[];
}

/** What a runtime makes of a step: options for `srun`, and the argv each task runs. */
export interface RuntimeStep {
  readonly srunArgs: readonly string[];
  readonly taskArgv: readonly string[];
}

export interface ContainerRuntime {
  readonly name: RuntimeName;
  step(input: StepInput): RuntimeStep;
}
