/**
 * A Slurm node fails under a running job: set down (as slurmctld does when a node stops
 * answering) or drained by an operator. The runner must give a clear outcome — a node failure,
 * not a job it waits on forever — leave no job and no container behind, keep what finished, and
 * the next run, once the node is back, must complete.
 *
 * All of it happens on the test cluster's fault node (partition `faults`, n4), which no other
 * test uses, under a lock so that two test runs on one machine never share it.
 */
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, events, outcomes } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { ACTIVE_JOB_STATES, FAULT_PARTITION, SLURM_CONF, ensureSlurmForTests, listJobs, nodeState, setNodeState, withFaultNode } from '../helpers/slurm.js';
import { endOf, jobOf, runContainers, runIdOf, runSlurm, slurmRunArgs, slurmWorkspaces } from '../integration/slurm/slurm-ws.js';
import { STACK_TRACE, checkNothingCorrupt, stageLog, waitForEvent, waitUntil } from './fault-helpers.js';

const spaces = slurmWorkspaces();

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

/** `prep` ends before the fault; `long` runs on the fault node when it comes (while `.hold` exists). */
const PIPELINE = `defaults:
  image: hpcflow-test/busybox:1
  resources: { partition: ${FAULT_PARTITION} }
stages:
  prep:
    cmd: echo ready > prep.txt
    outs: [prep.txt]
  long:
    cmd: echo started; while [ -e .hold ]; do sleep 0.2; done; cat prep.txt > long.txt
    deps: [prep.txt]
    outs: [long.txt]
`;

const spawnRun = (ws: string) => execa('node', [BIN, ...slurmRunArgs(ws)], { cwd: ws, reject: false, env: { CI: '1', SLURM_CONF } });

/** Jobs of this run that still hold or wait for resources. */
async function activeJobsOf(runId: string): Promise<string[]> {
  return (await listJobs()).filter((j) => j.comment.includes(`run=${runId} `) && ACTIVE_JOB_STATES.has(j.state)).map((j) => `${j.id} ${j.state}`);
}

/** The containers of a run's jobs are removed by the task wrapper when Slurm signals the step. */
async function noContainersLeft(runId: string): Promise<void> {
  await waitUntil(`the containers of run ${runId} to be removed`, async () => (await runContainers(runId)).length === 0, 30_000);
}

describe('a Slurm node fails under a running job', () => {
  it('set down: a node failure for the stage, no job or container left, finished work kept; back in service, the next run completes', async () => {
    await withFaultNode(async (node) => {
      const ws = await spaces.make(PIPELINE);
      await writeFile(join(ws, '.hold'), '');
      const child = spawnRun(ws);
      await waitForEvent(child, stageLog('p/long', 'started'), 'p/long to start', 120_000);
      await setNodeState(node, 'down', 'hpcflow fault test: node down mid-job');
      const r = await child;
      const out = `${r.stdout}${r.stderr}`;
      expect(r.exitCode, out).toBe(1);
      expect(out).not.toMatch(STACK_TRACE);
      expect(outcomes(r.stdout)).toEqual({ 'p/prep': 'ran', 'p/long': 'failed' });
      const end = endOf(r.stdout, 'p/long');
      expect(end.error).toBe('node failure: a node of the job failed (Slurm NODE_FAIL)');
      expect(end.result?.scheduler?.state).toBe('NODE_FAIL');
      expect(end.result?.nodes).toEqual([node]);
      const runId = runIdOf(r.stdout);
      expect(await activeJobsOf(runId)).toEqual([]);
      await noContainersLeft(runId);
      const before = await checkNothingCorrupt(ws);
      expect(Object.keys(before.lock?.stages ?? {})).toEqual(['p/prep']);

      await setNodeState(node, 'resume').catch(() => undefined); // ReturnToService=2 may have resumed it already
      await waitUntil(`${node} to be idle`, async () => (await nodeState(node)) === 'IDLE', 60_000);
      await rm(join(ws, '.hold'));
      const again = await runSlurm(ws);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(outcomes(again.stdout)).toEqual({ 'p/prep': 'up-to-date', 'p/long': 'ran' });
      // The failed job was not adopted: a new one ran.
      expect(jobOf(again.stdout, 'p/long')?.adopted).toBe(false);
      expect(await readFile(join(ws, 'long.txt'), 'utf8')).toBe('ready\n');
      expect(await activeJobsOf(runIdOf(again.stdout))).toEqual([]);
      await noContainersLeft(runIdOf(again.stdout));
      await checkNothingCorrupt(ws);
      const lost = outcomes(again.stdout)['p/prep'] === 'ran' ? 1 : 0;
      recordFaults({ scenario: 'Slurm node down mid-job', injected: 1, recovered: 1, lost });
    });
  }, 180_000);

  it('drained: the running job finishes and the stage ran; a runner killed before the node went down is followed by one that submits again', async () => {
    await withFaultNode(async (node) => {
      // Drain lets the running job end; the node takes no new job until resumed.
      const ws = await spaces.make(PIPELINE);
      await writeFile(join(ws, '.hold'), '');
      const child = spawnRun(ws);
      await waitForEvent(child, stageLog('p/long', 'started'), 'p/long to start', 120_000);
      await setNodeState(node, 'drain', 'hpcflow fault test: drained mid-job');
      await rm(join(ws, '.hold'));
      const r = await child;
      expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
      expect(outcomes(r.stdout)).toEqual({ 'p/prep': 'ran', 'p/long': 'ran' });
      expect(await nodeState(node)).toMatch(/DRAIN/);
      await noContainersLeft(runIdOf(r.stdout));
      await setNodeState(node, 'resume');
      await waitUntil(`${node} to be idle`, async () => (await nodeState(node)) === 'IDLE', 60_000);

      // The runner is SIGKILLed while its job runs, then the node goes down: the next runner
      // must not adopt the failed job (nor wait on it), but submit the stage again.
      const ws2 = await spaces.make(PIPELINE);
      await writeFile(join(ws2, '.hold'), '');
      const killed = spawnRun(ws2);
      await waitForEvent(killed, stageLog('p/long', 'started'), 'p/long to start', 120_000);
      killed.kill('SIGKILL');
      const k = await killed;
      expect(k.signal).toBe('SIGKILL');
      const first = events(String(k.stdout)).find((e) => e.type === 'stage-job' && e.stage === 'p/long') as { jobId: string };
      await setNodeState(node, 'down', 'hpcflow fault test: node down, runner gone');
      await waitUntil(`job ${first.jobId} to end`, async () => !(await listJobs()).some((j) => j.id === first.jobId && ACTIVE_JOB_STATES.has(j.state)), 60_000);
      await setNodeState(node, 'resume').catch(() => undefined);
      await waitUntil(`${node} to be idle`, async () => (await nodeState(node)) === 'IDLE', 60_000);
      await rm(join(ws2, '.hold'));
      const again = await runSlurm(ws2);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      const oc = outcomes(again.stdout);
      expect(oc['p/long']).toBe('ran');
      expect(['up-to-date', 'ran']).toContain(oc['p/prep']); // the killed runner may not have collected it
      expect(jobOf(again.stdout, 'p/long')).toMatchObject({ adopted: false });
      expect(jobOf(again.stdout, 'p/long')?.jobId).not.toBe(first.jobId);
      expect(await readFile(join(ws2, 'long.txt'), 'utf8')).toBe('ready\n');
      await noContainersLeft(runIdOf(String(k.stdout)));
      await noContainersLeft(runIdOf(again.stdout));
      await checkNothingCorrupt(ws2);
      recordFaults({ scenario: 'Slurm node drained mid-job', injected: 1, recovered: 1, lost: 0 });
      recordFaults({ scenario: 'runner SIGKILLed, then its Slurm node down', injected: 2, recovered: 1, lost: 0 });
    });
  }, 180_000);
});
