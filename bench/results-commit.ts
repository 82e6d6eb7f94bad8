import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import git from 'isomorphic-git';
import { commitResults, pushResults, refreshIndex } from '../runner/git/results.js';
import { LOCKFILE_SCHEMA, parseLockfile, serializeLockfile } from '../runner/lockfile/lockfile.js';
import type { LockEntry } from '../runner/lockfile/lockfile.js';
import { startGitServer } from '../test/helpers/git-server.js';
import type { GitServer } from '../test/helpers/git-server.js';
import { summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';

/**
 * Results commits on a large checkout: hpcflow's `commitResults` (branch and results-ref mode)
 * committing the ~10 files a run wrote, against native git doing the same the fastest way it can,
 * and against isomorphic-git's whole-tree way (why hpcflow stages only the paths it knows); then
 * pushing that commit to a local smart-HTTP git server (`pushResults` vs `git push`), and two
 * runners racing to push their results to the same branch.
 *
 * The repository is generated with `git fast-import` (N files of 200 B, 100 per directory) into a
 * bare repository served by test/helpers/git-server.ts, and cloned from its path (one pack, as
 * after a real clone). Methods are measured round-robin, the starting method rotated every round,
 * after one untimed warm-up round; every method writes fresh content to its files first (untimed).
 */

export interface ResultsCommitOptions {
  /** Timed rounds of the commit comparison. */
  readonly commitReps: number;
  /** Rounds (of the first) in which isomorphic-git's statusMatrix way is also measured; 0: not at all. */
  readonly isoStatusReps: number;
  /** Rounds in which isomorphic-git's add('.') way is also measured; 0: not at all. */
  readonly isoAddAllReps: number;
  /** Timed rounds of the push comparison (per mode). */
  readonly pushReps: number;
  /** Rounds of two runners racing; 0: not run. */
  readonly raceReps: number;
}

export interface ResultsCommitResult {
  readonly files: number;
  /** Files in each results commit. */
  readonly resultFiles: number;
  readonly setupMs: number;
  readonly commit: {
    readonly hpcflowBranch: Sample;
    /** `refreshIndex` of the same paths alone: the part of branch mode that reads and rewrites the whole index. */
    readonly hpcflowIndexRefresh: Sample;
    readonly hpcflowRef: Sample;
    /** `git add -- <paths> && git commit -q -m …`. */
    readonly gitAddCommit: Sample;
    /** `git add -N <new run record> && git commit -q --only -m … -- <paths>`. */
    readonly gitCommitOnly: Sample;
    /** Native results-ref commit: temporary index, read-tree, update-index --add, write-tree, commit-tree, update-ref. */
    readonly gitRefPlumbing: Sample;
    /** isomorphic-git: statusMatrix of the checkout, add of the changed rows, commit. */
    readonly isoStatusMatrix: Sample | null;
    /** isomorphic-git: add({ filepath: '.' }), commit. */
    readonly isoAddAll: Sample | null;
  };
  readonly push: {
    readonly hpcflowBranch: Sample;
    readonly gitBranch: Sample;
    readonly hpcflowRef: Sample;
    readonly gitRef: Sample;
  };
  readonly race: {
    readonly reps: number;
    /** Both pushResults started together; until both have landed. */
    readonly bothLandedMs: Sample;
    /** Push attempts per race (both runners together; 2 = nobody retried). */
    readonly attempts: Sample;
  } | null;
  readonly totalMs: number;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Runner',
  GIT_AUTHOR_EMAIL: 'runner@example.org',
  GIT_COMMITTER_NAME: 'Runner',
  GIT_COMMITTER_EMAIL: 'runner@example.org',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};
const sh = async (cwd: string, args: readonly string[], env: Record<string, string> = {}): Promise<string> =>
  (await execa('git', args, { cwd, env: { ...GIT_ENV, ...env } })).stdout;
/** One shell running a git pipeline, as a CI script would (one spawn from node). */
const shell = async (cwd: string, script: string, args: readonly string[]): Promise<string> =>
  (await execa('sh', ['-c', script, 'sh', ...args], { cwd, env: GIT_ENV })).stdout;

const RESULTS_REF = 'refs/hpcflow/results/main';
const NATIVE_REF = 'refs/hpcflow/results/native';
const STAGES = 40;
/** The tracked files a run rewrites; with the run record (new every run) and the lockfile: 10. */
const TRACKED = ['metrics/train.json', 'metrics/eval.json', 'metrics/timing.json', 'out/summary.csv', 'out/report.md', 'out/plot.svg', 'out/table.tsv', 'datasets/raw.json'];

const entry = (stage: string, fingerprint: string): LockEntry => ({
  fingerprint,
  cmd: `./bin/${stage} --in data --out out/${stage}`,
  wdir: '.',
  image: { tag: 'hpcflow-test/busybox:1', digest: `sha256:${'0'.repeat(64)}` },
  deps: {},
  params: { stage },
  env: {},
  shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 },
  upstream: {},
  outs: [`out/${stage}`],
  outRecords: [],
});
/** The lockfile text of `current` with the fingerprints of `changed` replaced. */
function lockText(current: string | null, changed: Record<string, string>): string {
  const stages: Record<string, LockEntry> = current === null ? {} : { ...parseLockfile(current).stages };
  for (const [id, fp] of Object.entries(changed)) stages[id] = entry(id, fp);
  return serializeLockfile({ schema: LOCKFILE_SCHEMA, stages });
}

/** Fills the (empty) bare repository with one commit of n data files and the seed results files, via git fast-import. */
async function generate(bare: string, n: number): Promise<void> {
  const p = spawn('git', ['fast-import', '--quiet'], { cwd: bare, stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ...GIT_ENV } });
  const errs: Buffer[] = [];
  p.stderr.on('data', (b: Buffer) => errs.push(b));
  const closed = new Promise<number>((resolve) => p.once('close', (c) => resolve(c ?? -1)));
  let buf: string[] = [];
  const put = async (s: string): Promise<void> => {
    buf.push(s);
    if (buf.length >= 2000) {
      const ok = p.stdin.write(buf.join(''));
      buf = [];
      if (!ok) await new Promise((r) => p.stdin.once('drain', r));
    }
  };
  const file = async (path: string, text: string): Promise<void> => put(`M 100644 inline ${path}\ndata ${Buffer.byteLength(text)}\n${text}\n`);
  const msg = 'seed: pipeline and data\n';
  await put(`commit refs/heads/main\ncommitter Seed <seed@example.org> 1700000000 +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`);
  await file('README.md', 'A pipeline repository with many small files.\n');
  await file('pipelines/pipeline.yaml', 'stages: {}\n');
  await file('hpcflow.lock', lockText(null, Object.fromEntries(Array.from({ length: STAGES }, (_, i) => [`s${i}`, `seed${i}`]))));
  for (const f of TRACKED) await file(f, `${f} seed\n`);
  for (let i = 0; i < n; i++) await file(`data/d${String(Math.floor(i / 100)).padStart(4, '0')}/f${i}.txt`, `${`sample ${i}`.padEnd(199, '.')}\n`);
  p.stdin.end(`${buf.join('')}\n`);
  if ((await closed) !== 0) throw new Error(`git fast-import failed: ${Buffer.concat(errs).toString()}`);
}

async function cloneWork(bare: string, dir: string, url: string): Promise<void> {
  await sh(dirname(dir), ['clone', '--quiet', bare, dir]);
  await sh(dir, ['remote', 'set-url', 'origin', url]);
  await sh(dir, ['config', 'user.name', 'Runner']);
  await sh(dir, ['config', 'user.email', 'runner@example.org']);
  await sh(dir, ['config', 'gc.auto', '0']); // no background gc in the middle of a measurement
}

/** A run's results in `dir`: the lockfile with `stages` re-fingerprinted, a new run record, the tracked files rewritten. Absolute paths. */
async function writeRun(dir: string, runId: string, stages: readonly string[], tracked: readonly string[] = TRACKED): Promise<string[]> {
  const lockPath = join(dir, 'hpcflow.lock');
  await writeFile(lockPath, lockText(await readFile(lockPath, 'utf8'), Object.fromEntries(stages.map((s) => [s, `${runId}-${s}`]))));
  const record = join(dir, 'runs', `${runId}.json`);
  await mkdir(dirname(record), { recursive: true });
  await writeFile(record, `${JSON.stringify({ runId, stages, ran: stages.length, at: new Date().toISOString() }, null, 2)}\n`);
  const out = [lockPath, record];
  for (const f of tracked) {
    const abs = join(dir, f);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, `${f} of run ${runId}\n${'x,y\n'.repeat(f.startsWith('out/') ? 200 : 10)}`);
    out.push(abs);
  }
  return out;
}

/**
 * Round-robin over the methods, the starting one rotated each round. Round -1 is an untimed
 * warm-up; `runs(round)` says whether a method takes part in a round (-1: the warm-up).
 */
async function rounds(reps: number, methods: readonly { name: string; runs: (round: number) => boolean; fn: (tag: string) => Promise<number> }[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  const warmup = 1;
  for (let r = 0; r < warmup + reps; r++) {
    for (let j = 0; j < methods.length; j++) {
      const m = methods[(r + j) % methods.length];
      if (m === undefined || !m.runs(r - warmup)) continue;
      const ms = await m.fn(`${r}-${j}`);
      if (r >= warmup) out.get(m.name)?.push(ms);
    }
  }
  return out;
}

const rel = (dir: string, abs: readonly string[]): string[] => abs.map((a) => a.slice(dir.length + 1));

async function benchOne(server: GitServer, root: string, n: number, o: ResultsCommitOptions): Promise<ResultsCommitResult> {
  const t0 = performance.now();
  const name = `bench-${n}.git`;
  const bare = await server.createBare(name);
  await sh(bare, ['config', 'gc.auto', '0']);
  await sh(bare, ['config', 'receive.autogc', 'false']);
  await generate(bare, n);
  const generated = performance.now();
  const w = join(root, `work-${n}`);
  await cloneWork(bare, w, server.url(name));
  const cloned = performance.now();
  // Let the checkout's mtimes age out of git's racy window, then let git record clean stats.
  await new Promise((r) => setTimeout(r, 2100));
  await sh(w, ['update-index', '-q', '--refresh']);
  const setupMs = performance.now() - t0;
  const s1 = (ms: number): string => (ms / 1000).toFixed(1);
  process.stderr.write(`results ${n}: repository ready in ${s1(setupMs)} s (fast-import ${s1(generated - t0)} s, clone ${s1(cloned - generated)} s)\n`);

  let run = 0;
  const stagesOf = (): string[] => [0, 1, 2].map((k) => `s${(run * 3 + k) % STAGES}`);
  const nextRun = async (dir: string, prefix: string): Promise<{ id: string; files: string[] }> => {
    const id = `${prefix}${++run}`;
    return { id, files: await writeRun(dir, id, stagesOf()) };
  };
  const head = (): Promise<string> => sh(w, ['rev-parse', 'HEAD']);
  const dropRecord = async (files: readonly string[]): Promise<void> => {
    // Results-ref mode leaves the checkout's branch alone: the new run record stays untracked. Remove it.
    await rm(files[1] as string, { force: true });
  };

  // 1. The commit itself.
  const isoCommit = (message: string): Promise<string> => git.commit({ fs, dir: w, message, author: { name: 'Runner', email: 'runner@example.org' } });
  const samples = await rounds(o.commitReps, [
    {
      name: 'hpcflowBranch',
      runs: () => true,
      fn: async () => {
        const r = await nextRun(w, 'hb');
        const input = await head();
        return timeIt(async () => {
          const made = await commitResults({ dir: w, files: r.files, runId: r.id, inputCommit: input, summary: `hpcflow: 3 ran (run ${r.id})`, target: { kind: 'branch' } });
          if (made === null) throw new Error('nothing committed');
        });
      },
    },
    {
      name: 'hpcflowIndexRefresh',
      runs: () => true,
      fn: async () => {
        const r = await nextRun(w, 'ix');
        const paths = rel(w, r.files);
        const ms = await timeIt(() => refreshIndex(w, paths));
        await sh(w, ['rm', '-q', '--cached', '--', paths[1] as string]);
        await dropRecord(r.files);
        return ms;
      },
    },
    {
      name: 'hpcflowRef',
      runs: () => true,
      fn: async () => {
        const r = await nextRun(w, 'hr');
        const input = await head();
        const ms = await timeIt(async () => {
          const made = await commitResults({ dir: w, files: r.files, runId: r.id, inputCommit: input, summary: `hpcflow: 3 ran (run ${r.id})`, target: { kind: 'ref', ref: RESULTS_REF } });
          if (made === null) throw new Error('nothing committed');
        });
        await dropRecord(r.files);
        return ms;
      },
    },
    {
      name: 'gitAddCommit',
      runs: () => true,
      fn: async () => {
        const r = await nextRun(w, 'ga');
        return timeIt(() => shell(w, 'm=$1; shift; git add -- "$@" && git commit -q -m "$m"', [`results (run ${r.id})`, ...rel(w, r.files)]));
      },
    },
    {
      name: 'gitCommitOnly',
      runs: () => true,
      fn: async () => {
        const r = await nextRun(w, 'go');
        // --only takes only paths git knows: the new run record is announced first (intent to add).
        return timeIt(() => shell(w, 'm=$1; new=$2; shift 2; git add -N -- "$new" && git commit -q --only -m "$m" -- "$@"', [`results (run ${r.id})`, ...rel(w, r.files.slice(1, 2)), ...rel(w, r.files)]));
      },
    },
    {
      name: 'gitRefPlumbing',
      runs: () => true,
      fn: async (tag) => {
        const r = await nextRun(w, 'gp');
        const idx = join(root, `index-${n}-${tag}`);
        const script =
          'm=$1; ref=$2; idx=$3; shift 3; ' +
          'old=$(git rev-parse -q --verify "$ref" || git rev-parse HEAD) && ' +
          'GIT_INDEX_FILE=$idx git read-tree "$old" && GIT_INDEX_FILE=$idx git update-index --add --remove -- "$@" && ' +
          'tree=$(GIT_INDEX_FILE=$idx git write-tree) && c=$(git commit-tree "$tree" -p "$old" -m "$m") && ' +
          'if git rev-parse -q --verify "$ref" >/dev/null; then git update-ref "$ref" "$c" "$old"; else git update-ref "$ref" "$c" ""; fi';
        const ms = await timeIt(() => shell(w, script, [`results (run ${r.id})`, NATIVE_REF, idx, ...rel(w, r.files)]));
        await rm(idx, { force: true });
        await dropRecord(r.files);
        return ms;
      },
    },
    {
      name: 'isoStatusMatrix',
      runs: (k) => o.isoStatusReps > 0 && k < o.isoStatusReps, // the warm-up (-1) only when measured at all
      fn: async () => {
        const r = await nextRun(w, 'is');
        let changed = 0;
        const ms = await timeIt(async () => {
          const m = await git.statusMatrix({ fs, dir: w });
          const paths = m.filter(([, h, wd, s]) => h !== wd || wd !== s).map(([p]) => p);
          changed = paths.length;
          await git.add({ fs, dir: w, filepath: paths });
          await isoCommit(`results (run ${r.id})`);
        });
        if (changed !== r.files.length) throw new Error(`statusMatrix found ${changed} changed paths, expected ${r.files.length}`);
        return ms;
      },
    },
    {
      name: 'isoAddAll',
      runs: (k) => k >= 0 && k < o.isoAddAllReps, // far too slow to warm up
      fn: async () => {
        const r = await nextRun(w, 'ia');
        return timeIt(async () => {
          await git.add({ fs, dir: w, filepath: '.' });
          await isoCommit(`results (run ${r.id})`);
        });
      },
    },
  ]);
  const s = (k: string): Sample => summarize(samples.get(k) ?? []);
  const sOpt = (k: string): Sample | null => ((samples.get(k)?.length ?? 0) > 0 ? s(k) : null);
  const commit = {
    hpcflowBranch: s('hpcflowBranch'),
    hpcflowIndexRefresh: s('hpcflowIndexRefresh'),
    hpcflowRef: s('hpcflowRef'),
    gitAddCommit: s('gitAddCommit'),
    gitCommitOnly: s('gitCommitOnly'),
    gitRefPlumbing: s('gitRefPlumbing'),
    isoStatusMatrix: sOpt('isoStatusMatrix'),
    isoAddAll: sOpt('isoAddAll'),
  };
  await sh(w, ['reset', '-q', '--hard']); // drop what the last (ref-mode) methods left in the checkout
  const dirty = await sh(w, ['status', '--porcelain']);
  if (dirty !== '') throw new Error(`the checkout is not clean after the commit rounds:\n${dirty}`);
  process.stderr.write(`results ${n}: commit branch ${commit.hpcflowBranch.median.toFixed(1)} ms, ref ${commit.hpcflowRef.median.toFixed(1)} ms, git add+commit ${commit.gitAddCommit.median.toFixed(1)} ms\n`);

  // 2. Pushing that commit over smart HTTP. Bring the server up to date first (untimed).
  await sh(w, ['push', '-q', 'origin', 'main', `${RESULTS_REF}:${RESULTS_REF}`]);
  const commitThen = async (target: 'branch' | 'ref'): Promise<{ id: string; files: string[] }> => {
    const r = await nextRun(w, target === 'branch' ? 'pb' : 'pr');
    const made = await commitResults({ dir: w, files: r.files, runId: r.id, inputCommit: await head(), summary: `hpcflow: 3 ran (run ${r.id})`, target: target === 'branch' ? { kind: 'branch' } : { kind: 'ref', ref: RESULTS_REF } });
    if (made === null) throw new Error('nothing committed');
    if (target === 'ref') await dropRecord(r.files);
    return r;
  };
  const pushSamples = await rounds(o.pushReps, [
    {
      name: 'hpcflowBranch',
      runs: () => true,
      fn: async () => {
        const r = await commitThen('branch');
        return timeIt(async () => {
          const p = await pushResults({ dir: w, remote: 'origin', ref: 'refs/heads/main', files: r.files, runId: r.id, maxAttempts: 1 });
          if (p.attempts !== 1) throw new Error('unexpected retry');
        });
      },
    },
    {
      name: 'gitBranch',
      runs: () => true,
      fn: async () => {
        await commitThen('branch');
        return timeIt(() => sh(w, ['push', '-q', 'origin', 'main']));
      },
    },
    {
      name: 'hpcflowRef',
      runs: () => true,
      fn: async () => {
        const r = await commitThen('ref');
        return timeIt(() => pushResults({ dir: w, remote: 'origin', ref: RESULTS_REF, files: r.files, runId: r.id, maxAttempts: 1 }));
      },
    },
    {
      name: 'gitRef',
      runs: () => true,
      fn: async () => {
        await commitThen('ref');
        return timeIt(() => sh(w, ['push', '-q', 'origin', `${RESULTS_REF}:${RESULTS_REF}`]));
      },
    },
  ]);
  const ps = (k: string): Sample => summarize(pushSamples.get(k) ?? []);
  const push = { hpcflowBranch: ps('hpcflowBranch'), gitBranch: ps('gitBranch'), hpcflowRef: ps('hpcflowRef'), gitRef: ps('gitRef') };
  for (const [ref, local] of [['refs/heads/main', await head()], [RESULTS_REF, await sh(w, ['rev-parse', RESULTS_REF])]] as const) {
    if ((await sh(bare, ['rev-parse', ref])) !== local) throw new Error(`the server's ${ref} is not the last pushed commit`);
  }
  process.stderr.write(`results ${n}: push pushResults ${push.hpcflowBranch.median.toFixed(1)} ms, git push ${push.gitBranch.median.toFixed(1)} ms\n`);

  // 3. Two runners racing for the branch: each commits its own run, both push at once.
  let race: ResultsCommitResult['race'] = null;
  if (o.raceReps > 0) {
    await sh(w, ['reset', '-q', '--hard']);
    const w2 = join(root, `work2-${n}`);
    await cloneWork(bare, w2, server.url(name));
    const runners = [
      { dir: w, tracked: TRACKED.map((f) => f.replace(/^(metrics|out)\//, '$1/a-')) },
      { dir: w2, tracked: TRACKED.map((f) => f.replace(/^(metrics|out)\//, '$1/b-')) },
    ];
    const both: number[] = [];
    const attempts: number[] = [];
    for (let k = 0; k < o.raceReps; k++) {
      const made = await Promise.all(
        runners.map(async (rr, j) => {
          const id = `race${k}${j === 0 ? 'a' : 'b'}${++run}`;
          const stages = [`s${(k * 6 + j * 3) % STAGES}`, `s${(k * 6 + j * 3 + 1) % STAGES}`, `s${(k * 6 + j * 3 + 2) % STAGES}`];
          const files = await writeRun(rr.dir, id, stages, rr.tracked);
          const input = await sh(rr.dir, ['rev-parse', 'HEAD']);
          const c = await commitResults({ dir: rr.dir, files, runId: id, inputCommit: input, summary: `hpcflow: 3 ran (run ${id})`, target: { kind: 'branch' } });
          if (c === null) throw new Error('nothing committed');
          return { dir: rr.dir, id, files };
        }),
      );
      let tries = 0;
      both.push(
        await timeIt(async () => {
          const r = await Promise.all(made.map((m) => pushResults({ dir: m.dir, remote: 'origin', ref: 'refs/heads/main', files: m.files, runId: m.id, maxAttempts: 8 })));
          tries = r.reduce((a, x) => a + x.attempts, 0);
        }),
      );
      attempts.push(tries);
      const log = await sh(bare, ['log', '-2', '--format=%B', 'main']);
      for (const m of made) if (!log.includes(`Hpcflow-Run: ${m.id}`)) throw new Error(`run ${m.id} did not land on the server`);
    }
    race = { reps: o.raceReps, bothLandedMs: summarize(both), attempts: summarize(attempts) };
    process.stderr.write(`results ${n}: race, both landed ${race.bothLandedMs.median.toFixed(0)} ms (${race.attempts.median} attempts)\n`);
  }
  return { files: n, resultFiles: TRACKED.length + 2, setupMs, commit, push, race, totalMs: performance.now() - t0 };
}

export async function benchResultsCommit(sizes: readonly { files: number; opts: ResultsCommitOptions }[]): Promise<ResultsCommitResult[]> {
  const root = await mkdtemp(join(tmpdir(), 'hpcflow-bench-results-'));
  const server = await startGitServer();
  const out: ResultsCommitResult[] = [];
  try {
    for (const s of sizes) out.push(await benchOne(server, root, s.files, s.opts));
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
  return out;
}
