/**
 * Chapel: compiled once with `chpl --fast` into a binary cached by source, image digest and
 * CHPL_* settings; run single-locale (CHPL_COMM=none, threads per locale from cpus per task) or
 * multi-locale (`-nl N`, GASNet), with the launcher settings that fit where it runs.
 */
import { binaryName, binaryRef, sortedEnv, totalTasks } from './common.js';
import type { AdapterInput, KernelPlan, LaunchMode } from './types.js';

/**
 * `--fast` turns on optimisation and turns off checks, and also relaxes IEEE floating point
 * (`--no-ieee-float`: the back end may reassociate). `--ieee-float` after it keeps the
 * optimisations without reassociation. It does not forbid fused multiply-adds with the LLVM back
 * end; CHPL_TARGET_CPU=none (baseline x86-64, no FMA instruction) is what keeps the results
 * bitwise comparable with the C and Julia kernels there. On FMA targets a site adds
 * `CHPL_TARGET_COMPILER=gnu` to build_env and `--ccflags -ffp-contract=off` to the flags.
 */
export const CHAPEL_FLAGS = ['--fast', '--ieee-float'];

/**
 * Compile settings that the runner fixes (and that therefore go into the compile key with the
 * image digest). CHPL_TARGET_CPU=none: a cached binary may run on any node of a cluster, so it must
 * not use the build node's newest instructions (the official images build with `none` too).
 */
const BUILD_ENV_COMMON = { CHPL_TARGET_CPU: 'none' };
const BUILD_ENV_SINGLE = { ...BUILD_ENV_COMMON, CHPL_COMM: 'none' };

export function chapelPlan(input: AdapterInput, mode: LaunchMode): KernelPlan {
  const { kernel, shape, placement, site } = input;
  const multi = mode === 'locales';
  const substrate = site.substrate ?? 'udp';
  const name = binaryName(kernel.source);
  const bin = binaryRef(kernel.source);
  const buildEnv = multi
    ? sortedEnv(BUILD_ENV_COMMON, { CHPL_COMM: 'gasnet', CHPL_COMM_SUBSTRATE: substrate }, launcherEnv(substrate, placement), site.buildEnv)
    : sortedEnv(BUILD_ENV_SINGLE, site.buildEnv);
  // A multi-locale build writes the launcher (`heat`) and the program it launches (`heat_real`).
  const outputs = multi ? [name, `${name}_real`] : [name];
  const build = { argv: ['chpl', ...CHAPEL_FLAGS, ...kernel.flags, '-o', bin, kernel.source], env: buildEnv, outputs };

  const threads = String(shape.cpusPerTask);
  const env: Record<string, string> = {
    // Worker threads per locale = the cpus the task holds; more would oversubscribe the cores.
    CHPL_RT_NUM_THREADS_PER_LOCALE: threads,
  };
  let argv: string[];
  if (!multi) {
    argv = placement === 'slurm' ? ['srun', '--nodes=1', '--ntasks=1', `--cpus-per-task=${threads}`, '--cpu-bind=none', bin, ...kernel.args] : [bin, ...kernel.args];
  } else {
    const n = totalTasks(shape);
    argv = [bin, '-nl', String(n), ...kernel.args];
    Object.assign(env, { GASNET_QUIET: 'yes' }, multiLocaleEnv(substrate, placement, shape));
  }
  return {
    framework: 'chapel',
    mode,
    image: multi
      ? (site.multilocaleImage ?? { kind: 'build', context: 'chapel-gasnet', dockerfile: 'Dockerfile' })
      : (site.image ?? { kind: 'build', context: 'chapel', dockerfile: 'Dockerfile' }),
    build,
    run: { argv, env: sortedEnv(env, site.env) },
    deps: [],
  };
}

/** The launcher a multi-locale binary is built with (CHPL_LAUNCHER is a compile setting). */
function launcherEnv(substrate: string, placement: string): Record<string, string> {
  if (substrate === 'udp' || substrate === 'smp') return { CHPL_LAUNCHER: substrate === 'udp' ? 'amudprun' : 'smp' };
  // ibv / ofi / mpi inside an allocation: NOT slurm-gasnetrun_* (they call salloc, i.e. ask for a
  // second allocation), but slurm-srun, which runs `srun` and so starts a job step inside the
  // allocation the runner holds; GASNet then bootstraps over Slurm's PMI.
  return { CHPL_LAUNCHER: placement === 'slurm' ? 'slurm-srun' : `gasnetrun_${substrate}` };
}

/** Run-time settings of a multi-locale launch. */
function multiLocaleEnv(substrate: string, placement: string, shape: { nodes: number; tasksPerNode: number; cpusPerTask: number }): Record<string, string> {
  if (placement === 'local') {
    // Every locale in this one container: spawn them as local processes, and tell the runtime the
    // cores are shared (so idle tasks yield instead of spinning).
    return substrate === 'udp' ? { GASNET_SPAWNFN: 'L', CHPL_RT_OVERSUBSCRIBED: 'yes' } : { CHPL_RT_OVERSUBSCRIBED: 'yes' };
  }
  const env: Record<string, string> = {};
  if (shape.tasksPerNode > 1) {
    env.CHPL_RT_LOCALES_PER_NODE = String(shape.tasksPerNode);
    env.CHPL_RT_OVERSUBSCRIBED = 'yes';
  }
  if (substrate === 'udp') {
    // Custom spawner: one srun step in the current allocation starts all locales (%N locales,
    // %C the command each runs). The Slurm executor wraps %C in its container runtime.
    env.GASNET_SPAWNFN = 'C';
    env.GASNET_CSPAWN_CMD = `srun --nodes=${shape.nodes} --ntasks=%N --ntasks-per-node=${shape.tasksPerNode} --cpus-per-task=${shape.cpusPerTask} --cpu-bind=none %C`;
  } else {
    // slurm-srun: cores per locale for its srun; node access is the allocation's business
    // (the runner's sbatch decided exclusive or shared), so the launcher must not ask for it.
    env.CHPL_LAUNCHER_CORES_PER_LOCALE = String(shape.cpusPerTask);
    env.CHPL_LAUNCHER_NODE_ACCESS = 'unset';
    if (substrate === 'ibv' || substrate === 'ofi') env[`GASNET_${substrate.toUpperCase()}_SPAWNER`] = 'pmi';
  }
  return env;
}
