import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { EMPTY_HASH, hashBytes } from '../../../runner/fingerprint/hash-file.js';
import { PathHasher } from '../../../runner/fingerprint/path-hasher.js';
import type { PathHash } from '../../../runner/fingerprint/path-hasher.js';
import { StatCache } from '../../../runner/fingerprint/stat-cache.js';

let root: string;
let ws: string;
let cacheFile: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-hasher-'));
  ws = join(root, 'ws');
  await mkdir(ws);
  cacheFile = join(ws, '.hpcflow', 'tmp', 'stat-cache.json');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes a workspace file with an mtime an hour old, so the stat cache trusts it. */
async function put(rel: string, content: string | Buffer, mode?: number): Promise<string> {
  const p = join(ws, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
  if (mode !== undefined) await chmod(p, mode);
  await age(rel);
  return p;
}
async function age(rel: string, ageSec = 3600): Promise<void> {
  const t = Math.floor(Date.now() / 1000) - ageSec;
  await utimes(join(ws, rel), t, t);
}
const hasher = (statCache = StatCache.inMemory(), concurrency = 4): PathHasher =>
  new PathHasher({ workspace: ws, statCache, concurrency });

async function expectCode(p: Promise<unknown>, code: string, msg?: RegExp): Promise<void> {
  const e: unknown = await p.then(
    () => new Error('expected a rejection'),
    (x: unknown) => x,
  );
  expect(isHpcflowError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  if (msg !== undefined) expect((e as Error).message).toMatch(msg);
}

describe('PathHasher', () => {
  it('hashes files, directories and missing paths', async () => {
    await put('data/a.txt', 'alpha');
    await put('data/sub/b.bin', 'beta!', 0o755);
    await put('data/empty', '');
    const h = hasher();
    expect(await h.hash('data/a.txt')).toEqual({ kind: 'file', hash: hashBytes('alpha'), size: 5, exec: false });
    expect(await h.hash('nope')).toEqual({ kind: 'missing' });
    expect(await h.hash('data/a.txt/below')).toEqual({ kind: 'missing' });
    const manifest =
      `a.txt\t5\t${hashBytes('alpha')}\t-\n` + `empty\t0\t${EMPTY_HASH}\t-\n` + `sub/b.bin\t5\t${hashBytes('beta!')}\tx\n`;
    expect(await h.hash('data/')).toEqual({ kind: 'dir', hash: hashBytes(manifest), size: 10, files: 3 });
    expect(await h.manifest('data')).toHaveLength(3);
    expect(await h.manifest('data/a.txt')).toBeNull();
  });

  it('uses the stat cache: a hit reads no content', async () => {
    await put('d/x', 'x'.repeat(3000));
    await put('d/y', 'y'.repeat(2_500_000)); // async (large-file) path
    await put('f', 'f');
    const cache = StatCache.load(cacheFile);
    const h1 = hasher(cache);
    const first = await h1.hashMany(['d', 'f']);
    expect(h1.counters).toEqual({ filesHashed: 3, bytesHashed: 2_503_001, statHits: 0 });
    await cache.save();

    const h2 = hasher(StatCache.load(cacheFile));
    expect(await h2.hashMany(['d', 'f'])).toEqual(first);
    expect(h2.counters).toEqual({ filesHashed: 0, bytesHashed: 0, statHits: 3 });
  });

  it('re-hashes a touched file and gets the same hash', async () => {
    await put('f', 'same content');
    const cache = StatCache.inMemory();
    const before = await hasher(cache).hash('f');
    await age('f', 1800);
    const h = hasher(cache);
    expect(await h.hash('f')).toEqual(before);
    expect(h.counters.filesHashed).toBe(1);
    expect(h.counters.statHits).toBe(0);
  });

  it('notices a same-size rewrite, unless lenient', async () => {
    await put('f', 'aaaa');
    const strict = StatCache.inMemory();
    const lenient = StatCache.inMemory({ lenient: true });
    const a = await hasher(strict).hash('f');
    await hasher(lenient).hash('f');
    await put('f', 'bbbb', undefined);
    await age('f', 60);
    const b = await hasher(strict).hash('f');
    expect(b).not.toEqual(a);
    const hl = hasher(lenient);
    expect(await hl.hash('f')).toEqual(a); // documented trade-off of lenient mode
    expect(hl.counters.statHits).toBe(1);
  });

  it('gives a directory the same hash regardless of creation order', async () => {
    const files = ['z', 'a/b/c', 'a.b', 'a/b.c', 'm/n', 'A'];
    for (const f of files) await put(`one/${f}`, f);
    for (const f of [...files].reverse()) await put(`two/${f}`, f);
    const h = hasher();
    const one = (await h.hash('one')) as Extract<PathHash, { kind: 'dir' }>;
    expect(one.files).toBe(files.length);
    expect(await h.hash('two')).toEqual(one);
  });

  it('includes the exec bit in the hash', async () => {
    await put('d/run.sh', '#!/bin/sh\n');
    const before = await hasher().hash('d');
    await chmod(join(ws, 'd/run.sh'), 0o755);
    const after = await hasher().hash('d');
    expect(after).not.toEqual(before);
    expect(await hasher().hash('d/run.sh')).toMatchObject({ kind: 'file', exec: true });
  });

  it('follows symlinks inside the workspace', async () => {
    await put('real/a', 'A');
    await put('real/sub/b', 'B');
    await mkdir(join(ws, 'links'));
    await symlink('../real/a', join(ws, 'links/a'));
    await symlink('../real/sub', join(ws, 'links/sub'));
    await symlink('real', join(ws, 'alias'));
    await symlink('../real/nothing', join(ws, 'links/dangling'));
    const h = hasher();
    const links = (await h.hash('links')) as Extract<PathHash, { kind: 'dir' }>;
    expect(links.files).toBe(2); // a, sub/b; the dangling link has no content
    expect(await h.hash('alias')).toEqual(await h.hash('real'));
    expect(await h.hash('links/a')).toEqual(await h.hash('real/a'));
    expect(await h.hash('links/dangling')).toEqual({ kind: 'missing' });
  });

  it('rejects symlinks that leave the workspace, naming the link', async () => {
    await writeFile(join(root, 'secret'), 's');
    await mkdir(join(root, 'outside'));
    await writeFile(join(root, 'outside/x'), 'x');
    await put('d/ok', 'ok');
    await symlink('../../secret', join(ws, 'd/leak'));
    await expectCode(hasher().hash('d'), 'HPCFLOW_PATH_ESCAPE', /symlink "d\/leak"/);
    await expectCode(hasher().hash('d/leak'), 'HPCFLOW_PATH_ESCAPE', /d\/leak/);
    await symlink(join(root, 'outside'), join(ws, 'ext'));
    await expectCode(hasher().hash('ext/x'), 'HPCFLOW_PATH_ESCAPE', /symlink "ext"/);
    await symlink('../nowhere-outside', join(ws, 'dangle-out'));
    await expectCode(hasher().hash('dangle-out'), 'HPCFLOW_PATH_ESCAPE', /dangle-out/);
  });

  it('rejects symlink loops', async () => {
    await put('loop/f', 'f');
    await symlink('..', join(ws, 'loop/up'));
    await expectCode(hasher().hash('loop'), 'HPCFLOW_PATH_ESCAPE', /loop\/up.*loop/);
    await symlink('self', join(ws, 'self'));
    await expectCode(hasher().hash('self'), 'HPCFLOW_PATH_ESCAPE', /loop/);
  });

  it('rejects absolute paths, .. escapes and the root itself', async () => {
    await put('a/b', 'b');
    const h = hasher();
    await expectCode(h.hash('../x'), 'HPCFLOW_PATH_ESCAPE');
    await expectCode(h.hash('a/../../x'), 'HPCFLOW_PATH_ESCAPE');
    await expectCode(h.hash(join(ws, 'a/b')), 'HPCFLOW_PATH_ESCAPE', /absolute/);
    await expectCode(h.hash('.'), 'HPCFLOW_USAGE');
    expect(await h.hash('a/../a/b')).toEqual(await h.hash('a/b'));
  });

  it('hashes a path used by many stages once', async () => {
    await put('shared/a', 'a');
    await put('shared/b', 'b');
    const h = hasher(StatCache.inMemory(), 2);
    const all = await Promise.all(Array.from({ length: 1000 }, (_, i) => h.hash(i % 2 === 0 ? 'shared' : 'shared/')));
    expect(new Set(all.map((x) => JSON.stringify(x))).size).toBe(1);
    await h.hash('shared/a'); // a file already hashed as part of the directory
    expect(h.counters.filesHashed).toBe(2);
  });

  it('hashes large files concurrently within the limit', async () => {
    const big = Buffer.alloc(1_500_000, 7);
    for (let i = 0; i < 6; i++) await put(`many/f${i}`, Buffer.concat([big, Buffer.from([i])]));
    const h = hasher(StatCache.inMemory(), 3);
    const d = await h.hash('many');
    expect(d).toMatchObject({ kind: 'dir', files: 6, size: 6 * 1_500_001 });
    expect(h.counters.bytesHashed).toBe(6 * 1_500_001);
  });
});
