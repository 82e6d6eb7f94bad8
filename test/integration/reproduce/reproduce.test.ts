/**
 * `hpcflow reproduce` end to end: real git repositories, real containers, the built CLI for the
 * recorded runs (`run --commit-results`) and for the re-runs, `cmdReproduce` called in-process.
 */
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmdReproduce } from '../../../runner/cli/cmd-reproduce.js';
import type { CliIO } from '../../../runner/cli/io.js';
import { reportError } from '../../../runner/cli/main.js';
import type { ReproduceReport } from '../../../runner/reproduce/report.js';
import { hpcflow } from '../../helpers/cli.js';
import { SLURM_CONF, sharedTempDir, slurmSiteYaml } from '../../helpers/slurm.js';

const GIT_ENV = { GIT_AUTHOR_NAME: 'dev', GIT_AUTHOR_EMAIL: 'dev@example.org', GIT_COMMITTER_NAME: 'dev', GIT_COMMITTER_EMAIL: 'dev@example.org' };

const DET = (value: number): string => `stages:
  gen:
    image: hpcflow-test/busybox:1
    cmd: >-
      mkdir -p out/dir metrics &&
      echo "value ${value}" > out/value.txt &&
      wc -l < data/raw/a.csv > out/dir/lines.txt &&
      cat data/raw/a.csv > out/dir/copy.csv &&
      echo '{"value": ${value}, "nested": {"rows": 2}}' > metrics/gen.json
    deps: [{ dataset: raw }]
    outs: [out/value.txt, out/dir]
    metrics: metrics/gen.json
`;

const NOISE = (tolerance: boolean): string => `stages:
  noisy:
    image: hpcflow-test/busybox:1
    cmd: >-
      n=$(printf '%06d' $(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))) &&
      mkdir -p out metrics &&
      echo "{\\"t\\": 1.00$n}" > metrics/noise.json &&
      echo "noise 2.00$n" > out/noise.txt
    outs: [out/noise.txt]
    metrics: metrics/noise.json
${tolerance ? '    tolerance: { rel: 1e-2 }\n' : ''}`;

let root: string;
let repo: string;
let rtmp: string;

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}

async function write(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

/** `hpcflow run --commit-results` in `dir`; returns the results commit. */
async function runAndCommit(dir: string, ...extra: string[]): Promise<string> {
  const r = await hpcflow(['run', '--commit-results', ...extra], dir, { ...GIT_ENV, SLURM_CONF });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/results: committed/);
  return git(dir, 'rev-parse', 'HEAD');
}

interface Captured {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `hpcflow reproduce …` in-process, as main() would run it. */
async function reproduce(cwd: string, ...args: string[]): Promise<Captured> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false, env: { ...process.env, ...GIT_ENV, SLURM_CONF }, cwd };
  let code: number;
  try {
    code = await cmdReproduce(args.includes('--tmp-dir') ? args : ['--tmp-dir', rtmp, ...args], io);
  } catch (e) {
    code = reportError(e, io);
  }
  return { code, out, err };
}

const json = (c: Captured): ReproduceReport => JSON.parse(c.out) as ReproduceReport;
const verdicts = (r: ReproduceReport): Record<string, string> => Object.fromEntries(r.stages.flatMap((s) => s.outputs.map((o) => [`${s.id}:${o.path}`, o.verdict])));

/** HEAD, index and working tree, to check that reproduce leaves them alone. */
async function repoState(dir: string): Promise<string> {
  return [await git(dir, 'rev-parse', 'HEAD'), await git(dir, 'status', '--porcelain', '--untracked-files=all'), await git(dir, 'diff', '--cached', '--stat'), await readFile(join(dir, 'out/value.txt'), 'utf8')].join('\n');
}

const commits: Record<string, string> = {};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-reproduce-it-'));
  repo = join(root, 'repo');
  rtmp = join(root, 'reproduce-tmp');
  await mkdir(rtmp);
  await mkdir(repo);
  await git(repo, 'init', '-q', '--initial-branch=main');
  await git(repo, 'config', 'user.name', 'dev');
  await git(repo, 'config', 'user.email', 'dev@example.org');
  await write(repo, { '.gitignore': '.hpcflow/\n/data/raw\n', 'pipelines/det.yaml': DET(3), 'data/raw/a.csv': 'x,y\n1,2\n' });
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-qm', 'pipeline');
  const add = await hpcflow(['dataset', 'add', 'data/raw', '--name', 'raw'], repo, GIT_ENV);
  expect(add.code).toBe(0);
  commits.input1 = await git(repo, 'rev-parse', 'HEAD');
  commits.results1 = await runAndCommit(repo);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('hpcflow reproduce', () => {
  it('an unchanged commit reproduces bitwise; the repository is untouched and nothing is left behind', async () => {
    const before = await repoState(repo);
    const t0 = Date.now();
    // The input commit: the results commit made after it is found.
    const c = await reproduce(repo, commits.input1 as string, '--json');
    const ms = Date.now() - t0;
    expect(c.code).toBe(0);
    const r = json(c);
    expect(r).toMatchObject({ source: 'results-of-input', resultsCommit: commits.results1, inputCommit: commits.input1, reproduced: true, warnings: [] });
    expect(verdicts(r)).toEqual({ 'det/gen:metrics/gen.json': 'identical', 'det/gen:out/dir': 'identical', 'det/gen:out/value.txt': 'identical' });
    expect(r.stages[0]?.image).toMatchObject({ tag: 'hpcflow-test/busybox:1', action: 'same', changed: false });
    expect(r.stages[0]?.notes).toEqual([]);
    expect(r.stages[0]?.metrics.map((m) => [m.key, m.recorded, m.value])).toEqual([
      ['value', 3, 3],
      ['nested.rows', 2, 2],
    ]);
    expect(await repoState(repo)).toBe(before);
    expect(readdirSync(rtmp)).toEqual([]);
    process.stderr.write(`reproduce (1 stage, dataset, --json): ${ms} ms\n`);
  });

  it('a noisy stage is within its tolerance (exit 0), and different without one (exit 1)', async () => {
    await write(repo, { 'pipelines/noise.yaml': NOISE(true) });
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-qm', 'noise with tolerance');
    const withTol = await runAndCommit(repo);
    const t0 = Date.now();
    const c = await reproduce(repo, withTol);
    const ms = Date.now() - t0;
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/noise\/noisy\s+out\/noise\.txt\s+within tolerance \(max rel err \S+ at line 1, value 2\)/);
    expect(c.out).toMatch(/noise\/noisy\s+metrics\/noise\.json\s+within tolerance/);
    expect(c.out).toMatch(/det\/gen\s+out\/value\.txt\s+identical/);
    expect(c.out).toMatch(/noise\/noisy\s+t\s+1\.00\d*\s+1\.00\d*\s+\S+ \(\S+%\)\s+within tolerance/);
    expect(c.out).toMatch(/\nREPRODUCED: 3 identical, 2 within tolerance, 0 different, 0 missing of 5 outputs\n$/);
    expect(c.err).toMatch(/reproduce: {3}noise\/noisy: ran/);

    await write(repo, { 'pipelines/noise.yaml': NOISE(false) });
    await git(repo, 'commit', '-qam', 'noise without tolerance');
    const noTol = await runAndCommit(repo); // tolerance is not in the fingerprint: nothing re-ran, the record is the same
    const d = await reproduce(repo, noTol, '--json');
    expect(d.code).toBe(1);
    const r = json(d);
    expect(r.reproduced).toBe(false);
    expect(verdicts(r)).toMatchObject({ 'noise/noisy:out/noise.txt': 'different', 'noise/noisy:metrics/noise.json': 'different', 'det/gen:out/value.txt': 'identical' });
    const noisy = r.stages.find((s) => s.id === 'noise/noisy');
    expect(noisy?.tolerance).toBeNull();
    expect(noisy?.outputs.find((o) => o.path === 'out/noise.txt')?.numeric).toMatchObject({ format: 'text', count: 1, outside: 1 });
    expect(noisy?.metrics[0]).toMatchObject({ key: 't', within: false });
    process.stderr.write(`reproduce (2 stages, text): ${ms} ms\n`);
  });

  it('a changed stage command at HEAD does not affect reproducing the old commit', async () => {
    await write(repo, { 'pipelines/det.yaml': DET(4) });
    await git(repo, 'commit', '-qam', 'gen writes 4 now');
    await runAndCommit(repo);
    expect(await readFile(join(repo, 'out/value.txt'), 'utf8')).toBe('value 4\n');
    const before = await repoState(repo);
    const c = await reproduce(repo, commits.results1 as string, '--json');
    expect(c.code).toBe(0);
    const r = json(c);
    expect(r).toMatchObject({ source: 'results-commit', inputCommit: commits.input1, reproduced: true });
    expect(Object.values(verdicts(r))).toEqual(['identical', 'identical', 'identical']);
    expect(r.skipped).toEqual([]);
    expect(await repoState(repo)).toBe(before);
    // And HEAD itself: its own record says value 4.
    const head = await reproduce(repo, 'HEAD', '--json', 'det/gen');
    expect(head.code).toBe(0);
    expect(json(head).stages.map((s) => s.id)).toEqual(['det/gen']);
    expect(json(head).skipped).toEqual([{ id: 'noise/noisy', why: 'not selected for the re-run' }]);
    expect(json(head).stages[0]?.metrics[0]).toMatchObject({ key: 'value', recorded: 4, value: 4 });
  });

  it('a dataset version whose objects are not in the store is a clear error', async () => {
    const empty = join(root, 'empty-cache');
    const c = await reproduce(repo, commits.results1 as string, '--cache-dir', empty);
    expect(c.code).toBe(4);
    expect(c.out).toBe('');
    expect(c.err).toMatch(/dataset "raw" version [0-9a-f]{12} \(datasets\/raw\.yaml at [0-9a-f]{12}\) is not in the local content store/);
    expect(c.err).toMatch(/hint: fetch it with `hpcflow dataset pull --no-checkout raw@[0-9a-f]{12}`/);
    expect(readdirSync(rtmp)).toEqual([]);
  });

  it('usage: no revision, an unknown one, a commit with nothing recorded', async () => {
    expect((await reproduce(repo)).code).toBe(2);
    const unknown = await reproduce(repo, 'no-such-rev');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown revision 'no-such-rev'/);
    const first = await git(repo, 'rev-list', '--max-parents=0', 'HEAD');
    const none = await reproduce(repo, first);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/nothing recorded to reproduce/);
  });
});

describe('hpcflow reproduce and images', () => {
  const NONCE = `${process.pid}-${Date.now()}`;
  const TAG = `hpcflow-test/repro-${NONCE}:1`;
  let dir: string;
  let results: string;
  const build = async (label: string): Promise<string> => {
    await execa('docker', ['build', '-q', '-t', TAG, '-'], { input: `FROM hpcflow-test/busybox:1\nLABEL nonce=${NONCE} variant=${label}\n` });
    return (await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', TAG])).stdout.trim();
  };
  let first: string;
  let second: string;

  beforeAll(async () => {
    dir = join(root, 'images');
    await mkdir(dir);
    await git(dir, 'init', '-q', '--initial-branch=main');
    await git(dir, 'config', 'user.name', 'dev');
    await git(dir, 'config', 'user.email', 'dev@example.org');
    await write(dir, { '.gitignore': '.hpcflow/\n', 'pipelines/p.yaml': `stages:\n  s:\n    image: ${TAG}\n    cmd: echo same > out.txt\n    outs: [out.txt]\n` });
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-qm', 'p');
    first = await build('first');
    results = await runAndCommit(dir);
    second = await build('second'); // the tag moves
    expect(second).not.toBe(first);
  });

  afterAll(async () => {
    const ids = await execa('docker', ['images', '-q', '--filter', `label=nonce=${NONCE}`]);
    for (const id of new Set(ids.stdout.split('\n').filter(Boolean))) await execa('docker', ['rmi', '-f', id], { reject: false });
  });

  it('a moved tag: the stage is pinned to the recorded image', async () => {
    const c = await reproduce(dir, results, '--json');
    expect(c.code).toBe(0);
    const r = json(c);
    expect(r.stages[0]?.image).toMatchObject({ tag: TAG, recorded: first, rerun: first, action: 'pinned', changed: false });
    expect(r.stages[0]?.notes).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(verdicts(r)).toEqual({ 'p/s:out.txt': 'identical' });
  });

  it('a recorded image the engine no longer has: a loud warning; --strict-images fails', async () => {
    await execa('docker', ['rmi', '-f', first]);
    const c = await reproduce(dir, results);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/WARNING: p\/s: re-ran on image sha256:[0-9a-f]{12}, recorded sha256:[0-9a-f]{12} \(.*\) — the recorded image can no longer be obtained/);
    expect(c.out).toMatch(/p\/s\s+out\.txt\s+identical/);
    const strict = await reproduce(dir, results, '--strict-images', '--json');
    expect(strict.code).toBe(1);
    expect(json(strict)).toMatchObject({ reproduced: false, summary: { identical: 1, imagesChanged: 1 } });
    expect(json(strict).stages[0]?.image).toMatchObject({ action: 'unavailable', changed: true, rerun: second });
    expect(json(strict).stages[0]?.notes).toEqual([expect.stringMatching(/^its inputs differ from the record's \(image\)/)]);
    expect(readdirSync(rtmp)).toEqual([]);
  });
});

describe('hpcflow reproduce on Slurm', () => {
  it('re-runs as Slurm jobs in a worktree on the shared filesystem', async () => {
    const shared = await sharedTempDir('hpcflow-reproduce-');
    try {
      const dir = join(shared.path, 'repo');
      const tmpShared = join(shared.path, 'tmp');
      await mkdir(dir);
      await mkdir(tmpShared);
      await git(dir, 'init', '-q', '--initial-branch=main');
      await git(dir, 'config', 'user.name', 'dev');
      await git(dir, 'config', 'user.email', 'dev@example.org');
      await write(dir, {
        '.gitignore': '.hpcflow/\n',
        'site.yaml': slurmSiteYaml(),
        'pipelines/p.yaml': 'stages:\n  s:\n    image: hpcflow-test/busybox:1\n    cmd: echo "on slurm 7" > out.txt\n    outs: [out.txt]\n',
      });
      await git(dir, 'add', '-A');
      await git(dir, 'commit', '-qm', 'p');
      const results = await runAndCommit(dir, '--executor', 'slurm', '--site', 'site.yaml');
      const t0 = Date.now();
      const c = await reproduce(dir, results, '--json', '--executor', 'slurm', '--site', 'site.yaml', '--tmp-dir', tmpShared);
      const ms = Date.now() - t0;
      expect(c.err).toBe('');
      expect(c.code).toBe(0);
      expect(verdicts(json(c))).toEqual({ 'p/s:out.txt': 'identical' });
      expect(readdirSync(tmpShared)).toEqual([]);
      process.stderr.write(`reproduce on Slurm (1 stage): ${ms} ms\n`);
    } finally {
      await shared.cleanup();
    }
  });
});
