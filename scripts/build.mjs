// Bundles runner/ into dist/ with esbuild. Why a bundle and not tsc's one-file-per-module
// output: Node's ESM loader spends ~40 ms resolving and linking ~80 small modules, a third of
// the 150 ms budget of a no-op `hpcflow status`. Code splitting keeps the lazily imported
// commands and libraries (dockerode, yaml, zod, isomorphic-git, ora) out of the start-up path.
// Type checking is `npm run typecheck` (tsc --noEmit); esbuild only strips types.
//
// The hashing worker (runner/fingerprint/hash-worker.js, plain JavaScript) is copied as is to
// dist/hash-worker.js, where HashPool finds it from the entry file or from dist/chunks/.
// `--outdir=DIR` builds elsewhere (tests of the bundle layout).
//
// The build goes to a temporary directory first and is then moved into place file by file:
// content-hashed chunks are added next to the old ones, then the entry file is renamed over the
// old entry. A CLI process started from the old build (a test still running while another run's
// setup rebuilds) still finds its lazily imported chunks; old chunks are removed once they are
// an hour old and no longer part of the build.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outArg = process.argv.find((a) => a.startsWith('--outdir='));
const outdir = outArg === undefined ? join(root, 'dist') : resolve(outArg.slice('--outdir='.length));

const tmp = `${outdir}.tmp-${process.pid}`;
await rm(tmp, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { hpcflow: 'runner/cli/main.ts' },
  outdir: tmp,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
});
await copyFile(join(root, 'runner/fingerprint/hash-worker.js'), join(tmp, 'hash-worker.js'));

await mkdir(join(outdir, 'chunks'), { recursive: true });
const fresh = new Set(await readdir(join(tmp, 'chunks')));
for (const name of fresh) await rename(join(tmp, 'chunks', name), join(outdir, 'chunks', name));
// The entry last: once it is in place, new processes load the new build.
for (const name of await readdir(tmp)) {
  if (name !== 'chunks') await rename(join(tmp, name), join(outdir, name));
}
await rm(tmp, { recursive: true, force: true });
const cutoff = Date.now() - 60 * 60_000;
for (const name of await readdir(join(outdir, 'chunks'))) {
  if (fresh.has(name)) continue;
  const p = join(outdir, 'chunks', name);
  if ((await stat(p)).mtimeMs < cutoff) await rm(p, { force: true });
}
