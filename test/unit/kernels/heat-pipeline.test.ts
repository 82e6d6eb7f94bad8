/**
 * The repository is itself an hpcflow workspace: pipelines/heat.yaml with params.yaml must load
 * without diagnostics and resolve to the stages the heat kernel expects (matrix expanded, params
 * interpolated from params.yaml, defaults merged). No container engine needed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../runner/model/diagnostic.js';
import type { Stage } from '../../../runner/model/pipeline.js';
import { loadWorkspace } from '../../../runner/spec/load.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const params = parse(readFileSync(`${REPO_ROOT}/params.yaml`, 'utf8')) as { heat: { nx: number; ny: number; alpha: number } };

async function heatStages(): Promise<Map<string, Stage>> {
  const result = await loadWorkspace(REPO_ROOT);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => formatDiagnostic(d)).join('\n'));
  return new Map(result.pipeline.stages.filter((s) => s.pipeline === 'heat').map((s) => [s.id, s]));
}

describe('pipelines/heat.yaml', () => {
  it('keeps the problem small enough for a quick demo, and stable', () => {
    expect(params.heat.nx * params.heat.ny).toBeLessThanOrEqual(1024 * 1024);
    expect(params.heat.alpha).toBeGreaterThan(0);
    expect(params.heat.alpha).toBeLessThanOrEqual(0.25);
  });

  it('loads without diagnostics: build, ic and one solve cell per step count', async () => {
    const stages = await heatStages();
    expect([...stages.keys()].sort()).toEqual(['heat/build', 'heat/ic', 'heat/solve@steps=100', 'heat/solve@steps=400']);
  });

  it('runs every stage in the containers/openmp image with two cpus per task', async () => {
    for (const s of (await heatStages()).values()) {
      expect(s.image).toMatchObject({ kind: 'build', context: expect.stringMatching(/^(containers\/)?openmp$/) });
      expect(s.resources.cpusPerTask).toBe(2);
      expect(s.env.OMP_PROC_BIND).toBe('close');
    }
  });

  it('builds the kernel into build/heat, which the later stages depend on', async () => {
    const stages = await heatStages();
    const build = stages.get('heat/build');
    expect(build?.cmd).toBe('make -C kernels/heat BUILD=build/heat');
    expect(build?.outs.map((o) => o.path)).toEqual(['build/heat']);
    expect(build?.deps).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'kernels/heat/heat.c' }),
        expect.objectContaining({ path: 'kernels/heat/Makefile' }),
      ]),
    );
  });

  it('interpolates params.yaml values and the matrix value into each command', async () => {
    const stages = await heatStages();
    const { nx, ny, alpha } = params.heat;
    expect(stages.get('heat/ic')?.cmd).toBe(`./build/heat/heat --gen --nx ${nx} --ny ${ny} --out data/heat/ic.bin`);
    expect(stages.get('heat/ic')?.params.map((p) => [p.name, p.value])).toEqual([
      ['heat.nx', nx],
      ['heat.ny', ny],
    ]);
    for (const steps of [100, 400]) {
      const s = stages.get(`heat/solve@steps=${steps}`);
      expect(s?.cmd).toBe(
        `./build/heat/heat --in data/heat/ic.bin --steps ${steps} --alpha ${alpha} ` +
          `--out results/heat/T-${steps}.bin --metrics metrics/heat-${steps}.json`,
      );
      expect(s?.outs.map((o) => o.path)).toContain(`results/heat/T-${steps}.bin`);
      expect(s?.metrics).toBe(`metrics/heat-${steps}.json`);
      expect(s?.env).toMatchObject({ OMP_NUM_THREADS: '2', OMP_PROC_BIND: 'close' });
    }
  });
});
