import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../../runner/fingerprint/hash-file.js';
import { BIN, hpcflow } from '../../helpers/cli.js';

/** Malicious and damaged inputs: nothing escapes the dataset, damage is named, interruptions are harmless. */
let ws: string;

beforeEach(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-dss-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'data/d/sub'), { recursive: true });
  await writeFile(join(ws, 'data/d/a.txt'), 'a\n');
  await writeFile(join(ws, 'data/d/sub/b.txt'), 'b\n');
});
afterEach(async () => {
  await rm(ws, { recursive: true, force: true });
});

async function objectsIntact(): Promise<number> {
  const dir = join(ws, '.hpcflow/cache/objects');
  let n = 0;
  if (!existsSync(dir)) return 0;
  for (const shard of await readdir(dir)) {
    for (const rest of await readdir(join(dir, shard))) {
      expect((await hashFile(join(dir, shard, rest))).hash).toBe(shard + rest);
      n++;
    }
  }
  return n;
}

describe('dataset safety', () => {
  it('a symlink leading out of the dataset is rejected on add, naming the link', async () => {
    await writeFile(join(ws, 'secret.txt'), 'elsewhere in the workspace\n');
    await symlink('../../secret.txt', join(ws, 'data/d/link.txt'));
    const r = await hpcflow(['dataset', 'add', 'data/d'], ws);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/symlink "data\/d\/link.txt" points to ".*secret.txt", outside the dataset "d"/);
    expect(existsSync(join(ws, 'datasets/d.yaml'))).toBe(false);
  });

  it('a version file whose manifest names ../ or an absolute path is refused at file:line:col before anything is written', async () => {
    expect((await hpcflow(['dataset', 'add', 'data/d', '--no-git'], ws)).code).toBe(0);
    const file = join(ws, 'datasets/d.yaml');
    const text = await readFile(file, 'utf8');
    const line = text.split('\n').findIndex((l) => l.startsWith('  sub/b.txt')) + 1;
    await rm(join(ws, 'data/d'), { recursive: true });
    for (const evil of ['../../../tmp/evil.txt', '/tmp/evil.txt']) {
      await writeFile(file, text.replace('  sub/b.txt\t', `  ${evil}\t`));
      const r = await hpcflow(['dataset', 'checkout', 'd'], ws);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`datasets/d.yaml:${line}:3: error HPCFLOW_DATASET_INVALID: bad manifest entry: invalid path`);
      expect(existsSync(join(ws, 'data/d'))).toBe(false);
    }
  });

  it('checkout never writes through a symlink in the working copy that leads outside the dataset', async () => {
    expect((await hpcflow(['dataset', 'add', 'data/d', '--no-git'], ws)).code).toBe(0);
    const outside = join(ws, 'outside');
    await mkdir(outside);
    await rm(join(ws, 'data/d/sub'), { recursive: true });
    await symlink(outside, join(ws, 'data/d/sub'));
    const r = await hpcflow(['dataset', 'checkout', '--force', 'd'], ws);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/symlink "data\/d\/sub" points to ".*outside", outside the dataset "d"/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('a damaged or missing store object is named by verify --store, and checkout fails before touching the working copy', async () => {
    expect((await hpcflow(['dataset', 'add', 'data/d', '--no-git'], ws)).code).toBe(0);
    const text = await readFile(join(ws, 'datasets/d.yaml'), 'utf8');
    const hashOf = (p: string): string => (new RegExp(`^ {2}${p}\\t\\d+\\t([0-9a-f]{64})`, 'm').exec(text) as RegExpExecArray)[1] as string;
    const objA = join(ws, '.hpcflow/cache/objects', hashOf('a.txt').slice(0, 2), hashOf('a.txt').slice(2));
    await chmod(objA, 0o644);
    await writeFile(objA, 'tampered\n');
    const v = await hpcflow(['dataset', 'verify', '--store'], ws);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('store: 1 objects damaged or missing');
    expect(v.stdout).toMatch(new RegExp(`a.txt: object ${hashOf('a.txt')} .* is corrupt: its content hashes to`));

    await rm(join(ws, '.hpcflow/cache/objects', hashOf('sub/b.txt').slice(0, 2), hashOf('sub/b.txt').slice(2)));
    await rm(join(ws, 'data/d/sub/b.txt'));
    await writeFile(join(ws, 'data/d/a.txt'), 'keep me\n');
    const co = await hpcflow(['dataset', 'checkout', '--force', 'd'], ws);
    expect(co.code).toBe(4);
    expect(co.stderr).toContain('1 of 2 files are not in the local store (e.g. sub/b.txt)');
    expect(await readFile(join(ws, 'data/d/a.txt'), 'utf8')).toBe('keep me\n');
  });

  it('checkout --link hardlink shares the store inode (read-only); executables and the default are copies', async () => {
    await writeFile(join(ws, 'data/d/run.sh'), '#!/bin/sh\n');
    await chmod(join(ws, 'data/d/run.sh'), 0o755);
    expect((await hpcflow(['dataset', 'add', 'data/d', '--no-git'], ws)).code).toBe(0);
    const objOf = async (rel: string): Promise<string> => {
      const h = (await hashFile(join(ws, 'data/d', rel))).hash;
      return join(ws, '.hpcflow/cache/objects', h.slice(0, 2), h.slice(2));
    };
    const objA = await objOf('a.txt');
    await rm(join(ws, 'data/d'), { recursive: true });
    const co = await hpcflow(['dataset', 'checkout', 'd', '--link', 'hardlink,copy', '--json'], ws);
    expect(co.code, co.stderr).toBe(0);
    expect((JSON.parse(co.stdout) as [{ links: Record<string, number> }])[0].links).toEqual({ hardlink: 2, copy: 1 });
    const { stat: st } = await import('node:fs/promises');
    expect((await st(join(ws, 'data/d/a.txt'))).ino).toBe((await st(objA)).ino);
    expect((await st(join(ws, 'data/d/a.txt'))).mode & 0o777).toBe(0o444);
    expect((await st(join(ws, 'data/d/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await hpcflow(['dataset', 'status'], ws)).code).toBe(0);
    await rm(join(ws, 'data/d'), { recursive: true });
    const dflt = await hpcflow(['dataset', 'checkout', 'd', '--json'], ws);
    const links = (JSON.parse(dflt.stdout) as [{ links: Record<string, number> }])[0].links;
    expect(Object.keys(links).every((k) => k === 'reflink' || k === 'copy')).toBe(true);
    expect((await st(join(ws, 'data/d/a.txt'))).ino).not.toBe((await st(objA)).ino);
  });

  it('an add killed part-way leaves only whole objects and no version file; running it again completes', async () => {
    for (let i = 0; i < 3000; i++) await writeFile(join(ws, `data/d/f${i}.dat`), `file ${i} `.repeat(200));
    const child = execa('node', [BIN, 'dataset', 'add', 'data/d', '--no-git'], { cwd: ws, reject: false });
    await new Promise((r) => setTimeout(r, 400));
    child.kill('SIGKILL');
    const res = await child;
    expect(res.signal).toBe('SIGKILL');
    expect(existsSync(join(ws, 'datasets/d.yaml'))).toBe(false);
    const partial = await objectsIntact();
    const again = await hpcflow(['dataset', 'add', 'data/d', '--no-git', '--json'], ws);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { files: number }).files).toBe(3002);
    const all = await objectsIntact();
    expect(all).toBeGreaterThanOrEqual(partial);
    expect(all).toBe(3003); // 3002 distinct files + the manifest
    expect((await hpcflow(['dataset', 'verify', '--store'], ws)).code).toBe(0);
  }, 60_000);
});
