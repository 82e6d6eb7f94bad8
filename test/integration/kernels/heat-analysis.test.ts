import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../../runner/executors/docker/docker-executor.js';
import type { ResolvedImage } from '../../../runner/executors/executor.js';
import {
  REPO_ROOT,
  ensureDockerForTests,
  listContainersByLabel,
  makeStage,
  makeTask,
  removeContainersByLabel,
  uniqueId,
} from '../../helpers/docker.js';

/**
 * The heat demo's Python analysis (kernels/heat/analysis/analyse.py, report.py) in the real
 * containers/python image, on results of the real C kernel built in containers/openmp: both images
 * are built by hpcflow's own executor from their contexts, tagged by content hash (built once per
 * machine, then reused, exactly as a pipeline run would), and every command runs as a stage does:
 * as this uid:gid with the workspace mounted at its own path.
 *
 * Cases: the C kernel solves `--ic modes` on 34 x 34 (alpha 0.25) and 20 x 16 (alpha 0.2: nx != ny
 * and a second alpha), and its results are copied as a second implementation, "other".
 */

const RUN_ID = uniqueId('heat-analysis');
const never = new AbortController().signal;
const TOL = '1e-12';
const ANALYSE = 'python3 kernels/heat/analysis/analyse.py';
const REPORT = 'python3 kernels/heat/analysis/report.py';
const HEADER = 20; // "HEAT", uint32 nx, uint32 ny, float64 dx
const GRIDS = [
  { nx: 34, ny: 34, steps: 100, alpha: 0.25 },
  { nx: 20, ny: 16, steps: 50, alpha: 0.2 },
] as const;
const IMPLS = ['openmp', 'other'] as const;

let ws: string;
let ex: DockerExecutor;
let openmp: ResolvedImage;
let python: ResolvedImage;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd` (sh -c) in `image` the way a pipeline stage runs: this uid, the workspace mounted. */
async function inImage(image: ResolvedImage, cmd: string): Promise<Run> {
  const stage = makeStage({
    id: 'heat-analysis/test',
    pipeline: 'heat-analysis',
    name: 'test',
    cmd,
    env: { OMP_NUM_THREADS: '2', OMP_PROC_BIND: 'close' },
    resources: { cpusPerTask: 2 },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const task = makeTask({ stage, image, workspace: ws, runId: RUN_ID });
  const r = await ex.run(task, { onLog: (s, l) => (s === 'stdout' ? stdout : stderr).push(l) }, never);
  if (r.engineError !== null) throw new Error(`engine error running ${cmd}: ${r.engineError}`);
  return { code: r.exitCode, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

const analyse = (results: string, metrics: string, out: string): Promise<Run> =>
  inImage(
    python,
    `${ANALYSE} --results ${results} --metrics ${metrics} --tolerance ${TOL}` +
      ` --summary ${out}/summary.json --plot ${out}/plot.svg`,
  );

const text = (rel: string): Promise<string> => readFile(join(ws, rel), 'utf8');

async function exists(rel: string): Promise<boolean> {
  return stat(join(ws, rel)).then(
    () => true,
    () => false,
  );
}

interface Case {
  impl: string;
  nx: number;
  ny: number;
  steps: number;
  alpha: number;
  processes: number;
  threads: number;
  wall_s: number;
  cell_updates_per_s: number;
  rel_err_analytic: number | null;
  pass: boolean;
}
interface Comparison {
  nx: number;
  a: string;
  b: string;
  rel_diff: number | null;
  pass: boolean;
}
interface Summary {
  tolerance: number;
  pass: boolean;
  cases: Case[];
  comparisons: Comparison[];
}

const summaryOf = async (rel: string): Promise<Summary> => JSON.parse(await text(rel)) as Summary;

/** Copies the `<impl>-<nx>.<ext>` file of every case from one directory to another. */
async function copyCases(fromDir: string, toDir: string, ext: 'bin' | 'json'): Promise<void> {
  await mkdir(join(ws, toDir), { recursive: true });
  for (const { nx } of GRIDS) {
    for (const impl of IMPLS) {
      const name = `${impl}-${nx}.${ext}`;
      await copyFile(join(ws, fromDir, name), join(ws, toDir, name));
    }
  }
}

/** Tags balance and nothing but whitespace is outside the root: enough of XML for a hand-written SVG. */
function expectWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClosing] = m;
    if (selfClosing === '/') continue;
    if (close === '/') expect(stack.pop()).toBe(name);
    else stack.push(name as string);
  }
  expect(stack).toEqual([]);
  expect(svg).not.toMatch(/&(?!#\d+;|amp;|lt;|gt;|quot;|apos;)/); // every & starts an entity
}

beforeAll(async () => {
  await ensureDockerForTests();
  // Idempotent (skips images that exist) and serialised by a lock: cheap when already built.
  await execa('bash', ['scripts/build-base-images.sh'], { cwd: REPO_ROOT, stdio: 'inherit' });
  ex = new DockerExecutor({ network: 'none' });
  // hpcflow/<context>:<content hash>, built only when missing (as `image: { build: ... }` would be).
  const image = (context: string): Promise<ResolvedImage> =>
    ex.prepareImage({ kind: 'build', context, dockerfile: 'Dockerfile' }, REPO_ROOT, { onLog: () => {} }, never);
  const [o, p] = await Promise.all([image('openmp'), image('python')]);
  openmp = o;
  python = p;
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-heat-analysis-'));
  await mkdir(join(ws, 'kernels/heat/analysis'), { recursive: true });
  await mkdir(join(ws, 'kernels/heat/openmp'), { recursive: true });
  for (const f of ['openmp/heat.c', 'openmp/Makefile', 'analysis/analyse.py', 'analysis/report.py']) {
    await copyFile(join(REPO_ROOT, 'kernels/heat', f), join(ws, 'kernels/heat', f));
  }
  const solve = GRIDS.flatMap(({ nx, ny, steps, alpha }) => [
    `./build/heat/heat --gen --ic modes --nx ${nx} --ny ${ny} --out data/heat/ic-${nx}.bin`,
    `./build/heat/heat --in data/heat/ic-${nx}.bin --steps ${steps} --alpha ${alpha}` +
      ` --out results/heat/openmp-${nx}.bin --metrics metrics/heat/openmp-${nx}.json`,
  ]);
  const built = await inImage(openmp, ['make -s -C kernels/heat/openmp BUILD=build/heat', ...solve].join(' && '));
  if (built.code !== 0) throw new Error(`building and running the kernel failed:\n${built.stderr}`);
  // The second "implementation": the same results under another name (the file name is the impl).
  for (const { nx } of GRIDS) {
    for (const ext of ['bin', 'json'] as const) {
      const dir = ext === 'bin' ? 'results/heat' : 'metrics/heat';
      await copyFile(join(ws, dir, `openmp-${nx}.${ext}`), join(ws, dir, `other-${nx}.${ext}`));
    }
  }
}, 900_000);

afterAll(async () => {
  await removeContainersByLabel('hpcflow.run-id', RUN_ID);
  await ex?.close();
  if (ws) await rm(ws, { recursive: true, force: true });
});

describe('heat analysis (Python) in the containers/python image', () => {
  it('passes the C kernel results: exit 0, the summary in the contract shape, errors at rounding level', async () => {
    const r = await analyse('results/heat', 'metrics/heat', 'reports/heat');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/4 cases, 2 comparisons, tolerance 1e-12: all pass/);

    const raw = await text('reports/heat/summary.json');
    expect(raw.startsWith('{\n  "tolerance": 1e-12,\n  "pass": true,\n  "cases": [\n    {\n      "impl": ')).toBe(true);
    const s = JSON.parse(raw) as Summary;
    expect(Object.keys(s)).toEqual(['tolerance', 'pass', 'cases', 'comparisons']);
    expect(s).toMatchObject({ tolerance: 1e-12, pass: true });
    // Sorted by nx, then impl.
    expect(s.cases.map((c) => `${c.impl}-${c.nx}x${c.ny}`)).toEqual([
      'openmp-20x16',
      'other-20x16',
      'openmp-34x34',
      'other-34x34',
    ]);
    for (const c of s.cases) {
      expect(Object.keys(c)).toEqual([
        'impl',
        'nx',
        'ny',
        'steps',
        'alpha',
        'processes',
        'threads',
        'wall_s',
        'cell_updates_per_s',
        'rel_err_analytic',
        'pass',
      ]);
      const grid = GRIDS.find((g) => g.nx === c.nx);
      const m = JSON.parse(await text(`metrics/heat/openmp-${c.nx}.json`)) as Record<string, number>;
      expect(c).toMatchObject({ ...grid, processes: 1, threads: 2, wall_s: m.wall_s, pass: true });
      expect(c.cell_updates_per_s).toBe(m.cell_updates_per_s);
      expect(c.rel_err_analytic).toBeGreaterThanOrEqual(0);
      expect(c.rel_err_analytic).toBeLessThan(1e-12);
    }
    expect(s.comparisons).toEqual([
      { nx: 20, a: 'openmp', b: 'other', rel_diff: 0, pass: true },
      { nx: 34, a: 'openmp', b: 'other', rel_diff: 0, pass: true },
    ]);
    for (const c of s.comparisons) expect(Object.keys(c)).toEqual(['nx', 'a', 'b', 'rel_diff', 'pass']);

    // Deterministic: the same inputs give the same bytes.
    expect((await analyse('results/heat', 'metrics/heat', 'reports/again')).code).toBe(0);
    expect(await text('reports/again/summary.json')).toBe(raw);
    expect(await text('reports/again/plot.svg')).toBe(await text('reports/heat/plot.svg'));
  });

  it('draws the plot as a hand-written SVG: one <rect> per bar, grid sizes, legend', async () => {
    const svg = await text('reports/heat/plot.svg');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith('</svg>\n')).toBe(true);
    expectWellFormed(svg);
    expect(svg.match(/<rect /g)?.length).toBe(GRIDS.length * IMPLS.length);
    for (const { nx, ny } of GRIDS) expect(svg).toContain(`>${nx} &#215; ${ny}</text>`);
    for (const impl of IMPLS) expect(svg).toContain(`>${impl}</text>`);
    expect(svg).toContain('million cell updates per second');
    expect(svg).toContain('grid size (nx &#215; ny)');
    expect(svg).not.toContain('FAIL');
  });

  it('writes the markdown report: verdict, case and comparison tables, the plot by relative path', async () => {
    const cmd = (out: string): string =>
      `${REPORT} --summary reports/heat/summary.json --plot reports/heat/plot.svg --out ${out}` +
      ` --title 'Heat demo check'`;
    const r = await inImage(python, `${cmd('docs/heat/report.md')} && ${cmd('docs/again/report.md')}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const md = await text('docs/heat/report.md');
    expect(await text('docs/again/report.md')).toBe(md);
    expect(md.startsWith('# Heat demo check\n\n**Verdict: PASS**')).toBe(true);
    for (const { nx, ny, steps } of GRIDS) {
      for (const impl of IMPLS) {
        // impl | grid | steps | processes x threads | wall s | M updates/s | rel. error (~1e-15) | result
        const num = '[0-9.e+-]+';
        const row = new RegExp(
          `^\\| ${impl} \\| ${nx} × ${ny} \\| ${steps} \\| 1 × 2 \\| ${num} \\| ${num} \\| \\d\\.\\d\\de-1\\d \\| pass \\|$`,
          'm',
        );
        expect(md).toMatch(row);
      }
      expect(md).toContain(`\n| ${nx} × ${ny} | openmp | other | 0.00e+00 | pass |\n`);
    }
    expect(md).toContain('Relative tolerance: 1e-12.');
    expect(md).toContain('](../../reports/heat/plot.svg)');
  });

  it('fails a corrupted result (one value off by 1.0): exit 1, that case and its comparison fail', async () => {
    await copyCases('results/heat', 'results/corrupt', 'bin');
    const file = join(ws, 'results/corrupt/other-34.bin');
    const raw = await readFile(file);
    const at = HEADER + 8 * (17 * 34 + 17); // an interior cell near the centre
    raw.writeDoubleLE(raw.readDoubleLE(at) + 1.0, at);
    await writeFile(file, raw);

    const r = await analyse('results/corrupt', 'metrics/heat', 'reports/corrupt');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/2 FAILED/);
    const s = await summaryOf('reports/corrupt/summary.json'); // still written
    expect(s.pass).toBe(false);
    const byName = Object.fromEntries(s.cases.map((c) => [`${c.impl}-${c.nx}`, c]));
    expect(byName['other-34']?.pass).toBe(false);
    // 1.0 against a peak of about 95: far outside 1e-12, and about 1/95.
    expect(byName['other-34']?.rel_err_analytic).toBeGreaterThan(1e-3);
    expect(byName['other-34']?.rel_err_analytic).toBeLessThan(0.1);
    for (const k of ['openmp-20', 'other-20', 'openmp-34']) expect(byName[k]?.pass).toBe(true);
    expect(s.comparisons.map((c) => [c.nx, c.pass])).toEqual([
      [20, true],
      [34, false],
    ]);
    expect(s.comparisons[1]?.rel_diff).toBeCloseTo(byName['other-34']?.rel_err_analytic ?? NaN, 10);
    expect(await text('reports/corrupt/plot.svg')).toContain('FAIL');

    const dir = 'reports/corrupt';
    const rep = await inImage(
      python,
      `${REPORT} --summary ${dir}/summary.json --plot ${dir}/plot.svg --out ${dir}/report.md`,
    );
    expect(rep.code).toBe(0);
    const md = await text('reports/corrupt/report.md');
    expect(md).toContain('**Verdict: FAIL**: 1 of 4 cases and 1 of 2 comparisons exceed the relative tolerance 1e-12.');
    expect(md).toMatch(/^\| other \| 34 × 34 \| .* \| \*\*FAIL\*\* \|$/m);
    expect(md).toContain('\n| 34 × 34 | openmp | other | ');
    expect(md).toContain('](plot.svg)');
  });

  it('refuses a .bin without its .json (and a .json without its .bin): exit 2, one line naming the file', async () => {
    await copyCases('results/heat', 'results/orphan', 'bin');
    await copyFile(join(ws, 'results/heat/openmp-34.bin'), join(ws, 'results/orphan/third-34.bin'));
    const r = await analyse('results/orphan', 'metrics/heat', 'reports/orphan');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('analyse: error: results/orphan/third-34.bin has no metrics file metrics/heat/third-34.json');
    expect(await exists('reports/orphan/summary.json')).toBe(false);
    expect(await exists('reports/orphan/plot.svg')).toBe(false);

    await copyCases('metrics/heat', 'metrics/extra', 'json');
    await copyFile(join(ws, 'metrics/heat/openmp-20.json'), join(ws, 'metrics/extra/fourth-20.json'));
    const v = await analyse('results/heat', 'metrics/extra', 'reports/extra');
    expect(v.code).toBe(2);
    expect(v.stderr).toBe('analyse: error: metrics/extra/fourth-20.json has no result file results/heat/fourth-20.bin');
  });

  it('left no container behind', async () => {
    expect(await listContainersByLabel('hpcflow.run-id', RUN_ID)).toEqual([]);
  });
});
