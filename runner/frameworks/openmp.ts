/**
 * C with OpenMP (and MPI): the classic HPC baseline, and the implementation that runs on machines
 * without Chapel or Julia images. Compiled once per (source, image, flags) by the runner; run
 * with OpenMP threads per process, and with MPI ranks for more than one task.
 */
import { binaryRef, LOCAL_OMPI_ENV, srunShape, sortedEnv, totalTasks } from './common.js';
import type { AdapterInput, KernelPlan, LaunchMode } from './types.js';

/**
 * -march=x86-64-v2, not native: the binary is cached and may run on any node of a cluster.
 * -ffp-contract=off: no fused multiply-adds, so results do not depend on the target's FMA.
 */
export const OPENMP_CFLAGS = ['-O3', '-march=x86-64-v2', '-ffp-contract=off', '-fopenmp'];

/** OpenMP placement: threads of a process packed on its cores. */
const ompEnv = (threads: number): Record<string, string> => ({ OMP_NUM_THREADS: String(threads), OMP_PLACES: 'cores', OMP_PROC_BIND: 'close' });

export function openmpPlan(input: AdapterInput, mode: LaunchMode): KernelPlan {
  const { kernel, shape, placement, site, launch } = input;
  const mpi = mode === 'mpi';
  const cc = mpi ? (site.mpicc ?? 'mpicc') : (site.cc ?? 'gcc');
  const bin = binaryRef(kernel.source);
  const build = {
    argv: [cc, ...OPENMP_CFLAGS, ...kernel.flags, '-o', bin, kernel.source, ...kernel.ldflags],
    env: sortedEnv(site.buildEnv),
    outputs: [bin.slice(bin.lastIndexOf('/') + 1)],
  };
  const threads = shape.cpusPerTask;
  const n = totalTasks(shape);
  let argv: string[];
  let env: Record<string, string>;
  if (!mpi) {
    // Inside an allocation the process is a job step (srun) so it gets its cgroup and accounting.
    argv = placement === 'slurm' ? ['srun', ...srunShape({ ...shape, nodes: 1 }, 1), '--cpu-bind=cores', bin, ...kernel.args] : [bin, ...kernel.args];
    env = sortedEnv(ompEnv(threads), site.env);
  } else if (placement === 'slurm') {
    argv = ['srun', `--mpi=${launch.srunMpi ?? 'pmix'}`, ...srunShape(shape), '--cpu-bind=cores', bin, ...kernel.args];
    env = sortedEnv(ompEnv(threads), site.env);
  } else {
    // All ranks in this one container: no binding (the container is the unit the runner placed),
    // oversubscription allowed (ranks x threads may exceed the container's cpus).
    argv = [launch.mpirun ?? 'mpirun', '-np', String(n), '--oversubscribe', '--bind-to', 'none', '-x', 'OMP_NUM_THREADS', '-x', 'OMP_PLACES', '-x', 'OMP_PROC_BIND', bin, ...kernel.args];
    env = sortedEnv(ompEnv(threads), LOCAL_OMPI_ENV, site.env);
  }
  return {
    framework: 'openmp',
    mode,
    image: site.image ?? { kind: 'build', context: 'openmp', dockerfile: 'Dockerfile' },
    build,
    run: { argv, env },
    deps: [],
  };
}
