import { copyFile, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, cli, summarize } from './lib.js';
import type { Sample } from './lib.js';

/**
 * Change detection, hpcflow vs Snakemake, on the same synthetic pipeline in the same directory:
 * a fan of N independent trivial stages, stage i copies src/in-i.txt to out/s{i}.txt. hpcflow
 * reads pipelines/synth.yaml (image hpcflow-test/busybox:1), Snakemake a Snakefile of N explicit
 * rules (plus `rule all`), both over the very same input and output files.
 *
 * Both are first made up to date by running them: `snakemake -c1` (bare `cp`), then
 * `hpcflow run` (the same `cp` in a container; it rewrites the outputs with identical content);
 * beyond 100 stages both adopt outputs written by plain copies (`snakemake --touch`, `hpcflow commit`).
 * Then, alternating the two tools: the no-op decision (`hpcflow status` vs `snakemake -n -q -c1`)
 * and the decision after one input in the middle was modified (restored, content and mtime,
 * after each repetition so every repetition sees exactly one change).
 */
export interface SnakemakeSize {
  readonly stages: number;
  /** How hpcflow was brought up to date: `run` (containers) or `commit` (adopting Snakemake's outputs). */
  readonly hpcflowSetup: 'run' | 'commit';
  readonly setupMs: { readonly snakemakeRun: number; readonly hpcflowRun: number };
  readonly noop: { readonly hpcflow: Sample; readonly snakemake: Sample; readonly ratio: number };
  readonly oneChange: { readonly hpcflow: Sample; readonly snakemake: Sample; readonly ratio: number };
  /** What each tool decided after the change (untimed check): stages it would run. */
  readonly decidedToRun: { readonly hpcflow: number; readonly snakemake: number };
}

/** Process start-up floors of both tools, alternated (ms): what no change-detection work can go below. */
export interface StartupFloors {
  readonly reps: number;
  /** `node -e 0`. */
  readonly node: Sample;
  /** `hpcflow --version`: Node plus the CLI's entry module. */
  readonly hpcflowVersion: Sample;
  /** `python3 -c pass`, with the interpreter Snakemake runs on. */
  readonly python: Sample;
  /** `python3 -c 'import snakemake'`. */
  readonly snakemakeImport: Sample;
}

export interface SnakemakeResult {
  readonly versions: { readonly snakemake: string; readonly python: string; readonly docker: string | null; readonly hpcflow: string };
  readonly floors: StartupFloors;
  readonly reps: number;
  readonly sizes: readonly SnakemakeSize[];
  readonly skipped: readonly string[];
  readonly totalS: number;
}

function snakefile(n: number): string {
  const out: string[] = [`rule all:\n    input: [${Array.from({ length: n }, (_, i) => `"out/s${i}.txt"`).join(', ')}]\n`];
  for (let i = 0; i < n; i++) out.push(`rule s${i}:\n    input: "src/in-${i}.txt"\n    output: "out/s${i}.txt"\n    shell: "cp {input} {output}"\n`);
  return `${out.join('\n')}`;
}

function pipeline(n: number, image: string): string {
  const lines = [`defaults:\n  image: ${image}\nstages:`];
  for (let i = 0; i < n; i++) lines.push(`  s${i}:\n    cmd: cp src/in-${i}.txt out/s${i}.txt\n    deps: [src/in-${i}.txt]\n    outs: [out/s${i}.txt]`);
  return `${lines.join('\n')}\n`;
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

async function snakemakeDry(ws: string): Promise<{ ms: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  const r = await execa('snakemake', ['-n', '-q', '-c1'], { cwd: ws, reject: false, all: true });
  const t = ms(t0);
  if (r.exitCode !== 0) throw new Error(`snakemake -n failed: ${r.all ?? ''}`);
  return { ms: t, stdout: r.all ?? '' };
}

async function hpcflowStatus(ws: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await execa('node', [BIN, 'status'], { cwd: ws, env: { CI: '1' }, reject: false });
  const t = ms(t0);
  if (r.exitCode !== 0) throw new Error(`hpcflow status failed: ${r.stderr}`);
  return t;
}

/** The interpreter Snakemake runs on (its script's `#!` line), which need not be the first python3 on PATH. */
async function snakemakePython(): Promise<string> {
  const path = (await execa('sh', ['-c', 'command -v snakemake'], { reject: false })).stdout.trim();
  const first = path === '' ? '' : ((await readFile(path, 'utf8').catch(() => '')).split('\n')[0] ?? '');
  const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  if (m === null) return 'python3';
  return m[1]?.endsWith('/env') === true ? (m[2] ?? 'python3') : (m[1] as string);
}

/** Stages each tool would run now (untimed). */
async function decided(ws: string): Promise<{ hpcflow: number; snakemake: number }> {
  const h = await cli(['status', '--json'], ws);
  const counts = (JSON.parse(h.stdout) as { counts: Record<string, number> }).counts;
  const s = await execa('snakemake', ['-n', '-c1'], { cwd: ws, reject: false, all: true });
  // Job stats table: one row per rule with work; `all` and `total` are not stages.
  // A dry run prints the table twice (before and after the job list): count distinct rules.
  const rows = new Set((s.all ?? '').split('\n').filter((l) => /^s\d+\s+\d+/.test(l)).map((l) => l.split(/\s+/)[0]));
  return { hpcflow: (counts.run ?? 0) + (counts.restore ?? 0), snakemake: rows.size };
}

export async function benchSnakemake(sizes: readonly number[], reps: number, image: string, skipped: readonly string[] = []): Promise<SnakemakeResult> {
  const tAll = process.hrtime.bigint();
  const version = async (cmd: string, args: string[]): Promise<string> => {
    const r = await execa(cmd, args, { reject: false, all: true });
    return r.exitCode === 0 ? (r.all ?? '').trim().split('\n')[0] ?? '?' : '?';
  };
  const docker = await version('docker', ['version', '--format', '{{.Server.Version}}']);
  const python = await snakemakePython();
  const versions = {
    snakemake: await version('snakemake', ['--version']),
    python: await version(python, ['--version']),
    docker: docker === '?' ? null : docker,
    hpcflow: (await version('node', [BIN, '--version'])).replace(/^hpcflow\s*/, ''),
  };
  const floorsOf = { node: [] as number[], hpcflowVersion: [] as number[], python: [] as number[], snakemakeImport: [] as number[] };
  const spawnMs = async (cmd: string, args: readonly string[]): Promise<number> => {
    const t0 = process.hrtime.bigint();
    await execa(cmd, args, { env: { CI: '1' } });
    return ms(t0);
  };
  for (let r = -1; r < reps; r++) {
    const x = [await spawnMs('node', ['-e', '0']), await spawnMs('node', [BIN, '--version']), await spawnMs(python, ['-c', 'pass']), await spawnMs(python, ['-c', 'import snakemake'])];
    if (r < 0) continue; // warm-up
    floorsOf.node.push(x[0] as number);
    floorsOf.hpcflowVersion.push(x[1] as number);
    floorsOf.python.push(x[2] as number);
    floorsOf.snakemakeImport.push(x[3] as number);
  }
  const floors: StartupFloors = { reps, node: summarize(floorsOf.node), hpcflowVersion: summarize(floorsOf.hpcflowVersion), python: summarize(floorsOf.python), snakemakeImport: summarize(floorsOf.snakemakeImport) };
  const out: SnakemakeSize[] = [];
  for (const n of sizes) {
    const ws = await mkdtemp(join(tmpdir(), `hpcflow-smk-${n}-`));
    try {
      await mkdir(join(ws, 'pipelines'));
      await mkdir(join(ws, 'src'));
      await mkdir(join(ws, 'out'));
      await writeFile(join(ws, 'pipelines/synth.yaml'), pipeline(n, image));
      await writeFile(join(ws, 'Snakefile'), snakefile(n));
      for (let i = 0; i < n; i++) await writeFile(join(ws, `src/in-${i}.txt`), `input ${String(i).padStart(6, '0')}\n`);
      // Inputs older than anything either tool writes (Snakemake compares mtimes).
      const past = new Date(Date.now() - 600_000);
      for (let i = 0; i < n; i++) await utimes(join(ws, `src/in-${i}.txt`), past, past);

      // Both run their stages for small N. For large N both adopt outputs written by plain copies
      // instead (running 1,000 jobs takes Snakemake 35–80 s here, hpcflow's containers minutes):
      // `snakemake --touch` and `hpcflow commit` — the same files, the same content, and each tool
      // then finds every stage up to date (checked below). Snakemake keeps no run metadata for
      // touched outputs; its dry run took the same time with and without it (1.6 s at 1,000).
      const hpcflowSetup = n <= 100 ? 'run' : 'commit';
      if (hpcflowSetup === 'commit') for (let i = 0; i < n; i++) await copyFile(join(ws, `src/in-${i}.txt`), join(ws, `out/s${i}.txt`));
      let t0 = process.hrtime.bigint();
      await execa('snakemake', hpcflowSetup === 'run' ? ['-c1', '-q'] : ['--touch', '-c1', '-q'], { cwd: ws, all: true });
      const snakemakeRun = ms(t0);
      t0 = process.hrtime.bigint();
      await execa('node', [BIN, hpcflowSetup === 'run' ? 'run' : 'commit'], { cwd: ws, env: { CI: '1' } });
      const hpcflowRun = ms(t0);
      // Leave hpcflow's 2 s racy window (stat identity of just-written files is not trusted).
      await sleep(2500);
      // Warm up both (untimed) and check that both see nothing to do.
      await hpcflowStatus(ws);
      const warm = await decided(ws);
      if (warm.hpcflow !== 0 || warm.snakemake !== 0) throw new Error(`not up to date at ${n}: ${JSON.stringify(warm)}`);
      await snakemakeDry(ws);

      const noopH: number[] = [];
      const noopS: number[] = [];
      for (let r = 0; r < reps; r++) {
        noopH.push(await hpcflowStatus(ws));
        noopS.push((await snakemakeDry(ws)).ms);
      }

      const mid = join(ws, `src/in-${Math.floor(n / 2)}.txt`);
      const original = await readFile(mid);
      const st = await stat(mid);
      const change = async (): Promise<void> => {
        await writeFile(mid, `changed ${String(Math.floor(n / 2)).padStart(5, '0')}\n`);
      };
      const restore = async (): Promise<void> => {
        await writeFile(mid, original);
        await utimes(mid, st.atime, st.mtime);
      };
      await change();
      const decidedToRun = await decided(ws);
      await restore();
      const chH: number[] = [];
      const chS: number[] = [];
      for (let r = 0; r < reps; r++) {
        await change();
        chH.push(await hpcflowStatus(ws));
        await restore();
        await change();
        chS.push((await snakemakeDry(ws)).ms);
        await restore();
      }
      const pair = (h: number[], s: number[]): { hpcflow: Sample; snakemake: Sample; ratio: number } => {
        const a = summarize(h);
        const b = summarize(s);
        return { hpcflow: a, snakemake: b, ratio: b.median / a.median };
      };
      const row: SnakemakeSize = {
        stages: n,
        hpcflowSetup,
        setupMs: { snakemakeRun, hpcflowRun },
        noop: pair(noopH, noopS),
        oneChange: pair(chH, chS),
        decidedToRun,
      };
      out.push(row);
      process.stderr.write(
        `snakemake ${n}: no-op hpcflow ${row.noop.hpcflow.median.toFixed(0)} ms, snakemake ${row.noop.snakemake.median.toFixed(0)} ms (×${row.noop.ratio.toFixed(1)}); ` +
          `one change ${row.oneChange.hpcflow.median.toFixed(0)} vs ${row.oneChange.snakemake.median.toFixed(0)} ms (×${row.oneChange.ratio.toFixed(1)}); ` +
          `setup: snakemake run ${(snakemakeRun / 1000).toFixed(1)} s, hpcflow ${hpcflowSetup} ${(hpcflowRun / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  }
  return { versions, floors, reps, sizes: out, skipped, totalS: ms(tAll) / 1000 };
}
