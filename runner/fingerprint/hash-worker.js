// Worker thread of HashPool (hash-pool.ts). Plain ESM JavaScript, not TypeScript, so that the
// same file runs from the sources (vitest, tsx) and, copied to dist/hash-worker.js by
// scripts/build.mjs, from the bundle; it imports nothing from the project.
//
// Protocol, one message per batch of files:
//   in:  { id: number, paths: string[] }
//   out: { id: number, hashes: string[], sizes: number[], errors: (null | SerializedError)[] }
//     (parallel arrays: cheaper to clone than one object per file; `errors` is null when no file
//     of the batch failed)
//   in:  { crash: string }  test hook: throws an uncaught error, as a bug in the worker would.
//
// Each file is read synchronously in 1 MiB chunks and fed to native BLAKE3: this thread does
// nothing else, and with one worker per core the cores are busy anyway, so a blocking read costs
// nothing that an async read would overlap. The hash equals hashFile's (same algorithm, chunking
// does not change a BLAKE3 digest).
import { Buffer } from 'node:buffer';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { parentPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);

/** Same loading rule as runner/util/blake3.ts (skip the musl probe on glibc x86-64 Linux). */
function loadBlake3() {
  if (process.platform === 'linux' && process.arch === 'x64' && !existsSync('/lib/ld-musl-x86_64.so.1')) {
    try {
      return require('@napi-rs/blake-hash-linux-x64-gnu').Blake3Hasher;
    } catch {
      /* fall through to the generic loader */
    }
  }
  return require('@napi-rs/blake-hash').Blake3Hasher;
}

const Blake3Hasher = loadBlake3();
const CHUNK_SIZE = 1 << 20;
const buf = Buffer.allocUnsafeSlow(CHUNK_SIZE);

function hashOne(path) {
  const fd = openSync(path, 'r');
  const hasher = new Blake3Hasher();
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK_SIZE, size);
      if (n === 0) break;
      hasher.update(n === CHUNK_SIZE ? buf : buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return { hash: hasher.digest('hex'), size };
}

/** What survives postMessage of a Node system error, so the pool can rebuild it. */
function serializeError(e) {
  if (!(e instanceof Error)) return { message: String(e) };
  const out = { message: e.message, name: e.name };
  for (const k of ['code', 'errno', 'syscall', 'path']) if (e[k] !== undefined) out[k] = e[k];
  return out;
}

if (parentPort === null) throw new Error('hash-worker.js must run as a worker thread (see hash-pool.ts)');
const port = parentPort;

port.on('message', (msg) => {
  if (typeof msg.crash === 'string') throw new Error(msg.crash);
  const { id, paths } = msg;
  const hashes = new Array(paths.length);
  const sizes = new Array(paths.length);
  let errors = null;
  for (let i = 0; i < paths.length; i++) {
    try {
      const r = hashOne(paths[i]);
      hashes[i] = r.hash;
      sizes[i] = r.size;
    } catch (e) {
      errors ??= new Array(paths.length).fill(null);
      errors[i] = serializeError(e);
      hashes[i] = '';
      sizes[i] = 0;
    }
  }
  port.postMessage({ id, hashes, sizes, errors });
});
