import { statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCache } from '../runner/cache/index.js';
import type { DatasetContext } from '../runner/datasets/datasets.js';
import { addDataset, datasetStatus } from '../runner/datasets/datasets.js';
import { walkDir } from '../runner/fingerprint/walk.js';
import { alternate, cli, summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';

export interface DatasetStatusResult {
  readonly files: number;
  /** In-process `datasetStatus` of the unchanged dataset (stat cache warm). */
  readonly unchanged: Sample;
  /** The floor: walking the directory and stat-ing every file, nothing else. */
  readonly walkStat: Sample;
  readonly ratioToWalk: number;
  /** In-process status right after 1% of the files were rewritten (they are re-hashed). */
  readonly changed1pct: Sample;
  /** `hpcflow dataset status` end to end (process start included), unchanged. */
  readonly cli: Sample;
}

/**
 * Dataset status at 10,000 and 100,000 small files: unchanged (the stat cache answers; no file
 * is read) against the floor of walking and stat-ing the tree, and with 1% of the files changed.
 */
export async function benchDatasetStatus(sizes: readonly number[], reps: number): Promise<DatasetStatusResult[]> {
  const out: DatasetStatusResult[] = [];
  for (const n of sizes) {
    const ws = await mkdtemp(join(tmpdir(), 'hpcflow-bench-ds-'));
    try {
      await mkdir(join(ws, 'pipelines'));
      const dir = join(ws, 'data/ds');
      // 100 files per directory, 256 bytes each: a typical many-small-files layout.
      for (let i = 0; i < n; i++) {
        if (i % 100 === 0) await mkdir(join(dir, `d${Math.floor(i / 100)}`), { recursive: true });
        await writeFile(join(dir, `d${Math.floor(i / 100)}`, `f${i}.dat`), `${i}`.padEnd(256, '.'));
      }
      const { store } = openCache(join(ws, '.hpcflow/cache'));
      const ctx: DatasetContext = { root: ws, store, lenient: false, link: ['reflink', 'copy'], gitCommit: false, env: {} };
      // Let mtimes age past the racy window so the stat cache may vouch for them.
      await new Promise((r) => setTimeout(r, 2100));
      await addDataset(ctx, 'data/ds', 'ds');
      await datasetStatus(ctx, 'ds');
      const real = statSync(dir) && dir;
      const cmp = await alternate(
        reps,
        () => timeIt(async () => {
          const s = await datasetStatus(ctx, 'ds');
          if (s.state !== 'clean' || s.hashed !== 0) throw new Error(`expected a clean status without reads, got ${s.state}/${s.hashed}`);
        }),
        () => timeIt(async () => {
          for (const f of walkDir(real, real, 'data/ds')) statSync(f.abs, { bigint: true });
        }),
      );
      const changed: number[] = [];
      for (let r = 0; r < reps; r++) {
        for (let i = r; i < n; i += 100) await writeFile(join(dir, `d${Math.floor(i / 100)}`, `f${i}.dat`), `${i} v${r}`.padEnd(256, '#'));
        changed.push(await timeIt(async () => {
          const s = await datasetStatus(ctx, 'ds');
          if (s.state !== 'modified' || s.hashed < n / 100) throw new Error('expected the changed files to be re-hashed');
        }));
        // Restore the recorded content for the next round.
        for (let i = r; i < n; i += 100) await writeFile(join(dir, `d${Math.floor(i / 100)}`, `f${i}.dat`), `${i}`.padEnd(256, '.'));
      }
      await new Promise((r) => setTimeout(r, 2100));
      await datasetStatus(ctx, 'ds');
      const cliMs: number[] = [];
      for (let r = 0; r < reps; r++) cliMs.push((await cli(['dataset', 'status'], ws)).ms);
      out.push({ files: n, unchanged: cmp.a, walkStat: cmp.b, ratioToWalk: cmp.ratio, changed1pct: summarize(changed), cli: summarize(cliMs) });
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  }
  return out;
}
