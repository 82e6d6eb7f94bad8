import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, cli, summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';
import { execa } from 'execa';

/**
 * No-op `hpcflow status` end to end (process start included) on synthetic pipelines of N
 * stages: stage i reads a shared source file and one of 100 per-group files, and the output of
 * stage floor(i/2) — a binary tree of dependencies, every stage up to date.
 */
export function syntheticPipeline(n: number, image: string): string {
  const lines = [`defaults:\n  image: ${image}\nstages:`];
  for (let i = 0; i < n; i++) {
    const deps = [`src/common.txt`, `src/group-${i % 100}.txt`];
    if (i > 0) deps.push(`out/s${Math.floor((i - 1) / 2)}.txt`);
    lines.push(`  s${i}:\n    cmd: cat ${deps.join(' ')} > out/s${i}.txt\n    deps: [${deps.join(', ')}]\n    params: { i: ${i} }\n    outs: [out/s${i}.txt]`);
  }
  return `${lines.join('\n')}\n`;
}

export async function makeSyntheticWorkspace(n: number, image: string): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), `hpcflow-bench-${n}-`));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'src'));
  await mkdir(join(ws, 'out'));
  await writeFile(join(ws, 'pipelines/synth.yaml'), syntheticPipeline(n, image));
  await writeFile(join(ws, 'src/common.txt'), 'common\n');
  for (let g = 0; g < Math.min(n, 100); g++) await writeFile(join(ws, `src/group-${g}.txt`), `group ${g}\n`);
  for (let i = 0; i < n; i++) await writeFile(join(ws, `out/s${i}.txt`), `output ${i}\n`);
  // Adopt the outputs as up to date without running 10,000 containers.
  await execa('node', [BIN, 'commit'], { cwd: ws, env: { CI: '1' } });
  // Files a user runs status on were rarely written in the last 2 s (the racy window in which
  // stat identity is not trusted); age them so the measurement is of the steady state.
  const past = new Date(Date.now() - 120_000);
  for (const e of await readdir(ws, { withFileTypes: true, recursive: true })) {
    if (!e.parentPath.includes('.hpcflow')) await utimes(join(e.parentPath, e.name), past, past);
  }
  return ws;
}

export interface StatusResult {
  readonly stages: number;
  /** First status: spec, stat and snapshot caches empty (every file hashed). */
  readonly cold: number;
  /** No-op status answered from the stat snapshot. */
  readonly noop: Sample;
  /** No-op status through the full planner (snapshot deleted before each run). */
  readonly planner: Sample;
}

export async function benchStatus(sizes: readonly number[], reps: number, image: string): Promise<StatusResult[]> {
  const out: StatusResult[] = [];
  for (const n of sizes) {
    const ws = await makeSyntheticWorkspace(n, image);
    try {
      await rm(join(ws, '.hpcflow/tmp'), { recursive: true, force: true });
      const cold = await timeIt(() => cli(['status', '--check'], ws));
      const snap: number[] = [];
      const full: number[] = [];
      for (let i = 0; i < reps; i++) {
        snap.push((await cli(['status', '--check'], ws)).ms);
        await rm(join(ws, '.hpcflow/tmp/status-snapshot.json'), { force: true });
        full.push((await cli(['status', '--check'], ws)).ms);
      }
      out.push({ stages: n, cold, noop: summarize(snap), planner: summarize(full) });
      process.stderr.write(`status ${n}: snapshot ${summarize(snap).median.toFixed(1)} ms, planner ${summarize(full).median.toFixed(1)} ms (cold ${cold.toFixed(0)} ms)\n`);
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  }
  return out;
}
