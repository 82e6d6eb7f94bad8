import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FinalJob, LiveJob, SlurmCommands } from '../../../runner/executors/slurm/slurm-cli.js';
import { JobWatcher } from '../../../runner/executors/slurm/watcher.js';

/**
 * The watcher's polling discipline against a scripted scheduler (the Slurm commands are the
 * boundary; the real ones are exercised by test/integration/slurm).
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-watch-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function scripted(states: (poll: number) => Record<string, string>, accounting: boolean) {
  const calls = { squeue: [] as number[], sacct: 0, scontrol: 0 };
  const final = (id: string, state: string): FinalJob => ({ id, state, exitCode: 0, signal: 0, elapsedMs: 1000, cpuMs: 5, maxRssBytes: 1024, nodes: ['n1'], submit: null, start: null, end: null, source: 'sacct' });
  let last: Record<string, string> = {};
  const cmds: SlurmCommands = {
    sbatch: () => Promise.reject(new Error('not used')),
    async squeue() {
      calls.squeue.push(Date.now());
      last = states(calls.squeue.length);
      return new Map(Object.entries(last).map(([id, state]): [string, LiveJob] => [id, { id, state, reason: 'None', nodes: state === 'PENDING' ? '' : 'n1', name: 'x', comment: '' }]));
    },
    async sacct(ids) {
      calls.sacct += 1;
      if (!accounting) return null;
      return new Map(ids.map((id) => [id, final(id, last[id] ?? 'COMPLETED')]));
    },
    async scontrolJob(id) {
      calls.scontrol += 1;
      return { ...final(id, last[id] ?? 'COMPLETED'), cpuMs: null, maxRssBytes: null, source: 'scontrol' };
    },
    scancel: () => Promise.resolve(),
  };
  return { cmds, calls };
}

describe('job watcher', () => {
  it('asks squeue once per poll for all jobs, backs off while nothing changes, and follows output files', async () => {
    const ids = ['1', '2', '3', '4', '5'];
    const { cmds, calls } = scripted((n) => Object.fromEntries(ids.map((id) => [id, n < 12 ? 'RUNNING' : 'COMPLETED'])), true);
    const w = new JobWatcher(cmds, { pollMinMs: 5, pollMaxMs: 40, accounting: 'auto', sacctWaitMs: 100 });
    await writeFile(join(dir, '1.out'), 'line one\nline two\npartial');
    const lines: string[] = [];
    const done = await Promise.all(ids.map((id) => w.watch(id, { logDir: dir, onLog: (s, l) => id === '1' && lines.push(`${s}:${l}`) })));
    expect(done.map((f) => f.state)).toEqual(ids.map(() => 'COMPLETED'));
    expect(calls.squeue).toHaveLength(12);
    const gaps = calls.squeue.slice(1).map((t, i) => t - (calls.squeue[i] as number));
    // Backoff: the later gaps are longer than the first ones, and capped near pollMaxMs.
    expect(Math.max(...gaps.slice(-3))).toBeGreaterThan(Math.max(...gaps.slice(0, 2)));
    expect(calls.sacct).toBe(1);
    expect(done[0]).toMatchObject({ cpuMs: 5, maxRssBytes: 1024, source: 'sacct' });
    expect(lines).toEqual(['stdout:line one', 'stdout:line two', 'stdout:partial']);
  });

  it('without accounting, ends jobs from scontrol and stops asking sacct', async () => {
    const { cmds, calls } = scripted((n) => ({ '9': n < 2 ? 'PENDING' : 'TIMEOUT', '10': n < 3 ? 'RUNNING' : 'COMPLETED' }), false);
    const w = new JobWatcher(cmds, { pollMinMs: 5, pollMaxMs: 20, accounting: 'auto' });
    const [a, b] = await Promise.all([w.watch('9', { logDir: dir, onLog: () => {} }), w.watch('10', { logDir: dir, onLog: () => {} })]);
    expect(a).toMatchObject({ state: 'TIMEOUT', source: 'scontrol', cpuMs: null });
    expect(b).toMatchObject({ state: 'COMPLETED', source: 'scontrol' });
    expect(calls.sacct).toBe(1);
  });
});
