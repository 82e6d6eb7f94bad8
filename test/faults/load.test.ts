import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashBytes } from '../../runner/fingerprint/hash-file.js';
import { BIN } from '../helpers/cli.js';

/**
 * Load: peak memory (the CLI process's maximum resident set, all threads included, from
 * getrusage at exit) of `hpcflow status` and `commit` on a pipeline of 10,000 stages, and of
 * reading, diffing and listing the history of dataset versions of 1,000,000 files (version files
 * written directly in the project's format and committed to git; no data files are created).
 *
 * The bounds are about 1.5× what was measured on a 2-CPU, Node 20 machine (printed by the test):
 * they catch a regression to quadratic or duplicated structures, not noise in the garbage
 * collector's timing.
 */
const MB = 1024 * 1024;
/** Peak RSS bounds, bytes. */
const BOUND = {
  /** No caches at all: the spec is parsed (YAML with positions), every dependency hashed. Measured 330–415 MB. */
  statusCold: 600 * MB,
  /** Spec cache valid, no status snapshot: the full planner. Measured ~235 MB. */
  statusPlanner: 360 * MB,
  /** The no-op fast path (status snapshot). Measured ~75 MB. */
  statusSnapshot: 150 * MB,
  /** `commit` of 10,000 stages (lockfile written). Measured ~220 MB. */
  commit: 400 * MB,
  /** `dataset status` of a version not checked out (header only). Measured ~250 MB. */
  datasetStatus: 400 * MB,
  /** `dataset list`: one 1M-file version read and checked in full. Measured ~510 MB (690 MB before the lean parser). */
  datasetLoad: 768 * MB,
  /** `dataset diff` of two 1M-file versions from git history. Measured ~925 MB (1.2 GB before). */
  datasetDiff: 1400 * MB,
  /** `dataset log` over 12 commits, two of them versions. Measured ~450 MB (665 MB before). */
  datasetLog: 700 * MB,
};
/** `dataset log` over 12 commits: measured ~2.3 s; it read the 100 MB version twice per commit before (33 s). */
const LOG_SECONDS = 20;

let tmp: string;
let preload: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hpcflow-load-'));
  // Loaded with --import into the CLI process: writes its peak RSS (KiB) when the process exits.
  preload = join(tmp, 'peak-rss.mjs');
  await writeFile(
    preload,
    "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => { if (process.env.HPCFLOW_TEST_PEAK_RSS) writeFileSync(process.env.HPCFLOW_TEST_PEAK_RSS, String(process.resourceUsage().maxRSS)); });\n",
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Measured {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak RSS, bytes. */
  readonly peak: number;
  readonly ms: number;
}

let counter = 0;
const measured: string[] = [];

/** The CLI as a real process, with its peak RSS. */
async function measure(label: string, args: readonly string[], cwd: string, bound: number): Promise<Measured> {
  const out = join(tmp, `rss-${counter++}.txt`);
  const t0 = performance.now();
  const r = await execa('node', ['--import', pathToFileURL(preload).href, BIN, ...args], { cwd, reject: false, env: { CI: '1', HPCFLOW_TEST_PEAK_RSS: out }, timeout: 120_000 });
  const ms = performance.now() - t0;
  const peak = Number(await readFile(out, 'utf8')) * 1024;
  const line = `${label}: peak RSS ${(peak / MB).toFixed(0)} MB (bound ${(bound / MB).toFixed(0)} MB), ${(ms / 1000).toFixed(2)} s`;
  measured.push(line);
  expect(peak, line).toBeLessThan(bound);
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, peak, ms };
}

describe('10,000 stages', () => {
  const N = 10_000;

  /** A binary tree of stages over shared inputs: stage i reads two source files and the output of stage (i-1)/2. */
  function pipeline(): string {
    const lines = ['defaults:\n  image: hpcflow-test/busybox:1\nstages:'];
    for (let i = 0; i < N; i++) {
      const deps = ['src/common.txt', `src/group-${i % 100}.txt`];
      if (i > 0) deps.push(`out/s${Math.floor((i - 1) / 2)}.txt`);
      lines.push(`  s${i}:\n    cmd: cat ${deps.join(' ')} > out/s${i}.txt\n    deps: [${deps.join(', ')}]\n    params: { i: ${i} }\n    outs: [out/s${i}.txt]`);
    }
    return `${lines.join('\n')}\n`;
  }

  it('status (cold, planner, snapshot) and commit stay within their memory bounds', async () => {
    const ws = join(tmp, 'big-pipeline');
    await mkdir(join(ws, 'pipelines'), { recursive: true });
    await mkdir(join(ws, 'src'));
    await mkdir(join(ws, 'out'));
    await writeFile(join(ws, 'pipelines/big.yaml'), pipeline());
    await writeFile(join(ws, 'src/common.txt'), 'common\n');
    for (let g = 0; g < 100; g++) await writeFile(join(ws, `src/group-${g}.txt`), `group ${g}\n`);
    for (let i = 0; i < N; i++) await writeFile(join(ws, `out/s${i}.txt`), `output ${i}\n`);
    // Files written within the racy window are re-read by design: age them, as a user's would be.
    const past = new Date(Date.now() - 120_000);
    for (const e of await readdir(ws, { withFileTypes: true, recursive: true })) await utimes(join(e.parentPath, e.name), past, past);

    const cold = await measure('status, 10,000 stages, nothing cached (all new)', ['status'], ws, BOUND.statusCold);
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stdout).toContain(`${N} stages: 0 up to date, ${N} will run`);

    const commit = await measure('commit, 10,000 stages', ['commit'], ws, BOUND.commit);
    expect(commit.code, commit.stderr).toBe(0);
    expect(commit.stdout).toContain(`committed ${N} stages`);

    await rm(join(ws, '.hpcflow/tmp'), { recursive: true, force: true });
    const cold2 = await measure('status, 10,000 stages up to date, no spec/stat cache', ['status'], ws, BOUND.statusCold);
    expect(cold2.stdout).toContain(`${N} stages: ${N} up to date`);
    const snap = await measure('status, 10,000 stages, status snapshot', ['status', '--check'], ws, BOUND.statusSnapshot);
    expect(snap.code, snap.stdout).toBe(0);
    await rm(join(ws, '.hpcflow/tmp/status-snapshot.json'));
    const planner = await measure('status, 10,000 stages, spec cache, full planner', ['status', '--check'], ws, BOUND.statusPlanner);
    expect(planner.code, planner.stdout).toBe(0);
  }, 180_000);
});

describe('a dataset of 1,000,000 files', () => {
  const N = 1_000_000;
  const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', GIT_CONFIG_NOSYSTEM: '1' };

  /** 64-hex ids standing in for files' BLAKE3 (only their form is checked): a pool, picked by number. */
  const POOL = Array.from({ length: 4096 }, (_, i) => hashBytes(`file content ${i}`));
  const fakeHash = (i: number, salt: number): string => POOL[(i + salt * 1009) % POOL.length] as string;

  /**
   * `datasets/big.yaml` as `hpcflow dataset commit` writes it (the manifest sorted, the version the
   * BLAKE3 of the manifest). Version 2 modifies every 100th file, removes every 1000th and adds 500.
   */
  async function writeVersion(ws: string, v: 1 | 2): Promise<void> {
    const lines: string[] = [];
    let bytes = 0;
    const add = (path: string, size: number, hash: string): void => {
      lines.push(`${path}\t${size}\t${hash}\t-\n`);
      bytes += size;
    };
    for (let i = 0; i < N; i++) {
      if (v === 2 && i % 1000 === 999) continue;
      const path = `d${String(Math.floor(i / 1000)).padStart(4, '0')}/f${String(i).padStart(7, '0')}.nc`;
      add(path, (i * 7919) % 100_000, fakeHash(i, v === 2 && i % 100 === 0 ? 2 : 1));
    }
    if (v === 2) for (let i = 0; i < 500; i++) add(`new/g${String(i).padStart(4, '0')}.nc`, 1000 + i, fakeHash(i, 3));
    const manifest = lines.join('');
    const text =
      '# hpcflow dataset: one version of data/big. Its history is this file\'s git history.\n' +
      `name: big\npath: "data/big"\nversion: ${hashBytes(manifest)}\nfiles: ${lines.length}\nbytes: ${bytes}\nmanifest: |2\n` +
      `  ${manifest.slice(0, -1).replaceAll('\n', '\n  ')}\n`;
    await mkdir(join(ws, 'datasets'), { recursive: true });
    await writeFile(join(ws, 'datasets/big.yaml'), text);
  }

  it('status, a full load and a diff of two versions stay within their memory bounds', async () => {
    const ws = join(tmp, 'big-dataset');
    await mkdir(join(ws, 'pipelines'), { recursive: true });
    const git = (...args: string[]): Promise<unknown> => execa('git', args, { cwd: ws, env: GIT_ENV });
    await git('init', '-q', '-b', 'main');
    for (const v of [1, 2] as const) {
      await writeVersion(ws, v);
      await git('add', 'datasets/big.yaml');
      await git('commit', '-q', '-m', `version ${v}`);
    }
    // Commits that do not touch the dataset: its history is found without reading every version.
    for (let i = 0; i < 10; i++) await git('commit', '-q', '--allow-empty', '-m', `note ${i}`);

    const status = await measure('dataset status, 1,000,000 files (not checked out)', ['dataset', 'status', 'big'], ws, BOUND.datasetStatus);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('not checked out');

    const list = await measure('dataset list, 1,000,000 files (the version read and checked)', ['dataset', 'list'], ws, BOUND.datasetLoad);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^big {2}[0-9a-f]{12} {2}data\/big {2}999500 files/m);

    const diff = await measure('dataset diff of two 1,000,000-file versions', ['dataset', 'diff', 'big@HEAD~11', 'big@HEAD'], ws, BOUND.datasetDiff);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/: 500 added \([^)]*\), 1000 removed \([^)]*\), 10000 modified/);

    const log = await measure('dataset log, 1,000,000 files, 12 commits (2 versions)', ['dataset', 'log', 'big'], ws, BOUND.datasetLog);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout.trim().split('\n')).toHaveLength(2);
    expect(log.ms / 1000).toBeLessThan(LOG_SECONDS);
  }, 180_000);
});

afterAll(() => {
  if (measured.length > 0) console.log(`peak RSS:\n  ${measured.join('\n  ')}`);
});
