import { execa } from 'execa';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCache } from '../runner/cache/index.js';
import type { DatasetContext } from '../runner/datasets/datasets.js';
import { addDataset } from '../runner/datasets/datasets.js';
import { HashPool } from '../runner/fingerprint/hash-pool.js';
import { summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';

export interface DatasetAddResult {
  readonly files: number;
  readonly totalBytes: number;
  readonly threads: number;
  /** `addDataset` into an empty store: hash every file, copy it into the store, hash the copy. GB/s. */
  readonly addPool: Sample;
  /** The same without a worker pool (everything on the main thread). GB/s. */
  readonly addMainThread: Sample;
  /** The shell's floor for the same work: `cp -r` into a fresh directory, then `b3sum` of source and copy. GB/s. */
  readonly cpB3sum: Sample | null;
  readonly poolVsMainThread: number;
  readonly poolVsCpB3sum: number | null;
}

async function hasB3sum(): Promise<boolean> {
  return (await execa('b3sum', ['--version'], { reject: false })).exitCode === 0;
}

/**
 * `dataset add` of 1 GiB in 16 files of 64 MiB (page-cached), from an empty store each time:
 * the work is two BLAKE3 passes (the working copy, then the stored copy) and one copy. Alternated
 * with the same work done by `cp` and `b3sum`, which is the floor a shell script would reach.
 */
export async function benchDatasetAdd(reps: number): Promise<DatasetAddResult> {
  const ws = await mkdtemp(join(tmpdir(), 'hpcflow-bench-dsadd-'));
  const files = 16;
  const fileBytes = 64 * 2 ** 20;
  const totalBytes = files * fileBytes;
  const pool = new HashPool();
  try {
    await mkdir(join(ws, 'pipelines'));
    const dir = join(ws, 'data/big');
    await mkdir(dir, { recursive: true });
    const buf = Buffer.alloc(fileBytes);
    for (let i = 0; i < files; i++) {
      randomFillSync(buf);
      const fh = await open(join(dir, `part-${i}.bin`), 'w');
      await fh.write(buf);
      await fh.close();
    }
    await pool.hashFile(join(dir, 'part-0.bin')); // workers started before timing
    const b3 = await hasB3sum();
    const gbs = (ms: number): number => totalBytes / 1e9 / (ms / 1000);
    const add = async (withPool: boolean): Promise<number> => {
      const cacheDir = join(ws, 'cache');
      await rm(cacheDir, { recursive: true, force: true });
      await rm(join(ws, '.hpcflow'), { recursive: true, force: true });
      await rm(join(ws, 'datasets'), { recursive: true, force: true });
      const { store } = openCache(cacheDir);
      const ctx: DatasetContext = {
        root: ws,
        store,
        lenient: false,
        link: ['reflink', 'copy'],
        gitCommit: false,
        env: {},
        ...(withPool ? { hashMany: (fs) => pool.hashFiles(fs.map((f) => f.abs)) } : {}),
      };
      return timeIt(async () => {
        const r = await addDataset(ctx, 'data/big', 'big');
        if (r.files !== files || r.hashed !== files) throw new Error(`expected ${files} files hashed, got ${r.files}/${r.hashed}`);
      });
    };
    const shell = async (): Promise<number> => {
      const copy = join(ws, 'cp-copy');
      await rm(copy, { recursive: true, force: true });
      return timeIt(async () => {
        await execa('b3sum', ['--no-names', ...Array.from({ length: files }, (_, i) => join(dir, `part-${i}.bin`))]);
        await execa('cp', ['-r', dir, copy]);
        await execa('b3sum', ['--no-names', ...Array.from({ length: files }, (_, i) => join(copy, `part-${i}.bin`))]);
      });
    };
    const P: number[] = [];
    const M: number[] = [];
    const S: number[] = [];
    for (let r = 0; r < reps; r++) {
      P.push(gbs(await add(true)));
      M.push(gbs(await add(false)));
      if (b3) S.push(gbs(await shell()));
    }
    const addPool = summarize(P);
    const addMainThread = summarize(M);
    const cpB3sum = b3 ? summarize(S) : null;
    return {
      files,
      totalBytes,
      threads: Math.min(pool.threads, availableParallelism()),
      addPool,
      addMainThread,
      cpB3sum,
      poolVsMainThread: addPool.median / addMainThread.median,
      poolVsCpB3sum: cpB3sum === null ? null : addPool.median / cpB3sum.median,
    };
  } finally {
    await pool.close();
    await rm(ws, { recursive: true, force: true });
  }
}
