import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureDir, removeQuiet, replacePath, writeFileAtomic } from '../../../runner/util/fs-atomic.js';
import { createLimiter, mapLimit } from '../../../runner/util/pool.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-util-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('writeFileAtomic', () => {
  it('writes, replaces and honours mode and fsync', async () => {
    const p = join(dir, 'f.json');
    await writeFileAtomic(p, 'one');
    await writeFileAtomic(p, Buffer.from('two'), { mode: 0o600, fsync: true });
    expect(await readFile(p, 'utf8')).toBe('two');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['f.json']);
  });

  it('leaves the destination intact and no temp file on error', async () => {
    const p = join(dir, 'target');
    await mkdir(p); // renaming a file over a directory fails
    await writeFile(join(p, 'keep'), 'k');
    await expect(writeFileAtomic(p, 'data')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['target']);
    expect(await readFile(join(p, 'keep'), 'utf8')).toBe('k');
    await expect(writeFileAtomic(join(dir, 'no/such/dir/f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('ensureDir, removeQuiet and replacePath', async () => {
    await ensureDir(join(dir, 'a/b'));
    await ensureDir(join(dir, 'a/b'));
    await removeQuiet(join(dir, 'missing'));
    await writeFile(join(dir, 'a/b/x'), 'x');
    await mkdir(join(dir, 'new'));
    await writeFile(join(dir, 'new/y'), 'y');
    await replacePath(join(dir, 'new'), join(dir, 'a'));
    expect(await readdir(join(dir, 'a'))).toEqual(['y']);
    expect((await readdir(dir)).sort()).toEqual(['a']);
    await removeQuiet(join(dir, 'a'));
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('mapLimit', () => {
  it('keeps order and the concurrency bound', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (x) => {
      peak = Math.max(peak, ++active);
      await sleep(x * 3);
      active--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
    expect(await mapLimit([], 3, async () => 1)).toEqual([]);
  });

  it('rejects with the first error only after in-flight calls settle', async () => {
    const finished: number[] = [];
    const started: number[] = [];
    const p = mapLimit([0, 1, 2, 3, 4], 3, async (x) => {
      started.push(x);
      if (x === 0) throw new Error('boom 0');
      await sleep(20);
      if (x === 1) throw new Error('boom 1');
      finished.push(x);
      return x;
    });
    await expect(p).rejects.toThrow('boom 0');
    expect(finished).toEqual([2]); // 1 failed too, but after; nothing new started after the error
    expect(started).toEqual([0, 1, 2]);
  });

  it('stops on abort', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const p = mapLimit([1, 2, 3, 4], 1, async (x) => {
      seen.push(x);
      if (x === 2) ac.abort();
      await sleep(1);
      return x;
    }, ac.signal);
    await expect(p).rejects.toMatchObject({ code: 'HPCFLOW_ABORTED' });
    expect(seen).toEqual([1, 2]);
    await expect(mapLimit([1], 0, async (x) => x)).rejects.toMatchObject({ code: 'HPCFLOW_USAGE' });
  });
});

describe('createLimiter', () => {
  it('bounds concurrency across callers and survives failures', async () => {
    const limit = createLimiter(2);
    let active = 0;
    let peak = 0;
    const task = (fail: boolean) => limit(async () => {
      peak = Math.max(peak, ++active);
      await sleep(5);
      active--;
      if (fail) throw new Error('x');
      return 1;
    });
    const results = await Promise.allSettled(Array.from({ length: 9 }, (_, i) => task(i % 3 === 0)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
    expect(peak).toBe(2);
    expect(active).toBe(0);
    expect(await task(false)).toBe(1);
  });
});
