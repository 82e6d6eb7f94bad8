import { build } from 'esbuild';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_SIZE, EMPTY_HASH, hashFile } from '../../../runner/fingerprint/hash-file.js';
import { HashPool, locateHashWorker } from '../../../runner/fingerprint/hash-pool.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const POOL_MODULE = join(ROOT, 'runner/fingerprint/hash-pool.ts');

let dir: string;
let pool: HashPool;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-hash-pool-'));
  pool = new HashPool({ threads: 2 });
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, data: Buffer | string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, data);
  return p;
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await p;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('expected a rejection');
}

describe('HashPool', () => {
  it('equals hashFile byte for byte: empty, small, around 1 MiB, several MiB', async () => {
    const data = randomBytes(5 * CHUNK_SIZE + 12_347);
    const sizes = [0, 1, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 7, data.length];
    for (const len of sizes) {
      const p = await fileWith(`s${len}`, data.subarray(0, len));
      const want = await hashFile(p);
      expect(want.size).toBe(len);
      expect(await pool.hashFile(p)).toEqual(want);
    }
    expect((await pool.hashFile(join(dir, 's0'))).hash).toBe(EMPTY_HASH);
  });

  it('hashes thousands of files at once, in order, batched across workers', async () => {
    await mkdir(join(dir, 'many'));
    const paths: string[] = [];
    for (let i = 0; i < 2000; i++) {
      // Mostly small files, a few over the 1 MiB read size, so batches mix both.
      const len = i % 250 === 0 ? CHUNK_SIZE + i : (i * 977) % 70_000;
      paths.push(await fileWith(`many/${i}`, randomBytes(len)));
    }
    const want = await Promise.all(paths.map((p) => hashFile(p)));
    expect(await pool.hashFiles(paths)).toEqual(want);
    // Single calls issued in one burst are coalesced the same way.
    expect(await Promise.all(paths.map((p) => pool.hashFile(p)))).toEqual(want);
    expect(pool.workers).toBe(2);
  });

  it('rejects with the same error code as hashFile (ENOENT, EISDIR, EACCES)', async () => {
    const missing = join(dir, 'no-such-file');
    const e = await rejection(pool.hashFile(missing));
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('ENOENT');
    expect(e.syscall).toBe('open');
    expect(e.path).toBe(missing);
    expect(e.message).toBe((await rejection(hashFile(missing))).message);

    const sub = join(dir, 'a-directory');
    await mkdir(sub);
    expect((await rejection(pool.hashFile(sub))).code).toBe((await rejection(hashFile(sub))).code);

    if (process.getuid?.() !== 0) {
      const locked = await fileWith('locked', 'secret');
      await import('node:fs/promises').then((fs) => fs.chmod(locked, 0));
      expect((await rejection(pool.hashFile(locked))).code).toBe('EACCES');
    }

    // One failure among many: hashFiles rejects with it, the others still hash.
    const ok = await fileWith('ok', 'fine');
    expect((await rejection(pool.hashFiles([ok, missing, ok]))).code).toBe('ENOENT');
    expect(await pool.hashFile(ok)).toEqual(await hashFile(ok));
  });

  it('fails the jobs of a crashed worker clearly, then replaces it', async () => {
    const p1 = new HashPool({ threads: 1 });
    try {
      const f = await fileWith('crash', randomBytes(100_000));
      const want = await hashFile(f);
      expect(await p1.hashFile(f)).toEqual(want);
      p1.crashNextWorkerForTest();
      const e = await rejection(p1.hashFile(f));
      expect(e.code).toBe('ERR_HASH_WORKER_CRASHED');
      expect(e.message).toContain('crash requested by a test');
      expect(e.message).toContain(f);
      expect(await p1.hashFile(f)).toEqual(want);
      expect(p1.workers).toBe(1);

      // A crash with many jobs queued and in flight: every job settles, none hangs, and the
      // ones not yet sent run on the replacement.
      p1.crashNextWorkerForTest();
      const results = await Promise.allSettled(Array.from({ length: 500 }, () => p1.hashFile(f)));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed.length).toBeGreaterThan(0);
      for (const r of failed) expect((r.reason as NodeJS.ErrnoException).code).toBe('ERR_HASH_WORKER_CRASHED');
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok.length).toBeGreaterThan(0);
      for (const r of ok) expect(r.value).toEqual(want);
    } finally {
      await p1.close();
    }
  });

  it('fails every job, without respawning forever, when workers cannot start', async () => {
    const broken = join(dir, 'broken-worker.mjs');
    await writeFile(broken, "throw new Error('cannot load the BLAKE3 binding');\n");
    const p2 = new HashPool({ threads: 2, workerUrl: pathToFileURL(broken) });
    try {
      const f = await fileWith('unhashed', 'x');
      const results = await Promise.allSettled(Array.from({ length: 1000 }, () => p2.hashFile(f)));
      for (const r of results) {
        expect(r.status).toBe('rejected');
        const e = (r as PromiseRejectedResult).reason as NodeJS.ErrnoException;
        expect(e.code).toBe('ERR_HASH_WORKER_CRASHED');
        expect(e.message).toContain('cannot load the BLAKE3 binding');
      }
      expect(p2.workers).toBe(0);
    } finally {
      await p2.close();
    }
  });

  it('honours an abort signal (hashFile and hashFiles)', async () => {
    const p1 = new HashPool({ threads: 1 });
    try {
      const f = await fileWith('abort', 'x');
      const ac = new AbortController();
      ac.abort(new Error('not needed'));
      expect((await rejection(p1.hashFile(f, ac.signal))).message).toBe('not needed');
      const ac2 = new AbortController();
      const jobs = Array.from({ length: 200 }, () => p1.hashFile(f));
      const aborted = p1.hashFile(f, ac2.signal);
      ac2.abort(new Error('stop'));
      expect((await rejection(aborted)).message).toBe('stop');
      await Promise.all(jobs);
      const ac3 = new AbortController();
      const many = p1.hashFiles(Array.from({ length: 5000 }, () => f), ac3.signal);
      ac3.abort(new Error('enough'));
      expect((await rejection(many)).message).toBe('enough');
      expect(await p1.hashFiles([f, f], new AbortController().signal)).toEqual([await hashFile(f), await hashFile(f)]);
      expect(await p1.hashFiles([])).toEqual([]);
    } finally {
      await p1.close();
    }
  });

  it('close() fails pending jobs and terminates the workers', async () => {
    const p2 = new HashPool({ threads: 2 });
    const f = await fileWith('close', randomBytes(4 * CHUNK_SIZE));
    await p2.hashFiles([f, f, f, f]);
    expect(p2.workers).toBe(2);
    const pending = Promise.allSettled(Array.from({ length: 50 }, () => p2.hashFile(f)));
    await p2.close();
    expect(p2.workers).toBe(0);
    for (const r of await pending) {
      if (r.status === 'rejected') expect((r.reason as NodeJS.ErrnoException).code).toBe('ERR_HASH_POOL_CLOSED');
    }
    expect((await rejection(p2.hashFile(f))).code).toBe('ERR_HASH_POOL_CLOSED');
    await p2.close(); // idempotent
  });

  it('shared() is one pool until closed', async () => {
    const a = HashPool.shared();
    expect(HashPool.shared()).toBe(a);
    expect(a.threads).toBeGreaterThanOrEqual(1);
    await a.close();
    const b = HashPool.shared();
    expect(b).not.toBe(a);
    await b.close();
  });

  it('does not keep the process alive while idle', async () => {
    const f = await fileWith('exit', randomBytes(3 * CHUNK_SIZE));
    const script = join(dir, 'child.mts');
    await writeFile(
      script,
      [
        `import { HashPool } from ${JSON.stringify(pathToFileURL(POOL_MODULE).href)};`,
        // No await at top level: only the pool's refs keep the process alive until the result.
        `HashPool.shared().hashFiles([${JSON.stringify(f)}, ${JSON.stringify(f)}, ${JSON.stringify(f)}])`,
        `  .then((r) => { console.log(r[0].hash); globalThis.t0 = Date.now(); });`,
        `process.on('exit', () => console.log('idle ms', Date.now() - globalThis.t0));`,
      ].join('\n'),
    );
    const r = await execa('node', ['--import', 'tsx', script], { cwd: ROOT, timeout: 20_000 });
    const [hash, idle] = r.stdout.split('\n');
    expect(hash).toBe((await hashFile(f)).hash);
    expect(Number(idle?.replace('idle ms ', ''))).toBeLessThan(1000);
  });
});

describe('locating the worker script', () => {
  it('finds it next to the sources and, from a bundle chunk, in dist/', () => {
    expect(fileURLToPath(locateHashWorker())).toBe(join(ROOT, 'runner/fingerprint/hash-worker.js'));
    const seen: string[] = [];
    const inDist = (u: URL): boolean => {
      seen.push(u.href);
      return u.href === 'file:///pkg/dist/hash-worker.js';
    };
    expect(locateHashWorker('file:///pkg/dist/chunks/hash-pool-ABC123.js', inDist).href).toBe('file:///pkg/dist/hash-worker.js');
    expect(locateHashWorker('file:///pkg/dist/hpcflow.js', inDist).href).toBe('file:///pkg/dist/hash-worker.js');
    expect(() => locateHashWorker('file:///elsewhere/x.js', () => false)).toThrow(/hash worker script not found/);
  });

  it('works from the esbuild bundle: worker in dist/, pool in the entry file or in a chunk', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'hpcflow-bundle-'));
    try {
      // The bundle keeps packages external: give it the repo's node_modules, as an install would.
      await symlink(join(ROOT, 'node_modules'), join(tmp, 'node_modules'), 'dir');
      const out = join(tmp, 'dist');
      await execa('node', ['scripts/build.mjs', `--outdir=${out}`], { cwd: ROOT });
      expect(existsSync(join(out, 'hpcflow.js'))).toBe(true);
      expect(existsSync(join(out, 'hash-worker.js'))).toBe(true);
      const chunk = (await readdir(join(out, 'chunks'))).find((n) => n.endsWith('.js'));
      expect(chunk).toBeDefined();
      expect(fileURLToPath(locateHashWorker(pathToFileURL(join(out, 'chunks', chunk as string))))).toBe(join(out, 'hash-worker.js'));

      // Two probes bundled into the same layout as the CLI (same esbuild options): one imports
      // the pool lazily (a chunk under chunks/), one statically (inlined into the entry file).
      const src = join(tmp, 'src');
      await mkdir(src);
      const use = `console.log((await HashPool.shared().hashFile(process.argv[2])).hash);`;
      await writeFile(join(src, 'lazy.ts'), `const { HashPool } = await import(${JSON.stringify(POOL_MODULE)});\n${use}\n`);
      await writeFile(join(src, 'inline.ts'), `import { HashPool } from ${JSON.stringify(POOL_MODULE)};\n${use}\n`);
      const bundle = (name: string, entry: string): ReturnType<typeof build<{ metafile: true }>> =>
        build({
          entryPoints: { [name]: entry },
          outdir: out,
          bundle: true,
          splitting: true,
          format: 'esm',
          platform: 'node',
          target: 'node20',
          packages: 'external',
          chunkNames: 'chunks/[name]-[hash]',
          logLevel: 'silent',
          metafile: true,
        });
      const lazy = await bundle('probe-lazy', join(src, 'lazy.ts'));
      const inline = await bundle('probe-inline', join(src, 'inline.ts'));
      const holder = (m: { outputs: Record<string, { inputs: Record<string, unknown> }> }): string | undefined =>
        Object.entries(m.outputs).find(([, o]) => Object.keys(o.inputs).some((i) => i.endsWith('hash-pool.ts')))?.[0];
      expect(holder(lazy.metafile)).toMatch(/\/chunks\/[^/]+\.js$/);
      expect(holder(inline.metafile)).toMatch(/\/probe-inline\.js$/);

      const f = join(tmp, 'data.bin');
      await writeFile(f, randomBytes(CHUNK_SIZE + 5));
      const want = (await hashFile(f)).hash;
      for (const probe of ['probe-lazy.js', 'probe-inline.js']) {
        const p = await execa('node', [join(out, probe), f], { cwd: tmp, timeout: 20_000 });
        expect(p.stdout).toBe(want);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
