import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = fileURLToPath(new URL('../bin/hpcflow.js', import.meta.url));

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
