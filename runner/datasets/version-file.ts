/**
 * A dataset version as one file in git: `datasets/<name>.yaml`.
 *
 *   # hpcflow dataset — …
 *   name: climate
 *   path: data/climate
 *   version: <BLAKE3 of the manifest text, 64 hex>
 *   files: 10000
 *   bytes: 123456789
 *   manifest: |2
 *     a/b.nc<TAB>1048576<TAB><blake3><TAB>-
 *     …
 *
 * Why one YAML file and not a header plus a separate manifest: a version is written with one
 * atomic rename, so no crash can leave a header that disagrees with its manifest; the manifest
 * block is the canonical directory manifest (fingerprint/manifest.ts) — one line per file, sorted
 * — so `git diff` of a new version shows exactly the files that changed; and the version id is
 * the same hash the runner computes for the directory on disk, so a stage that depends on the
 * dataset and a cached output directory share one identity. The file is valid YAML for editors,
 * but hpcflow reads the manifest block itself (a YAML parser would take seconds on 100,000
 * lines, and would normalise a carriage return inside a file name).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { Diagnostic } from '../model/diagnostic.js';
import { hashBytes } from '../fingerprint/hash-file.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { compareRel, formatManifest, parseManifest } from '../fingerprint/manifest.js';
import { normalizeRel } from '../fingerprint/paths.js';
import { parseYamlSource } from '../spec/yaml-source.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

/** Where dataset version files live, relative to the workspace. */
export const DATASETS_DIR = 'datasets';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const HASH_RE = /^[0-9a-f]{64}$/;
const MANIFEST_KEY = 'manifest: |2';
const HEADER_KEYS = ['name', 'path', 'version', 'files', 'bytes'] as const;

/** The header of a dataset version. */
export interface DatasetHeader {
  readonly name: string;
  /** Workspace-relative directory holding the working copy. */
  readonly path: string;
  /** BLAKE3 of the manifest text. */
  readonly version: string;
  readonly files: number;
  readonly bytes: number;
}

/** A whole dataset version: header, manifest entries and the manifest text they hash to. */
export interface DatasetVersion extends DatasetHeader {
  readonly entries: readonly ManifestEntry[];
  readonly text: string;
}

/** Throws HPCFLOW_USAGE unless `name` can be a dataset name (it becomes a file name and a git tag part). */
export function checkDatasetName(name: string): string {
  if (!NAME_RE.test(name) || name.endsWith('.lock')) {
    throw new HpcflowError('HPCFLOW_USAGE', `invalid dataset name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_" and "-" (up to 100 characters, starting with a letter or digit)',
    });
  }
  return name;
}

/** Workspace-relative path of a dataset's version file. */
export function versionFileRel(name: string): string {
  return `${DATASETS_DIR}/${checkDatasetName(name)}.yaml`;
}

/** The first 12 hex digits: how versions are shown (like a short git id). */
export const shortVersion = (v: string): string => v.slice(0, 12);

/** Builds a version from a header's name/path and the entries. */
export function makeVersion(name: string, path: string, entries: readonly ManifestEntry[]): DatasetVersion {
  const text = formatManifest(entries);
  let bytes = 0;
  for (const e of entries) bytes += e.size;
  const sorted = [...entries].sort((a, b) => compareRel(a.path, b.path));
  return { name, path, version: hashBytes(text), files: entries.length, bytes, entries: sorted, text };
}

/** The file text of a version. */
export function formatVersionFile(v: DatasetVersion): string {
  const indented = v.text === '' ? '' : `  ${v.text.slice(0, -1).split('\n').join('\n  ')}\n`;
  return (
    `# hpcflow dataset: one version of ${v.path}. Its history is this file's git history.\n` +
    '# manifest: one line per file, path<TAB>size<TAB>BLAKE3<TAB>x|- (executable), sorted;\n' +
    '# version is the BLAKE3 of the manifest text. Written by `hpcflow dataset`; do not edit by hand.\n' +
    `name: ${v.name}\n` +
    `path: ${JSON.stringify(v.path)}\n` +
    `version: ${v.version}\n` +
    `files: ${v.files}\n` +
    `bytes: ${v.bytes}\n` +
    `${MANIFEST_KEY}\n${indented}`
  );
}

function invalid(file: string, line: number, col: number, message: string, hint?: string): HpcflowError {
  const d: Diagnostic = { code: 'HPCFLOW_DATASET_INVALID', message, pos: { file, line, col }, ...(hint ? { hint } : {}) };
  return new HpcflowError('HPCFLOW_SPEC_INVALID', `${file}:${line}:${col}: ${message}`, { diagnostics: [d], ...(hint ? { hint } : {}) });
}

/**
 * Parses a version file. `file` is the name used in errors (workspace-relative, or `rev:path`
 * for a file read from git history). With `headerOnly`, the manifest block is not parsed
 * (a fast path for status: the header says everything when the directory hash matches).
 * Every problem is an HPCFLOW_SPEC_INVALID error pointing at file:line:col.
 */
export function parseVersionFile(text: string, file: string, opts: { headerOnly?: boolean; expectName?: string } = {}): DatasetVersion {
  const at = text.startsWith(`${MANIFEST_KEY}\n`) ? 0 : text.indexOf(`\n${MANIFEST_KEY}\n`);
  if (at === -1) {
    const line = text.split('\n').length;
    throw invalid(file, line, 1, `no "${MANIFEST_KEY}" block: this is not a dataset version file, or it was cut short`, 'restore it from git (git checkout -- <file>) or write it again with `hpcflow dataset commit`');
  }
  const headText = text.slice(0, at === 0 ? 0 : at + 1);
  const src = parseYamlSource(headText, file);
  if (src.diagnostics.length > 0) {
    const d = src.diagnostics[0] as Diagnostic;
    throw new HpcflowError('HPCFLOW_SPEC_INVALID', `${file}: ${d.message}`, { diagnostics: src.diagnostics });
  }
  const head = (src.value ?? {}) as Record<string, unknown>;
  if (typeof head !== 'object' || Array.isArray(head)) throw invalid(file, 1, 1, 'the header must be a mapping of name, path, version, files, bytes');
  for (const k of Object.keys(head)) {
    if (!(HEADER_KEYS as readonly string[]).includes(k)) {
      const p = src.keyPos([k]);
      throw invalid(file, p.line, p.col, `unknown key "${k}"`, `the header has ${HEADER_KEYS.join(', ')} and then the manifest block`);
    }
  }
  const req = (k: (typeof HEADER_KEYS)[number], ok: (v: unknown) => boolean, what: string): unknown => {
    const v = head[k];
    if (v === undefined) throw invalid(file, 1, 1, `missing "${k}" (${what})`);
    if (!ok(v)) {
      const p = src.pos([k]);
      throw invalid(file, p.line, p.col, `"${k}" must be ${what}`);
    }
    return v;
  };
  const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const name = req('name', (v) => typeof v === 'string' && NAME_RE.test(v), 'a dataset name (letters, digits, . _ -)') as string;
  if (opts.expectName !== undefined && name !== opts.expectName) {
    const p = src.pos(['name']);
    throw invalid(file, p.line, p.col, `name "${name}" does not match the file name (expected "${opts.expectName}")`, 'rename the file or fix the name');
  }
  const path = req('path', (v) => typeof v === 'string' && v !== '', 'a workspace-relative directory') as string;
  try {
    if (normalizeRel(path) !== path) throw new Error('not normalised');
  } catch (e) {
    const p = src.pos(['path']);
    const why = e instanceof HpcflowError ? e.message : `path "${path}" is not in normal form (no "./", "//" or trailing "/")`;
    throw invalid(file, p.line, p.col, why, 'a dataset lives in a directory inside the workspace');
  }
  const version = req('version', (v) => typeof v === 'string' && HASH_RE.test(v), '64 lowercase hex digits (BLAKE3)') as string;
  const files = req('files', isCount, 'a count') as number;
  const bytes = req('bytes', isCount, 'a byte count') as number;
  if (opts.headerOnly === true) return { name, path, version, files, bytes, entries: [], text: '' };

  const headLines = headText === '' ? 0 : headText.split('\n').length - 1;
  const body = text.slice(at === 0 ? MANIFEST_KEY.length + 1 : at + MANIFEST_KEY.length + 2);
  if (body !== '' && !body.endsWith('\n')) {
    throw invalid(file, headLines + 1 + countLines(body) + 1, 1, 'the manifest is cut short (no final newline)', 'restore the file from git');
  }
  // Every line indented by two spaces; the manifest is the body without them. Checked and
  // stripped in one pass each, without an array of lines: a version may list millions of files.
  for (let start = 0, i = 0; start < body.length; i++) {
    if (!body.startsWith('  ', start)) {
      throw invalid(file, headLines + 2 + i, 1, 'manifest lines must be indented by two spaces (and the manifest must be the last key)');
    }
    start = body.indexOf('\n', start) + 1;
  }
  // (Not a multiline /^  /gm: `^` would also match after a carriage return inside a file name.)
  const manifest = body.slice(2).replace(/\n {2}/g, '\n');
  let entries: ManifestEntry[];
  try {
    entries = parseManifest(manifest);
  } catch (e) {
    const m = /^line (\d+): (.*)$/.exec((e as Error).message);
    const line = m ? headLines + 1 + Number(m[1]) : headLines + 1;
    throw invalid(file, line, 3, `bad manifest entry: ${m ? m[2] : (e as Error).message}`, 'manifest paths are relative, without "..", one per line, sorted');
  }
  const actual = hashBytes(manifest);
  if (actual !== version) {
    const p = src.pos(['version']);
    throw invalid(file, p.line, p.col, `version ${shortVersion(version)} does not match the manifest below it (which hashes to ${shortVersion(actual)})`, 'the file was edited by hand or merged badly: restore it from git, or run `hpcflow dataset commit` to record the files on disk');
  }
  let sum = 0;
  for (const e of entries) sum += e.size;
  if (entries.length !== files || sum !== bytes) {
    const p = src.pos(['files']);
    throw invalid(file, p.line, p.col, `files/bytes (${files}/${bytes}) do not match the manifest (${entries.length}/${sum})`);
  }
  return { name, path, version, files, bytes, entries, text: manifest };
}

/** The number of LF-terminated lines in `s`. */
function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** Reads `datasets/<name>.yaml`; null when it does not exist. */
export function readVersionFile(root: string, name: string, opts: { headerOnly?: boolean } = {}): DatasetVersion | null {
  const rel = versionFileRel(name);
  let text: string;
  try {
    text = readFileSync(join(root, rel), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseVersionFile(text, rel, { ...opts, expectName: name });
}

/** Like {@link readVersionFile} but a missing dataset is a usage error naming the known ones. */
export function requireVersionFile(root: string, name: string, known: readonly string[], opts: { headerOnly?: boolean } = {}): DatasetVersion {
  const v = readVersionFile(root, name, opts);
  if (v !== null) return v;
  throw new HpcflowError('HPCFLOW_USAGE', `no dataset "${name}" (no ${versionFileRel(name)})`, {
    hint: known.length > 0 ? `datasets here: ${known.join(', ')}` : 'create one with `hpcflow dataset add <dir>`',
  });
}

/** Writes a version file in one atomic rename. */
export async function writeVersionFile(root: string, v: DatasetVersion): Promise<void> {
  await writeFileAtomic(join(root, versionFileRel(v.name)), formatVersionFile(v));
}
