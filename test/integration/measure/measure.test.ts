/**
 * `hpcflow measure` on local Docker, then `hpcflow report --samples`: a base and a head whose
 * benchmark stage reports a time 10% apart (plus noise), both committed with real
 * `run --commit-results`; measure runs them alternately and the report judges the samples.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hpcflow } from '../../helpers/cli.js';
import { GIT_ENV, git } from '../../helpers/git.js';


// The benchmark: a "time" of cost + up to 2% noise, as a kernel's own timer would report it.
const PIPELINE = `stages:
  prep:
    image: hpcflow-test/busybox:1
    cmd: echo input > data.txt
    outs: [data.txt]
  bench:
    image: hpcflow-test/busybox:1
    cmd: >-
      awk -v c=\${cost} 'BEGIN { srand(); printf "{\\"time_s\\": %.5f}\\n", c * (1 + rand() * 0.02) }' > bench.json
    deps: [data.txt]
    params: [cost]
    metrics: bench.json
`;

let ws: string;
let baseResults: string;
let headInput: string;

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-measure-'));
  await mkdir(join(ws, 'pipelines'));
  await writeFile(join(ws, 'pipelines/p.yaml'), PIPELINE);
  await writeFile(join(ws, 'params.yaml'), 'cost: 1.0\n');
  await writeFile(join(ws, '.gitignore'), '.hpcflow/\n');
  await git(ws, ['init', '-q', '-b', 'main']);
  await git(ws, ['add', '-A']);
  await git(ws, ['commit', '-q', '-m', 'base']);
  const r1 = await hpcflow(['run', '--commit-results'], ws, GIT_ENV);
  expect(r1.code, r1.stderr).toBe(0);
  baseResults = await git(ws, ['rev-parse', 'main']);
  await git(ws, ['checkout', '-q', '-b', 'slower']);
  await writeFile(join(ws, 'params.yaml'), 'cost: 1.1\n');
  await git(ws, ['commit', '-q', '-am', 'head: 10% slower']);
  headInput = await git(ws, ['rev-parse', 'HEAD']);
  const r2 = await hpcflow(['run', '--commit-results'], ws, GIT_ENV);
  expect(r2.code, r2.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
});

describe('hpcflow measure + report --samples', () => {
  it('measures base and head alternately (ABBA) and the report calls the 10% slowdown a regression', async () => {
    const out = join(ws, 'samples.json');
    const m = await hpcflow(['measure', '--base', 'main', '--head', headInput, '--rounds', '4', '--out', out], ws);
    expect(m.code, m.stderr).toBe(0);
    // The base is a results commit: its lockfile and outputs are committed, so the warm-up finds
    // them up to date; the rounds force the measured stage.
    expect(m.stderr).toMatch(/measure: warm-up base: 0 stages ran/);
    expect(m.stdout).toMatch(/p\/bench:time_s\s+1\.0\d*\s+1\.1\d*\s+\+\d+\.\d%\s+4\/4\s+regression/);
    const f = JSON.parse(await readFile(out, 'utf8')) as {
      base: { commit: string };
      head: { commit: string };
      order: { side: string }[];
      samples: Record<'base' | 'head', Record<string, Record<string, number[]>>>;
      allocation: unknown;
    };
    expect(f.base.commit).toBe(baseResults);
    expect(f.head.commit).toBe(headInput);
    expect(f.order.map((o) => o.side)).toEqual(['base', 'head', 'head', 'base', 'base', 'head', 'head', 'base']);
    expect(f.allocation).toBeNull();
    // Only the measured stage is sampled; every value comes from its own forced run.
    expect(Object.keys(f.samples.head)).toEqual(['p/bench']);
    const base = f.samples.base['p/bench']?.time_s ?? [];
    const head = f.samples.head['p/bench']?.time_s ?? [];
    expect(base).toHaveLength(4);
    expect(head).toHaveLength(4);
    for (const x of base) expect(x >= 1.0 && x <= 1.02, String(x)).toBe(true);
    for (const x of head) expect(x >= 1.1 && x <= 1.122, String(x)).toBe(true);
    // The worktrees are gone; the user's checkout is untouched.
    expect((await readdir(join(ws, '.hpcflow/measure'))).filter((n) => n.startsWith('tmp-'))).toEqual([]);
    expect(await git(ws, ['status', '--porcelain'])).toBe('?? samples.json');

    const r = await hpcflow(['report', '--pr', '7', '--dry-run', '--base', 'main', '--samples', out], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^## 🔴 /);
    expect(r.stdout).toContain('Measured: base and head measured alternately (ABBA), 4 rounds of each, on ');
    expect(r.stdout).toContain(' (docker).');
    expect(r.stdout).toMatch(/\| p\/bench \| time_s \| 1\.0\d* \(n=4\) \| 1\.1\d* \(n=4\) \|[^\n]*🔴 regression/);
    await rm(out);
  }, 180_000);

  it('refuses samples of other commits than the report compares', async () => {
    const out = join(ws, 'other.json');
    // Head measured against itself: the samples' base is not the report's base.
    const m = await hpcflow(['measure', '--base', headInput, '--head', headInput, '--rounds', '1', '--out', out, 'p/bench'], ws);
    expect(m.code, m.stderr).toBe(0);
    const r = await hpcflow(['report', '--pr', '7', '--dry-run', '--base', 'main', '--samples', out], ws);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`measured the base at ${headInput.slice(0, 12)}, but the report's base is main`);
    await rm(out);
  }, 120_000);

  it('a side that fails stops the measurement with the stage named, and leaves nothing behind', async () => {
    await writeFile(join(ws, 'pipelines/p.yaml'), PIPELINE.replace("printf", 'exit 3; printf'));
    await git(ws, ['commit', '-q', '-am', 'broken']);
    const broken = await git(ws, ['rev-parse', 'HEAD']);
    const m = await hpcflow(['measure', '--base', 'main', '--head', broken, '--rounds', '1'], ws);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(new RegExp(`the warm-up run of head ${broken.slice(0, 12)} failed \\(hpcflow run exited with 1\\): p/bench: exit code 3`));
    expect((await readdir(join(ws, '.hpcflow/measure'))).filter((n) => n.startsWith('tmp-'))).toEqual([]);
    expect((await execa('docker', ['ps', '-aq', '--filter', 'label=hpcflow.stage=p/bench'])).stdout).toBe('');
  }, 120_000);
});
