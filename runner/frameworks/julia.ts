/**
 * Julia: `julia --project=<env> --threads=N`, packages from the committed Project.toml and
 * Manifest.toml (both in the stage's fingerprint), precompiled into the image's depot so that no
 * node precompiles at run time. Across tasks: Distributed workers (one per task, launched inside
 * the allocation) or MPI.jl over the system MPI (one rank per task).
 */
import { posix } from 'node:path';
import { LOCAL_OMPI_ENV, srunShape, sortedEnv, totalTasks } from './common.js';
import type { AdapterInput, KernelPlan, LaunchMode } from './types.js';

/**
 * How a Distributed kernel starts its workers, read by the kernel (kernels/heat/julia/SrunManager.jl
 * is the reference): `local:N` = N workers in this container (addprocs), `srun` = one worker per
 * task of the current allocation, started by srun within it.
 */
export const JULIA_LAUNCHER_VAR = 'HPCFLOW_JULIA_LAUNCHER';

/**
 * Run time: never touch the network for packages (a node may not reach a registry, and a resolve
 * at run time would change the environment), never precompile at run time (the image's depot has
 * the caches; a stale one must fail loudly at build, not silently compile on 128 nodes).
 */
const RUN_ENV = { JULIA_PKG_OFFLINE: 'true', JULIA_PKG_PRECOMPILE_AUTO: '0' };

export function juliaPlan(input: AdapterInput, mode: LaunchMode): KernelPlan {
  const { kernel, shape, placement, site, launch } = input;
  const project = kernel.project ?? posix.dirname(kernel.source);
  const n = totalTasks(shape);
  const threads = shape.cpusPerTask;
  // --threads=N,0: N default threads and no interactive thread (a batch kernel has no REPL).
  const julia = ['julia', `--project=${project}`, `--threads=${threads},0`, '--startup-file=no', '--history-file=no', ...kernel.flags];
  const env: Record<string, string> = { ...RUN_ENV };
  if (site.cpuTarget !== undefined) env.JULIA_CPU_TARGET = site.cpuTarget;
  let argv: string[];
  if (mode === 'threads') {
    argv = placement === 'slurm' ? ['srun', ...srunShape({ ...shape, nodes: 1 }, 1), '--cpu-bind=cores', ...julia, kernel.source, ...kernel.args] : [...julia, kernel.source, ...kernel.args];
  } else if (mode === 'distributed') {
    // The master runs where the command runs (the batch step on the first node); the kernel adds
    // one worker per task. Workers inherit --project and --threads through addprocs' exeflags.
    env[JULIA_LAUNCHER_VAR] = placement === 'slurm' ? 'srun' : `local:${n}`;
    // Workers connect back to the master; on slow shared filesystems their start-up (loading
    // the depot) can exceed the default 60 s.
    env.JULIA_WORKER_TIMEOUT = '300';
    argv = [...julia, kernel.source, ...kernel.args];
  } else {
    argv =
      placement === 'slurm'
        ? ['srun', `--mpi=${launch.srunMpi ?? 'pmix'}`, ...srunShape(shape), '--cpu-bind=cores', ...julia, kernel.source, ...kernel.args]
        : ['mpiexec', '-n', String(n), '--oversubscribe', '--bind-to', 'none', ...julia, kernel.source, ...kernel.args];
    if (placement === 'local') Object.assign(env, LOCAL_OMPI_ENV);
  }
  return {
    framework: 'julia',
    mode,
    image: site.image ?? { kind: 'build', context: 'julia', dockerfile: 'Dockerfile' },
    build: null,
    run: { argv, env: sortedEnv(env, site.env) },
    // LocalPreferences.toml holds MPIPreferences' choice of MPI library: it changes what runs.
    deps: [`${project}/Project.toml`, `${project}/Manifest.toml`, `${project}/LocalPreferences.toml`],
  };
}
