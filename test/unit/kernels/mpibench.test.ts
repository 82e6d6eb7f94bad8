/**
 * The MPI kernel of the benchmarks (kernels/mpibench) as the bench plans it: the one-stage pipeline
 * loads, the openmp adapter compiles it with mpicc and `-Wl,--as-needed` kept as one word (the nodes
 * have no OpenMP runtime), the step is `srun --mpi=pmix` over 2 nodes, and the bare and container
 * commands the bench derives from the planned stage start that same step — bare with the command
 * as it is, container through the docker task wrapper with the PMIx environment forwarded — each
 * writing its own metrics file. No Slurm, Docker or compiler needed.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MPI_SOURCE, MPI_STAGE, mpiBenchPipeline, mpiCommands } from '../../../bench/mpi.js';
import { parseSiteConfig } from '../../../runner/config/site-config.js';
import { stepOf } from '../../../runner/executors/slurm/job.js';
import { runtimeFor } from '../../../runner/executors/slurm/runtimes.js';
import { applySite } from '../../../runner/frameworks/apply-site.js';
import type { Stage } from '../../../runner/model/pipeline.js';
import { loadWorkspaceOrThrow } from '../../../runner/spec/load.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { slurmSiteYaml } from '../../helpers/slurm.js';

let ws: string;
let stage: Stage;
const site = parseSiteConfig(slurmSiteYaml(), '/site.yaml');

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-mpibench-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'kernels/mpibench'), { recursive: true });
  await cp(join(REPO_ROOT, MPI_SOURCE), join(ws, MPI_SOURCE));
  await cp(join(REPO_ROOT, 'containers/openmp'), join(ws, 'containers/openmp'), { recursive: true });
  await writeFile(join(ws, 'pipelines/p.yaml'), mpiBenchPipeline({ iters: 1000, maxBytes: 4 << 20, nodes: 2, tasksPerNode: 1 }));
  const s = applySite(await loadWorkspaceOrThrow(ws), site, 'slurm').stages.find((x) => x.id === MPI_STAGE);
  if (s === undefined) throw new Error(`no ${MPI_STAGE}`);
  stage = s;
});
afterAll(() => rm(ws, { recursive: true, force: true }));

const commands = () =>
  mpiCommands({
    stage,
    kernelDir: `${ws}/.hpcflow/bin/k`,
    workspace: ws,
    image: 'sha256:abc',
    imageTag: 'hpcflow/openmp:1',
    runtime: runtimeFor(site.slurm),
    user: '1000:1000',
    srunExtra: ['--job-name=bench', `--chdir=${ws}`],
    metrics: { bare: 'bare/metrics.json', container: 'ctr/metrics.json' },
    labels: { 'hpcflow.run-id': 'bench' },
  });

describe('kernels/mpibench in the bench pipeline', () => {
  it('compiles with mpicc, the flags of the openmp adapter and --as-needed as one linker word', () => {
    expect(stage.kernel?.spec.framework).toBe('openmp');
    expect(stage.env.HPCFLOW_KERNEL_BUILD).toBe('mpicc -O3 -march=x86-64-v2 -ffp-contract=off -fopenmp -o "$HPCFLOW_KERNEL_DIR"/mpibench kernels/mpibench/mpibench.c -Wl,--as-needed');
  });

  it('is one srun --mpi=pmix step over 2 nodes, one rank per node, writing out/metrics.json', () => {
    const step = stepOf(stage);
    expect(step.mpi).toBe(true);
    expect(step.srun).toEqual(['--mpi=pmix', '--nodes=2', '--ntasks=2', '--ntasks-per-node=1', '--cpus-per-task=1', '--cpu-bind=cores']);
    expect(step.command).toBe('"$HPCFLOW_KERNEL_DIR"/mpibench --iters 1000 --max-bytes 4194304 --metrics out/metrics.json');
  });

  it('bare: the same step and command, the kernel directory in the environment, its own metrics file', () => {
    const c = commands();
    expect(c.bare).toEqual([
      'srun',
      '--job-name=bench',
      `--chdir=${ws}`,
      ...stepOf(stage).srun,
      '/bin/sh',
      '-c',
      '"$HPCFLOW_KERNEL_DIR"/mpibench --iters 1000 --max-bytes 4194304 --metrics bare/metrics.json',
    ]);
    expect(c.env).toMatchObject({ HPCFLOW_KERNEL_DIR: `${ws}/.hpcflow/bin/k`, OMP_NUM_THREADS: '1' });
  });

  it('container: the same step, every rank through the docker task wrapper with the PMIx environment forwarded', () => {
    const c = commands();
    expect(c.container.slice(0, 3 + stepOf(stage).srun.length)).toEqual(['srun', '--job-name=bench', `--chdir=${ws}`, ...stepOf(stage).srun]);
    const [sh, dashC, script, arg0, ...argv] = c.container.slice(3 + stepOf(stage).srun.length);
    expect([sh, dashC, arg0]).toEqual(['/bin/sh', '-c', 'hpcflow-task']);
    expect(script).toContain('docker run --rm');
    expect(script).toContain('PMIX');
    expect(script).toContain('-e HPCFLOW_KERNEL_DIR');
    expect(script).toContain('sha256:abc');
    expect(argv).toEqual(['/bin/sh', '-c', '"$HPCFLOW_KERNEL_DIR"/mpibench --iters 1000 --max-bytes 4194304 --metrics ctr/metrics.json']);
  });
});
