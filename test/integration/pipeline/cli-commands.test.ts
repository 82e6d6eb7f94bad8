import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, hpcflow, outcomes, REPO_ROOT, withStatus } from '../../helpers/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CLI commands and exit codes', () => {
  it('init creates a workspace once, and status explains the example pipeline', async () => {
    const r = await hpcflow(['init'], dir);
    expect(r.code, r.stderr).toBe(0);
    for (const p of ['pipelines/example.yaml', 'containers/base/Dockerfile', 'kernels', 'datasets']) expect(existsSync(join(dir, p))).toBe(true);
    expect(await readFile(join(dir, '.gitignore'), 'utf8')).toContain('.hpcflow/');
    const again = await hpcflow(['init'], dir);
    expect(again.stdout).toContain('already an hpcflow workspace');
    const st = await hpcflow(['status'], dir);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/example\/hello\s+will run\n\s+never ran.*\n\s+image hpcflow\/base:[0-9a-f]+ must be built/);
  });

  it('dag prints layers and Graphviz dot; plan --json lists stages in order with upstreams', async () => {
    await writeFile(
      join(dir, 'pipelines/example.yaml'),
      `defaults: { image: hpcflow-test/busybox:1 }\nstages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n  b:\n    cmd: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n`,
    );
    expect((await hpcflow(['dag'], dir)).stdout).toBe('layer 0:\n  example/a\nlayer 1:\n  example/b  ← example/a\n');
    expect((await hpcflow(['dag', '--dot'], dir)).stdout).toContain('"example/a" -> "example/b";');
    const plan = JSON.parse((await hpcflow(['plan', '--json'], dir)).stdout) as { stages: { id: string; upstream: string[]; action: string }[] };
    expect(plan.stages.map((s) => [s.id, s.upstream, s.action])).toEqual([
      ['example/a', [], 'run'],
      ['example/b', ['example/a'], 'run'],
    ]);
    expect((await hpcflow(['plan'], dir)).stdout).toMatch(/^1\. example\/a\s+will run/);
  });

  it('commit adopts outputs produced outside hpcflow; status then finds them up to date', async () => {
    await writeFile(join(dir, 'a.txt'), 'a\n');
    await writeFile(join(dir, 'b.txt'), 'a\n');
    const c = await hpcflow(['commit'], dir);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toBe('committed 2 stages to hpcflow.lock\n');
    expect((await hpcflow(['status', '--check'], dir)).code).toBe(0);
    await writeFile(join(dir, 'b.txt'), 'changed\n');
    const st = await hpcflow(['status', '--check'], dir);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/example\/b\s+restore from cache\n\s+output b.txt was modified/);
  });

  it('run of a subset runs it (and what it needs); --downstream adds its dependants', async () => {
    const only = await hpcflow(['run', '--json', '--force', 'example/a'], dir);
    expect(withStatus(only.stdout, 'ran')).toEqual(['example/a']);
    expect(Object.keys(outcomes(only.stdout))).toEqual(['example/a']);
    const down = await hpcflow(['run', '--json', '--force', '--downstream', 'example/a'], dir);
    expect(withStatus(down.stdout, 'ran')).toEqual(['example/a', 'example/b']);
    const needs = await hpcflow(['run', '--json', 'example/b'], dir);
    expect(Object.keys(outcomes(needs.stdout)).sort()).toEqual(['example/a', 'example/b']);
  });

  it('stages share the CPU budget: two 2-cpu stages never overlap on 2 CPUs, do on 4', async () => {
    await writeFile(
      join(dir, 'pipelines/example.yaml'),
      `defaults: { image: hpcflow-test/busybox:1, resources: { cpus_per_task: 2 } }\nstages:\n  x:\n    cmd: sleep 0.5; echo > x.txt\n    outs: [x.txt]\n  y:\n    cmd: sleep 0.5; echo > y.txt\n    outs: [y.txt]\n`,
    );
    const order = async (cpus: string): Promise<string[]> => {
      const r = await hpcflow(['run', '--json', '--force', '-j', '2', '--cpus', cpus], dir);
      expect(r.code, r.stderr).toBe(0);
      return events(r.stdout)
        .filter((e) => e.type === 'stage-start' || e.type === 'stage-end')
        .map((e) => `${e.type === 'stage-start' ? 'start' : 'end'}`);
    };
    expect(await order('2')).toEqual(['start', 'end', 'start', 'end']);
    expect(await order('4')).toEqual(['start', 'start', 'end', 'end']);
  });

  it('schema prints the JSON Schema that is committed in the repository', async () => {
    const r = await hpcflow(['schema'], dir);
    expect(r.stdout).toBe(await readFile(join(REPO_ROOT, 'schema/pipeline.schema.json'), 'utf8'));
  });

  it('exit codes: usage 2, not a workspace 3, invalid pipeline 3 with file:line:col', async () => {
    expect((await hpcflow(['run', '--bogus'], dir)).code).toBe(2);
    expect((await hpcflow(['frobnicate'], dir)).code).toBe(2);
    const outside = await hpcflow(['status'], tmpdir());
    expect(outside.code).toBe(3);
    expect(outside.stderr).toContain('hint: run `hpcflow init`');
    await writeFile(join(dir, 'pipelines/example.yaml'), 'stages:\n  a:\n    image: x\n    cmd: echo\n    deps: [missing.txt]\n');
    const bad = await hpcflow(['status'], dir);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^pipelines\/example\.yaml:5:12: error HPCFLOW_SPEC_UNKNOWN_DEP: /m);
  });
});
