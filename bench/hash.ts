import { Blake3Hasher } from '@napi-rs/blake-hash';
import { execa } from 'execa';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { hashFile, hashFileSync } from '../runner/fingerprint/hash-file.js';
import { summarize, timeIt } from './lib.js';
import type { Sample } from './lib.js';

export interface HashResult {
  readonly bytes: number;
  readonly catGBs: Sample;
  readonly hashFileGBs: Sample;
  readonly hashFileSyncGBs: Sample;
  readonly blake3MemGBs: Sample;
  /** `b3sum --num-threads 1` on the same file (Debian's b3sum), when installed. */
  readonly b3sum1GBs: Sample | null;
  /** hashFile / b3sum single-threaded (target ≥ 0.8); null without b3sum. */
  readonly ratioToB3sum: number | null;
  /** hashFile throughput / in-memory single-core BLAKE3 (target ≥ 0.8). */
  readonly ratioToBlake3: number;
  /** hashFile throughput / cat of the same page-cached file. */
  readonly ratioToCat: number;
  /** Time against size (the scaling study's ms per GB): page-cached files of several sizes, alternated. */
  readonly sizes: readonly { readonly bytes: number; readonly hashFileMs: Sample; readonly b3sum1Ms: Sample | null; readonly catMs: Sample }[];
}

/**
 * Hashing a page-cached 1 GiB file: hpcflow's hashFile (async 1 MiB reads, native BLAKE3)
 * against `cat file > /dev/null` (the read ceiling) and BLAKE3 over memory (the hash ceiling),
 * measured alternately.
 */
export async function benchHash(bytes: number, reps: number, sweep: readonly number[] = []): Promise<HashResult> {
  const file = join(tmpdir(), `hpcflow-bench-hash-${process.pid}.bin`);
  const chunk = Buffer.alloc(1 << 24);
  randomFillSync(chunk);
  const writeRandom = async (path: string, n: number): Promise<void> => {
    const fh = await open(path, 'w');
    for (let off = 0; off < n; off += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, n - off));
    await fh.close();
  };
  await writeRandom(file, bytes);
  const sweepFiles: string[] = [];
  try {
    await execa('sh', ['-c', `cat '${file}' > /dev/null`]); // warm the page cache
    const gbs = (ms: number): number => bytes / 1e9 / (ms / 1000);
    const cat: number[] = [];
    const hf: number[] = [];
    const hfs: number[] = [];
    const mem: number[] = [];
    const b3: number[] = [];
    const haveB3sum = (await execa('sh', ['-c', 'command -v b3sum'], { reject: false })).exitCode === 0;
    for (let i = 0; i < reps; i++) {
      if (haveB3sum) b3.push(gbs(await timeIt(() => execa('b3sum', ['--num-threads', '1', file]))));
      cat.push(gbs(await timeIt(() => execa('sh', ['-c', `cat '${file}' > /dev/null`]))));
      hf.push(gbs(await timeIt(() => hashFile(file))));
      hfs.push(gbs(await timeIt(async () => hashFileSync(file))));
      mem.push(
        gbs(
          await timeIt(async () => {
            const h = new Blake3Hasher();
            for (let off = 0; off < bytes; off += 1 << 20) h.update(chunk.subarray(off % chunk.length, (off % chunk.length) + (1 << 20)));
            h.digest('hex');
          }),
        ),
      );
    }
    const r = { catGBs: summarize(cat), hashFileGBs: summarize(hf), hashFileSyncGBs: summarize(hfs), blake3MemGBs: summarize(mem) };
    const b3sum1GBs = haveB3sum ? summarize(b3) : null;
    // The size sweep: one file per size, every size measured in each round (hashFile, b3sum, cat).
    const sw = sweep.map(() => ({ hf: [] as number[], b3: [] as number[], cat: [] as number[] }));
    for (const n of sweep) {
      const f = join(tmpdir(), `hpcflow-bench-hash-${process.pid}-${n}.bin`);
      sweepFiles.push(f);
      await writeRandom(f, n);
      await execa('sh', ['-c', `cat '${f}' > /dev/null`]);
    }
    for (let i = 0; i < reps; i++) {
      for (const [k, f] of sweepFiles.entries()) {
        const x = sw[k] as (typeof sw)[number];
        x.hf.push(await timeIt(() => hashFile(f)));
        if (haveB3sum) x.b3.push(await timeIt(() => execa('b3sum', ['--num-threads', '1', f])));
        x.cat.push(await timeIt(() => execa('sh', ['-c', `cat '${f}' > /dev/null`])));
      }
    }
    const sizes = sweep.map((n, k) => {
      const x = sw[k] as (typeof sw)[number];
      return { bytes: n, hashFileMs: summarize(x.hf), b3sum1Ms: haveB3sum ? summarize(x.b3) : null, catMs: summarize(x.cat) };
    });
    return {
      bytes,
      ...r,
      sizes,
      b3sum1GBs,
      ratioToB3sum: b3sum1GBs === null ? null : r.hashFileGBs.median / b3sum1GBs.median,
      ratioToBlake3: r.hashFileGBs.median / r.blake3MemGBs.median,
      ratioToCat: r.hashFileGBs.median / r.catGBs.median,
    };
  } finally {
    await rm(file, { force: true });
    for (const f of sweepFiles) await rm(f, { force: true });
  }
}
