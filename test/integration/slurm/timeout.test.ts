/**
 * A stage over its time limit is a timeout, not a failure like any other: Slurm ends the job
 * (TIMEOUT) and hpcflow says so; the task wrapper removes the container when the step is signalled.
 * Slurm keeps time limits in whole minutes and checks them periodically, so this test takes a
 * little over a minute: it runs in its own file, beside the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outcomes } from '../../helpers/cli.js';
import { ensureSlurmForTests } from '../../helpers/slurm.js';
import { endOf, runContainers, runIdOf, runSlurm, slurmWorkspaces } from './slurm-ws.js';

const spaces = slurmWorkspaces();

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

describe('Slurm executor: time limits', () => {
  it('reports a stage that exceeds its time limit as a timeout', async () => {
    const ws = await spaces.make(`stages:
  slow:
    image: hpcflow-test/busybox:1
    cmd: echo started; sleep 600; echo never > x.txt
    resources: { time: 30 }
    outs: [x.txt]
`);
    const r = await runSlurm(ws);
    expect(r.code).toBe(1);
    expect(outcomes(r.stdout)).toEqual({ 'p/slow': 'failed' });
    const end = endOf(r.stdout, 'p/slow');
    expect(end.error).toMatch(/^timed out after \d+ s \(time limit\)$/);
    expect(end.result?.timedOut).toBe(true);
    expect(end.result?.scheduler?.state).toBe('TIMEOUT');
    expect(await runContainers(runIdOf(r.stdout))).toEqual([]);
  }, 300_000);
});
