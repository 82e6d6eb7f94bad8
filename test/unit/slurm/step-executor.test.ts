/**
 * The step executor's process contract, with a stand-in `srun` on the site's PATH that reports
 * what it was given (the real thing runs on the test cluster: test/integration/slurm/measure.test.ts):
 * the allocation in SLURM_JOB_ID, nothing else of the runner's environment, the exit code, the
 * time limit and cancellation.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import type { Executor, StageTask } from '../../../runner/executors/executor.js';
import { parseAllocation, SlurmStepExecutor } from '../../../runner/executors/slurm/step-executor.js';
import { DEFAULT_SLURM_SITE } from '../../../runner/executors/slurm/types.js';
import type { Stage } from '../../../runner/model/pipeline.js';

let dir: string;
const images = {} as Pick<Executor, 'imageState' | 'prepareImage' | 'missingImages' | 'cleanupOrphans' | 'close'>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-step-'));
  // srun: print the environment and arguments; the stage's "command" decides the exit.
  await writeFile(
    join(dir, 'srun'),
    `#!/bin/sh
echo "JOB=$SLURM_JOB_ID"
env | grep -q TOKEN && echo "LEAK"
echo "ARGS=$*"
case "$*" in *sleep*) trap 'echo got-term; kill $!; exit 143' TERM; sleep 30 & wait ;; *fail*) echo oops >&2; exit 7 ;; esac
exit 0
`,
  );
  await chmod(join(dir, 'srun'), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const task = (cmd: string, timeLimitSec: number | null = null): StageTask => ({
  runId: 'r1',
  fingerprint: 'f'.repeat(64),
  workspace: dir,
  image: { ref: 'img', digest: `sha256:${'a'.repeat(64)}`, tag: 'img:1' },
  stage: {
    id: 'p/s',
    cmd,
    wdir: '',
    env: {},
    resources: { nodes: 2, tasksPerNode: 1, cpusPerTask: 1, memoryBytes: null, timeLimitSec },
  } as unknown as Stage,
});

const executor = (): SlurmStepExecutor =>
  new SlurmStepExecutor({ site: { ...DEFAULT_SLURM_SITE, path: `${dir}:/usr/bin:/bin` }, workspace: dir, allocation: '4242', nodes: ['n1', 'n2', 'n3'], images, env: { GITHUB_TOKEN: 'ghp_secret', HOME: '/root' }, killGraceMs: 2000 });

describe('Slurm job steps in a held allocation', () => {
  it('runs the stage as a step of the allocation, with none of the runner environment', async () => {
    const lines: string[] = [];
    const r = await executor().run(task('echo hi'), { onLog: (_s, l) => lines.push(l) }, new AbortController().signal);
    expect(lines).toContain('JOB=4242');
    expect(lines).not.toContain('LEAK');
    // The batch executor's step: the stage's tasks, each started in its container by the task wrapper.
    expect(lines.find((l) => l.startsWith('ARGS='))).toMatch(/^ARGS=--nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=1 \/bin\/sh -c n="hpcflow-job\$\{SLURM_JOB_ID\}/);
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, canceled: false, engineError: null, nodes: ['n1', 'n2'] });
    expect(r.scheduler).toMatchObject({ jobId: '4242', state: 'COMPLETED', accounting: 'scontrol' });
    expect(r.scheduler?.logs?.stdout).toBe('.hpcflow/slurm/logs/r1/p_s.step.out');
  });

  it("reports the step's exit code and its stderr", async () => {
    const err: string[] = [];
    const r = await executor().run(task('fail'), { onLog: (s, l) => s === 'stderr' && err.push(l) }, new AbortController().signal);
    expect(r).toMatchObject({ exitCode: 7, timedOut: false });
    expect(r.scheduler?.state).toBe('FAILED');
    expect(err).toEqual(['oops']);
  });

  it('stops a step at its time limit and when cancelled (SIGTERM to srun, which passes it on)', async () => {
    const t0 = Date.now();
    const lines: string[] = [];
    const r = await executor().run(task('sleep', 1), { onLog: (_s, l) => lines.push(l) }, new AbortController().signal);
    expect(r).toMatchObject({ exitCode: null, timedOut: true, canceled: false });
    expect(r.scheduler?.state).toBe('TIMEOUT');
    expect(lines).toContain('got-term');
    expect(Date.now() - t0).toBeLessThan(5000);

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const c = await executor().run(task('sleep'), { onLog: () => undefined }, ac.signal);
    expect(c).toMatchObject({ exitCode: null, canceled: true, timedOut: false });
  });

  it('takes only a job id as the allocation', () => {
    expect(parseAllocation('123')).toBe('123');
    for (const bad of ['', '12a', '1;rm', '-1']) {
      let e: unknown;
      try {
        parseAllocation(bad);
      } catch (x) {
        e = x;
      }
      expect(isHpcflowError(e, 'HPCFLOW_USAGE')).toBe(true);
    }
  });
});
