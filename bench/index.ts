import { writeFile, mkdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { benchDatasetAdd } from './dataset-add.js';
import { benchDatasetHash } from './dataset-hash.js';
import { benchDatasetStatus } from './dataset-status.js';
import { benchHash } from './hash.js';
import { benchKernels } from './kernels.js';
import { benchOverhead } from './overhead.js';
import { benchResultsCommit } from './results-commit.js';
import { benchSlurm } from './slurm.js';
import { benchSnakemake } from './snakemake.js';
import { benchStatus } from './status.js';
import { ROOT, buildBenchCli, fmt } from './lib.js';
import type { Sample } from './lib.js';
import { benchMpi } from './mpi.js';
import { clusterUp } from './slurm-lib.js';

/**
 * `npm run bench [-- status overhead hash dataset-hash dataset-add dataset-status results snakemake kernels slurm mpi]`:
 * every comparison is measured side by side in one run and reported as medians with quartiles and
 * ratios, because these machines are shared. With no names, every section runs (about 15 minutes on
 * a 2-CPU machine; the run records its own duration).
 *
 * It prepares what it needs itself, each step idempotent (a no-op when already there): a Docker engine
 * and the test images (scripts/build-test-images.sh), the base images of containers/ (for the kernels'
 * openmp image), b3sum and Snakemake from Debian (as root), the CLI built into a directory of its own
 * (lib.ts), and for `slurm` and `mpi` the Slurm test cluster (scripts/slurm-cluster.sh, as root).
 *
 * Writes bench/results/latest.json and .md (a run of named sections: bench/results/<names>.json and
 * .md) and prints a markdown report; `npm run bench:report` turns the results into docs/performance.md.
 * A section that fails is recorded as failed and the others still run (exit status 1 at the end).
 */
const IMAGE = 'hpcflow-test/busybox:1';
const SECTIONS = ['status', 'overhead', 'hash', 'dataset-hash', 'dataset-add', 'dataset-status', 'results', 'snakemake', 'kernels', 'slurm', 'mpi'] as const;
type BenchName = (typeof SECTIONS)[number];
const picked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const p of picked) if (!(SECTIONS as readonly string[]).includes(p)) throw new Error(`unknown section ${p} (sections: ${SECTIONS.join(' ')})`);
const run = (name: BenchName): boolean => picked.length === 0 || picked.includes(name);

const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

async function installIfMissing(cmd: string, pkg: string): Promise<void> {
  if ((await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0 || process.getuid?.() !== 0) return;
  await execa('sh', ['-c', `apt-get install -y -qq ${pkg} >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq ${pkg} >/dev/null)`], { reject: false });
}

async function main(): Promise<void> {
  const tAll = process.hrtime.bigint();
  // Load averages (1 min) at each section's start and end: how busy the shared machine was.
  const timing: { prepS: number; sections: Record<string, number>; load: Record<string, [number, number]>; totalS: number } = { prepS: 0, sections: {}, load: {}, totalS: 0 };
  const failed: Record<string, string> = {};
  /** Sections measured again because the shared cluster was taken down under them. */
  const retried: string[] = [];
  await execa('bash', ['scripts/build-test-images.sh'], { cwd: ROOT, stdio: 'inherit' });
  if (run('kernels') || run('slurm') || run('mpi')) await execa('bash', ['scripts/build-base-images.sh'], { cwd: ROOT, stdio: 'inherit' });
  // b3sum (Debian) is the single-core BLAKE3 reference for the hashing comparisons.
  if (run('hash') || run('dataset-hash') || run('dataset-add')) await installIfMissing('b3sum', 'b3sum');
  // Snakemake (Debian) is the peer of the change-detection comparison.
  if (run('snakemake')) await installIfMissing('snakemake', 'snakemake');
  await buildBenchCli();
  if (run('slurm') || run('mpi')) await clusterUp();
  timing.prepS = since(tAll);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const results: Record<string, unknown> = { date: new Date().toISOString(), machine, timing, failed, retried };
  const md: string[] = [`# hpcflow benchmarks — ${results.date as string}`, '', `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}.`, ''];
  const section = async (name: BenchName, body: () => Promise<void>): Promise<void> => {
    if (!run(name)) return;
    const t0 = process.hrtime.bigint();
    const load0 = loadavg()[0] ?? 0;
    process.stderr.write(`bench: ${name}…\n`);
    try {
      try {
        await body();
      } catch (e) {
        // The test cluster is shared: a test run elsewhere may have taken it down (its teardown
        // runs `slurm-cluster.sh down`). Then bring it up again and measure once more.
        if ((name !== 'slurm' && name !== 'mpi') || (await execa('bash', ['scripts/slurm-cluster.sh', 'status'], { cwd: ROOT, reject: false })).exitCode === 0) throw e;
        process.stderr.write(`bench: ${name}: the Slurm cluster went down meanwhile (${String(e).split('\n')[0]?.slice(0, 200)}); bringing it up and starting the section again\n`);
        retried.push(name);
        await clusterUp();
        await body();
      }
    } catch (e) {
      failed[name] = e instanceof Error ? (e.stack ?? e.message) : String(e);
      md.push(`## ${name}: FAILED`, '', '```', failed[name].slice(0, 4000), '```', '');
      process.stderr.write(`bench: ${name} FAILED: ${failed[name]}\n`);
    }
    timing.sections[name] = since(t0);
    timing.load[name] = [load0, loadavg()[0] ?? 0];
    process.stderr.write(`bench: ${name} took ${timing.sections[name].toFixed(0)} s\n`);
  };

  await section('status', async () => {
    const r = await benchStatus([10, 100, 1000, 10000], 5, IMAGE);
    results.status = r;
    md.push(
      `## No-op \`hpcflow status\`, end to end (process start included), ${r[0]?.noop.n ?? 0} runs each, alternated`,
      '',
      '| stages | stat snapshot: median ms (p25–p75) | full planner: median ms (p25–p75) | first run, all caches cold, ms |',
      '|---:|---:|---:|---:|',
    );
    for (const x of r) {
      md.push(`| ${x.stages} | ${fmt(x.noop.median)} (${fmt(x.noop.p25)}–${fmt(x.noop.p75)}) | ${fmt(x.planner.median)} (${fmt(x.planner.p25)}–${fmt(x.planner.p75)}) | ${fmt(x.cold)} |`);
    }
    md.push('', 'Target: 1,000 stages under 150 ms. `node -e 0` alone takes ~55 ms here.', '');
  });
  await section('overhead', async () => {
    const r = await benchOverhead(20, 5, IMAGE);
    results.overhead = r;
    md.push('## Runner overhead per stage vs bare dockerode (20 trivial stages, -j1, alternated, 5 reps)', '', '| | median ms | p25–p75 ms |', '|---|---:|---:|');
    md.push(`| bare dockerode create/start/wait/remove | ${fmt(r.bareDockerodeMs.median)} | ${fmt(r.bareDockerodeMs.p25)}–${fmt(r.bareDockerodeMs.p75)} |`);
    md.push(`| hpcflow, marginal per stage | ${fmt(r.hpcflowPerStageMs.median)} | ${fmt(r.hpcflowPerStageMs.p25)}–${fmt(r.hpcflowPerStageMs.p75)} |`);
    md.push('', `Overhead beyond the container: **${fmt(r.overheadMs)} ms** per stage (ratio ${r.ratio.toFixed(2)}). Target: < 20 ms.`, '');
  });
  await section('hash', async () => {
    const r = await benchHash(2 ** 30, 5, [2 ** 26, 2 ** 28, 2 ** 30]);
    results.hash = r;
    md.push('## Hashing a page-cached 1 GiB file (5 reps, alternated)', '', '| | median GB/s | p25–p75 |', '|---|---:|---:|');
    const row = (n: string, s: { median: number; p25: number; p75: number }): string => `| ${n} | ${s.median.toFixed(2)} | ${s.p25.toFixed(2)}–${s.p75.toFixed(2)} |`;
    md.push(row('`cat file > /dev/null`', r.catGBs), row('hpcflow hashFile (async, 1 MiB reads)', r.hashFileGBs), row('hpcflow hashFileSync', r.hashFileSyncGBs));
    if (r.b3sum1GBs !== null) md.push(row('`b3sum --num-threads 1 file`', r.b3sum1GBs));
    md.push(row('BLAKE3 over a hot 16 MiB buffer, 1 core (no I/O at all)', r.blake3MemGBs));
    md.push(
      '',
      r.ratioToB3sum === null
        ? '(b3sum not installed: `apt-get install b3sum` for the single-core BLAKE3 baseline.)'
        : `hashFile / single-threaded b3sum on the same file = **${r.ratioToB3sum.toFixed(2)}** (target ≥ 0.8).`,
      `hashFile / BLAKE3 with no I/O = ${r.ratioToBlake3.toFixed(2)}; hashFile / cat = ${r.ratioToCat.toFixed(2)}.`,
      '',
    );
  });
  await section('dataset-hash', async () => {
    const r = await benchDatasetHash(5);
    results['dataset-hash'] = r;
    const cell = (s: { median: number; p25: number; p75: number } | null): string => (s === null ? '—' : `${s.median.toFixed(2)} (${s.p25.toFixed(2)}–${s.p75.toFixed(2)})`);
    const ratio = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
    const L = r.large;
    const S = r.small;
    md.push(
      `## Hashing a 1 GiB data set on every core (page-cached, ${r.threads} threads, 5 reps, alternated)`,
      '',
      `| GB/s, median (p25–p75) | ${L.files} × ${L.fileBytes / 2 ** 20} MiB | ${S.files} × ${S.fileBytes / 2 ** 10} KiB |`,
      '|---|---:|---:|',
      `| in-process \`hashFile\`, one file after another (single-core path) | ${cell(L.gbs.hashFileSeq)} | ${cell(S.gbs.hashFileSeq)} |`,
      `| in-process \`hashFileSync\`, one file after another | ${cell(L.gbs.hashFileSyncSeq)} | ${cell(S.gbs.hashFileSyncSeq)} |`,
      `| \`HashPool\`, 1 thread | ${cell(L.gbs.pool1)} | ${cell(S.gbs.pool1)} |`,
      `| \`HashPool\`, ${r.threads} threads | ${cell(L.gbs.poolAll)} | ${cell(S.gbs.poolAll)} |`,
      `| \`b3sum --num-threads 1\` | ${cell(L.gbs.b3sum1)} | ${cell(S.gbs.b3sum1)} |`,
      `| \`b3sum\` (default threads) | ${cell(L.gbs.b3sumAll)} | ${cell(S.gbs.b3sumAll)} |`,
      `| **pool, all threads / b3sum 1 thread** (single-core BLAKE3 limit) | **${ratio(L.poolAllVsB3sum1)}** | **${ratio(S.poolAllVsB3sum1)}** |`,
      `| pool, all threads / b3sum all threads | ${ratio(L.poolAllVsB3sumAll)} | ${ratio(S.poolAllVsB3sumAll)} |`,
      `| pool, all threads / in-process hashFile | ${ratio(L.poolAllVsHashFile)} | ${ratio(S.poolAllVsHashFile)} |`,
      `| pool, all threads / faster in-process path (hashFile or hashFileSync) | ${ratio(L.poolAllVsInProcess)} | ${ratio(S.poolAllVsInProcess)} |`,
      '',
      `Worker start-up (new pool to first 64 KiB result): ${fmt(r.poolStartMs.median)} ms median; pools are started before timing.`,
      '',
    );
  });
  await section('dataset-add', async () => {
    const r = await benchDatasetAdd(5);
    results['dataset-add'] = r;
    const cell = (s: { median: number; p25: number; p75: number } | null): string => (s === null ? '—' : `${s.median.toFixed(2)} (${s.p25.toFixed(2)}–${s.p75.toFixed(2)})`);
    md.push(
      `## \`dataset add\` of ${r.totalBytes / 2 ** 30} GiB (${r.files} files, page-cached) into an empty store, 5 reps, alternated`,
      '',
      'The work: hash the working copy, copy each file into the store, hash the stored copy (what is stored is what was hashed).',
      '',
      '| GB/s of data added, median (p25–p75) | |',
      '|---|---:|',
      `| \`addDataset\` with the hash pool (${r.threads} threads) | ${cell(r.addPool)} |`,
      `| \`addDataset\` on the main thread only | ${cell(r.addMainThread)} |`,
      `| shell floor: \`b3sum\` source, \`cp -r\`, \`b3sum\` copy | ${cell(r.cpB3sum)} |`,
      `| **pool / main thread** | **${r.poolVsMainThread.toFixed(2)}** |`,
      `| **pool / shell floor** | **${r.poolVsCpB3sum === null ? '—' : r.poolVsCpB3sum.toFixed(2)}** |`,
      '',
    );
  });
  await section('dataset-status', async () => {
    const r = await benchDatasetStatus([10_000, 100_000], 4);
    results['dataset-status'] = r;
    md.push(
      `## \`dataset status\` of many small files (256 B each, 100 per directory), ${r[0]?.unchanged.n ?? 0} reps`,
      '',
      '| files | unchanged, in-process ms (p25–p75) | floor: walk + stat every file, ms | ratio | 1% changed (re-hashed), ms | `hpcflow dataset status` end to end, ms |',
      '|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r) {
      md.push(`| ${x.files} | ${fmt(x.unchanged.median)} (${fmt(x.unchanged.p25)}–${fmt(x.unchanged.p75)}) | ${fmt(x.walkStat.median)} | ${x.ratioToWalk.toFixed(2)} | ${fmt(x.changed1pct.median)} | ${fmt(x.cli.median)} |`);
    }
    md.push('', 'Target: an unchanged 10,000-file status under 100 ms in-process. Unchanged means no file content is read (the stat cache vouches).', '');
  });
  await section('results', async () => {
    const r = await benchResultsCommit([
      { files: 10_000, opts: { commitReps: 7, isoStatusReps: 2, isoAddAllReps: 1, pushReps: 5, raceReps: 3 } },
      { files: 100_000, opts: { commitReps: 5, isoStatusReps: 0, isoAddAllReps: 0, pushReps: 3, raceReps: 0 } },
    ]);
    results.results = r;
    type S = { median: number; p25: number; p75: number; n: number } | null;
    const cell = (s: S, bold = false): string => {
      if (s === null || s.n === 0) return '—';
      const m = bold ? `**${fmt(s.median)}**` : fmt(s.median);
      return s.n === 1 ? `${m} (1 run)` : `${m} (${fmt(s.p25)}–${fmt(s.p75)})`;
    };
    const ratio = (a: S, b: S, bold = false): string => {
      if (a === null || b === null || a.n === 0 || b.n === 0) return '—';
      const x = (a.median / b.median).toFixed(2);
      return bold ? `**${x}**` : x;
    };
    const row = (label: string, f: (x: (typeof r)[number]) => string): string => `| ${label} | ${r.map(f).join(' | ')} |`;
    const head = (first: string): string[] => [`| ${first} | ${r.map((x) => `${x.files.toLocaleString('en-US')} files`).join(' | ')} |`, `|---|${r.map(() => '---:').join('|')}|`];
    const files = r[0]?.resultFiles ?? 10;
    md.push(
      `## Results commits: ${files} files (lockfile, run record, metrics, small outputs) into a checkout of many small files`,
      '',
      `Generated repository (\`git fast-import\`, 200 B files, 100 per directory), cloned from a bare repository served over smart HTTP by \`git http-backend\` ` +
        '(test/helpers/git-server.ts). Methods run round-robin, the first one rotated every round, after an untimed warm-up round; each writes fresh content ' +
        `to its ${files} files (untimed) and then commits them. Rounds: ${r.map((x) => `${x.commit.hpcflowBranch.n} at ${x.files.toLocaleString('en-US')}`).join(', ')} files.`,
      '',
      ...head('commit, median ms (p25–p75)'),
      row('hpcflow `commitResults`, branch mode', (x) => cell(x.commit.hpcflowBranch, true)),
      row('… its index refresh alone (`refreshIndex` of the same paths)', (x) => cell(x.commit.hpcflowIndexRefresh)),
      row('hpcflow `commitResults`, results-ref mode', (x) => cell(x.commit.hpcflowRef, true)),
      row('`git add -- <paths> && git commit -q -m …`', (x) => cell(x.commit.gitAddCommit)),
      row('`git add -N <run record> && git commit -q --only -m … -- <paths>`', (x) => cell(x.commit.gitCommitOnly)),
      row('native results ref: temporary index (`read-tree`, `update-index --add`, `write-tree`, `commit-tree`, `update-ref`)', (x) => cell(x.commit.gitRefPlumbing)),
      row('isomorphic-git whole tree: `statusMatrix`, `add` of the changed rows, `commit`', (x) => cell(x.commit.isoStatusMatrix)),
      row("isomorphic-git whole tree: `add({ filepath: '.' })`, `commit`", (x) => cell(x.commit.isoAddAll)),
      row('**branch mode / `git add` + `git commit`**', (x) => ratio(x.commit.hpcflowBranch, x.commit.gitAddCommit, true)),
      row('branch mode / `git commit --only`', (x) => ratio(x.commit.hpcflowBranch, x.commit.gitCommitOnly)),
      row('**results-ref mode / `git add` + `git commit`**', (x) => ratio(x.commit.hpcflowRef, x.commit.gitAddCommit, true)),
      row('results-ref mode / native temporary-index ref commit', (x) => ratio(x.commit.hpcflowRef, x.commit.gitRefPlumbing)),
      row('isomorphic-git `statusMatrix` way / hpcflow branch mode', (x) => ratio(x.commit.isoStatusMatrix, x.commit.hpcflowBranch)),
      row("isomorphic-git `add('.')` way / hpcflow branch mode", (x) => ratio(x.commit.isoAddAll, x.commit.hpcflowBranch)),
      '',
      'Native git runs as a CI script would: one `sh -c` per commit (spawn included). `--only` takes only paths git already knows, so the new run record ' +
        'is announced with `git add -N` first. The isomorphic-git whole-tree ways are what hpcflow avoids by staging only the paths it wrote ' +
        '(not run at 100,000 files: they scale with the checkout).',
      '',
      ...head('push of one results commit to the HTTP server, median ms (p25–p75)'),
      row('hpcflow `pushResults`, branch', (x) => cell(x.push.hpcflowBranch, true)),
      row('`git push origin main`', (x) => cell(x.push.gitBranch)),
      row('**ratio, branch**', (x) => ratio(x.push.hpcflowBranch, x.push.gitBranch, true)),
      row('hpcflow `pushResults`, results ref', (x) => cell(x.push.hpcflowRef, true)),
      row('`git push origin <ref>:<ref>`', (x) => cell(x.push.gitRef)),
      row('**ratio, results ref**', (x) => ratio(x.push.hpcflowRef, x.push.gitRef, true)),
      '',
      ...head('two runners racing for the branch (`pushResults` in both clones at once)'),
      row('until both results commits have landed, median ms (p25–p75)', (x) => (x.race === null ? '— (not run)' : cell(x.race.bothLandedMs, true))),
      row('push attempts per race, both runners together (median)', (x) => (x.race === null ? '—' : String(x.race.attempts.median))),
      row('races', (x) => (x.race === null ? '0' : String(x.race.reps))),
      row('race / one uncontended `pushResults`', (x) => (x.race === null ? '—' : ratio(x.race.bothLandedMs, x.push.hpcflowBranch))),
      '',
      'The loser of a race is rejected (non-fast-forward), fetches, re-applies its files onto the remote tip (merging `hpcflow.lock`), waits a jittered ' +
        'backoff (100–300 ms on the first retry) and pushes again. Both runners share one Node process here, so their CPU work is serialised.',
      '',
      `Setup (generate, clone, let git refresh the index): ${r.map((x) => `${(x.setupMs / 1000).toFixed(1)} s`).join(', ')}; ` +
        `whole section per size: ${r.map((x) => `${(x.totalMs / 1000).toFixed(1)} s`).join(', ')}.`,
      '',
    );
  });
  await section('snakemake', async () => {
    // 10,000 stages: Snakemake's first run alone takes minutes and a dry run ~12 s; opt in.
    const big = process.env.HPCFLOW_BENCH_SNAKEMAKE_10K === '1';
    const r = await benchSnakemake(big ? [10, 100, 1000, 10000] : [10, 100, 1000], 5, IMAGE, big ? [] : ['10000 stages (set HPCFLOW_BENCH_SNAKEMAKE_10K=1): Snakemake needs minutes to run them once and ~12 s per dry run']);
    results.snakemake = r;
    const cell = (s: { median: number; p25: number; p75: number }): string => `${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)})`;
    md.push(
      `## Change detection vs Snakemake ${r.versions.snakemake} (fan of N \`cp\` stages, the same files; ${r.reps} reps, alternated)`,
      '',
      '| stages | no-op `hpcflow status`, ms | no-op `snakemake -n -q -c1`, ms | **snakemake / hpcflow** | one change: hpcflow, ms | one change: snakemake, ms | **snakemake / hpcflow** | stages to run (hpcflow / snakemake) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r.sizes) {
      md.push(
        `| ${x.stages} | ${cell(x.noop.hpcflow)} | ${cell(x.noop.snakemake)} | **${x.noop.ratio.toFixed(1)}** | ${cell(x.oneChange.hpcflow)} | ${cell(x.oneChange.snakemake)} | **${x.oneChange.ratio.toFixed(1)}** | ${x.decidedToRun.hpcflow} / ${x.decidedToRun.snakemake} |`,
      );
    }
    const k = r.sizes.find((x) => x.stages === 1000);
    md.push('', `Target: no-op status ≥ 10× faster than Snakemake at 1,000 stages: ${k === undefined ? 'not measured' : `×${k.noop.ratio.toFixed(1)} — ${k.noop.ratio >= 10 ? 'met' : 'not met'}`}.`, '');
    for (const s of r.skipped) md.push(`Skipped: ${s}.`, '');
  });
  await section('kernels', async () => {
    const r = await benchKernels({ reps: 5, trivialReps: 10, heatN: 1024, heatSteps: 2000, streamNtimes: 6, busybox: IMAGE });
    results.kernels = r;
    const cell = (s: { median: number; p25: number; p75: number }): string => `${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)})`;
    const rc = (s: { median: number; p25: number; p75: number }): string => `${s.median.toFixed(3)} (${s.p25.toFixed(3)}–${s.p75.toFixed(3)})`;
    md.push(
      `## Kernels on local Docker: bare vs \`docker run\` vs hpcflow stage (${r.image}, ${r.threads} threads, ${r.reps} reps, alternated, order rotated)`,
      '',
      '| kernel | way | kernel ms (p25–p75) | wall ms (p25–p75) | kernel / bare (medians) | kernel / bare, paired (p25–p75) | wall / bare |',
      '|---|---|---:|---:|---:|---:|---:|',
    );
    for (const k of r.kernels) {
      md.push(
        `| ${k.name} \`${k.args}\` | bare process | ${cell(k.bare.kernelMs)} | ${cell(k.bare.wallMs)} | 1 | 1 | 1 |`,
        `| | \`docker run --rm\` | ${cell(k.container.kernelMs)} | ${cell(k.container.wallMs)} | **${k.containerKernelRatio.toFixed(3)}** | ${rc(k.containerKernelRatioPaired)} | ${k.containerWallRatio.toFixed(2)} |`,
        `| | \`hpcflow run -f\` | ${cell(k.hpcflow.kernelMs)} | ${cell(k.hpcflow.wallMs)} | **${k.hpcflowKernelRatio.toFixed(3)}** | ${rc(k.hpcflowKernelRatioPaired)} | ${k.hpcflowWallRatio.toFixed(2)} |`,
      );
    }
    const st = r.kernels.find((k) => k.gbs !== undefined);
    if (st?.gbs !== undefined) {
      const G = st.gbs;
      md.push('', '| stream, best-of GB/s, median (p25–p75) | copy | scale | add | triad |', '|---|---:|---:|---:|---:|');
      const g = (s: { median: number; p25: number; p75: number } | undefined): string => (s === undefined ? '—' : `${s.median.toFixed(2)} (${s.p25.toFixed(2)}–${s.p75.toFixed(2)})`);
      for (const [n, w] of [['bare', G.bare], ['`docker run`', G.container], ['hpcflow', G.hpcflow]] as const) md.push(`| ${n} | ${g(w.copy)} | ${g(w.scale)} | ${g(w.add)} | ${g(w.triad)} |`);
    }
    const T = r.trivial;
    md.push(
      '',
      `Trivial command (\`true\`), ${T.reps} reps alternated: bare spawn ${cell(T.spawnTrueMs)} ms; \`docker run --rm ${T.busybox} true\` ${cell(T.dockerRunTrueMs)} ms; ` +
        `bare dockerode create/start/wait/remove ${cell(T.dockerodeTrueMs)} ms. Kernels section: ${r.totalS.toFixed(0)} s.`,
      '',
    );
  });
  await section('slurm', async () => {
    const r = await benchSlurm({ latencyReps: 6, stages: 10, kernelReps: 5, heatN: 512, heatSteps: 6000, image: IMAGE, maxNodes: 3, nodeReps: 4 });
    results.slurm = r;
    const cell = (s: { median: number; p25: number; p75: number }, bold = false): string => `${bold ? `**${fmt(s.median)}**` : fmt(s.median)} | ${fmt(s.p25)}–${fmt(s.p75)}`;
    const K = r.kernel;
    md.push(
      `## Slurm: submission latency and per-stage overhead (test cluster: ${r.cluster}; ${r.latencyReps} reps, alternated)`,
      '',
      '| | median ms | p25–p75 ms |',
      '|---|---:|---:|',
      `| bare \`srun -N1 hostname\` | ${cell(r.srunN1Ms)} |`,
      `| bare \`srun -N2 hostname\` | ${cell(r.srunN2Ms)} |`,
      `| bare \`sbatch --wrap\`: submit → job starts (the job's own clock) | ${cell(r.sbatchStartMs)} |`,
      `| bare \`sbatch --wrap\`: submit → job ends (the job's own clock) | ${cell(r.sbatchEndMs)} |`,
      `| bare \`sbatch --wrap\`: submit → COMPLETED seen (squeue every ${r.pollMs} ms) | ${cell(r.sbatchEndSeenMs)} |`,
      `| \`hpcflow status\` (CLI floor: process start, planning) | ${cell(r.hpcflowStatusMs)} |`,
      `| **\`hpcflow run -f --executor slurm\`, 1 trivial stage, end to end** | ${cell(r.hpcflow1Ms, true)} |`,
      `| … its stage: \`scheduler.queueMs\` (submit → seen running by hpcflow's poll) | ${cell(r.hpcflow1QueueMs)} |`,
      `| … its stage: \`wallMs\` (submit → result collected) | ${cell(r.hpcflow1StageWallMs)} |`,
      `| … \`hpcflow run\` spawned → the command runs in its container on the node | ${cell(r.hpcflow1SpawnToCmdMs)} |`,
      `| … the command ran → \`hpcflow run\` exits | ${cell(r.hpcflow1CmdToExitMs)} |`,
      `| **per-stage overhead: hpcflow 1 stage − bare sbatch submit → end seen (paired)** | ${cell(r.perStageOverheadMs, true)} |`,
      `| \`hpcflow run -f\`, ${r.stages} independent trivial stages, end to end | ${cell(r.hpcflowKMs)} |`,
      `| **marginal cost per stage: (T(${r.stages}) − T(1)) / ${r.stages - 1}** | ${cell(r.hpcflowMarginalMs, true)} |`,
      `| bare \`srun -N1 -w n1 true\` | ${cell(r.srunTrueMs)} |`,
      `| \`srun -N1 -w n1\` + hpcflow's docker task wrapper (busybox) \`true\` | ${cell(r.srunContainerTrueMs)} |`,
      `| container on the node, paired difference | ${cell(r.containerCostMs)} |`,
      '',
      `hpcflow 1 stage / bare sbatch submit → end seen = **${(r.hpcflow1Ms.median / r.sbatchEndSeenMs.median).toFixed(2)}**; ` +
        `srun + container / bare srun = ${(r.srunContainerTrueMs.median / r.srunTrueMs.median).toFixed(2)}. ` +
        'A batch job waits for slurmctld\'s scheduling pass (about once a second; `batch_sched_delay=0`), so sbatch submit → start is 0–1 s ' +
        'by itself while `srun` of an interactive step starts at once; hpcflow also polls squeue gently (250 ms, backing off ×1.5 while ' +
        'nothing changes), then asks scontrol and sacct for the final record. ' +
        'Every submission (bare or hpcflow) follows an untimed random pause of up to 1 s, so all sample the tick\'s phase alike. ' +
        `Other jobs active on the shared cluster at a repetition's start: ${r.foreignActiveJobsMax === 0 ? 'none seen' : `up to ${r.foreignActiveJobsMax}`} ` +
        '(the cluster and this 2-CPU machine are shared: the numbers are noisy).',
      '',
      `## Slurm: the heat kernel (\`heat ${K.args}\`, 1 thread, node n1), bare vs container vs hpcflow stage (${K.reps} reps, alternated)`,
      '',
      `Compiled once (gcc -O3 -march=x86-64-v2 -ffp-contract=off -fopenmp, \`-static\`: the node image has no libgomp) in ${K.image} on a node; ` +
        'the same binary is then run three ways. Kernel time: what heat measures itself around its sweeps (`wall_s` of its metrics).',
      '',
      '| | kernel ms, median (p25–p75) | wall ms, median (p25–p75) | kernel / bare | wall / bare |',
      '|---|---:|---:|---:|---:|',
      `| bare: \`srun -N1 -w n1 heat …\` | ${fmt(K.bare.kernelMs.median)} (${fmt(K.bare.kernelMs.p25)}–${fmt(K.bare.kernelMs.p75)}) | ${fmt(K.bare.wallMs.median)} (${fmt(K.bare.wallMs.p25)}–${fmt(K.bare.wallMs.p75)}) | 1 | 1 |`,
      `| container: \`srun -N1 -w n1\` + hpcflow's docker task wrapper | ${fmt(K.container.kernelMs.median)} (${fmt(K.container.kernelMs.p25)}–${fmt(K.container.kernelMs.p75)}) | ${fmt(K.container.wallMs.median)} (${fmt(K.container.wallMs.p25)}–${fmt(K.container.wallMs.p75)}) | ${K.containerKernelRatio.toFixed(3)} | ${K.containerWallRatio.toFixed(2)} |`,
      `| hpcflow: \`run -f p/heat --executor slurm\` | ${fmt(K.hpcflow.kernelMs.median)} (${fmt(K.hpcflow.kernelMs.p25)}–${fmt(K.hpcflow.kernelMs.p75)}) | ${fmt(K.hpcflow.wallMs.median)} (${fmt(K.hpcflow.wallMs.p25)}–${fmt(K.hpcflow.wallMs.p75)}) | ${K.hpcflowKernelRatio.toFixed(3)} | ${K.hpcflowWallRatio.toFixed(2)} |`,
      '',
      `Wall beyond bare (difference of medians): container +${fmt(K.container.wallMs.median - K.bare.wallMs.median)} ms, hpcflow stage +${fmt(K.hpcflow.wallMs.median - K.bare.wallMs.median)} ms ` +
        '(a batch job instead of an interactive step, the container, the CLI, storing the 2 MiB output in the cache).',
      '',
      `## Slurm: a trivial step or stage over 1..${r.nodes.counts.length} nodes (${r.nodes.reps} reps, alternated)`,
      '',
      '| nodes | bare `srun -N<n> --ntasks-per-node=1 true`, ms | + docker task wrapper (a container per node), ms | bare `sbatch --nodes=<n>` of `srun hostname`, submit → end seen, ms | `hpcflow run -f` of a `nodes: <n>` stage, ms |',
      '|---:|---:|---:|---:|---:|',
      ...r.nodes.counts.map((n, i) => {
        const c = (x: Sample | undefined): string => (x === undefined ? '—' : `${fmt(x.median)} (${fmt(x.p25)}–${fmt(x.p75)})`);
        return `| ${n} | ${c(r.nodes.srunMs[i])} | ${c(r.nodes.srunContainerMs[i])} | ${c(r.nodes.sbatchMs[i])} | ${c(r.nodes.hpcflowMs[i])} |`;
      }),
      '',
      `Left behind after clean-up: ${r.leftovers.jobs} jobs, ${r.leftovers.containers} containers. Slurm section: ${r.totalS.toFixed(0)} s.`,
      '',
    );
  });
  await section('mpi', async () => {
    const r = await benchMpi({ reps: 7, iters: 1000, maxBytes: 4 << 20, nodes: 2, tasksPerNode: 1 });
    results.mpi = r;
    const cell = (s: { median: number; p25: number; p75: number } | undefined): string => (s === undefined ? '—' : `${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)})`);
    const rc = (s: { median: number; p25: number; p75: number } | null): string => (s === null ? '—' : `${s.median.toFixed(3)} (${s.p25.toFixed(3)}–${s.p75.toFixed(3)})`);
    const x = (v: number | null): string => (v === null ? '—' : v.toFixed(3));
    md.push(
      `## MPI across ${r.nodes} nodes: kernels/mpibench \`${r.args}\` bare vs container vs hpcflow stage (${r.reps} reps, alternated, order rotated)`,
      '',
      `Test cluster: ${r.cluster}. ${r.hosts}. Step: \`srun ${r.srun}\`. Binary needs ${r.needed.join(', ')}; libopenmpi3 ${r.openmpi.node} on the nodes, ${r.openmpi.image} in ${r.image}.`,
      ...(r.bareError === null ? [] : ['', `Bare could not run on the nodes: ${r.bareError}`]),
      '',
      '| way | kernel ms (p25–p75) | wall ms (p25–p75) | kernel / bare | kernel / bare, paired (p25–p75) | wall / bare | 1 B latency µs | 4 MiB ping-pong MB/s | largest Allreduce µs |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| bare \`srun --mpi=pmix\` | ${cell(r.bare?.kernelMs)} | ${cell(r.bare?.wallMs)} | 1 | 1 | 1 | ${cell(r.bare?.latencyUs)} | ${cell(r.bare?.bandwidthMBs)} | ${cell(r.bare?.allreduceUs)} |`,
      `| container per rank | ${cell(r.container.kernelMs)} | ${cell(r.container.wallMs)} | **${x(r.containerKernelRatio)}** | ${rc(r.containerKernelRatioPaired)} | ${x(r.containerWallRatio)} | ${cell(r.container.latencyUs)} | ${cell(r.container.bandwidthMBs)} | ${cell(r.container.allreduceUs)} |`,
      `| hpcflow stage | ${cell(r.hpcflow.kernelMs)} | ${cell(r.hpcflow.wallMs)} | **${x(r.hpcflowKernelRatio)}** | ${rc(r.hpcflowKernelRatioPaired)} | ${x(r.hpcflowWallRatio)} | ${cell(r.hpcflow.latencyUs)} | ${cell(r.hpcflow.bandwidthMBs)} | ${cell(r.hpcflow.allreduceUs)} |`,
      '',
      `Other jobs seen on the cluster: ${r.foreignActiveJobsMax === 0 ? 'none' : `up to ${r.foreignActiveJobsMax}`}. Left behind: ${r.leftovers.jobs} jobs, ${r.leftovers.containers} containers. MPI section: ${r.totalS.toFixed(0)} s.`,
      '',
    );
  });
  timing.totalS = since(tAll);
  md.push(
    '## Time taken',
    '',
    `Whole run ${(timing.totalS / 60).toFixed(1)} min: preparation ${timing.prepS.toFixed(0)} s; ${Object.entries(timing.sections)
      .map(([k, v]) => `${k} ${v.toFixed(0)} s`)
      .join(', ')}.${Object.keys(failed).length === 0 ? '' : ` Failed: ${Object.keys(failed).join(', ')}.`}`,
    '',
  );
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  // A run of some sections keeps its own file, so the full report of the last whole run stays.
  const base = picked.length === 0 ? 'latest' : [...picked].sort().join('+');
  await writeFile(join(ROOT, `bench/results/${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(ROOT, `bench/results/${base}.md`), `${md.join('\n')}\n`);
  process.stdout.write(`${md.join('\n')}\n`);
  if (Object.keys(failed).length > 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
