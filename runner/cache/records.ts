/** What the cache remembers about one output of a stage run. */

/**
 * One output as stored: a file object, or a directory whose `hash` is its tree object (the
 * manifest, see fingerprint/manifest.ts) and therefore equal to `PathHasher.hash` of the same
 * directory on disk.
 */
export type OutputRecord =
  | { readonly path: string; readonly kind: 'file'; readonly hash: string; readonly size: number; readonly exec: boolean }
  | { readonly path: string; readonly kind: 'dir'; readonly hash: string; readonly size: number; readonly files: number };

const HASH_RE = /^[0-9a-f]{64}$/;
const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Returns what is wrong with `x` as an {@link OutputRecord}, or null when it is one. */
export function outputRecordProblem(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  if (typeof r.path !== 'string' || r.path === '') return 'path is not a non-empty string';
  if (typeof r.hash !== 'string' || !HASH_RE.test(r.hash)) return `output ${r.path}: hash is not 64 hex digits`;
  if (!isCount(r.size)) return `output ${r.path}: size is not a non-negative integer`;
  if (r.kind === 'file') return typeof r.exec === 'boolean' ? null : `output ${r.path}: exec is not a boolean`;
  if (r.kind === 'dir') return isCount(r.files) ? null : `output ${r.path}: files is not a non-negative integer`;
  return `output ${r.path}: kind is neither "file" nor "dir"`;
}
