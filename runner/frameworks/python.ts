/**
 * Python (with numpy): for the analysis and glue around the HPC kernels — and the analysis that
 * runs where no Julia image can be had. One process; numpy's BLAS and OpenMP threads = cpus per task.
 */
import { sortedEnv } from './common.js';
import type { AdapterInput, KernelPlan, LaunchMode } from './types.js';

export function pythonPlan(input: AdapterInput, mode: LaunchMode): KernelPlan {
  const { kernel, shape, site } = input;
  const threads = String(shape.cpusPerTask);
  return {
    framework: 'python',
    mode,
    image: site.image ?? { kind: 'build', context: 'python', dockerfile: 'Dockerfile' },
    build: null,
    run: {
      argv: ['python3', ...kernel.flags, kernel.source, ...kernel.args],
      env: sortedEnv(
        {
          OMP_NUM_THREADS: threads,
          OPENBLAS_NUM_THREADS: threads,
          // The workspace is shared with other users and nodes: no __pycache__ written into it by
          // whichever uid ran first; a fixed hash seed so set/dict iteration order is reproducible.
          PYTHONDONTWRITEBYTECODE: '1',
          PYTHONHASHSEED: '0',
          PYTHONUNBUFFERED: '1',
        },
        site.env,
      ),
    },
    deps: [],
  };
}
