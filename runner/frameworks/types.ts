/**
 * Framework adapters: a kernel stage (`kernel:` in a pipeline) names a framework, a source file,
 * the program's arguments and a launch mode; the adapter for that framework turns it, the
 * stage's launch shape and the site's settings into the compile command (if the framework
 * compiles), the run command and their environments. Adapters are pure functions of their input,
 * so every command they generate is snapshot-tested without Chapel, Julia or Slurm at hand.
 */
import type { ImageSpec } from '../model/pipeline.js';

export const FRAMEWORKS = ['openmp', 'chapel', 'julia', 'python'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/**
 * How the kernel's processes are laid out:
 * - threads: one process, threads = cpus per task (OpenMP threads, Chapel single-locale, Julia --threads)
 * - locales: Chapel multi-locale, one locale per task (`-nl N`)
 * - distributed: Julia Distributed, one worker per task
 * - mpi: one MPI rank per task (C/OpenMP+MPI, MPI.jl)
 */
export const LAUNCH_MODES = ['threads', 'locales', 'distributed', 'mpi'] as const;
export type LaunchMode = (typeof LAUNCH_MODES)[number];

/** Which launch modes each framework has, the first being its multi-process default. */
export const FRAMEWORK_MODES: Readonly<Record<Framework, readonly LaunchMode[]>> = {
  openmp: ['mpi', 'threads'],
  chapel: ['locales', 'threads'],
  julia: ['distributed', 'mpi', 'threads'],
  python: ['threads'],
};

/** The `kernel:` of a resolved stage. Paths are workspace-relative POSIX. */
export interface KernelSpec {
  readonly framework: Framework;
  /** The entry source file (the .c, .chpl or .jl file). */
  readonly source: string;
  /** The program's own arguments. */
  readonly args: readonly string[];
  /** Compile flags added after the adapter's (chpl / cc); for Julia, extra `julia` options. */
  readonly flags: readonly string[];
  /** Link flags placed after the source (C only, e.g. -lm). */
  readonly ldflags: readonly string[];
  /** 'auto': threads for one task, else the framework's multi-process default. */
  readonly launch: LaunchMode | 'auto';
  /** Julia environment directory (Project.toml); default: the source's directory. */
  readonly project: string | null;
}

/** Where the run command executes. */
export type Placement =
  /** One container on this machine (Docker): several processes share it. */
  | 'local'
  /** Inside the Slurm allocation the runner already holds: launch with srun, never a second allocation. */
  | 'slurm';

/** The launch shape (from the stage's resources). */
export interface Shape {
  readonly nodes: number;
  readonly tasksPerNode: number;
  readonly cpusPerTask: number;
}

/** A command and its environment. `argv[0]` is looked up on PATH in the container. */
export interface Command {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The compile step of a compiled framework. */
export interface BuildPlan extends Command {
  /**
   * Files the compiler writes into the kernel directory (`$HPCFLOW_KERNEL_DIR`), e.g. the Chapel
   * binary and its `_real` companion for multi-locale launchers. They are cached together.
   */
  readonly outputs: readonly string[];
}

export interface KernelPlan {
  readonly framework: Framework;
  readonly mode: LaunchMode;
  /** The image this framework runs in unless the site or the stage says otherwise. */
  readonly image: ImageSpec;
  /** null: nothing to compile (Julia). */
  readonly build: BuildPlan | null;
  readonly run: Command;
  /** Workspace files besides the source that the kernel reads at start (Project.toml...). */
  readonly deps: readonly string[];
}

/**
 * Where compiled binaries are, in the container: an absolute path under the workspace's
 * `.hpcflow/bin/<compile key>/`, set by the runner for the compile and the run. Commands refer
 * to it by this variable so that they do not depend on the image digest (which is in the key).
 */
export const KERNEL_DIR_VAR = 'HPCFLOW_KERNEL_DIR';
export const KERNEL_DIR_REF = `$${KERNEL_DIR_VAR}`;

/** Site settings of one framework (from the site configuration). All optional. */
export interface FrameworkSite {
  /** The image (single-process / single-locale runs). */
  readonly image?: ImageSpec;
  /** Chapel: the multi-locale (GASNet) image. */
  readonly multilocaleImage?: ImageSpec;
  /** Extra environment of the run (site network interfaces, GASNet tuning...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra environment of the compile (e.g. CHPL_TARGET_CPU); part of the compile key. */
  readonly buildEnv?: Readonly<Record<string, string>>;
  /** C compiler (openmp; default gcc) and MPI wrapper (default mpicc). */
  readonly cc?: string;
  readonly mpicc?: string;
  /** Chapel: the GASNet substrate the multi-locale image was built with (default udp). */
  readonly substrate?: 'udp' | 'smp' | 'ibv' | 'ofi' | 'mpi';
  /** Julia: JULIA_CPU_TARGET used for precompiled code (portable across a cluster's nodes). */
  readonly cpuTarget?: string;
}

/** Site-wide launch settings. */
export interface LaunchSite {
  /** `srun --mpi=<this>` (default pmix). */
  readonly srunMpi?: string;
  /** Local MPI launcher (default mpirun). */
  readonly mpirun?: string;
}

export interface AdapterInput {
  readonly kernel: KernelSpec;
  readonly shape: Shape;
  readonly placement: Placement;
  readonly site: FrameworkSite;
  readonly launch: LaunchSite;
}

export type Adapter = (input: AdapterInput, mode: LaunchMode) => KernelPlan;

/**
 * Set in a compiled kernel's environment to its compile command (`K=V … chpl …`): it is part of the
 * stage's fingerprint that way, so a change of flags or compile settings reruns the stage and is
 * explained as such, and the kernel can log how it was built.
 */
export const KERNEL_BUILD_VAR = 'HPCFLOW_KERNEL_BUILD';
