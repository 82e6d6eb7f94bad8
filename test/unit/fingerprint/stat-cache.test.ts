import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StatCache } from '../../../runner/fingerprint/stat-cache.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);
let dir: string;
let cacheFile: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-statcache-'));
  cacheFile = join(dir, 'state', 'stat-cache.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a file whose mtime is an hour old (outside the racy window). */
async function oldFile(name: string, content: string, ageSec = 3600): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, content);
  const t = Date.now() / 1000 - ageSec;
  await utimes(p, t, t);
  return p;
}
const bst = (p: string) => statSync(p, { bigint: true });

describe('StatCache', () => {
  it('remembers a hash while the stat matches, across save/load', async () => {
    const p = await oldFile('a', 'hello');
    const c = StatCache.load(cacheFile);
    expect(c.lookup('a', bst(p))).toBeUndefined();
    c.record('a', bst(p), H1);
    expect(c.lookup('a', bst(p))).toBe(H1);
    expect(await c.save()).toBe(true);
    expect(await c.save()).toBe(false); // not dirty any more

    const again = StatCache.load(cacheFile);
    expect(again.loadWarning).toBeUndefined();
    expect(again.size).toBe(1);
    expect(again.lookup('a', bst(p))).toBe(H1);
    const doc = JSON.parse(await readFile(cacheFile, 'utf8')) as { v: number; entries: unknown[] };
    expect(doc.v).toBe(1);
    expect(doc.entries).toHaveLength(1);
  });

  it('misses when inode, mtime or size change', async () => {
    const t = Math.floor(Date.now() / 1000) - 3600;
    const p = await oldFile('a', 'hello');
    await utimes(p, t, t);
    const c = StatCache.inMemory();
    c.record('a', bst(p), H1);
    // Another file with identical size and mtime (e.g. the path was replaced by a rename).
    const q = await oldFile('q', 'HELLO');
    await utimes(q, t, t);
    expect(bst(q).mtimeNs).toBe(bst(p).mtimeNs);
    expect(c.lookup('a', bst(q))).toBeUndefined();
    expect(c.lookup('a', bst(p))).toBe(H1);

    await utimes(p, t - 60, t - 60);
    expect(c.lookup('a', bst(p))).toBeUndefined();

    c.record('a', bst(p), H1);
    await writeFile(p, 'hello!');
    await utimes(p, t - 60, t - 60);
    expect(c.lookup('a', bst(p))).toBeUndefined();
  });

  it('lenient mode compares only the size', async () => {
    const p = await oldFile('a', 'hello');
    const c = StatCache.inMemory({ lenient: true });
    c.record('a', bst(p), H1);
    await writeFile(p, 'jello'); // same size, new mtime
    expect(c.lookup('a', bst(p))).toBe(H1);
    await writeFile(p, 'jello!');
    expect(c.lookup('a', bst(p))).toBeUndefined();
  });

  it('does not trust or persist entries recorded within the racy window', async () => {
    const p = join(dir, 'fresh');
    await writeFile(p, 'x');
    const c = StatCache.load(cacheFile);
    c.record('fresh', bst(p), H1);
    expect(c.lookup('fresh', bst(p))).toBeUndefined();
    await c.save();
    expect(StatCache.load(cacheFile).size).toBe(0);
    // The same file observed well after its mtime is trusted.
    c.record('fresh', bst(p), H1, Date.now() + 5000);
    expect(c.lookup('fresh', bst(p))).toBe(H1);
  });

  it('prunes entries not touched since load', async () => {
    const a = await oldFile('a', 'a');
    const b = await oldFile('b', 'b');
    const c = StatCache.load(cacheFile);
    c.record('a', bst(a), H1);
    c.record('b', bst(b), H2);
    await c.save();
    const next = StatCache.load(cacheFile);
    expect(next.lookup('a', bst(a))).toBe(H1);
    expect(next.prune()).toBe(1);
    expect(next.dirty).toBe(true);
    await next.save();
    const last = StatCache.load(cacheFile);
    expect(last.size).toBe(1);
    expect(last.lookup('b', bst(b))).toBeUndefined();
  });

  it('ignores a corrupt or foreign file with a warning and rewrites it', async () => {
    for (const junk of ['{"v":1,"entries":[["a"', '{"v":99,"entries":[]}', '[1,2]', '{"v":1,"entries":[["a","1","2",3,"4","nothex"]]}']) {
      await writeFile(join(dir, 'junk'), junk);
      const c = StatCache.load(join(dir, 'junk'));
      expect(c.size).toBe(0);
      expect(c.loadWarning).toMatch(/ignored/);
      expect(await c.save()).toBe(true);
      expect(StatCache.load(join(dir, 'junk')).loadWarning).toBeUndefined();
    }
  });

  it('in-memory caches never write', async () => {
    const p = await oldFile('a', 'a');
    const c = StatCache.inMemory();
    c.record('a', bst(p), H1);
    expect(await c.save()).toBe(false);
  });
});
