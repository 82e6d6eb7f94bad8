/** Framework adapters: dispatch, launch-mode selection and checks. See types.ts. */
import { HpcflowError } from '../errors.js';
import { chapelPlan } from './chapel.js';
import { totalTasks } from './common.js';
import { juliaPlan } from './julia.js';
import { openmpPlan } from './openmp.js';
import { pythonPlan } from './python.js';
import { renderCommand, shellJoin } from './common.js';
import type { Adapter, AdapterInput, Framework, KernelPlan, LaunchMode } from './types.js';
import { FRAMEWORK_MODES, KERNEL_BUILD_VAR } from './types.js';

export * from './types.js';
export { renderCommand, shellJoin } from './common.js';

const ADAPTERS: Readonly<Record<Framework, Adapter>> = { openmp: openmpPlan, chapel: chapelPlan, julia: juliaPlan, python: pythonPlan };

/** The launch mode a kernel stage runs in: its own, or threads for one task, else the framework's multi-process default. */
export function launchModeOf(input: Pick<AdapterInput, 'kernel' | 'shape'>): LaunchMode {
  const { kernel, shape } = input;
  if (kernel.launch !== 'auto') return kernel.launch;
  return totalTasks(shape) === 1 ? 'threads' : (FRAMEWORK_MODES[kernel.framework][0] as LaunchMode);
}

/** Why this launch mode cannot run this shape, or null. */
export function launchProblem(framework: Framework, mode: LaunchMode, tasks: number): string | null {
  const modes = FRAMEWORK_MODES[framework];
  if (!modes.includes(mode)) return `${framework} kernels launch as ${modes.join(', ')}, not ${mode}`;
  if (mode === 'threads' && tasks > 1) {
    return `launch: threads runs one process, but the stage asks for ${tasks} tasks (nodes x tasks_per_node); use launch: ${modes[0]} or one task`;
  }
  return null;
}

/** The compile and run commands of a kernel stage. Throws HPCFLOW_SPEC_INVALID for impossible combinations. */
export function planKernel(input: AdapterInput): KernelPlan {
  const mode = launchModeOf(input);
  const problem = launchProblem(input.kernel.framework, mode, totalTasks(input.shape));
  if (problem !== null) throw new HpcflowError('HPCFLOW_SPEC_INVALID', problem);
  return ADAPTERS[input.kernel.framework](input, mode);
}

/**
 * A plan as a stage's `cmd` (the run command as one shell line) and environment: the run's, plus
 * the compile command in HPCFLOW_KERNEL_BUILD (so it is part of the fingerprint).
 */
export function kernelCommand(plan: KernelPlan): { cmd: string; env: Record<string, string> } {
  const env: Record<string, string> = { ...plan.run.env };
  if (plan.build !== null) env[KERNEL_BUILD_VAR] = renderCommand(plan.build);
  return { cmd: shellJoin(plan.run.argv), env };
}
