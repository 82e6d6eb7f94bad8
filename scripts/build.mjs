// Bundles runner/ into dist/ with esbuild. Why a bundle and not tsc's one-file-per-module
// output: Node's ESM loader spends ~40 ms resolving and linking ~80 small modules, a third of
// the 150 ms budget of a no-op `hpcflow status`. Code splitting keeps the lazily imported
// commands and libraries (dockerode, yaml, zod, isomorphic-git, ora) out of the start-up path.
// Type checking is `npm run typecheck` (tsc --noEmit); esbuild only strips types.
//
// The hashing worker (runner/fingerprint/hash-worker.js, plain JavaScript) is copied as is to
// dist/hash-worker.js, where HashPool finds it from the entry file or from dist/chunks/.
// `--outdir=DIR` builds elsewhere (tests of the bundle layout); DIR is replaced, like dist/.
import { build } from 'esbuild';
import { copyFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outArg = process.argv.find((a) => a.startsWith('--outdir='));
const outdir = outArg === undefined ? join(root, 'dist') : resolve(outArg.slice('--outdir='.length));

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { hpcflow: 'runner/cli/main.ts' },
  outdir,
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
await copyFile(join(root, 'runner/fingerprint/hash-worker.js'), join(outdir, 'hash-worker.js'));
