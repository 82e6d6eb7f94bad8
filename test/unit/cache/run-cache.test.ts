import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache, referencedObjects } from '../../../runner/cache/index.js';
import type { Cache, RunCacheEntry } from '../../../runner/cache/index.js';
import { hashBytes } from '../../../runner/fingerprint/hash-file.js';

let root: string;
let ws: string;
let cache: Cache;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-runs-'));
  ws = join(root, 'ws');
  await mkdir(ws);
  cache = openCache(join(root, 'cache'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const FP1 = 'ab'.repeat(32);
const FP2 = 'cd'.repeat(32);
const entry = (fingerprint: string, outs: RunCacheEntry['outs'] = []): RunCacheEntry => ({
  schema: 1,
  fingerprint,
  stage: 'p/train',
  outs,
  metrics: { loss: 0.5 },
  createdAt: '2025-01-01T00:00:00.000Z',
});

async function put(rel: string, content: string): Promise<void> {
  await mkdir(dirname(join(ws, rel)), { recursive: true });
  await writeFile(join(ws, rel), content);
}

describe('RunCache', () => {
  it('puts, gets, lists and removes entries', async () => {
    expect(await cache.runs.get(FP1)).toEqual({ entry: null, warning: null });
    await cache.runs.put(entry(FP1));
    await cache.runs.put(entry(FP2));
    expect(cache.runs.pathFor(FP1)).toBe(join(root, 'cache', 'runs', 'ab', `${FP1.slice(2)}.json`));
    expect(await cache.runs.get(FP1)).toEqual({ entry: entry(FP1), warning: null });
    expect(await cache.runs.list()).toEqual([FP1, FP2]);
    expect(await cache.runs.remove(FP1)).toBe(true);
    expect(await cache.runs.remove(FP1)).toBe(false);
    expect(await cache.runs.list()).toEqual([FP2]);
  });

  it('treats a corrupt or partial entry as a miss with a warning', async () => {
    await cache.runs.put(entry(FP1));
    const file = cache.runs.pathFor(FP1);
    for (const junk of ['{"schema":1,"finger', '', '[]', JSON.stringify({ ...entry(FP2) }), JSON.stringify({ ...entry(FP1), outs: [{ path: 'x' }] })]) {
      await writeFile(file, junk);
      const r = await cache.runs.get(FP1);
      expect(r.entry).toBeNull();
      expect(r.warning).toMatch(/treating it as a miss/);
    }
  });

  it('rejects fingerprints that are not hex', async () => {
    await expect(cache.runs.get('../../etc/passwd')).rejects.toMatchObject({ code: 'HPCFLOW_USAGE' });
    expect(() => cache.runs.pathFor('AB'.repeat(32))).toThrow(/lowercase hex/);
  });

  it('collects referenced objects, and gc keeps exactly those', async () => {
    await put('out/a', 'a');
    await put('out/sub/b', 'b');
    await put('model', 'weights');
    await put('scratch', 'unreferenced');
    const dirRec = await cache.store.saveOutput(ws, 'out');
    const fileRec = await cache.store.saveOutput(ws, 'model');
    const junk = await cache.store.saveOutput(ws, 'scratch');
    await cache.runs.put(entry(FP1, [fileRec, dirRec]));

    const keep = new Set<string>();
    for (const fp of await cache.runs.list()) {
      const { entry: e } = await cache.runs.get(fp);
      if (e !== null) for (const h of await referencedObjects(e, cache.store)) keep.add(h);
    }
    expect(keep).toEqual(new Set([fileRec.hash, dirRec.hash, hashBytes('a'), hashBytes('b')]));

    // Everything is fresh: age the store so the default grace period does not protect it.
    const old = Date.now() / 1000 - 7200;
    for await (const h of cache.store.listObjects()) await utimes(cache.store.path(h), old, old);
    expect(await cache.store.gc(keep)).toMatchObject({ removed: 1, bytes: junk.size });
    expect(await cache.store.has(junk.hash)).toBe(false);

    await rm(join(ws, 'out'), { recursive: true });
    await cache.store.restoreOutput(ws, dirRec);
  });

  it('a missing tree object only contributes its own id', async () => {
    await put('out/a', 'a');
    const rec = await cache.store.saveOutput(ws, 'out');
    await cache.store.removeObject(rec.hash);
    expect(await referencedObjects(entry(FP1, [rec]), cache.store)).toEqual(new Set([rec.hash]));
  });

  it('concurrent puts of the same entry both succeed', async () => {
    await Promise.all([cache.runs.put(entry(FP1)), cache.runs.put(entry(FP1)), openCache(join(root, 'cache')).runs.put(entry(FP1))]);
    expect((await cache.runs.get(FP1)).entry).toEqual(entry(FP1));
  });
});
