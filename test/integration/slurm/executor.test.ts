/**
 * The Slurm executor on a real cluster (scripts/slurm-cluster.sh: a controller and compute nodes,
 * each a container, with slurmdbd accounting). Stages run as sbatch jobs whose tasks each start a
 * container on their node through the node's Docker socket.
 */
import { execa } from 'execa';
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, hpcflow, outcomes, REPO_ROOT } from '../../helpers/cli.js';
import { ensureSlurmForTests, listJobs, SLURM_CONF } from '../../helpers/slurm.js';
import { endOf, jobOf, runContainers, runIdOf, runSlurm, slurmWorkspaces } from './slurm-ws.js';

const spaces = slurmWorkspaces();

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

describe('Slurm executor on a real cluster', () => {
  it('runs a 2-node stage as one job with a container on each node, and takes its accounting from sacct', async () => {
    const ws = await spaces.make(`stages:
  spread:
    image: hpcflow-test/busybox:1
    cmd: mkdir -p out && echo "task $SLURM_PROCID on $(hostname) $(test -x /bin/busybox && echo in-container)" > out/task-$SLURM_PROCID.txt
    resources: { nodes: 2 }
    outs: [out]
`);
    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(outcomes(r.stdout)).toEqual({ 'p/spread': 'ran' });
    const lines = await Promise.all((await readdir(join(ws, 'out'))).sort().map((f) => readFile(join(ws, 'out', f), 'utf8')));
    expect(lines).toHaveLength(2);
    const hosts = lines.map((l) => /on (\S+) in-container/.exec(l)?.[1]);
    expect(new Set(hosts).size).toBe(2);
    for (const h of hosts) expect(h).toMatch(/^n\d+$/);
    const end = endOf(r.stdout, 'p/spread');
    expect([...(end.result?.nodes ?? [])].sort()).toEqual([...hosts].sort());
    expect(end.result?.scheduler).toMatchObject({ state: 'COMPLETED', accounting: 'sacct' });
    // The containers are the Docker engine's processes: Slurm's CPU time would be the wrapper's alone.
    expect(end.result?.cpuMs).toBeNull();
    expect(await runContainers(runIdOf(r.stdout))).toEqual([]);
    // Nothing changed: nothing is submitted again.
    const again = await runSlurm(ws);
    expect(outcomes(again.stdout)).toEqual({ 'p/spread': 'up-to-date' });
    expect(jobOf(again.stdout, 'p/spread')).toBeUndefined();
  });

  it('runs an MPI kernel across 2 nodes: the adapter plans srun --mpi=pmix, every rank in its own container', async () => {
    const ws = await spaces.make(
      `stages:
  ring:
    kernel: { framework: openmp, source: kernels/mpi/ring.c, launch: mpi, args: [--out, out/ring.txt] }
    resources: { nodes: 2, tasks_per_node: 1 }
    outs: [out/ring.txt]
`,
      { 'kernels/mpi/ring.c': await readFile(join(REPO_ROOT, 'test/fixtures/mpi/ring.c'), 'utf8') },
    );
    await cp(join(REPO_ROOT, 'containers/openmp'), join(ws, 'containers/openmp'), { recursive: true });
    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const text = await readFile(join(ws, 'out/ring.txt'), 'utf8');
    const hosts = [...text.matchAll(/rank (\d) of 2 on (\S+)/g)].map((m) => m[2]);
    expect(hosts).toHaveLength(2);
    expect(new Set(hosts).size).toBe(2);
    expect(text).toContain('allreduce 1');
    expect(events(r.stdout).some((e) => e.type === 'kernel-build' && e.action === 'compiled')).toBe(true);
    expect(await runContainers(runIdOf(r.stdout))).toEqual([]);
  }, 600_000);

  it('chains a downstream job on its upstream (afterok): submitted at once, started only after the upstream succeeded', async () => {
    const ws = await spaces.make(`defaults: { image: hpcflow-test/busybox:1 }
stages:
  first:
    cmd: sleep 2; echo made-by-first > a.txt; cat /proc/uptime > a-end.txt
    outs: [a.txt, a-end.txt]
  second:
    cmd: cat /proc/uptime > b-start.txt; cp a.txt b.txt
    deps: [a.txt]
    outs: [b.txt, b-start.txt]
`);
    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(outcomes(r.stdout)).toEqual({ 'p/first': 'ran', 'p/second': 'ran' });
    const first = jobOf(r.stdout, 'p/first');
    const second = jobOf(r.stdout, 'p/second');
    expect(second?.after).toEqual([first?.jobId]);
    // Submitted before the upstream ended: nothing on this machine had to wait for it.
    const evs = events(r.stdout);
    const iSubmit = evs.findIndex((e) => e.type === 'stage-job' && e.stage === 'p/second');
    const iFirstEnd = evs.findIndex((e) => e.type === 'stage-end' && e.stage === 'p/first');
    expect(iSubmit).toBeLessThan(iFirstEnd);
    const uptime = async (f: string): Promise<number> => Number((await readFile(join(ws, f), 'utf8')).split(' ')[0]);
    expect(await uptime('b-start.txt')).toBeGreaterThanOrEqual(await uptime('a-end.txt'));
    expect(await readFile(join(ws, 'b.txt'), 'utf8')).toBe('made-by-first\n');
  });

  it('a failing upstream: its dependant is never started (Slurm cancels it) and is reported skipped', async () => {
    const ws = await spaces.make(`defaults: { image: hpcflow-test/busybox:1 }
stages:
  bad:
    cmd: echo "about to fail" >&2; exit 3
    outs: [x.txt]
  child:
    cmd: cp x.txt y.txt
    deps: [x.txt]
    outs: [y.txt]
`);
    const r = await runSlurm(ws);
    expect(r.code).toBe(1);
    expect(outcomes(r.stdout)).toEqual({ 'p/bad': 'failed', 'p/child': 'skipped' });
    expect(endOf(r.stdout, 'p/bad').error).toBe('exit code 3');
    expect(events(r.stdout).some((e) => e.type === 'stage-log' && e.stage === 'p/bad' && e.line === 'about to fail' && e.stream === 'stderr')).toBe(true);
    // The run record keeps where the job's output is, and its last lines.
    const record = JSON.parse(await readFile(join(ws, '.hpcflow/runs', `${runIdOf(r.stdout)}.json`), 'utf8')) as { stages: Record<string, { result: { scheduler: { logs: { stderr: string; stderrTail: string[] } } } }> };
    const logs = record.stages['p/bad']?.result.scheduler.logs;
    expect(logs?.stderrTail).toContain('about to fail');
    expect(await readFile(join(ws, logs?.stderr ?? ''), 'utf8')).toContain('about to fail');
    const child = jobOf(r.stdout, 'p/child');
    expect(child?.after).toEqual([jobOf(r.stdout, 'p/bad')?.jobId]);
    // Never ran: no node was ever allocated to it (slurmdbd writes its record asynchronously).
    let row: string[] = [];
    for (let i = 0; i < 50; i++) {
      const acct = await execa('sacct', ['-n', '-X', '-P', '-j', child?.jobId ?? '', '--format=State,NodeList,ElapsedRaw'], { env: { ...process.env, SLURM_CONF } });
      row = acct.stdout.trim().split('|');
      if (/^CANCELLED/.test(row[0] ?? '')) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(row[0]).toMatch(/^CANCELLED/);
    expect(row[1]).toBe('None assigned');
    expect(row[2]).toBe('0');
    const live = (await listJobs()).filter((j) => j.comment.includes(runIdOf(r.stdout)) && !/COMPLETED|FAILED|CANCELLED|TIMEOUT/.test(j.state));
    expect(live).toEqual([]);
  });

  it('without accounting (accounting: none) the end state and nodes come from scontrol, and the run says what is unknown', async () => {
    const ws = await spaces.make(
      `stages:
  one:
    image: hpcflow-test/busybox:1
    cmd: echo hi > one.txt
    outs: [one.txt]
`,
      {},
      '  accounting: none\n',
    );
    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const end = endOf(r.stdout, 'p/one');
    expect(end.result?.scheduler).toMatchObject({ state: 'COMPLETED', accounting: 'scontrol' });
    expect(end.result?.cpuMs).toBeNull();
    expect(end.result?.nodes).toHaveLength(1);
    const plain = await hpcflow(['run', '-f', '--executor', 'slurm', '--site', join(ws, 'site.yaml')], ws, { SLURM_CONF });
    expect(plain.stdout).toMatch(/\[p\/one\] ran \(job \d+, .*no accounting: cpu and memory unknown\)/);
  });
});
