import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentStore } from '../../../runner/cache/store.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { hashBytes } from '../../../runner/fingerprint/hash-file.js';

let root: string;
let store: ContentStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-store-'));
  store = new ContentStore(join(root, 'cache'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function file(name: string, content: string | Buffer): Promise<string> {
  const p = join(root, name);
  await writeFile(p, content);
  return p;
}
const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('ContentStore', () => {
  it('stores a file under its BLAKE3, read-only, and materializes copies', async () => {
    const src = await file('src', 'payload');
    const h = await store.putFile(src);
    expect(h).toEqual({ hash: hashBytes('payload'), size: 7 });
    expect(store.path(h.hash)).toBe(join(root, 'cache', 'objects', h.hash.slice(0, 2), h.hash.slice(2)));
    expect(await store.has(h.hash)).toBe(true);
    expect(await store.has('0'.repeat(64))).toBe(false);
    expect(await modeOf(store.path(h.hash))).toBe(0o444);
    expect(await readdir(store.tmpDir)).toEqual([]);

    const out = join(root, 'ws', 'deep', 'out.sh');
    await store.materialize(h.hash, out, { exec: true });
    expect(await readFile(out, 'utf8')).toBe('payload');
    expect(await modeOf(out)).toBe(0o755);
    // Not a hardlink: editing the copy leaves the object intact.
    await writeFile(out, 'edited');
    await store.verify(h.hash);
    await store.materialize(h.hash, out, { exec: false });
    expect(await readFile(out, 'utf8')).toBe('payload');
    expect(await modeOf(out)).toBe(0o644);
    expect((await readdir(join(root, 'ws', 'deep'))).sort()).toEqual(['out.sh']);
  });

  it('materializes over a directory in the way', async () => {
    const h = await store.putBytes('x');
    const dest = join(root, 'ws', 'thing');
    await mkdir(join(dest, 'inner'), { recursive: true });
    await writeFile(join(dest, 'inner', 'f'), 'f');
    await store.materialize(h.hash, dest, { exec: false });
    expect(await readFile(dest, 'utf8')).toBe('x');
  });

  it('is a no-op for existing content, and trusts a known hash only if the object exists', async () => {
    const src = await file('src', 'abc');
    const h = await store.putFile(src);
    const obj = store.path(h.hash);
    const old = Date.now() / 1000 - 7200;
    await utimes(obj, old, old);
    expect(await store.putFile(src, h)).toEqual(h);
    // The no-op refreshes the mtime, which gc's grace period relies on.
    expect(Date.now() - (await stat(obj)).mtimeMs).toBeLessThan(60_000);

    // A stale `known` (file changed since it was hashed) does not mislabel the object.
    const changed = await file('changed', 'new content');
    const stale = { hash: hashBytes('old content'), size: 11 };
    expect(await store.putFile(changed, stale)).toEqual({ hash: hashBytes('new content'), size: 11 });
    expect(await store.has(stale.hash)).toBe(false);
  });

  it('lets concurrent puts of the same content all succeed', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
    const a = await file('a', data);
    const b = await file('b', data);
    const other = new ContentStore(join(root, 'cache')); // a second "process" on the same dir
    const results = await Promise.all([store.putFile(a), other.putFile(b), store.putFile(b), other.putBytes(data)]);
    const want = { hash: hashBytes(data), size: data.length };
    for (const r of results) expect(r).toEqual(want);
    expect(await store.verify(want.hash)).toEqual(want);
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('detects a corrupted object', async () => {
    const h = await store.putBytes('precious data');
    const p = store.path(h.hash);
    await chmod(p, 0o644);
    const buf = await readFile(p);
    buf[3] = (buf[3] as number) ^ 0xff;
    await writeFile(p, buf);
    const e: unknown = await store.verify(h.hash).catch((x: unknown) => x);
    expect(isHpcflowError(e, 'HPCFLOW_CACHE_CORRUPT')).toBe(true);
    expect((e as Error).message).toContain(h.hash);

    await store.removeObject(h.hash);
    await expect(store.verify(h.hash)).rejects.toMatchObject({ code: 'HPCFLOW_CACHE_CORRUPT' });
    await expect(store.materialize(h.hash, join(root, 'x'), { exec: false })).rejects.toMatchObject({
      code: 'HPCFLOW_CACHE_CORRUPT',
    });
  });

  it('rejects malformed object ids instead of building paths from them', async () => {
    expect(() => store.path('../../etc/passwd')).toThrow(/invalid object id/);
    await expect(store.has('ABC')).rejects.toMatchObject({ code: 'HPCFLOW_CACHE_CORRUPT' });
  });

  it('lists, removes and garbage-collects objects', async () => {
    const keep = await store.putBytes('keep me');
    const drop = await store.putBytes('drop me');
    const fresh = await store.putBytes('fresh');
    const listed: string[] = [];
    for await (const h of store.listObjects()) listed.push(h);
    expect(listed).toEqual([keep.hash, drop.hash, fresh.hash].sort());

    const old = Date.now() / 1000 - 7200;
    for (const h of [keep.hash, drop.hash]) await utimes(store.path(h), old, old);
    await writeFile(join(store.tmpDir, 'stale.tmp'), 'junk');
    await utimes(join(store.tmpDir, 'stale.tmp'), old, old);
    await writeFile(join(store.tmpDir, 'inflight.tmp'), 'busy');

    // Default grace: the fresh unreferenced object survives (a concurrent run may need it).
    expect(await store.gc(new Set([keep.hash]))).toEqual({ removed: 1, bytes: 7, tempRemoved: 1 });
    expect(await store.has(drop.hash)).toBe(false);
    expect(await store.has(fresh.hash)).toBe(true);
    expect(await readdir(store.tmpDir)).toEqual(['inflight.tmp']);

    expect(await store.gc(new Set([keep.hash]), { graceMs: 0 })).toMatchObject({ removed: 1, bytes: 5 });
    expect(await store.has(keep.hash)).toBe(true);
    expect(await store.removeObject(keep.hash)).toBe(true);
    expect(await store.removeObject(keep.hash)).toBe(false);
  });

  it('gc on an empty cache directory is a no-op', async () => {
    expect(await store.gc(new Set(), { graceMs: 0 })).toEqual({ removed: 0, bytes: 0, tempRemoved: 0 });
  });
});
