import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutputRecord } from '../../../runner/cache/store.js';
import { ContentStore } from '../../../runner/cache/store.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { EMPTY_HASH, hashBytes } from '../../../runner/fingerprint/hash-file.js';
import { PathHasher } from '../../../runner/fingerprint/path-hasher.js';
import { StatCache } from '../../../runner/fingerprint/stat-cache.js';

let root: string;
let ws: string;
let store: ContentStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-outputs-'));
  ws = join(root, 'ws');
  await mkdir(ws);
  store = new ContentStore(join(root, 'cache'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(rel: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const p = join(ws, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
  await chmod(p, mode);
}

/** path → [mode, content] of every file below `dir`. */
async function snapshot(dir: string): Promise<Record<string, [number, string]>> {
  const out: Record<string, [number, string]> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[relative(dir, p)] = [(await stat(p)).mode & 0o777, (await readFile(p)).toString('base64')];
    }
  };
  await walk(dir);
  return out;
}

const hashOnDisk = (rel: string) => new PathHasher({ workspace: ws, statCache: StatCache.inMemory() }).hash(rel);

async function buildTree(): Promise<void> {
  await put('out/model.bin', Buffer.alloc(1_200_000, 3));
  await put('out/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  await put('out/empty.txt', '');
  await put('out/a/b/c/deep.txt', 'deep');
  await put('out/a/sibling.txt', 'sib');
  await put('out/dup1', 'same');
  await put('out/dup2', 'same');
}

describe('saveOutput / restoreOutput', () => {
  it('round-trips a directory byte-identically, with exec bits, nesting and empty files', async () => {
    await buildTree();
    const before = await snapshot(join(ws, 'out'));
    const rec = await store.saveOutput(ws, 'out');
    expect(rec).toMatchObject({ path: 'out', kind: 'dir', files: 7, size: 1_200_000 + 18 + 4 + 3 + 8 });
    // Same identity as the hasher computes on disk, without consulting the store.
    expect(await hashOnDisk('out')).toEqual({ kind: 'dir', hash: rec.hash, size: rec.size, files: 7 });
    expect(await store.has(EMPTY_HASH)).toBe(true);

    await rm(join(ws, 'out'), { recursive: true });
    await store.restoreOutput(ws, rec);
    expect(await snapshot(join(ws, 'out'))).toEqual(before);

    // Restoring over a modified output replaces it entirely (extra files disappear).
    await writeFile(join(ws, 'out/a/sibling.txt'), 'changed');
    await writeFile(join(ws, 'out/extra'), 'extra');
    await store.restoreOutput(ws, rec);
    expect(await snapshot(join(ws, 'out'))).toEqual(before);
    expect((await readdir(ws)).sort()).toEqual(['out']); // no temp or trash siblings left
  });

  it('round-trips a single file and replaces a directory in its way', async () => {
    await put('res/metrics.json', '{"loss":0.1}', 0o755);
    const rec = await store.saveOutput(ws, 'res/metrics.json');
    expect(rec).toEqual({ path: 'res/metrics.json', kind: 'file', hash: hashBytes('{"loss":0.1}'), size: 12, exec: true });
    await rm(join(ws, 'res'), { recursive: true });
    await mkdir(join(ws, 'res/metrics.json/junk'), { recursive: true });
    await store.restoreOutput(ws, rec);
    expect(await readFile(join(ws, 'res/metrics.json'), 'utf8')).toBe('{"loss":0.1}');
    expect((await stat(join(ws, 'res/metrics.json'))).mode & 0o777).toBe(0o755);
  });

  it('stores symlinked content as regular files', async () => {
    await put('real/x', 'x');
    await mkdir(join(ws, 'out'));
    await symlink('../real/x', join(ws, 'out/link'));
    const rec = await store.saveOutput(ws, 'out');
    expect(await hashOnDisk('out')).toMatchObject({ kind: 'dir', hash: rec.hash });
    await store.restoreOutput(ws, rec);
    expect((await lstat(join(ws, 'out/link'))).isFile()).toBe(true);
  });

  it('fails before touching the workspace when an object is missing', async () => {
    await buildTree();
    const rec = await store.saveOutput(ws, 'out');
    await store.removeObject(hashBytes('deep'));
    await writeFile(join(ws, 'out/a/sibling.txt'), 'user edit');
    const before = await snapshot(join(ws, 'out'));
    const e: unknown = await store.restoreOutput(ws, rec).catch((x: unknown) => x);
    expect(isHpcflowError(e, 'HPCFLOW_CACHE_CORRUPT')).toBe(true);
    expect((e as Error).message).toBe(
      `object ${hashBytes('deep')} for output out/a/b/c/deep.txt is missing; run the stage again with --force`,
    );
    expect(await snapshot(join(ws, 'out'))).toEqual(before);
    expect((await readdir(ws)).sort()).toEqual(['out']);

    // Missing tree object, and missing file object.
    await store.removeObject(rec.hash);
    await expect(store.restoreOutput(ws, rec)).rejects.toThrow(/for output out is missing/);
    const f = await store.saveOutput(ws, 'out/run.sh');
    await store.removeObject(f.hash);
    await expect(store.restoreOutput(ws, f)).rejects.toThrow(/for output out\/run.sh is missing/);
  });

  it('refuses a damaged tree object or record', async () => {
    await buildTree();
    const rec = await store.saveOutput(ws, 'out');
    const p = store.path(rec.hash);
    await chmod(p, 0o644);
    await writeFile(p, `../../escape\t1\t${EMPTY_HASH}\t-\n`);
    await expect(store.restoreOutput(ws, rec)).rejects.toThrow(/does not match its name/);
    // Correctly named, but listing a path that climbs out of the output.
    const evil = await store.putBytes(`../../escape\t1\t${EMPTY_HASH}\t-\n`);
    const evilRec: OutputRecord = { path: 'out', kind: 'dir', hash: evil.hash, size: 1, files: 1 };
    await expect(store.restoreOutput(ws, evilRec)).rejects.toThrow(/not a valid tree manifest/);
    expect(await readFile(join(ws, 'out/dup1'), 'utf8')).toBe('same');
    const bad = { ...rec, hash: 'nothex' } as OutputRecord;
    await expect(store.restoreOutput(ws, bad)).rejects.toMatchObject({ code: 'HPCFLOW_CACHE_CORRUPT' });
    const escaping = { ...rec, path: '../elsewhere' } as OutputRecord;
    await expect(store.restoreOutput(ws, escaping)).rejects.toMatchObject({ code: 'HPCFLOW_PATH_ESCAPE' });
  });

  it('does not restore through a symlinked parent leading outside', async () => {
    await put('o/f', 'f');
    const rec = await store.saveOutput(ws, 'o/f');
    await mkdir(join(root, 'outside'));
    await rm(join(ws, 'o'), { recursive: true });
    await symlink(join(root, 'outside'), join(ws, 'o'));
    await expect(store.restoreOutput(ws, rec)).rejects.toMatchObject({ code: 'HPCFLOW_PATH_ESCAPE' });
    expect(await readdir(join(root, 'outside'))).toEqual([]);
  });

  it('refuses to save a missing output or one escaping the workspace', async () => {
    await expect(store.saveOutput(ws, 'nothing')).rejects.toMatchObject({ code: 'HPCFLOW_USAGE' });
    await expect(store.saveOutput(ws, '../x')).rejects.toMatchObject({ code: 'HPCFLOW_PATH_ESCAPE' });
  });

  it('saves an empty directory and restores it', async () => {
    await mkdir(join(ws, 'empty'));
    const rec = await store.saveOutput(ws, 'empty');
    expect(rec).toEqual({ path: 'empty', kind: 'dir', hash: EMPTY_HASH, size: 0, files: 0 });
    await rm(join(ws, 'empty'), { recursive: true });
    await store.restoreOutput(ws, rec);
    expect(await readdir(join(ws, 'empty'))).toEqual([]);
  });
});
