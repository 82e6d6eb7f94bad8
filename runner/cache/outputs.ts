/**
 * Saving stage outputs into the store and restoring them. A directory is stored as one object
 * per file plus a tree object holding its manifest (fingerprint/manifest.ts), so the record's
 * hash equals what PathHasher computes for the same directory on disk.
 */
import { realpathSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { HpcflowError } from '../errors.js';
import { digestManifest } from '../fingerprint/manifest.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { isInside, normalizeRel, realWorkspace, resolveRel } from '../fingerprint/paths.js';
import { walkDir } from '../fingerprint/walk.js';
import { ensureDir, removeQuiet, replacePath, tempSiblingPath } from '../util/fs-atomic.js';
import { mapLimit } from '../util/pool.js';
import type { OutputRecord } from './records.js';
import { outputRecordProblem } from './records.js';
import type { ContentStore } from './store.js';
import { missingObjectError } from './store.js';

const isExec = (abs: string): boolean => (statSync(abs).mode & 0o100) !== 0;

/**
 * Stores the file or directory at workspace-relative `rel` and returns its record. Symlinks are
 * followed under the same rules as PathHasher (inside the workspace only); the stored output
 * holds their content as regular files.
 */
export async function saveOutput(store: ContentStore, workspace: string, rel: string): Promise<OutputRecord> {
  const wsReal = realWorkspace(workspace);
  const path = normalizeRel(rel);
  const r = resolveRel(wsReal, path);
  if (r.kind === 'missing') throw new HpcflowError('HPCFLOW_USAGE', `cannot cache output "${path}": it does not exist`);
  if (r.kind === 'file') {
    const exec = isExec(r.real);
    const h = await store.putFile(r.real);
    return { path, kind: 'file', hash: h.hash, size: h.size, exec };
  }
  const files = walkDir(wsReal, r.real, path);
  const manifest = await mapLimit(files, store.concurrency, async (f): Promise<ManifestEntry> => {
    // Mode before content: the record must not claim an exec bit the stored bytes never had.
    const exec = isExec(f.abs);
    const h = await store.putFile(f.abs);
    return { path: f.rel, size: h.size, hash: h.hash, exec };
  });
  const d = digestManifest(manifest);
  await store.putBytes(d.text);
  return { path, kind: 'dir', hash: d.hash, size: d.size, files: d.files };
}

/**
 * The directory a restore will write into must not lead outside the workspace (a symlinked
 * parent would make us write elsewhere). Checks the nearest existing ancestor.
 */
function checkParent(wsReal: string, dest: string, path: string): void {
  // Terminates at the workspace root at the latest, which exists.
  for (let dir = dirname(dest); ; dir = dirname(dir)) {
    let real: string;
    try {
      real = realpathSync.native(dir);
    } catch {
      if (dirname(dir) === dir) return;
      continue;
    }
    if (!isInside(wsReal, real)) {
      throw new HpcflowError(
        'HPCFLOW_PATH_ESCAPE',
        `cannot restore output "${path}": its parent directory leads outside the workspace (to ${real})`,
      );
    }
    return;
  }
}

/**
 * Puts a recorded output back at its path, replacing what is there. Every object is checked
 * to exist before the workspace is touched (a missing one fails with HPCFLOW_CACHE_CORRUPT).
 * A directory is assembled in a hidden temp sibling and swapped in with renames, so an
 * interrupted restore leaves either the old output or the new one at the path, never a mix
 * (at worst a hidden `.<name>.tmp-*` / `.<name>.trash-*` sibling stays behind).
 */
export async function restoreOutput(store: ContentStore, workspace: string, record: OutputRecord): Promise<void> {
  const problem = outputRecordProblem(record);
  if (problem !== null) throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `invalid output record: ${problem}`);
  const wsReal = realWorkspace(workspace);
  const path = normalizeRel(record.path);
  const dest = join(wsReal, path);
  checkParent(wsReal, dest, path);

  if (record.kind === 'file') {
    if (!(await store.has(record.hash))) throw missingObjectError(record.hash, path);
    await store.materialize(record.hash, dest, { exec: record.exec });
    return;
  }

  if (!(await store.has(record.hash))) throw missingObjectError(record.hash, path);
  const entries = await store.readTree(record.hash);
  const present = await mapLimit(entries, store.concurrency * 4, (e) => store.has(e.hash));
  const missing = present.indexOf(false);
  if (missing !== -1) {
    const e = entries[missing] as ManifestEntry;
    throw missingObjectError(e.hash, posix.join(path, e.path));
  }

  await ensureDir(dirname(dest));
  const tmp = tempSiblingPath(dest);
  try {
    await mkdir(tmp);
    const dirs = new Set<string>();
    for (const e of entries) {
      const d = posix.dirname(e.path);
      if (d !== '.') dirs.add(d);
    }
    for (const d of dirs) await mkdir(join(tmp, d), { recursive: true });
    await mapLimit(entries, store.concurrency, (e) => store.copyObjectTo(e.hash, join(tmp, e.path), e.exec, e.size));
    await replacePath(tmp, dest);
  } catch (e) {
    await removeQuiet(tmp);
    throw e;
  }
}
