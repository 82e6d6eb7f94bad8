/**
 * The history commands against real repositories made with the git CLI: results commits are
 * fabricated with the exact message, trailers and run records `run --commit-results` writes (no
 * pipeline runs), on the branch itself and on a separate results ref.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmdLog } from '../../../runner/cli/cmd-log.js';
import { cmdMetrics } from '../../../runner/cli/cmd-metrics.js';
import type { CliIO } from '../../../runner/cli/io.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { commitResults } from '../../../runner/git/results.js';
import { GIT_ENV, git } from '../../helpers/git.js';


async function write(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

/** A plain commit of `files` (workspace-relative) in the repository at `repo`. */
async function commit(repo: string, ws: string, files: Record<string, string>, message: string, date: string): Promise<string> {
  await write(ws, files);
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-m', message], { date });
  return git(repo, ['rev-parse', 'HEAD']);
}

interface FakeRun {
  readonly runId: string;
  readonly input: string;
  readonly date: string;
  readonly ok?: boolean;
  readonly counts: { ran?: number; restored?: number; 'up-to-date'?: number; failed?: number };
  readonly wallMs: number;
  /** Stage → [metrics file (workspace-relative), its JSON]. */
  readonly metrics: Record<string, [string, unknown]>;
  readonly runsDir?: string;
}

/** A results commit as `run --commit-results` makes it: lockfile, metrics, run record, trailers. */
async function commitRun(repo: string, ws: string, r: FakeRun): Promise<string> {
  const counts = { ran: 0, restored: 0, 'up-to-date': 0, failed: 0, skipped: 0, canceled: 0, 'not-started': 0, ...r.counts };
  const stages: Record<string, unknown> = {};
  for (const id of Object.keys(r.metrics)) {
    stages[id] = { status: 'ran', fingerprint: 'f'.repeat(16), reasons: ['params changed'], result: { wallMs: 900, commandMs: 800, cpuMs: 1600, peakMemBytes: 1 << 20, nodes: ['n1'] }, upstream: [] };
  }
  const record = {
    schema: 1,
    runId: r.runId,
    ok: r.ok ?? true,
    aborted: false,
    wallMs: r.wallMs,
    counts,
    inputCommit: r.input,
    images: {},
    environment: { hpcflow: '0.1.0', node: 'v20.19.0', platform: 'linux-x64', executor: 'docker', host: 'ci', site: '' },
    metrics: Object.fromEntries(Object.entries(r.metrics).map(([id, [file]]) => [id, file])),
    stages,
  };
  const files: Record<string, string> = {
    'hpcflow.lock': `# lock of ${r.runId}\n`,
    [`${r.runsDir ?? 'runs'}/${r.runId}.json`]: `${JSON.stringify(record, null, 2)}\n`,
  };
  for (const [file, json] of Object.values(r.metrics)) files[file] = `${JSON.stringify(json)}\n`;
  await write(ws, files);
  await git(repo, ['add', '-A']);
  const summary = `hpcflow: ${counts.ran} ran, ${counts.restored} restored, ${counts['up-to-date']} up to date${counts.failed ? `, ${counts.failed} failed` : ''} (run ${r.runId})`;
  await git(repo, ['commit', '-q', '-F', '-'], { date: r.date, input: `${summary}\n\nHpcflow-Run: ${r.runId}\nHpcflow-Input: ${r.input}\n` });
  return git(repo, ['rev-parse', 'HEAD']);
}

function capture(cwd: string): { io: CliIO; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false, env: {}, cwd }, out: () => out, err: () => err };
}

async function run(cmd: typeof cmdLog, args: readonly string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const c = capture(cwd);
  const code = await cmd(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; hint: string | undefined }> {
  try {
    await p;
  } catch (e) {
    if (isHpcflowError(e)) return { code: e.code, message: e.message, hint: e.hint };
    throw e;
  }
  throw new Error('expected an HpcflowError');
}

const jsonLines = (s: string): Record<string, unknown>[] =>
  s
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hpcflow-history-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('history on the branch', () => {
  let repo: string;
  const c: string[] = []; // input commits
  const r: string[] = []; // results commits
  const RUN = ['20261124T103000Z-aaaaaa', '20261124T113000Z-bbbbbb', '20261124T123000Z-cccccc'];

  beforeAll(async () => {
    repo = join(tmp, 'branch');
    await mkdir(repo);
    await git(repo, ['init', '-q', '-b', 'main']);
    c.push(await commit(repo, repo, { 'pipelines/p.yaml': 'stages: {}\n', 'params.yaml': 'n: 1\n' }, 'initial', '2026-11-24T10:00:00Z'));
    r.push(await commitRun(repo, repo, {
      runId: RUN[0] as string,
      input: c[0] as string,
      date: '2026-11-24T10:30:00Z',
      counts: { ran: 2 },
      wallMs: 12_300,
      metrics: { 'heat/solve': ['results/solve.json', { time: { total: 10 }, err: 0.5, label: 'x' }], 'heat/gen': ['results/gen.json', { rows: 100 }] },
    }));
    c.push(await commit(repo, repo, { 'params.yaml': 'n: 2\n' }, 'more cells', '2026-11-24T11:00:00Z'));
    r.push(await commitRun(repo, repo, {
      runId: RUN[1] as string,
      input: c[1] as string,
      date: '2026-11-24T11:30:00Z',
      counts: { ran: 1, 'up-to-date': 1 },
      wallMs: 8_000,
      metrics: { 'heat/solve': ['results/solve.json', { time: { total: 8 }, err: 0.25, label: 'x' }], 'heat/gen': ['results/gen.json', { rows: 100 }] },
    }));
    c.push(await commit(repo, repo, { 'params.yaml': 'n: 3\n' }, 'even more cells', '2026-11-24T12:00:00Z'));
    r.push(await commitRun(repo, repo, {
      runId: RUN[2] as string,
      input: c[2] as string,
      date: '2026-11-24T12:30:00Z',
      ok: false,
      counts: { ran: 1, restored: 1, failed: 1 },
      wallMs: 245_000,
      metrics: { 'heat/solve': ['results/solve.json', { time: { total: 12.5 }, iters: 7 }], 'heat/gen': ['results/gen.json', { rows: 100 }] },
    }));
  });

  it('log lists the runs newest first with their counts, skipping other commits', async () => {
    const text = await run(cmdLog, [], repo);
    expect(text.code).toBe(0);
    const lines = text.out.trimEnd().split('\n');
    expect(lines).toHaveLength(4); // header + 3 runs
    expect(lines[0]).toMatch(/^input\s+date \(UTC\)\s+run\s+status\s+ran\s+restored\s+up to date\s+failed\s+wall\s+executor$/);
    expect(lines[1]).toMatch(new RegExp(`^${(c[2] as string).slice(0, 10)}  2026-11-24 12:30  ${RUN[2]}  FAILED\\s+1\\s+1\\s+0\\s+1\\s+4m 05s  docker$`));
    expect(lines[2]).toMatch(new RegExp(`^${(c[1] as string).slice(0, 10)}  2026-11-24 11:30  ${RUN[1]}  ok\\s+1\\s+0\\s+1\\s+0\\s+8\\.0 s  docker$`));
    expect(lines[3]).toMatch(new RegExp(`^${(c[0] as string).slice(0, 10)}  2026-11-24 10:30  ${RUN[0]}  ok\\s+2\\s+0\\s+0\\s+0\\s+12\\.3 s  docker$`));

    const json = jsonLines((await run(cmdLog, ['--json'], repo)).out);
    expect(json.map((e) => e.commit)).toEqual([r[2], r[1], r[0]]);
    expect(json.map((e) => e.inputCommit)).toEqual([c[2], c[1], c[0]]);
    expect(json.map((e) => e.status)).toEqual(['FAILED', 'ok', 'ok']);
    expect(json[1]?.counts).toMatchObject({ ran: 1, restored: 0, 'up-to-date': 1, failed: 0 });
    expect(json[0]).toMatchObject({ runId: RUN[2], wallMs: 245_000, executor: 'docker', record: `runs/${RUN[2]}.json`, date: '2026-11-24T12:30:00.000Z' });

    expect(jsonLines((await run(cmdLog, ['-n', '2', '--json'], repo)).out).map((e) => e.runId)).toEqual([RUN[2], RUN[1]]);
    expect(jsonLines((await run(cmdLog, ['--ref', 'HEAD~2', '--json'], repo)).out).map((e) => e.runId)).toEqual([RUN[1], RUN[0]]);
    expect((await run(cmdLog, ['--ref', c[0] as string], repo)).out).toMatch(/^no runs on /);
  });

  it('metrics show: the newest run record at the revision names the files', async () => {
    const head = await run(cmdMetrics, ['show'], repo);
    expect(head.code).toBe(0);
    expect(head.out).toBe(
      `metrics at HEAD (${(r[2] as string).slice(0, 10)}), run ${RUN[2]}\n` +
        'stage       metric      value\n' +
        'heat/gen    rows          100\n' +
        'heat/solve  time.total   12.5\n' +
        'heat/solve  iters           7\n',
    );
    expect(head.err).toBe('');
    const first = JSON.parse((await run(cmdMetrics, ['show', 'HEAD~4', '--json'], repo)).out) as Record<string, unknown>;
    expect(first).toEqual({
      rev: 'HEAD~4',
      commit: r[0],
      runId: RUN[0],
      metrics: [
        { stage: 'heat/gen', metric: 'rows', value: 100 },
        { stage: 'heat/solve', metric: 'time.total', value: 10 },
        { stage: 'heat/solve', metric: 'err', value: 0.5 },
      ],
      problems: [],
    });
    // An input commit between two results commits still holds the earlier results.
    const between = JSON.parse((await run(cmdMetrics, ['show', (c[1] as string).slice(0, 8), '--json'], repo)).out) as { runId: string };
    expect(between.runId).toBe(RUN[0]);
  });

  it('metrics diff: absolute and relative change, one-sided metrics marked', async () => {
    const d = await run(cmdMetrics, ['diff', 'HEAD~2', 'HEAD'], repo);
    expect(d.code).toBe(0);
    expect(d.out).toBe(
      `metrics: HEAD~2 (${(r[1] as string).slice(0, 10)}, run ${RUN[1]}) → HEAD (${(r[2] as string).slice(0, 10)}, run ${RUN[2]})\n` +
        'stage       metric      HEAD~2  HEAD  change\n' +
        'heat/gen    rows           100   100  0\n' +
        'heat/solve  time.total       8  12.5  +4.5 (+56.3%)\n' +
        'heat/solve  err           0.25     -  only in HEAD~2\n' +
        'heat/solve  iters            -     7  only in HEAD\n',
    );
    const j = JSON.parse((await run(cmdMetrics, ['diff', r[0] as string, '--json'], repo)).out) as { a: { commit: string }; b: { commit: string }; rows: unknown[] };
    expect(j.a.commit).toBe(r[0]);
    expect(j.b.commit).toBe(r[2]); // B defaults to HEAD
    expect(j.rows).toContainEqual({ stage: 'heat/solve', metric: 'time.total', a: 10, b: 12.5, change: 2.5, percent: 25 });
  });

  it('metrics plot: one point per results commit, oldest first, written atomically as SVG', async () => {
    const out = join(tmp, 'plots', 'solve.svg');
    const p = await run(cmdMetrics, ['plot', 'heat/solve:time.total', '--out', out], repo);
    expect(p.code).toBe(0);
    expect(p.out).toBe(`wrote ${out}: heat/solve time.total at 3 results commits (${(c[0] as string).slice(0, 7)} 10 → ${(c[2] as string).slice(0, 7)} 12.5)\n`);
    const svg = await readFile(out, 'utf8');
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<circle /g)).toHaveLength(3);
    const labels = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+">([0-9a-f]{7})<\/text>/g)].map((m) => m[1]);
    expect(labels).toEqual(c.map((x) => x.slice(0, 7)));
    expect(svg).toContain('heat/solve: time.total');

    // The default file name, relative to the current directory; a metric only some commits have.
    const cwd = join(tmp, 'cwd');
    await mkdir(join(cwd, 'pipelines'), { recursive: true });
    const q = await run(cmdMetrics, ['plot', 'heat/solve:err', '-C', repo, '--json'], cwd);
    const j = JSON.parse(q.out) as { out: string; points: { runId: string; value: number }[] };
    expect(j.out).toBe(join(cwd, 'metrics-heat_solve-err.svg'));
    expect(existsSync(j.out)).toBe(true);
    expect(j.points.map((x) => [x.runId, x.value])).toEqual([
      [RUN[0], 0.5],
      [RUN[1], 0.25],
    ]);
    expect(jsonLines((await run(cmdMetrics, ['plot', 'heat/solve:time.total', '-n', '2', '-o', out, '--json'], repo)).out)[0]?.points).toHaveLength(2);
  });

  it('errors say what to do', async () => {
    const none = await rejection(run(cmdMetrics, ['plot', 'heat/solve:nope'], repo));
    expect(none.code).toBe('HPCFLOW_USAGE');
    expect(none.message).toContain('none of the 3 results commits');
    expect(none.hint).toContain('heat/solve:time.total');
    expect((await rejection(run(cmdMetrics, ['plot', 'heat/solve:time.total', '--out', join(tmp, 'x.png')], repo))).hint).toContain('PNG is not supported');
    expect((await rejection(run(cmdMetrics, ['show', 'no-such-rev'], repo))).code).toBe('HPCFLOW_USAGE');
    const noRuns = await rejection(run(cmdMetrics, ['show', c[0] as string], repo));
    expect(noRuns.code).toBe('HPCFLOW_GIT');
    expect(noRuns.message).toContain('no run record in runs/');
    expect((await rejection(run(cmdMetrics, ['diff'], repo))).code).toBe('HPCFLOW_USAGE');
    expect((await rejection(run(cmdMetrics, ['show', '--ref', 'HEAD'], repo))).code).toBe('HPCFLOW_USAGE');
    expect((await rejection(run(cmdMetrics, ['frobnicate'], repo))).code).toBe('HPCFLOW_USAGE');
    expect((await rejection(run(cmdLog, ['-n', '0'], repo))).code).toBe('HPCFLOW_USAGE');
    expect((await run(cmdMetrics, [], repo)).code).toBe(2);

    const plain = join(tmp, 'not-git');
    await mkdir(join(plain, 'pipelines'), { recursive: true });
    expect((await rejection(run(cmdLog, [], plain))).code).toBe('HPCFLOW_GIT');
  });
});

describe('history on a results ref, workspace in a subdirectory', () => {
  let repo: string;
  let ws: string;
  const REF = 'refs/hpcflow/results/main';
  const RUN = ['20261201T090000Z-111111', '20261201T100000Z-222222', '20261201T110000Z-333333'];
  const inputs: string[] = [];
  const results: string[] = [];

  beforeAll(async () => {
    repo = join(tmp, 'resref');
    ws = join(repo, 'ws');
    await mkdir(ws, { recursive: true });
    await git(repo, ['init', '-q', '-b', 'main']);
    const cfg = `results:\n  ref: ${REF}\n  runs_dir: records\n`;
    inputs.push(await commit(repo, ws, { 'pipelines/p.yaml': 'stages: {}\n', 'hpcflow.yaml': cfg }, 'initial', '2026-12-01T08:00:00Z'));
    inputs.push(await commit(repo, ws, { 'params.yaml': 'n: 2\n' }, 'tune', '2026-12-01T09:30:00Z'));
    // Results commits go on the results ref: the first on top of its input commit, the next on the ref's tip.
    const times = [1, 2, 3];
    for (const [i, runId] of RUN.entries()) {
      await git(repo, ['checkout', '-q', '--detach', i === 0 ? (inputs[0] as string) : REF]);
      results.push(await commitRun(repo, ws, {
        runId,
        input: (i === 0 ? inputs[0] : inputs[1]) as string,
        date: `2026-12-01T1${i}:05:00Z`,
        counts: { ran: 1, 'up-to-date': 1 },
        wallMs: 1000 * (times[i] as number),
        runsDir: 'records',
        metrics: { 'p/solve@n=1': ['out/m.json', { gflops: 10 * (i + 1) }] },
      }));
      await git(repo, ['update-ref', REF, 'HEAD']);
    }
    await git(repo, ['checkout', '-q', 'main']);
  });

  it('log reads the results ref by default, and the branch when asked', async () => {
    const json = jsonLines((await run(cmdLog, ['--json'], ws)).out);
    expect(json.map((e) => e.runId)).toEqual([...RUN].reverse());
    expect(json.map((e) => e.commit)).toEqual([...results].reverse());
    expect(json[0]).toMatchObject({ inputCommit: inputs[1], record: `ws/records/${RUN[2]}.json`, counts: { ran: 1, 'up-to-date': 1 } });
    expect((await run(cmdLog, ['--ref', 'main'], ws)).out).toMatch(/^no runs on main/);
    expect(jsonLines((await run(cmdLog, ['--ref', REF, '-n', '1', '--json'], ws)).out)).toHaveLength(1);
  });

  it('show, diff and plot default to the results ref tip', async () => {
    const show = await run(cmdMetrics, ['show'], ws);
    expect(show.out).toContain(`metrics at ${REF} (${(results[2] as string).slice(0, 10)}), run ${RUN[2]}`);
    expect(show.out).toMatch(/p\/solve@n=1\s+gflops\s+30\n/);
    const d = JSON.parse((await run(cmdMetrics, ['diff', `${REF}~2`, '--json'], ws)).out) as { rows: unknown[] };
    expect(d.rows).toEqual([{ stage: 'p/solve@n=1', metric: 'gflops', a: 10, b: 30, change: 20, percent: 200 }]);
    const out = join(tmp, 'gflops.svg');
    const p = JSON.parse((await run(cmdMetrics, ['plot', 'p/solve@n=1:gflops', '-o', out, '--json'], ws)).out) as { points: { value: number; inputCommit: string }[]; ref: string };
    expect(p.ref).toBe(REF);
    expect(p.points.map((x) => x.value)).toEqual([10, 20, 30]);
    expect(p.points.map((x) => x.inputCommit)).toEqual([inputs[0], inputs[1], inputs[1]]);
    expect((await readFile(out, 'utf8')).match(/<circle /g)).toHaveLength(3);
  });

  it('a missing results ref is a git error with a hint', async () => {
    await write(ws, { 'hpcflow.yaml': 'results:\n  ref: refs/hpcflow/results/other\n' });
    try {
      const e = await rejection(run(cmdLog, [], ws));
      expect(e.code).toBe('HPCFLOW_GIT');
      expect(e.hint).toContain("git fetch origin 'refs/hpcflow/results/other:refs/hpcflow/results/other'");
    } finally {
      await git(repo, ['checkout', '-q', '--', 'ws/hpcflow.yaml']);
    }
  });
});

describe('a results commit made by hpcflow itself (runner/git/results.ts)', () => {
  it('is found by log and read by metrics show', async () => {
    const repo = join(tmp, 'real');
    await mkdir(repo);
    await git(repo, ['init', '-q', '-b', 'main']);
    const input = await commit(repo, repo, { 'pipelines/p.yaml': 'stages: {}\n' }, 'initial', '2026-12-02T08:00:00Z');
    const runId = '20261202T080500Z-abcdef';
    const record = { schema: 1, runId, ok: true, aborted: false, wallMs: 1500, counts: { ran: 1, restored: 0, 'up-to-date': 0, failed: 0 }, inputCommit: input, environment: { executor: 'slurm' }, metrics: { 'p/s': 'm/s.json' }, stages: {} };
    await write(repo, { [`runs/${runId}.json`]: JSON.stringify(record), 'm/s.json': '{"t": 3}', 'hpcflow.lock': '# lock\n' });
    const made = await commitResults({
      dir: repo,
      files: [join(repo, 'runs', `${runId}.json`), join(repo, 'm/s.json'), join(repo, 'hpcflow.lock')],
      runId,
      inputCommit: input,
      summary: `hpcflow: 1 ran, 0 restored, 0 up to date (run ${runId})`,
      target: { kind: 'branch' },
      env: GIT_ENV,
    });
    expect(made).not.toBeNull();
    const log = jsonLines((await run(cmdLog, ['--json'], repo)).out);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ commit: made?.oid, runId, inputCommit: input, status: 'ok', executor: 'slurm' });
    expect((await run(cmdMetrics, ['show'], repo)).out).toMatch(/p\/s\s+t\s+3\n/);
  });
});
