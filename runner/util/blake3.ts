import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as BlakeHash from '@napi-rs/blake-hash';
import type { Blake3Hasher as Blake3HasherType } from '@napi-rs/blake-hash';

/**
 * Native BLAKE3 from @napi-rs/blake-hash, loaded without its generic loader on glibc x86-64
 * Linux (the HPC norm): the loader detects musl with `process.report.getReport()`, which costs
 * ~5 ms of a no-op `status`'s 150 ms budget. Elsewhere, or if the direct load fails, the
 * package's own loader decides.
 */
const require = createRequire(import.meta.url);

type Module = typeof BlakeHash;

function load(): Module {
  if (process.platform === 'linux' && process.arch === 'x64' && !existsSync('/lib/ld-musl-x86_64.so.1')) {
    try {
      return require('@napi-rs/blake-hash-linux-x64-gnu') as Module;
    } catch {
      /* fall through to the generic loader */
    }
  }
  return require('@napi-rs/blake-hash') as Module;
}

export const Blake3Hasher: typeof Blake3HasherType = load().Blake3Hasher;
export type Blake3Hasher = Blake3HasherType;
