/**
 * The directory manifest: one line per file, `<relpath>\t<size>\t<hash>\t<x|->\n`, sorted by
 * path. A directory's hash is the BLAKE3 of this text, both for dependencies (PathHasher) and
 * for cached outputs (the tree object in the store is exactly this text), so a directory on
 * disk can be compared with a cache record without reading the store.
 *
 * Paths are escaped (`\\` → `\\\\`, TAB → `\\t`, LF → `\\n`) so that no file name can forge
 * extra fields or lines: the text ↔ entries mapping is one-to-one. Ordinary names are unchanged.
 */
import { hashBytes } from './hash-file.js';

/** One file of a directory manifest. */
export interface ManifestEntry {
  /** POSIX path relative to the directory. */
  readonly path: string;
  readonly size: number;
  /** BLAKE3 of the content, 64 hex. */
  readonly hash: string;
  /** Owner-executable bit. */
  readonly exec: boolean;
}

/** A directory's identity as derived from its manifest. */
export interface ManifestDigest {
  readonly hash: string;
  /** Total bytes of all files. */
  readonly size: number;
  readonly files: number;
  /** The manifest text the hash is computed over. */
  readonly text: string;
}

/** The manifest order: UTF-16 code unit order of the whole relative path (byte order for ASCII). */
export function compareRel(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const escapePath = (p: string): string =>
  /[\\\t\n]/.test(p) ? p.replace(/[\\\t\n]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : '\\n')) : p;

function unescapePath(p: string): string {
  if (!p.includes('\\')) return p;
  return p.replace(/\\(.)/g, (_m, c: string) => {
    if (c === '\\') return '\\';
    if (c === 't') return '\t';
    if (c === 'n') return '\n';
    throw new Error(`invalid escape \\${c}`);
  });
}

/** Formats entries (in any order) as canonical manifest text. */
export function formatManifest(entries: readonly ManifestEntry[]): string {
  const sorted = [...entries].sort((a, b) => compareRel(a.path, b.path));
  let text = '';
  for (const e of sorted) text += `${escapePath(e.path)}\t${e.size}\t${e.hash}\t${e.exec ? 'x' : '-'}\n`;
  return text;
}

/** Hash, totals and text of a directory with these files. */
export function digestManifest(entries: readonly ManifestEntry[]): ManifestDigest {
  const text = formatManifest(entries);
  let size = 0;
  for (const e of entries) size += e.size;
  return { hash: hashBytes(text), size, files: entries.length, text };
}

const HASH_RE = /^[0-9a-f]{64}$/;
const SIZE_RE = /^(0|[1-9][0-9]*)$/;

function checkPath(p: string): void {
  // No empty, "." or ".." segment — tested on the whole string: a split per path would allocate
  // an array and its segments for every line of a million-file manifest.
  if (
    p === '' ||
    p.startsWith('/') ||
    p.endsWith('/') ||
    p.includes('\0') ||
    p.includes('//') ||
    p === '.' ||
    p === '..' ||
    p.startsWith('./') ||
    p.startsWith('../') ||
    p.endsWith('/.') ||
    p.endsWith('/..') ||
    p.includes('/./') ||
    p.includes('/../')
  ) {
    throw new Error(`invalid path ${JSON.stringify(p)}`);
  }
}

/**
 * Parses canonical manifest text. Throws a plain Error on anything non-canonical (bad fields,
 * unsafe or duplicate paths, wrong order), so a tampered or truncated tree object is never used
 * to write files; callers wrap it into HPCFLOW_CACHE_CORRUPT.
 */
export function parseManifest(text: string): ManifestEntry[] {
  if (text !== '' && !text.endsWith('\n')) throw new Error('manifest is truncated (no final newline)');
  // One pass with indexOf, no split: a million-line manifest (a dataset version) would otherwise
  // allocate an array of lines and four field strings per line on top of the entries themselves.
  // The path and hash kept in each entry are slices of `text`.
  const out: ManifestEntry[] = [];
  let prev: string | undefined;
  let line = 0;
  for (let start = 0; start < text.length; ) {
    line += 1;
    const end = text.indexOf('\n', start);
    const t1 = text.indexOf('\t', start);
    const t2 = t1 === -1 || t1 > end ? -1 : text.indexOf('\t', t1 + 1);
    const t3 = t2 === -1 || t2 > end ? -1 : text.indexOf('\t', t2 + 1);
    const t4 = t3 === -1 || t3 > end ? -1 : text.indexOf('\t', t3 + 1);
    if (t3 === -1 || t3 > end || (t4 !== -1 && t4 < end)) throw new Error(`line ${line}: expected 4 tab-separated fields`);
    let path: string;
    try {
      path = unescapePath(text.slice(start, t1));
      checkPath(path);
    } catch (e) {
      throw new Error(`line ${line}: ${(e as Error).message}`);
    }
    const size = text.slice(t1 + 1, t2);
    const hash = text.slice(t2 + 1, t3);
    const flag = end - t3 === 2 ? text[t3 + 1] : '';
    if (!SIZE_RE.test(size) || !HASH_RE.test(hash) || (flag !== 'x' && flag !== '-')) {
      throw new Error(`line ${line}: malformed size, hash or mode`);
    }
    if (prev !== undefined && compareRel(prev, path) >= 0) throw new Error(`line ${line}: paths not sorted or duplicated`);
    prev = path;
    out.push({ path, size: Number(size), hash, exec: flag === 'x' });
    start = end + 1;
  }
  return out;
}
