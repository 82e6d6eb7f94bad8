/**
 * The runner's life and its jobs' lives are separate on Slurm: aborting the runner cancels its jobs
 * (and their containers go with them); killing it leaves them running, and the next runner adopts
 * them — it neither submits them again nor loses their results.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, outcomes } from '../../helpers/cli.js';
import { ensureSlurmForTests, listJobs } from '../../helpers/slurm.js';
import { endOf, jobOf, runContainers, runIdOf, runSlurm, slurmWorkspaces, spawnSlurmRun } from './slurm-ws.js';
import { recordFaults } from '../../helpers/fault-ledger.js';

const spaces = slurmWorkspaces();

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

/** Poll until `pred` holds for the jobs whose comment names this workspace's stages. */
async function waitJobs(pred: (jobs: Awaited<ReturnType<typeof listJobs>>) => boolean, what: string, ms = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const jobs = await listJobs();
    if (pred(jobs)) return jobs;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function journalNow(ws: string): { jobs: { jobId: string }[] } | null {
  try {
    return JSON.parse(readFileSync(join(ws, '.hpcflow/slurm/journal.json'), 'utf8')) as { jobs: { jobId: string }[] };
  } catch {
    return null;
  }
}

const journal = async (ws: string) => JSON.parse(await readFile(join(ws, '.hpcflow/slurm/journal.json'), 'utf8')) as { jobs: { stage: string; jobId: string; runId: string }[] };

describe('Slurm executor: abort and re-adoption', () => {
  it('aborting the runner (SIGINT) cancels its running job and leaves no job or container behind', async () => {
    const ws = await spaces.make(`stages:
  long:
    image: hpcflow-test/busybox:1
    cmd: echo started; sleep 120; echo never > x.txt
    outs: [x.txt]
`);
    const child = spawnSlurmRun(ws);
    let mine: string[] = [];
    await waitJobs((js) => {
      mine = (journalNow(ws)?.jobs ?? []).map((j) => j.jobId);
      return js.some((j) => mine.includes(j.id) && j.state === 'RUNNING');
    }, 'the job to run');
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(outcomes(r.stdout)).toEqual({ 'p/long': 'canceled' });
    const left = (await listJobs()).filter((j) => mine.includes(j.id) && !/CANCELLED|COMPLETED|FAILED/.test(j.state));
    expect(left).toEqual([]);
    // The task wrapper removed the container when Slurm signalled the step.
    // (Slurm signals the step asynchronously; on a loaded machine the removal can take several seconds.)
    for (let i = 0; i < 150 && (await runContainers(runIdOf(r.stdout))).length > 0; i++) await new Promise((res) => setTimeout(res, 200));
    expect(await runContainers(runIdOf(r.stdout))).toEqual([]);
    recordFaults({ scenario: 'SIGINT of a Slurm run (jobs cancelled)', injected: 1, recovered: 1, lost: 0 });
  });

  it('a runner killed after submission: the jobs go on, and the next runner adopts them instead of submitting again', async () => {
    const ws = await spaces.make(`defaults: { image: hpcflow-test/busybox:1 }
stages:
  first:
    cmd: sleep 6; echo one > a.txt
    outs: [a.txt]
  second:
    cmd: cat a.txt > b.txt; echo two >> b.txt
    deps: [a.txt]
    outs: [b.txt]
`);
    const child = spawnSlurmRun(ws);
    // Both jobs submitted (the second chained on the first), then the runner dies without a word.
    for (let i = 0; ; i++) {
      const j = await journal(ws).catch(() => ({ jobs: [] }));
      if (j.jobs.length === 2) break;
      if (i > 300) throw new Error('jobs were not submitted');
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await child;
    const submitted = (await journal(ws)).jobs.map((j) => j.jobId);
    const live = await listJobs();
    expect(submitted.every((id) => live.some((j) => j.id === id && /PENDING|RUNNING|COMPLETING|COMPLETED/.test(j.state)))).toBe(true);

    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(outcomes(r.stdout)).toEqual({ 'p/first': 'ran', 'p/second': 'ran' });
    expect(jobOf(r.stdout, 'p/first')).toMatchObject({ jobId: submitted[0], adopted: true });
    expect(jobOf(r.stdout, 'p/second')).toMatchObject({ jobId: submitted[1], adopted: true });
    expect(endOf(r.stdout, 'p/second').result?.scheduler?.adopted).toBe(true);
    expect((await journal(ws)).jobs).toHaveLength(2);
    expect(await readFile(join(ws, 'b.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(events(r.stdout).some((e) => e.type === 'stage-log' && e.stage === 'p/first')).toBe(false);
    const third = await runSlurm(ws);
    expect(outcomes(third.stdout)).toEqual({ 'p/first': 'up-to-date', 'p/second': 'up-to-date' });
    recordFaults({ scenario: 'SIGKILL of a Slurm run (jobs adopted)', injected: 1, recovered: 1, lost: 0 });
  });
});
