/**
 * `kernel:` stages in pipeline files (spec → model), the site configuration and the matrix filter:
 * diagnostics at file:line:col for bad kernels, the per-framework blocks, and re-planning with a
 * site's images and settings without touching the pipeline.
 */
import { describe, expect, it } from 'vitest';
import { parseSiteConfig } from '../../../runner/config/site-config.js';
import { filterMatrix, parseMatrixFilter } from '../../../runner/engine/matrix-filter.js';
import { applySite } from '../../../runner/frameworks/apply-site.js';
import { formatDiagnostic } from '../../../runner/model/diagnostic.js';
import type { Pipeline } from '../../../runner/model/pipeline.js';
import { linkWorkspace } from '../../../runner/spec/link.js';
import { parsePipelineFile } from '../../../runner/spec/parse.js';
import type { LoadResult } from '../../../runner/spec/types.js';
import { memContext } from '../spec/mem-context.js';

const FILES = {
  'kernels/k/omp/k.c': 'int main(void){return 0;}\n',
  'kernels/k/chpl/k.chpl': 'writeln(1);\n',
  'kernels/k/jl/k.jl': 'println(1)\n',
  'kernels/k/jl/Project.toml': '[deps]\n',
  'containers/openmp/Dockerfile': 'FROM x\n',
  'containers/chapel/Dockerfile': 'FROM chapel/chapel:2.10.0\n',
  'containers/chapel-gasnet/Dockerfile': 'FROM chapel/chapel-gasnet:2.10.0\n',
  'containers/julia/Dockerfile': 'FROM julia:1.12\n',
};

function load(text: string): LoadResult {
  const ctx = memContext(FILES);
  return linkWorkspace([parsePipelineFile(text, 'pipelines/p.yaml', ctx)], ctx);
}
const errors = (r: LoadResult): string[] => (r.ok ? [] : r.diagnostics.map((d) => formatDiagnostic(d)));
function pipeline(text: string): Pipeline {
  const r = load(text);
  if (!r.ok) throw new Error(errors(r).join('\n'));
  return r.pipeline;
}

const MATRIX = `stages:
  solve:
    matrix: { impl: [openmp, chapel, julia] }
    resources: { cpus_per_task: 3 }
    env: { OMP_PROC_BIND: spread }
    kernel:
      framework: \${impl}
      args: [--n, "10"]
      openmp: { source: kernels/k/omp/k.c, ldflags: [-lm] }
      chapel: { source: kernels/k/chpl/k.chpl }
      julia: { source: kernels/k/jl/k.jl }
`;

describe('kernel stages', () => {
  it('a matrix over frameworks: per-framework blocks, framework images, the kernel directory as a dependency', () => {
    const s = new Map(pipeline(MATRIX).stages.map((x) => [x.id, x]));
    const omp = s.get('p/solve@impl=openmp');
    expect(omp?.image).toEqual({ kind: 'build', context: 'openmp', dockerfile: 'Dockerfile' });
    expect(omp?.cmd).toBe('"$HPCFLOW_KERNEL_DIR"/k --n 10');
    expect(omp?.env.OMP_PROC_BIND).toBe('spread'); // the stage's env wins over the adapter's
    expect(omp?.env.OMP_NUM_THREADS).toBe('3');
    expect(omp?.env.HPCFLOW_KERNEL_BUILD).toBe('gcc -O3 -march=x86-64-v2 -ffp-contract=off -fopenmp -o "$HPCFLOW_KERNEL_DIR"/k kernels/k/omp/k.c -lm');
    expect(omp?.deps).toEqual([{ kind: 'path', path: 'kernels/k/omp' }]);
    expect(s.get('p/solve@impl=chapel')?.image).toMatchObject({ context: 'chapel' });
    const jl = s.get('p/solve@impl=julia');
    expect(jl?.kernel?.build).toBeNull();
    expect(jl?.env.HPCFLOW_KERNEL_BUILD).toBeUndefined();
    expect(jl?.deps).toEqual([{ kind: 'path', path: 'kernels/k/jl' }]);
  });

  it('more than one task picks the multi-process mode and its image', () => {
    const p = pipeline(MATRIX.replace('cpus_per_task: 3', 'tasks_per_node: 4, cpus_per_task: 1'));
    const chapel = p.stages.find((x) => x.id === 'p/solve@impl=chapel');
    expect(chapel?.kernel?.mode).toBe('locales');
    expect(chapel?.image).toMatchObject({ context: 'chapel-gasnet' });
    expect(chapel?.cmd).toMatch(/ -nl 4 /);
  });

  it.each([
    ['both cmd and kernel', 'stages:\n  s:\n    cmd: "true"\n    kernel: { framework: openmp, source: kernels/k/omp/k.c }\n', /p\.yaml:4:5: error .*stage p\/s has both cmd and kernel/],
    ['an unknown framework', 'stages:\n  s:\n    kernel: { framework: chapl, source: kernels/k/chpl/k.chpl }\n', /p\.yaml:3:26: error .*unknown kernel framework 'chapl'[\s\S]*did you mean 'chapel'/],
    ['a missing source', 'stages:\n  s:\n    kernel: { framework: openmp, source: kernels/k/omp/nope.c }\n', /p\.yaml:3:42: error .*kernel source kernels\/k\/omp\/nope\.c does not exist/],
    ['no source for the framework', 'stages:\n  s:\n    kernel: { framework: julia, openmp: { source: kernels/k/omp/k.c } }\n', /error .*kernel has no source for framework julia/],
    ['a source outside the workspace', 'stages:\n  s:\n    kernel: { framework: openmp, source: ../k.c }\n', /error HPCFLOW_SPEC_PATH_ESCAPE: dep path '\.\.\/k\.c' leads outside the workspace/],
    ['a launch mode the framework lacks', 'stages:\n  s:\n    kernel: { framework: chapel, source: kernels/k/chpl/k.chpl, launch: mpi }\n', /p\.yaml:3:73: error .*chapel kernels launch as locales, threads, not mpi/],
  ])('%s is a diagnostic at file:line:col', (_what, text, re) => {
    expect(errors(load(text)).join('\n')).toMatch(re);
  });
});

describe('site configuration', () => {
  const site = parseSiteConfig(
    'frameworks:\n  openmp: { image: site/openmp:1, env: { OMP_WAIT_POLICY: passive } }\n  chapel:\n    multilocale_image: { build: chapel-gasnet-ibv }\n    substrate: ibv\nlaunch: { srun_mpi: pmi2 }\n',
    '/etc/hpcflow/site.yaml',
  );

  it('maps frameworks to images and settings; the pipeline is re-planned, not edited', () => {
    const base = pipeline(MATRIX.replace('cpus_per_task: 3', 'nodes: 2, cpus_per_task: 3'));
    const p = applySite(base, site, 'slurm');
    const omp = p.stages.find((x) => x.id === 'p/solve@impl=openmp');
    expect(omp?.image).toEqual({ kind: 'ref', ref: 'site/openmp:1' });
    expect(omp?.cmd).toMatch(/^srun --mpi=pmi2 --nodes=2 --ntasks=2 /);
    expect(omp?.env.OMP_WAIT_POLICY).toBe('passive');
    expect(omp?.env.OMP_PROC_BIND).toBe('spread');
    const chapel = p.stages.find((x) => x.id === 'p/solve@impl=chapel');
    expect(chapel?.image).toEqual({ kind: 'build', context: 'chapel-gasnet-ibv', dockerfile: 'Dockerfile' });
    expect(chapel?.env.HPCFLOW_KERNEL_BUILD).toMatch(/CHPL_COMM_SUBSTRATE=ibv CHPL_LAUNCHER=slurm-srun/);
    // Unmapped frameworks keep their images.
    expect(p.stages.find((x) => x.id === 'p/solve@impl=julia')?.image).toMatchObject({ context: 'julia' });
    expect(base.stages.find((x) => x.id === 'p/solve@impl=openmp')?.image).toMatchObject({ context: 'openmp' });
  });

  it.each([
    ['frameworks:\n  fortran: { image: x }\n', /site\.yaml:2:3: unknown framework "fortran"/],
    ['frameworks:\n  chapel: { substrate: tcp }\n', /site\.yaml:2:24: substrate must be one of udp, smp, ibv, ofi, mpi/],
    ['frameworks:\n  julia: { imag: x }\n', /site\.yaml:2:12: unknown setting "imag"/],
    ['frameworks:\n  openmp: { image: { build: ../../etc } }\n', /build names a directory under containers/],
    ['launch: { srun_mpi: 3 }\n', /site\.yaml:1:21: expected a non-empty string/],
    ['[1, 2', /site\.yaml/],
  ])('a bad site file is an error at file:line:col: %s', (text, re) => {
    expect(() => parseSiteConfig(text, '/etc/hpcflow/site.yaml')).toThrow(re);
  });
});

describe('--matrix', () => {
  it('keeps the selected cells; stage dependencies see only those', () => {
    const p = pipeline(`${MATRIX}  analyse:\n    cmd: "true"\n    image: x\n    deps: [{ stage: solve }]\n`);
    const f = filterMatrix(p, parseMatrixFilter(['impl=openmp,julia']));
    expect(f.stages.map((s) => s.id)).toEqual(['p/solve@impl=openmp', 'p/solve@impl=julia', 'p/analyse']);
    expect(f.stages.find((s) => s.id === 'p/analyse')?.deps).toEqual([
      { kind: 'stage', stage: 'p/solve@impl=openmp' },
      { kind: 'stage', stage: 'p/solve@impl=julia' },
    ]);
  });
  it('an unknown key or value is a usage error that lists what exists', () => {
    const p = pipeline(MATRIX);
    expect(() => filterMatrix(p, parseMatrixFilter(['lang=python']))).toThrow(/no stage has a matrix key 'lang'/);
    expect(() => filterMatrix(p, parseMatrixFilter(['impl=fortran']))).toThrow(/values of impl: chapel, julia, openmp/);
    expect(() => parseMatrixFilter(['impl'])).toThrow(/--matrix wants key=value/);
  });
});
