/**
 * The working copy of a dataset, as a manifest. Unchanged files are answered from a stat cache
 * (device, inode, size, mtime in ns; or size only when lenient) without reading them, so the
 * status of an unchanged 10,000-file dataset costs a directory walk and 10,000 stats.
 *
 * The dataset directory is the boundary for symlinks: a link that leads out of the dataset
 * (even to elsewhere in the workspace) is rejected, because the version could not be checked
 * out again as it was.
 */
import type { BigIntStats } from 'node:fs';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { FileHash } from '../fingerprint/hash-file.js';
import { SMALL_FILE_MAX, hashFile, hashFileSync } from '../fingerprint/hash-file.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { digestManifest } from '../fingerprint/manifest.js';
import { realWorkspace, resolveRel } from '../fingerprint/paths.js';
import type { StatCache } from '../fingerprint/stat-cache.js';
import { walkDir } from '../fingerprint/walk.js';
import { mapLimit } from '../util/pool.js';

/** Hashes files that the stat cache could not answer; see {@link defaultHashMany}. */
export type HashMany = (files: readonly { readonly abs: string; readonly size: number }[]) => Promise<FileHash[]>;

/** A dataset's working copy. */
export type WorkingCopy =
  | { readonly kind: 'missing' }
  | {
      readonly kind: 'dir';
      /** Real path of the directory. */
      readonly real: string;
      readonly entries: readonly ManifestEntry[];
      /** Where to read each entry's content (link targets for symlinked files). */
      readonly abs: ReadonlyMap<string, string>;
      /** Version id the directory would have (BLAKE3 of its manifest). */
      readonly version: string;
      readonly bytes: number;
      /** Files read because the stat cache could not vouch for them. */
      readonly hashed: number;
      readonly hashedBytes: number;
    };

const EXEC_BIT = 0o100n;

/** In-process hashing: small files synchronously, large ones with overlapped async reads. */
export const defaultHashMany: HashMany = (files) =>
  mapLimit(files, 4, async (f) => (f.size <= SMALL_FILE_MAX ? hashFileSync(f.abs) : hashFile(f.abs)));

/**
 * Scans the dataset directory `rel` (workspace-relative) of dataset `name`. `statCache` is
 * keyed by dataset-relative paths and records what was hashed.
 */
export async function scanWorkingCopy(
  root: string,
  name: string,
  rel: string,
  statCache: StatCache,
  hashMany: HashMany = defaultHashMany,
): Promise<WorkingCopy> {
  const wsReal = realWorkspace(root);
  const r = resolveRel(wsReal, rel);
  if (r.kind === 'missing') return { kind: 'missing' };
  if (r.kind === 'file') {
    throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}": ${rel} is a file; a dataset is a directory`, { hint: 'move the file into a directory and add that' });
  }
  const listed = walkDir(r.real, r.real, rel, `the dataset "${name}" (${rel})`);
  const entries: ManifestEntry[] = [];
  const abs = new Map<string, string>();
  const misses: { i: number; rel: string; abs: string; size: number; st: BigIntStats; at: number }[] = [];
  for (const f of listed) {
    const at = Date.now();
    const st = statSync(f.abs, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) continue; // vanished since the listing
    const exec = (st.mode & EXEC_BIT) !== 0n;
    const size = Number(st.size);
    abs.set(f.rel, f.abs);
    const hit = statCache.lookup(f.rel, st);
    if (hit !== undefined) {
      entries.push({ path: f.rel, size, hash: hit, exec });
    } else {
      misses.push({ i: entries.length, rel: f.rel, abs: f.abs, size, st, at });
      entries.push({ path: f.rel, size, hash: '', exec });
    }
  }
  let hashedBytes = 0;
  if (misses.length > 0) {
    const hashes = await hashMany(misses);
    for (const [k, m] of misses.entries()) {
      const h = hashes[k] as FileHash;
      hashedBytes += h.size;
      entries[m.i] = { ...(entries[m.i] as ManifestEntry), hash: h.hash, size: h.size };
      // A size mismatch means the file changed while we read it: remember nothing about it.
      if (h.size === m.size) statCache.record(m.rel, m.st, h.hash, m.at);
    }
  }
  statCache.prune();
  const d = digestManifest(entries);
  return { kind: 'dir', real: r.real, entries, abs, version: d.hash, bytes: d.size, hashed: misses.length, hashedBytes };
}

/** Where a dataset's stat cache lives (per dataset, so one dataset's status loads only its entries). */
export const statCachePath = (root: string, name: string): string => join(root, '.hpcflow', 'tmp', 'datasets', `${name}.stat.json`);
