/**
 * `hpcflow measure --allocate` on the real cluster: ONE allocation (salloc --no-shell), and every
 * stage of every round of base and head runs in it as a job step (srun into the allocation), in
 * containers on the allocation's nodes. Afterwards the allocation is released.
 */
import { execa } from 'execa';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hpcflow } from '../../helpers/cli.js';
import { git } from '../../helpers/git.js';
import { ensureSlurmForTests, SLURM_CONF, slurmEnv } from '../../helpers/slurm.js';
import { slurmWorkspaces } from './slurm-ws.js';

const spaces = slurmWorkspaces();

// A 2-node step: every task notes its node; task 0 writes the metric.
const PIPELINE = `stages:
  bench:
    image: hpcflow-test/busybox:1
    cmd: >-
      mkdir -p out && hostname > out/task-$SLURM_PROCID.txt &&
      if [ "$SLURM_PROCID" = 0 ]; then echo '{"time_s": \${cost}}' > bench.json; fi
    params: [cost]
    resources: { nodes: 2 }
    outs: [out]
    metrics: bench.json
`;

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

describe('hpcflow measure in one Slurm allocation', () => {
  it('runs base and head alternately as job steps of one allocation on the same nodes, then releases it', async () => {
    const ws = await spaces.make(PIPELINE, { 'params.yaml': 'cost: 2.0\n', '.gitignore': '.hpcflow/\nout/\nbench.json\n' });
    await git(ws, ['init', '-q', '-b', 'main']);
    await git(ws, ['add', '-A']);
    await git(ws, ['commit', '-q', '-m', 'base']);
    const base = await git(ws, ['rev-parse', 'HEAD']);
    await writeFile(join(ws, 'params.yaml'), 'cost: 1.5\n');
    await git(ws, ['commit', '-q', '-am', 'head']);
    const head = await git(ws, ['rev-parse', 'HEAD']);

    const out = join(ws, 'samples.json');
    const m = await hpcflow(['measure', '--base', base, '--head', head, '-n', '2', '--allocate=-p debug -N2 --time=10', '--site', join(ws, 'site.yaml'), '--out', out, '--keep'], ws, { SLURM_CONF });
    expect(m.code, m.stderr).toBe(0);
    const f = JSON.parse(await readFile(out, 'utf8')) as { allocation: { jobId: string; nodes: string[] }; executor: string; order: { side: string }[]; samples: Record<string, Record<string, Record<string, number[]>>> };
    expect(f.executor).toBe('slurm');
    expect(f.allocation.jobId).toMatch(/^\d+$/);
    expect(f.allocation.nodes).toHaveLength(2);
    expect(m.stderr).toContain(`measure: allocation ${f.allocation.jobId} granted`);
    expect(m.stderr).toContain(`measure: allocation ${f.allocation.jobId} released`);
    expect(f.order.map((o) => o.side)).toEqual(['base', 'head', 'head', 'base']);
    expect(f.samples.base?.['p/bench']?.time_s).toEqual([2, 2]);
    expect(f.samples.head?.['p/bench']?.time_s).toEqual([1.5, 1.5]);
    expect(m.stdout).toMatch(/p\/bench:time_s\s+2\s+1\.5\s+-25\.0%\s+2\/2/);

    // Every stage of every run (warm-ups and rounds, both sides) was a step of that allocation,
    // spanning both of its nodes.
    const kept = /kept: (\S+)/.exec(m.stdout)?.[1] as string;
    const jobIds = new Set<string>();
    let records = 0;
    for (const side of ['base', 'head']) {
      const dir = join(kept, side, '.hpcflow', 'runs');
      for (const name of await readdir(dir)) {
        const text = await readFile(join(dir, name), 'utf8');
        for (const x of text.matchAll(/"jobId": "(\d+)"/g)) jobIds.add(x[1] as string);
        records += 1;
      }
      const hosts = await Promise.all((await readdir(join(kept, side, 'out'))).map((n) => readFile(join(kept, side, 'out', n), 'utf8')));
      expect(new Set(hosts.map((h) => h.trim()))).toEqual(new Set(f.allocation.nodes));
    }
    expect(records).toBe(6); // a warm-up and two rounds per side
    expect([...jobIds]).toEqual([f.allocation.jobId]);
    await rm(kept, { recursive: true, force: true });

    // Released: the allocation is no longer running, and no container is left.
    const q = await execa('squeue', ['-h', '-t', 'all', '-j', f.allocation.jobId, '-o', '%T'], { env: slurmEnv(), reject: false });
    expect(q.stdout.trim()).not.toMatch(/RUNNING|PENDING/);
    expect((await execa('docker', ['ps', '-aq', '--filter', 'label=hpcflow.stage=p/bench'])).stdout).toBe('');
  }, 240_000);

  it('HPCFLOW_SLURM_ALLOCATION that names no running allocation is a clear error', async () => {
    const ws = await spaces.make(PIPELINE, { 'params.yaml': 'cost: 1\n' });
    const r = await hpcflow(['run', '--executor', 'slurm', '--site', join(ws, 'site.yaml')], ws, { SLURM_CONF, HPCFLOW_SLURM_ALLOCATION: '999999' });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('HPCFLOW_SLURM_ALLOCATION names job 999999, which is not a job of yours that Slurm knows');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
