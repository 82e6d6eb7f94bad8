import { execa } from 'execa';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile, hashFileSync } from '../runner/fingerprint/hash-file.js';
import { HashPool } from '../runner/fingerprint/hash-pool.js';
import { summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';

/** What each contender does with one data set; every one hashes all files, in any order. */
export type DatasetHashVariant =
  | 'hashFileSeq'
  | 'hashFileSyncSeq'
  | 'pool1'
  | 'poolAll'
  | 'b3sum1'
  | 'b3sumAll';

export interface DatasetHashCase {
  readonly files: number;
  readonly fileBytes: number;
  readonly totalBytes: number;
  /** Throughput in GB/s (1e9 bytes) per contender; b3sum rows are null without b3sum. */
  readonly gbs: Record<DatasetHashVariant, Sample | null>;
  /** HashPool on all cores / `b3sum --num-threads 1` (the single-core BLAKE3 limit). */
  readonly poolAllVsB3sum1: number | null;
  /** HashPool on all cores / `b3sum` with its default threads (BLAKE3 on every core). */
  readonly poolAllVsB3sumAll: number | null;
  /** HashPool on all cores / in-process hashFile one file after another. */
  readonly poolAllVsHashFile: number;
  /** HashPool on all cores / the faster in-process path here (hashFile or hashFileSync). */
  readonly poolAllVsInProcess: number;
  /** HashPool with one thread / in-process hashFile (the cost of going through a worker). */
  readonly pool1VsHashFile: number;
}

export interface DatasetHashResult {
  readonly threads: number;
  /** Time from `new HashPool()` to the first result of one 64 KiB file: worker start-up, ms. */
  readonly poolStartMs: Sample;
  readonly large: DatasetHashCase;
  readonly small: DatasetHashCase;
}

/** Writes `count` files of `size` random bytes under `dir`; returns their names relative to `dir`. */
async function makeFiles(dir: string, sub: string, count: number, size: number): Promise<string[]> {
  await mkdir(join(dir, sub), { recursive: true });
  const names: string[] = [];
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < count; i++) {
    randomFillSync(buf);
    const name = `${sub}/${i.toString(16).padStart(4, '0')}`;
    const fh = await open(join(dir, name), 'w');
    await fh.write(buf);
    await fh.close();
    names.push(name);
  }
  return names;
}

async function measureCase(
  dir: string,
  names: readonly string[],
  fileBytes: number,
  reps: number,
  pool1: HashPool,
  poolAll: HashPool,
  haveB3sum: boolean,
): Promise<DatasetHashCase> {
  const paths = names.map((n) => join(dir, n));
  const totalBytes = names.length * fileBytes;
  // Page-cache the data and start every worker before timing anything.
  await pool1.hashFiles(paths);
  await poolAll.hashFiles(paths);
  const contenders: Array<[DatasetHashVariant, () => Promise<unknown>]> = [
    [
      'hashFileSeq',
      async () => {
        for (const p of paths) await hashFile(p);
      },
    ],
    [
      'hashFileSyncSeq',
      async () => {
        for (const p of paths) hashFileSync(p);
      },
    ],
    ['pool1', () => pool1.hashFiles(paths)],
    ['poolAll', () => poolAll.hashFiles(paths)],
  ];
  if (haveB3sum) {
    // Relative names keep 16,384 arguments far below ARG_MAX.
    contenders.push(['b3sum1', () => execa('b3sum', ['--num-threads', '1', ...names], { cwd: dir, stdout: 'ignore' })]);
    contenders.push(['b3sumAll', () => execa('b3sum', [...names], { cwd: dir, stdout: 'ignore' })]);
  }
  const xs = new Map<DatasetHashVariant, number[]>(contenders.map(([k]) => [k, []]));
  for (let i = 0; i < reps; i++) {
    // Alternated, and the order rotated each rep, so drift of a shared machine hits all alike.
    for (let j = 0; j < contenders.length; j++) {
      const [k, fn] = contenders[(i + j) % contenders.length] as [DatasetHashVariant, () => Promise<unknown>];
      xs.get(k)?.push(totalBytes / 1e9 / ((await timeIt(fn)) / 1000));
    }
  }
  const s = (k: DatasetHashVariant): Sample | null => {
    const x = xs.get(k);
    return x === undefined ? null : summarize(x);
  };
  const gbs: Record<DatasetHashVariant, Sample | null> = {
    hashFileSeq: s('hashFileSeq'),
    hashFileSyncSeq: s('hashFileSyncSeq'),
    pool1: s('pool1'),
    poolAll: s('poolAll'),
    b3sum1: s('b3sum1'),
    b3sumAll: s('b3sumAll'),
  };
  const m = (k: DatasetHashVariant): number => gbs[k]?.median ?? Number.NaN;
  return {
    files: names.length,
    fileBytes,
    totalBytes,
    gbs,
    poolAllVsB3sum1: haveB3sum ? m('poolAll') / m('b3sum1') : null,
    poolAllVsB3sumAll: haveB3sum ? m('poolAll') / m('b3sumAll') : null,
    poolAllVsHashFile: m('poolAll') / m('hashFileSeq'),
    poolAllVsInProcess: m('poolAll') / Math.max(m('hashFileSeq'), m('hashFileSyncSeq')),
    pool1VsHashFile: m('pool1') / m('hashFileSeq'),
  };
}

/**
 * Hashing a versioned data set on every core: 1 GiB as 64 × 16 MiB files and as 16,384 × 64 KiB
 * files, page-cached, hashed by in-process hashFile one file after another (the single-core
 * path), by HashPool with one thread and with one per core, and by b3sum with one thread and
 * with its default (all cores). Medians of `reps` alternated runs; pools are started beforehand.
 */
export async function benchDatasetHash(reps: number, totalBytes = 2 ** 30): Promise<DatasetHashResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hpcflow-bench-dataset-'));
  const threads = availableParallelism();
  try {
    const largeSize = 16 * 2 ** 20;
    const smallSize = 64 * 2 ** 10;
    const large = await makeFiles(dir, 'l', Math.round(totalBytes / largeSize), largeSize);
    const small = await makeFiles(dir, 's', Math.round(totalBytes / smallSize), smallSize);
    const haveB3sum = (await execa('sh', ['-c', 'command -v b3sum'], { reject: false })).exitCode === 0;
    const start: number[] = [];
    for (let i = 0; i < reps; i++) {
      const p = new HashPool({ threads: 1 });
      start.push(await timeIt(() => p.hashFile(join(dir, small[0] as string))));
      await p.close();
    }
    const pool1 = new HashPool({ threads: 1 });
    const poolAll = new HashPool({ threads });
    try {
      return {
        threads,
        poolStartMs: summarize(start),
        large: await measureCase(dir, large, largeSize, reps, pool1, poolAll, haveB3sum),
        small: await measureCase(dir, small, smallSize, reps, pool1, poolAll, haveB3sum),
      };
    } finally {
      await Promise.all([pool1.close(), poolAll.close()]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
