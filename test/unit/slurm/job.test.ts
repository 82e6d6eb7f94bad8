import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseSiteConfig } from '../../../runner/config/site-config.js';
import { batchScript, jobComment, parseJobComment, sbatchArgs, stepOf, taskWrap, timeMinutes } from '../../../runner/executors/slurm/job.js';
import { kernelCommand, planKernel } from '../../../runner/frameworks/index.js';
import type { JobRequest } from '../../../runner/executors/slurm/job.js';
import { runtimeFor } from '../../../runner/executors/slurm/runtimes.js';
import { toResult } from '../../../runner/executors/slurm/slurm-executor.js';
import { DEFAULT_SLURM_SITE } from '../../../runner/executors/slurm/types.js';
import { failureOf } from '../../../runner/executors/executor.js';
import type { Stage } from '../../../runner/model/pipeline.js';

const stage = (over: Partial<Stage> = {}, res: Partial<Stage['resources']> = {}): Stage =>
  ({
    id: 'heat/solve@impl=openmp,n=256',
    pipeline: 'heat',
    name: 'solve',
    matrix: {},
    image: { kind: 'ref', ref: 'x' },
    cmd: 'echo "on $(hostname)" > out/$SLURM_PROCID.txt',
    wdir: '',
    deps: [],
    params: [],
    outs: [],
    metrics: null,
    resources: { nodes: 2, tasksPerNode: 1, cpusPerTask: 2, memoryBytes: 512 * 1024 ** 2, timeLimitSec: 90, ...res },
    env: { GREETING: "it's here" },
    pos: { file: 'pipelines/p.yaml', line: 1, col: 1 },
    ...over,
  }) as Stage;

const req = (s: Stage, after: string[] = []): JobRequest => ({
  runId: '20261124T100000Z-abc123',
  stage: s,
  key: 'f'.repeat(64),
  workspace: '/shared/ws',
  image: 'sha256:' + 'a'.repeat(64),
  imageTag: 'hpcflow/openmp:1',
  after,
  logDir: '/shared/ws/.hpcflow/slurm/logs/r',
  user: '1000:1000',
});

describe('sbatch options', () => {
  it('map the stage resources, the site defaults and the chain', () => {
    const site = { ...DEFAULT_SLURM_SITE, partition: 'compute', account: 'proj42', sbatchArgs: ['--reservation=x'] };
    const args = sbatchArgs(req(stage({}, { qos: 'high', constraint: 'skylake|icelake' }), ['11', '12']), site);
    expect(args).toMatchSnapshot();
    expect(args).toContain('--dependency=afterok:11:12');
    expect(args).toContain('--kill-on-invalid-dep=yes');
    expect(args).toContain('--export=NONE');
    expect(args).toContain('--time=2');
    expect(args).toContain('--mem=512M');
    expect(args).toContain('--partition=compute');
    expect(args).toContain('--qos=high');
  });

  it('round time limits up to whole minutes (Slurm keeps minutes)', () => {
    expect([1, 59, 60, 61, 3600].map(timeMinutes)).toEqual([1, 1, 1, 2, 60]);
  });

  it('tag jobs with run, stage and key in a comment that parses back', () => {
    const r = req(stage());
    expect(parseJobComment(jobComment(r))).toEqual({ runId: r.runId, stage: r.stage.id, key: r.key });
    expect(parseJobComment('something else')).toBeNull();
  });
});

describe('batch script', () => {
  it('runs a plain command once per task, each in a container on its node', async () => {
    const site = parseSiteConfig(
      'slurm:\n  docker:\n    network: "container:hpcflow-slurm-{node}"\n    ipc: "container:hpcflow-slurm-{node}"\n    pid: "container:hpcflow-slurm-{node}"\n    binds: [/tmp/run]\n',
      '/etc/site.yaml',
    ).slurm;
    const script = batchScript(req(stage()), site, runtimeFor(site));
    expect(script).toMatchSnapshot();
    expect(script).toContain('exec srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=2 /bin/sh -c');
    await execa('bash', ['-n'], { input: script });
  });

  it('keeps the srun options a kernel adapter planned (MPI with PMIx) and forwards the task environment', async () => {
    const s = stage({ cmd: 'srun --mpi=pmix --nodes=2 --ntasks=4 --ntasks-per-node=2 --cpus-per-task=1 --cpu-bind=cores "$HPCFLOW_KERNEL_DIR"/heat --steps 10' });
    expect(stepOf(s)).toEqual({
      srun: ['--mpi=pmix', '--nodes=2', '--ntasks=4', '--ntasks-per-node=2', '--cpus-per-task=1', '--cpu-bind=cores'],
      command: '"$HPCFLOW_KERNEL_DIR"/heat --steps 10',
      mpi: true,
      launcher: false,
    });
    const script = batchScript(req(s), DEFAULT_SLURM_SITE, runtimeFor(DEFAULT_SLURM_SITE));
    expect(script).toMatchSnapshot();
    expect(script).toContain('--env-file');
    await execa('bash', ['-n'], { input: script });
  });

  it('refuses a working directory outside the workspace', () => {
    expect(() => batchScript(req(stage({ wdir: '../x' })), DEFAULT_SLURM_SITE, runtimeFor(DEFAULT_SLURM_SITE))).toThrow(/leaves the workspace/);
  });
});

describe('job end states', () => {
  const f = (state: string, exitCode = 0, signal = 0) => ({ id: '5', state, exitCode, signal, elapsedMs: 1000, cpuMs: 10, maxRssBytes: 1, nodes: ['n1'], submit: null, start: null, end: null, source: 'sacct' as const });
  const t = { submittedAt: Date.now() - 2000, startedAt: Date.now() - 1000, canceled: false, adopted: false };
  it('are distinct outcomes: timeout, out of memory, node failure, preemption, exit codes, cancellation', () => {
    expect(failureOf(toResult(f('COMPLETED'), t))).toBeNull();
    expect(failureOf(toResult(f('FAILED', 3), t))).toBe('exit code 3');
    expect(failureOf(toResult(f('TIMEOUT'), t))).toMatch(/timed out/);
    expect(failureOf(toResult(f('OUT_OF_MEMORY', 0, 9), t))).toMatch(/^out of memory/);
    expect(failureOf(toResult(f('NODE_FAIL'), t))).toMatch(/^node failure/);
    expect(failureOf(toResult(f('PREEMPTED'), t))).toMatch(/^preempted/);
    expect(failureOf(toResult(f('CANCELLED'), t))).toMatch(/cancelled outside hpcflow/);
    expect(toResult(f('CANCELLED'), { ...t, canceled: true }).canceled).toBe(true);
    expect(toResult(f('COMPLETED'), t).scheduler).toMatchObject({ jobId: '5', state: 'COMPLETED', accounting: 'sacct' });
  });
});

describe('site file: slurm section', () => {
  it('reads every setting and points at the line of a bad one', () => {
    const s = parseSiteConfig(
      'executor: slurm\nslurm:\n  runtime: apptainer\n  partition: compute\n  poll: { min_ms: 100, max_ms: 2000 }\n  shared_roots: [/home]\n  apptainer:\n    images: { "hpcflow/openmp:1": /sif/openmp.sif }\n',
      '/etc/site.yaml',
    );
    expect(s.executor).toBe('slurm');
    expect(s.slurm).toMatchObject({ runtime: 'apptainer', partition: 'compute', pollMinMs: 100, pollMaxMs: 2000, sharedRoots: ['/home'], apptainer: { images: { 'hpcflow/openmp:1': '/sif/openmp.sif' } } });
    expect(() => parseSiteConfig('slurm:\n  runtime: singularity\n', '/etc/site.yaml')).toThrow(/site.yaml:2:12: runtime must be one of docker, podman, apptainer, pyxis, oci/);
    expect(() => parseSiteConfig('slurm:\n  shared_roots: [home]\n', '/etc/site.yaml')).toThrow(/2:18: 'home' is not an absolute path/);
    expect(() => parseSiteConfig('executor: k8s\n', '/etc/site.yaml')).toThrow(/1:11: executor must be one of docker, slurm/);
  });
});

describe('task containers and the local orphan cleanup', () => {
  it('are never taken for a dead local runner\'s containers (the job id is not an owner pid)', async () => {
    const { ownerPidFromName } = await import('../../../runner/executors/docker/orphans.js');
    const script = batchScript(req(stage()), DEFAULT_SLURM_SITE, runtimeFor(DEFAULT_SLURM_SITE));
    const name = /n="([^"]+)"/.exec(script)?.[1]?.replace(/\$\{(\w+)\}/g, (_m, v: string) => ({ SLURM_JOB_ID: '14', SLURM_STEP_ID: '0', SLURM_PROCID: '0' })[v] ?? '');
    expect(name).toBe('hpcflow-job14-0-0');
    expect(ownerPidFromName(name as string)).toBeNull();
  });
});

describe('framework launchers on Slurm (Chapel multi-locale, Julia Distributed)', () => {
  const kernelStage = (framework: 'chapel' | 'julia', source: string): Stage => {
    const shape = { nodes: 2, tasksPerNode: 1, cpusPerTask: 4 };
    const spec = { framework, source, args: ['--steps', '10'], flags: [], ldflags: [], launch: 'auto' as const, project: null };
    const plan = planKernel({ kernel: spec, shape, placement: 'slurm', site: {}, launch: {} });
    const { cmd, env } = kernelCommand(plan);
    return stage({ cmd, env, kernel: { spec, mode: plan.mode, unit: 'kernels/heat', build: plan.build, env: {} } }, shape);
  };
  const site = { ...DEFAULT_SLURM_SITE, launcherBinds: ['/usr/bin/srun', '/etc/slurm', '/run/munge'] };

  it('run the launcher once, in its container with the Slurm client, and start every task it spawns in the container too', async () => {
    for (const [fw, src] of [
      ['chapel', 'kernels/heat/chapel/heat.chpl'],
      ['julia', 'kernels/heat/julia/heat_distributed.jl'],
    ] as const) {
      const s = kernelStage(fw, src);
      expect(stepOf(s).launcher).toBe(true);
      const r = req(s);
      const script = batchScript(r, site, runtimeFor(site));
      const wrap = taskWrap(r, runtimeFor(site));
      expect(script).toContain(`export HPCFLOW_TASK_WRAP=${wrap.file.path}`);
      expect(script).toContain('exec srun --nodes=1 --ntasks=1 --cpus-per-task=4 --overlap /bin/sh -c');
      expect(script).toContain('-v /usr/bin/srun:/usr/bin/srun');
      if (fw === 'chapel') expect(script).toMatch(new RegExp(`GASNET_CSPAWN_CMD='srun --nodes=2 .* ${wrap.file.path.replace(/[.]/g, '\\.')} %C'`));
      expect({ script, wrap: wrap.file.text }).toMatchSnapshot(fw);
      await execa('bash', ['-n'], { input: script });
      await execa('sh', ['-n'], { input: wrap.file.text });
    }
  });

  it('the wrapper script runs its arguments in the container (real shell, a stand-in docker that prints its argv)', async () => {
    const { mkdtemp, writeFile, chmod, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'hpcflow-wrap-'));
    try {
      await writeFile(join(dir, 'docker'), '#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n');
      await chmod(join(dir, 'docker'), 0o755);
      const wrap = taskWrap(req(kernelStage('julia', 'kernels/heat/julia/heat_distributed.jl')), runtimeFor(DEFAULT_SLURM_SITE));
      await writeFile(join(dir, 'wrap.sh'), wrap.file.text);
      const r = await execa('sh', [join(dir, 'wrap.sh'), 'julia', '--worker', 'a b'], { env: { PATH: `${dir}:/usr/bin:/bin`, SLURM_JOB_ID: '7', SLURM_STEP_ID: '1', SLURM_PROCID: '0', TMPDIR: dir }, stdin: 'ignore' });
      const argv = r.stdout.split('\n');
      expect(argv.slice(0, 4)).toEqual(['[run]', '[--rm]', '[--name]', '[hpcflow-job7-1-0]']);
      expect(argv.slice(-3)).toEqual(['[julia]', '[--worker]', '[a b]']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
