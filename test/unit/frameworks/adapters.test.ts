/**
 * Every command and environment the framework adapters generate, as snapshots: Chapel single- and
 * multi-locale, Julia threads / Distributed / MPI, C with OpenMP and MPI, Python — each locally
 * (one container) and inside a Slurm allocation. Read the snapshot file as documentation of what
 * hpcflow runs; a change to it is a change of behaviour and must be reviewed as such.
 */
import { describe, expect, it } from 'vitest';
import type { AdapterInput, Framework, FrameworkSite, KernelPlan, KernelSpec, LaunchMode, Placement, Shape } from '../../../runner/frameworks/index.js';
import { launchModeOf, planKernel, renderCommand, shellJoin } from '../../../runner/frameworks/index.js';
import { shellWord } from '../../../runner/frameworks/common.js';

const SOURCES: Record<Framework, string> = {
  openmp: 'kernels/heat/openmp/heat.c',
  chapel: 'kernels/heat/chapel/heat.chpl',
  julia: 'kernels/heat/julia/heat.jl',
  python: 'kernels/heat/analysis/analyse.py',
};
const ARGS = ['--in', 'data/heat/ic-256/ic.bin', '--steps', '500', '--out', 'results/heat/x.bin', '--metrics', 'metrics/heat/x.json'];

function kernel(framework: Framework, over: Partial<KernelSpec> = {}): KernelSpec {
  return { framework, source: SOURCES[framework], args: ARGS, flags: [], ldflags: framework === 'openmp' ? ['-lm'] : [], launch: 'auto', project: null, ...over };
}

function render(p: KernelPlan): string {
  const image = p.image.kind === 'ref' ? p.image.ref : `{ build: ${p.image.context} }`;
  return [
    `mode:  ${p.mode}`,
    `image: ${image}`,
    `build: ${p.build === null ? '(none)' : `${renderCommand(p.build)}    -> ${p.build.outputs.join(', ')}`}`,
    `run:   ${renderCommand(p.run)}`,
    ...(p.deps.length > 0 ? [`deps:  ${p.deps.join(', ')}`] : []),
  ].join('\n');
}

const plan = (k: KernelSpec, shape: Shape, placement: Placement, site: FrameworkSite = {}, srunMpi?: string): string =>
  render(planKernel({ kernel: k, shape, placement, site, launch: srunMpi === undefined ? {} : { srunMpi } } satisfies AdapterInput));

const ONE: Shape = { nodes: 1, tasksPerNode: 1, cpusPerTask: 4 };
const LOCAL4: Shape = { nodes: 1, tasksPerNode: 4, cpusPerTask: 2 };
const TWO_NODES: Shape = { nodes: 2, tasksPerNode: 2, cpusPerTask: 8 };
const TWO_NODES_ONE_PER: Shape = { nodes: 2, tasksPerNode: 1, cpusPerTask: 16 };

describe('Chapel adapter', () => {
  it('single-locale, local and in a Slurm allocation', () => {
    expect(plan(kernel('chapel'), ONE, 'local')).toMatchSnapshot();
    expect(plan(kernel('chapel'), ONE, 'slurm')).toMatchSnapshot();
  });
  it('multi-locale in one container: GASNet udp with local spawn, oversubscribed', () => {
    expect(plan(kernel('chapel'), LOCAL4, 'local')).toMatchSnapshot();
  });
  it('multi-locale across 2 nodes inside the allocation: udp spawns with srun in it, never a new allocation', () => {
    expect(plan(kernel('chapel'), TWO_NODES_ONE_PER, 'slurm')).toMatchSnapshot();
    expect(plan(kernel('chapel'), TWO_NODES, 'slurm')).toMatchSnapshot();
  });
  it('multi-locale on an InfiniBand site: the slurm-srun launcher (slurm-gasnetrun_* would salloc a second allocation), site image and env', () => {
    const site: FrameworkSite = {
      substrate: 'ibv',
      multilocaleImage: { kind: 'ref', ref: 'registry.example.org/chapel-gasnet-ibv:2.6.0' },
      env: { GASNET_IBV_PORTS: 'mlx5_0' },
      buildEnv: { CHPL_TARGET_CPU: 'x86-64-v3' },
    };
    expect(plan(kernel('chapel'), TWO_NODES_ONE_PER, 'slurm', site)).toMatchSnapshot();
  });
  it('flags from the stage come after the adapter\'s', () => {
    expect(plan(kernel('chapel', { flags: ['--no-checks', '-sperfMode=true'] }), ONE, 'local')).toMatchSnapshot();
  });
});

describe('Julia adapter', () => {
  it('threads, local and in a Slurm allocation', () => {
    expect(plan(kernel('julia'), ONE, 'local')).toMatchSnapshot();
    expect(plan(kernel('julia'), ONE, 'slurm', { cpuTarget: 'generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)' })).toMatchSnapshot();
  });
  it('Distributed: local workers in the container, one srun-launched worker per task in the allocation', () => {
    const k = kernel('julia', { source: 'kernels/heat/julia/heat_distributed.jl' });
    expect(plan(k, LOCAL4, 'local')).toMatchSnapshot();
    expect(plan(k, TWO_NODES, 'slurm')).toMatchSnapshot();
  });
  it('MPI.jl over the system MPI: mpiexec in the container, srun with PMIx in the allocation', () => {
    const k = kernel('julia', { source: 'kernels/heat/julia/mpi/heat_mpi.jl', launch: 'mpi' });
    expect(plan(k, LOCAL4, 'local')).toMatchSnapshot();
    expect(plan(k, TWO_NODES, 'slurm')).toMatchSnapshot();
    expect(plan(k, TWO_NODES, 'slurm', {}, 'pmi2')).toMatchSnapshot();
  });
  it('project defaults to the source directory; an explicit one is used as given', () => {
    expect(plan(kernel('julia', { source: 'kernels/heat/analysis/analyse.jl', project: 'kernels/heat/julia' }), { ...ONE, cpusPerTask: 1 }, 'local')).toMatchSnapshot();
  });
});

describe('C/OpenMP adapter', () => {
  it('OpenMP threads, local and in a Slurm allocation', () => {
    expect(plan(kernel('openmp'), ONE, 'local')).toMatchSnapshot();
    expect(plan(kernel('openmp'), ONE, 'slurm')).toMatchSnapshot();
  });
  it('OpenMP + MPI: mpirun in one container, srun --mpi=pmix across 2 nodes', () => {
    expect(plan(kernel('openmp'), LOCAL4, 'local')).toMatchSnapshot();
    expect(plan(kernel('openmp'), TWO_NODES, 'slurm')).toMatchSnapshot();
  });
  it('a site compiler and a site image', () => {
    expect(plan(kernel('openmp', { flags: ['-std=c11'] }), ONE, 'local', { cc: 'clang', image: { kind: 'ref', ref: 'local/openmp:site' } })).toMatchSnapshot();
  });
});

describe('Python adapter', () => {
  it('one process, BLAS threads = cpus per task', () => {
    expect(plan(kernel('python'), ONE, 'local')).toMatchSnapshot();
  });
});

describe('launch modes', () => {
  it('auto: threads for one task, else the framework\'s multi-process mode', () => {
    const modes = (['openmp', 'chapel', 'julia'] as Framework[]).map((f) => [f, launchModeOf({ kernel: kernel(f), shape: ONE }), launchModeOf({ kernel: kernel(f), shape: TWO_NODES })]);
    expect(modes).toEqual([
      ['openmp', 'threads', 'mpi'],
      ['chapel', 'threads', 'locales'],
      ['julia', 'threads', 'distributed'],
    ]);
  });
  it.each<[Framework, LaunchMode, Shape, RegExp]>([
    ['chapel', 'mpi', ONE, /chapel kernels launch as locales, threads, not mpi/],
    ['openmp', 'distributed', ONE, /openmp kernels launch as mpi, threads, not distributed/],
    ['python', 'mpi', ONE, /python kernels launch as threads, not mpi/],
    ['julia', 'threads', TWO_NODES, /launch: threads runs one process, but the stage asks for 4 tasks/],
  ])('%s with launch %s is refused with a clear message', (fw, launch, shape, msg) => {
    expect(() => planKernel({ kernel: kernel(fw, { launch }), shape, placement: 'local', site: {}, launch: {} })).toThrow(msg);
  });
});

describe('shell rendering', () => {
  it('quotes what the shell would split or expand, and keeps $HPCFLOW_KERNEL_DIR expandable', () => {
    expect(shellJoin(['a b', "it's", '$HOME', 'x=1,y', '$HPCFLOW_KERNEL_DIR/heat', ''])).toBe(`'a b' 'it'\\''s' '$HOME' x=1,y "$HPCFLOW_KERNEL_DIR"/heat ''`);
    expect(shellWord('$HPCFLOW_KERNEL_DIR/a b')).toBe(`"$HPCFLOW_KERNEL_DIR"/'a b'`);
  });
});
