import { execa } from 'execa';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The CLI the benchmarks run: built by `buildBenchCli()` into a directory of its own, not dist/.
 * On a shared machine someone else's `npm run build` (every test run does one) replaces dist/
 * while a bench runs for many minutes: the bench would fail in that window, or measure their
 * working copy. node_modules/.cache is where tools keep such builds: ignored by git and the
 * linter, and its chunks resolve the packages of node_modules/ like dist/ does.
 */
export const BENCH_CLI_DIR = join(ROOT, 'node_modules/.cache/hpcflow-bench-cli');
export const BIN = join(BENCH_CLI_DIR, 'bin/hpcflow.js');

/** Bundle runner/ into BENCH_CLI_DIR/dist (scripts/build.mjs), with the repository's launcher bin/hpcflow.js beside it. */
export async function buildBenchCli(): Promise<void> {
  await execa('node', ['scripts/build.mjs', `--outdir=${join(BENCH_CLI_DIR, 'dist')}`], { cwd: ROOT, stdio: 'inherit' });
  await mkdir(join(BENCH_CLI_DIR, 'bin'), { recursive: true });
  // Below node_modules/ no package.json of the repository is in scope: say that these are ES modules.
  await writeFile(join(BENCH_CLI_DIR, 'package.json'), '{ "type": "module", "private": true }\n');
  // The launcher imports '../dist/hpcflow.js': the same file works here.
  await copyFile(join(ROOT, 'bin/hpcflow.js'), BIN);
}

export interface Sample {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  readonly min: number;
  readonly n: number;
}

export function summarize(xs: readonly number[]): Sample {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => {
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    const hi = Math.ceil(i);
    return (s[lo] ?? 0) + ((s[hi] ?? 0) - (s[lo] ?? 0)) * (i - lo);
  };
  return { median: q(0.5), p25: q(0.25), p75: q(0.75), min: s[0] ?? 0, n: s.length };
}

/**
 * Ordinary least squares y = intercept + slope·x, with the coefficient of determination.
 * Pure; NaN slope when fewer than two distinct x.
 */
export function linearFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number; r2: number } {
  const n = Math.min(xs.length, ys.length);
  if (n === 0) return { slope: NaN, intercept: NaN, r2: NaN };
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i] as number;
    my += ys[i] as number;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0) return { slope: NaN, intercept: NaN, r2: NaN };
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/**
 * Measure A and B alternately (A B A B …) so that drift of a shared, noisy machine hits both
 * equally; report both summaries and the ratio of medians.
 */
export async function alternate(
  reps: number,
  a: () => Promise<number>,
  b: () => Promise<number>,
): Promise<{ a: Sample; b: Sample; ratio: number }> {
  const xa: number[] = [];
  const xb: number[] = [];
  for (let i = 0; i < reps; i++) {
    xa.push(await a());
    xb.push(await b());
  }
  const sa = summarize(xa);
  const sb = summarize(xb);
  return { a: sa, b: sb, ratio: sa.median / sb.median };
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function cli(args: readonly string[], cwd: string): Promise<{ ms: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  const r = await execa('node', [BIN, ...args], { cwd, env: { CI: '1' } });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout: r.stdout };
}

export const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
