/**
 * The repository is itself an hpcflow workspace: pipelines/heat.yaml (the demo) with params.yaml
 * must load without diagnostics and resolve to the stages the kernels expect: matrix expanded,
 * params interpolated into each kernel's arguments, each implementation in its framework's image
 * with the adapter's launch command. No container engine needed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../runner/model/diagnostic.js';
import type { Stage } from '../../../runner/model/pipeline.js';
import { loadWorkspace } from '../../../runner/spec/load.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const params = parse(readFileSync(`${REPO_ROOT}/params.yaml`, 'utf8')) as { heat: { steps: number; alpha: number; tolerance: number } };

async function heatStages(): Promise<Map<string, Stage>> {
  const result = await loadWorkspace(REPO_ROOT);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => formatDiagnostic(d)).join('\n'));
  return new Map(result.pipeline.stages.filter((s) => s.pipeline === 'heat').map((s) => [s.id, s]));
}

describe('pipelines/heat.yaml', () => {
  it('keeps the problem stable and small enough for a quick demo', () => {
    expect(params.heat.alpha).toBeGreaterThan(0);
    expect(params.heat.alpha).toBeLessThanOrEqual(0.25);
    expect(params.heat.steps).toBeLessThanOrEqual(2000);
    expect(params.heat.tolerance).toBeLessThan(1e-6);
  });

  it('loads without diagnostics: ic per size, solve per implementation and size, analysis and report per language', async () => {
    const ids = [...(await heatStages()).keys()].sort();
    expect(ids).toEqual([
      'heat/analyse@lang=julia',
      'heat/analyse@lang=python',
      'heat/ic@n=256',
      'heat/ic@n=512',
      'heat/report@lang=julia',
      'heat/report@lang=python',
      ...['chapel', 'julia', 'openmp'].flatMap((impl) => [256, 512].map((n) => `heat/solve@impl=${impl},n=${n}`)),
    ]);
  });

  it('runs each implementation in its framework image with the adapter\'s command and the params', async () => {
    const stages = await heatStages();
    const { steps, alpha } = params.heat;
    const args = (impl: string, n: number): string => `--in data/heat/ic-${n}/ic.bin --steps ${steps} --alpha ${alpha} --out results/heat/${impl}-${n}.bin --metrics metrics/heat/${impl}-${n}.json`;
    const chapel = stages.get('heat/solve@impl=chapel,n=256');
    expect(chapel?.image).toMatchObject({ kind: 'build', context: 'chapel' });
    expect(chapel?.cmd).toBe(`"$HPCFLOW_KERNEL_DIR"/heat ${args('chapel', 256)}`);
    expect(chapel?.env).toMatchObject({ CHPL_RT_NUM_THREADS_PER_LOCALE: '2' });
    expect(chapel?.env.HPCFLOW_KERNEL_BUILD).toMatch(/chpl --fast --ieee-float -o "\$HPCFLOW_KERNEL_DIR"\/heat kernels\/heat\/chapel\/heat\.chpl$/);
    const julia = stages.get('heat/solve@impl=julia,n=512');
    expect(julia?.image).toMatchObject({ kind: 'build', context: 'julia' });
    expect(julia?.cmd).toBe(`julia --project=kernels/heat/julia --threads=2,0 --startup-file=no --history-file=no kernels/heat/julia/heat.jl ${args('julia', 512)}`);
    expect(julia?.deps).toEqual(expect.arrayContaining([{ kind: 'path', path: 'kernels/heat/julia' }]));
    const openmp = stages.get('heat/solve@impl=openmp,n=256');
    expect(openmp?.image).toMatchObject({ kind: 'build', context: 'openmp' });
    expect(openmp?.env).toMatchObject({ OMP_NUM_THREADS: '2', OMP_PROC_BIND: 'close' });
    expect(openmp?.deps).toEqual([{ kind: 'path', path: 'data/heat/ic-256' }, { kind: 'path', path: 'kernels/heat/openmp' }]);
    expect(openmp?.outs.map((o) => o.path)).toEqual(['results/heat/openmp-256.bin']);
    expect(openmp?.metrics).toBe('metrics/heat/openmp-256.json');
  });

  it('versions each initial condition as a dataset, and the analysis reads every solve', async () => {
    const stages = await heatStages();
    expect(stages.get('heat/ic@n=512')?.outs).toEqual([{ path: 'data/heat/ic-512', cache: true, dataset: 'heat-ic-512' }]);
    const analyse = stages.get('heat/analyse@lang=julia');
    expect(analyse?.deps.filter((d) => d.kind === 'stage')).toHaveLength(6);
    expect(analyse?.cmd).toMatch(/^julia --project=kernels\/heat\/julia .* kernels\/heat\/analysis\/analyse\.jl --results results\/heat/);
    expect(stages.get('heat/analyse@lang=python')?.image).toMatchObject({ kind: 'build', context: 'python' });
  });
});

describe('containers/julia', () => {
  it('bakes exactly the environment the Julia kernels run with (env/ is a copy of kernels/heat/julia)', () => {
    for (const f of ['Project.toml', 'Manifest.toml']) {
      expect(readFileSync(`${REPO_ROOT}/containers/julia/env/${f}`, 'utf8'), `containers/julia/env/${f}: copy kernels/heat/julia/${f} over it`).toBe(
        readFileSync(`${REPO_ROOT}/kernels/heat/julia/${f}`, 'utf8'),
      );
    }
  });
});
