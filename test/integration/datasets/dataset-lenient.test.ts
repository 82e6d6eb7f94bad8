import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache } from '../../../runner/cache/index.js';
import type { DatasetContext } from '../../../runner/datasets/datasets.js';
import { addDataset, datasetStatus } from '../../../runner/datasets/datasets.js';

/**
 * Lenient mode, for filesystems whose mtimes drift (some parallel filesystems, copies that do not
 * keep times): path + size decide "unchanged". Strict mode re-reads a file whose mtime moved and
 * finds it clean; lenient mode reads nothing — and, the documented price, misses a same-size edit.
 */
let ws: string;
const ctx = (lenient: boolean): DatasetContext => ({ root: ws, store: openCache(join(ws, '.hpcflow/cache')).store, lenient, link: ['copy'], gitCommit: false, env: {} });

beforeEach(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-dsl-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'data/d'), { recursive: true });
  for (let i = 0; i < 20; i++) await writeFile(join(ws, `data/d/f${i}.txt`), `file ${i}\n`);
  // Old enough that the stat cache may vouch for them (outside the racy window).
  const old = new Date(Date.now() - 60_000);
  for (let i = 0; i < 20; i++) await utimes(join(ws, `data/d/f${i}.txt`), old, old);
});
afterEach(async () => {
  await rm(ws, { recursive: true, force: true });
});

async function driftMtimes(): Promise<void> {
  const t = new Date(Date.now() - 30_000);
  for (let i = 0; i < 20; i++) await utimes(join(ws, `data/d/f${i}.txt`), t, t);
}

describe('dataset status --lenient', () => {
  it('strict re-hashes files whose mtime drifted and finds them clean; lenient reads none', async () => {
    await addDataset(ctx(false), 'data/d', 'd');
    await datasetStatus(ctx(true), 'd'); // fills the lenient stat cache
    await driftMtimes();
    const lenient = await datasetStatus(ctx(true), 'd');
    expect(lenient.state).toBe('clean');
    expect(lenient.hashed).toBe(0);
    const strict = await datasetStatus(ctx(false), 'd');
    expect(strict.state).toBe('clean');
    expect(strict.hashed).toBe(20);
  });

  it('both see a change of size; only strict sees a same-size rewrite (the documented trade-off)', async () => {
    await addDataset(ctx(false), 'data/d', 'd');
    await datasetStatus(ctx(true), 'd');
    await datasetStatus(ctx(false), 'd');
    await writeFile(join(ws, 'data/d/f1.txt'), 'file 1 grew\n');
    await writeFile(join(ws, 'data/d/f2.txt'), 'FILE 2\n'); // same size as "file 2\n"
    const lenient = await datasetStatus(ctx(true), 'd');
    expect(lenient.state).toBe('modified');
    expect(lenient.diff?.modified.map((m) => m.path)).toEqual(['f1.txt']);
    const strict = await datasetStatus(ctx(false), 'd');
    expect(strict.diff?.modified.map((m) => m.path).sort()).toEqual(['f1.txt', 'f2.txt']);
  });
});
