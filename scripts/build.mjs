// Bundles runner/ into dist/ with esbuild. Why a bundle and not tsc's one-file-per-module
// output: Node's ESM loader spends ~40 ms resolving and linking ~80 small modules, a third of
// the 150 ms budget of a no-op `hpcflow status`. Code splitting keeps the lazily imported
// commands and libraries (dockerode, yaml, zod, isomorphic-git, ora) out of the start-up path.
// Type checking is `npm run typecheck` (tsc --noEmit); esbuild only strips types.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

await rm(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { hpcflow: 'runner/cli/main.ts' },
  outdir: 'dist',
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
