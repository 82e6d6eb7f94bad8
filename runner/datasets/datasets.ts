/**
 * Versioned datasets: the operations behind `hpcflow dataset …`.
 *
 * A version is `datasets/<name>.yaml` (version-file.ts); the bytes live in the content store
 * shared with stage outputs (one object per file, plus the manifest text as a tree object, so
 * a version can be fetched by its id alone), and on remotes. Every operation that writes is
 * safe to interrupt and re-run: objects appear by rename only, the version file is written in
 * one rename after every object it names is stored, and checkout replaces files one rename at
 * a time and only after all objects it needs are present.
 */
import { lstatSync, readdirSync, realpathSync, rmdirSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import type { ContentStore } from '../cache/store.js';
import type { LinkKind } from '../config/workspace-config.js';
import { HpcflowError } from '../errors.js';
import type { FileHash } from '../fingerprint/hash-file.js';
import { hashFileAdaptive, SMALL_FILE_MAX } from '../fingerprint/hash-file.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { followLink, isInside, normalizeRel, realWorkspace } from '../fingerprint/paths.js';
import { StatCache } from '../fingerprint/stat-cache.js';
import { commitFiles, fileHistory, findGitRoot, listTags, readFileAt, repoPath, resolveRev } from '../git/repo.js';
import { removeQuiet, tempSiblingPath } from '../util/fs-atomic.js';
import { mapLimit } from '../util/pool.js';
import type { ManifestDiff } from './diff.js';
import { diffManifests, isEmptyDiff } from './diff.js';
import type { HashMany, WorkingCopy } from './scan.js';
import { defaultHashMany, scanWorkingCopy, statCachePath } from './scan.js';
import type { DatasetVersion } from './version-file.js';
import {
  DATASETS_DIR,
  checkDatasetName,
  makeVersion,
  parseVersionFile,
  readVersionFile,
  requireVersionFile,
  shortVersion,
  versionFileRel,
  writeVersionFile,
} from './version-file.js';

/** What the dataset operations need from their surroundings. */
export interface DatasetContext {
  readonly root: string;
  readonly store: ContentStore;
  /** Unchanged-file detection by path + size only (for filesystems whose mtimes drift). */
  readonly lenient: boolean;
  /** Link kinds for checkout, in order of preference. */
  readonly link: readonly LinkKind[];
  /** Commit version files to git (when the workspace is in a repository). */
  readonly gitCommit: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly hashMany?: HashMany;
  /** Files copied into / out of the store at once. */
  readonly concurrency?: number;
}

/** Names of the datasets defined in the workspace, sorted. */
export function listDatasets(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(join(root, DATASETS_DIR));
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.yaml') && !n.startsWith('.')).map((n) => n.slice(0, -5)).sort();
}

async function withStatCache<T>(ctx: DatasetContext, name: string, fn: (c: StatCache) => Promise<T>): Promise<T> {
  const cache = StatCache.load(statCachePath(ctx.root, name), { lenient: ctx.lenient });
  const r = await fn(cache);
  await cache.save().catch(() => undefined); // losing the stat cache only costs re-hashing
  return r;
}

/** Scans a dataset's working copy (stat cache per dataset). */
export function scan(ctx: DatasetContext, name: string, path: string): Promise<WorkingCopy> {
  return withStatCache(ctx, name, (c) => scanWorkingCopy(ctx.root, name, path, c, ctx.hashMany ?? defaultHashMany));
}

/**
 * Stores every file of the working copy whose object is not in the store yet, and the manifest
 * as a tree object. A file that changed while being stored fails the operation (run it again).
 */
async function storeWorkingCopy(ctx: DatasetContext, name: string, wc: Extract<WorkingCopy, { kind: 'dir' }>, skip: ReadonlySet<string>): Promise<number> {
  let stored = 0;
  // The stored copy is re-hashed (what is stored is what was hashed); large copies go through
  // hashMany, i.e. the worker pool when there is one, small ones are cheaper on this thread.
  const hashMany = ctx.hashMany;
  const hashCopy =
    hashMany === undefined ? undefined : async (abs: string, size: number) => (size > SMALL_FILE_MAX ? ((await hashMany([{ abs, size }]))[0] as FileHash) : hashFileAdaptive(abs, size));
  await mapLimit(wc.entries, ctx.concurrency ?? 4, async (e) => {
    if (skip.has(e.hash)) return;
    const abs = wc.abs.get(e.path) as string;
    const got = await ctx.store.putFile(abs, { hash: e.hash, size: e.size }, hashCopy);
    if (got.hash !== e.hash) {
      throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}": ${e.path} changed while it was being stored`, { hint: 'wait until nothing writes to the dataset, then run the command again' });
    }
    stored++;
  });
  return stored;
}

/** What add/commit did. */
export interface CommitResult {
  readonly name: string;
  readonly version: string;
  readonly previous: string | null;
  readonly files: number;
  readonly bytes: number;
  /** Files read and hashed (not vouched for by the stat cache). */
  readonly hashed: number;
  readonly diff: ManifestDiff | null;
  /** The git commit made, if any. */
  readonly gitCommit: string | null;
  /** Nothing changed: no new version. */
  readonly unchanged: boolean;
}

async function gitCommitPaths(ctx: DatasetContext, rels: readonly string[], message: string): Promise<string | null> {
  if (!ctx.gitCommit) return null;
  const dir = await findGitRoot(ctx.root);
  if (dir === null) return null;
  return commitFiles(dir, rels.map((r) => join(ctx.root, r)), message, ctx.env);
}

/** Makes sure `git status` never offers the dataset's bytes for committing. */
async function ignoreInGit(root: string, path: string): Promise<boolean> {
  const file = join(root, '.gitignore');
  const line = `/${path}`;
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text.split('\n').some((l) => l.trim() === line || l.trim() === `${line}/`)) return false;
  await appendFile(file, `${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`);
  return true;
}

/** Checks that a new dataset's directory overlaps no other dataset and no hpcflow/git internals. */
function checkPathFree(root: string, name: string, path: string): void {
  const top = path.split('/')[0];
  if (top === '.hpcflow' || top === '.git' || top === DATASETS_DIR || top === 'pipelines') {
    throw new HpcflowError('HPCFLOW_USAGE', `a dataset cannot live in ${top}/`, { hint: 'keep the data in its own directory, e.g. data/<name>' });
  }
  for (const other of listDatasets(root)) {
    if (other === name) continue;
    const v = readVersionFile(root, other, { headerOnly: true });
    if (v === null) continue;
    if (v.path === path || v.path.startsWith(`${path}/`) || path.startsWith(`${v.path}/`)) {
      throw new HpcflowError('HPCFLOW_USAGE', `${path} overlaps dataset "${other}" (${v.path})`, { hint: 'datasets must not contain each other' });
    }
  }
}

/** `dataset add <dir> [--name]`: the first version of a new dataset. */
export async function addDataset(ctx: DatasetContext, pathArg: string, nameArg?: string): Promise<CommitResult> {
  const path = normalizeRel(pathArg);
  const name = checkDatasetName(nameArg ?? posix.basename(path));
  if (readVersionFile(ctx.root, name, { headerOnly: true }) !== null) {
    throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}" already exists (${versionFileRel(name)})`, { hint: `record changes with \`hpcflow dataset commit ${name}\`, or pick another --name` });
  }
  checkPathFree(ctx.root, name, path);
  const wc = await scan(ctx, name, path);
  if (wc.kind === 'missing') throw new HpcflowError('HPCFLOW_USAGE', `${path} does not exist`);
  await storeWorkingCopy(ctx, name, wc, new Set());
  const v = makeVersion(name, path, wc.entries);
  await ctx.store.putBytes(v.text);
  await mkdir(join(ctx.root, DATASETS_DIR), { recursive: true });
  await writeVersionFile(ctx.root, v);
  const changedIgnore = await ignoreInGit(ctx.root, path);
  const gitCommit = await gitCommitPaths(ctx, [versionFileRel(name), ...(changedIgnore ? ['.gitignore'] : [])], `dataset ${name}: add ${path} (${v.files} files) as version ${shortVersion(v.version)}`);
  return { name, version: v.version, previous: null, files: v.files, bytes: v.bytes, hashed: wc.hashed, diff: null, gitCommit, unchanged: false };
}

/** `dataset commit <name> [-m]`: record the working copy as a new version. */
export async function commitDataset(ctx: DatasetContext, name: string, message?: string): Promise<CommitResult> {
  const cur = requireVersionFile(ctx.root, name, listDatasets(ctx.root));
  const wc = await scan(ctx, name, cur.path);
  if (wc.kind === 'missing') {
    throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}": ${cur.path} does not exist, nothing to commit`, { hint: `materialise it with \`hpcflow dataset checkout ${name}\` (or pull)` });
  }
  if (wc.version === cur.version) {
    return { name, version: cur.version, previous: cur.version, files: cur.files, bytes: cur.bytes, hashed: wc.hashed, diff: null, gitCommit: null, unchanged: true };
  }
  const diff = diffManifests(cur.entries, wc.entries);
  // Files whose content the previous version already has are in the store (unless gc'd: putFile
  // of a known hash only refreshes an existing object, so storing them again is cheap).
  await storeWorkingCopy(ctx, name, wc, new Set());
  const v = makeVersion(name, cur.path, wc.entries);
  await ctx.store.putBytes(v.text);
  await writeVersionFile(ctx.root, v);
  const summary = `+${diff.added.length} -${diff.removed.length} ~${diff.modified.length}`;
  const gitCommit = await gitCommitPaths(ctx, [versionFileRel(name)], `${message ?? `dataset ${name}: version ${shortVersion(v.version)}`}\n\ndataset ${name} ${shortVersion(cur.version)} → ${shortVersion(v.version)} (${summary} files)`);
  return { name, version: v.version, previous: cur.version, files: v.files, bytes: v.bytes, hashed: wc.hashed, diff, gitCommit, unchanged: false };
}

/** One dataset's state for `dataset status`. */
export interface DatasetStatus {
  readonly name: string;
  readonly path: string;
  readonly version: string;
  readonly state: 'clean' | 'modified' | 'missing';
  readonly diff: ManifestDiff | null;
  readonly hashed: number;
}

/**
 * Compares the working copy with the version file. When the directory hashes to the recorded
 * version, the manifest block is not even parsed (the fast path of an unchanged dataset).
 */
export async function datasetStatus(ctx: DatasetContext, name: string): Promise<DatasetStatus> {
  const head = requireVersionFile(ctx.root, name, listDatasets(ctx.root), { headerOnly: true });
  const wc = await scan(ctx, name, head.path);
  if (wc.kind === 'missing') return { name, path: head.path, version: head.version, state: 'missing', diff: null, hashed: 0 };
  if (wc.version === head.version) return { name, path: head.path, version: head.version, state: 'clean', diff: null, hashed: wc.hashed };
  const cur = requireVersionFile(ctx.root, name, []);
  return { name, path: head.path, version: head.version, state: 'modified', diff: diffManifests(cur.entries, wc.entries), hashed: wc.hashed };
}

interface FileVersionAt {
  readonly oid: string;
  readonly text: string;
}

/** A dataset version named by `name[@rev]`. */
export interface ResolvedVersion {
  readonly name: string;
  readonly version: DatasetVersion;
  /** Where it came from, for messages: "working tree", a tag, a commit. */
  readonly source: string;
  /** The git commit it was read from, if any. */
  readonly commit: string | null;
}

/** The git tag name of a dataset tag. */
export const datasetTagRef = (name: string, tag: string): string => `dataset/${name}/${tag}`;

/** Splits `name@rev`. */
export function parseSpec(spec: string): { name: string; rev: string | null } {
  const at = spec.indexOf('@');
  const name = at === -1 ? spec : spec.slice(0, at);
  const rev = at === -1 ? null : spec.slice(at + 1);
  checkDatasetName(name);
  if (rev === '') throw new HpcflowError('HPCFLOW_USAGE', `"${spec}": nothing after @`, { hint: 'name@<version id>, name@<tag>, or name@<git commit/branch>' });
  return { name, rev };
}

/**
 * Resolves `name`, `name@<dataset tag>`, `name@<version id prefix>` (searched in the version
 * file's git history), or `name@<git revision>`.
 */
export async function resolveVersion(ctx: Pick<DatasetContext, 'root' | 'store'>, spec: string): Promise<ResolvedVersion> {
  const { name, rev } = parseSpec(spec);
  if (rev === null) return { name, version: requireVersionFile(ctx.root, name, listDatasets(ctx.root)), source: 'working tree', commit: null };
  const dir = await findGitRoot(ctx.root);
  const fileRel = versionFileRel(name);
  const atCommit = async (oid: string, source: string): Promise<ResolvedVersion> => {
    const path = repoPath(dir as string, join(ctx.root, fileRel));
    const text = await readFileAt(dir as string, oid, path);
    if (text === null) throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}" does not exist at ${source} (${oid.slice(0, 12)})`);
    return { name, version: parseVersionFile(text, `${oid.slice(0, 12)}:${fileRel}`, { expectName: name }), source, commit: oid };
  };
  if (dir !== null) {
    const tagged = await resolveRev(dir, `refs/tags/${datasetTagRef(name, rev)}`);
    if (tagged !== null) return atCommit(tagged, `tag ${rev}`);
  }
  if (/^[0-9a-f]{6,64}$/.test(rev)) {
    const cur = readVersionFile(ctx.root, name);
    if (cur?.version.startsWith(rev) === true) return { name, version: cur, source: 'working tree', commit: null };
    if (dir !== null) {
      const hist = await fileHistory(dir, repoPath(dir, join(ctx.root, fileRel)));
      const matches = new Map<string, FileVersionAt>();
      for (const c of hist) {
        if (c.text === null) continue;
        const v = parseVersionFile(c.text, `${c.oid.slice(0, 12)}:${fileRel}`, { headerOnly: true });
        if (v.version.startsWith(rev) && !matches.has(v.version)) matches.set(v.version, { oid: c.oid, text: c.text });
      }
      if (matches.size > 1) throw new HpcflowError('HPCFLOW_USAGE', `version prefix ${rev} of "${name}" is ambiguous (${[...matches.keys()].map(shortVersion).join(', ')})`);
      const only = [...matches.values()][0];
      if (only !== undefined) return { name, version: parseVersionFile(only.text, `${only.oid.slice(0, 12)}:${fileRel}`), source: `version ${rev}`, commit: only.oid };
    }
    // Not in history: a version fetched into the store by id (its manifest is a tree object).
    if (rev.length === 64 && (await ctx.store.has(rev))) {
      const entries = await ctx.store.readTree(rev);
      const cur2 = readVersionFile(ctx.root, name, { headerOnly: true });
      if (cur2 !== null) return { name, version: makeVersion(name, cur2.path, entries), source: `version ${shortVersion(rev)} (from the store)`, commit: null };
    }
  }
  if (dir !== null) {
    const oid = await resolveRev(dir, rev);
    if (oid !== null) return atCommit(oid, rev);
  }
  throw new HpcflowError('HPCFLOW_USAGE', `"${spec}": no dataset tag, version or git revision "${rev}"`, {
    hint: `see the versions with \`hpcflow dataset log ${name}\``,
  });
}

/** What checkout did. */
export interface CheckoutResult {
  readonly name: string;
  readonly version: string;
  readonly source: string;
  readonly written: number;
  readonly removed: number;
  readonly unchanged: number;
  readonly links: Readonly<Partial<Record<LinkKind, number>>>;
}

/**
 * `dataset checkout name[@rev]`: makes the working copy exactly that version and records it as
 * the dataset's current version. Refuses to overwrite uncommitted changes unless `force`.
 * Fails before touching anything when an object is not in the store (pull first).
 */
export async function checkoutDataset(ctx: DatasetContext, spec: string, opts: { force?: boolean } = {}): Promise<CheckoutResult> {
  const target = await resolveVersion(ctx, spec);
  const { name } = target;
  const cur = readVersionFile(ctx.root, name);
  const path = cur?.path ?? target.version.path;
  const wsReal = realWorkspace(ctx.root);
  const wc = await scan(ctx, name, path);
  const have: readonly ManifestEntry[] = wc.kind === 'dir' ? wc.entries : [];
  if (opts.force !== true && cur !== null && wc.kind === 'dir' && wc.version !== cur.version) {
    const d = diffManifests(cur.entries, wc.entries);
    throw new HpcflowError('HPCFLOW_USAGE', `dataset "${name}" has uncommitted changes (${d.added.length} added, ${d.removed.length} removed, ${d.modified.length} modified); checkout would lose them`, {
      hint: `commit them (\`hpcflow dataset commit ${name}\`) or discard them with --force`,
    });
  }
  const want = target.version.entries;
  const diff = diffManifests(have, want);
  const needed = [...diff.added, ...diff.modified.map((m) => m.to)];
  const present = await mapLimit(needed, 32, (e) => ctx.store.has(e.hash));
  const missing = needed.filter((_, i) => present[i] !== true);
  if (missing.length > 0) {
    throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `dataset "${name}" ${shortVersion(target.version.version)}: ${missing.length} of ${needed.length} files are not in the local store (e.g. ${(missing[0] as ManifestEntry).path})`, {
      hint: `fetch them with \`hpcflow dataset pull ${spec}\``,
    });
  }
  const dsAbs = join(wsReal, path);
  checkCreatable(wsReal, dsAbs, path);
  await mkdir(dsAbs, { recursive: true });
  const dsReal = realWorkspace(dsAbs);
  if (!isInside(wsReal, dsReal)) throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `dataset directory ${path} leads outside the workspace (to ${dsReal})`);
  const links: Partial<Record<LinkKind, number>> = {};
  // Removals first: a file may be replaced by a directory of the same name.
  for (const e of diff.removed) await unlink(join(dsReal, e.path)).catch(() => undefined);
  pruneEmptyDirs(dsReal, diff.removed.map((e) => e.path));
  await mapLimit(needed, ctx.concurrency ?? 4, async (e) => {
    const dest = join(dsReal, e.path);
    await ensureInside(dsReal, dirname(dest), name, e.path);
    const tmp = tempSiblingPath(dest);
    try {
      const kind = await ctx.store.linkObjectTo(e.hash, tmp, e.exec, ctx.link);
      links[kind] = (links[kind] ?? 0) + 1;
      await renameOver(tmp, dest);
    } catch (err) {
      await removeQuiet(tmp);
      throw err;
    }
  });
  if (target.version.version !== cur?.version || cur.path !== path) {
    await writeVersionFile(ctx.root, { ...target.version, name, path });
  }
  // The files just written are exactly the version: seed the stat cache by scanning once.
  await scan(ctx, name, path);
  return { name, version: target.version.version, source: target.source, written: needed.length, removed: diff.removed.length, unchanged: diff.unchanged, links };
}

/**
 * Before `mkdir -p` of a dataset directory: its nearest existing ancestor must be a directory
 * inside the workspace. A symlink leading out (dangling or not) would make mkdir create
 * directories outside; a file in the way would fail with a raw error.
 */
function checkCreatable(wsReal: string, dsAbs: string, path: string): void {
  for (let dir = dsAbs; dir !== wsReal && isInside(wsReal, dir); dir = dirname(dir)) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(dir, { throwIfNoEntry: false });
    } catch {
      continue; // ENOTDIR: a file further up, reported when the loop reaches it
    }
    if (st === undefined) continue;
    const rel = relative(wsReal, dir);
    if (st.isSymbolicLink() && followLink(wsReal, dir, rel) === null) {
      throw new HpcflowError('HPCFLOW_USAGE', `dataset directory ${path}: ${rel} is a dangling symlink`, { hint: `remove ${rel} or point it at a directory inside the workspace` });
    }
    let real: string;
    try {
      real = realpathSync.native(dir);
    } catch {
      continue;
    }
    if (!isInside(wsReal, real)) throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `dataset directory ${path} leads outside the workspace (through ${rel}, to ${real})`);
    if (!lstatSync(real).isDirectory()) {
      throw new HpcflowError('HPCFLOW_USAGE', `dataset directory ${path}: ${rel} is a file, not a directory`, { hint: `move ${rel} away, or fix "path:" in the dataset's version file` });
    }
    return;
  }
}

/**
 * Creates the directories leading to a file of the dataset, refusing any existing component
 * that is a symlink leading out of the dataset (a manifest entry `link/x` must not write
 * through a link the working copy has at `link`).
 */
async function ensureInside(dsReal: string, dirAbs: string, name: string, rel: string): Promise<void> {
  await mkdir(dirAbs, { recursive: true });
  const real = realWorkspace(dirAbs);
  if (!isInside(dsReal, real)) {
    throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `dataset "${name}": ${rel} would be written through a symlink leading outside the dataset (to ${real})`, {
      hint: 'remove the symlink from the working copy, then check out again',
    });
  }
}

async function renameOver(tmp: string, dest: string): Promise<void> {
  try {
    await rename(tmp, dest);
  } catch (e) {
    // A directory where the version has a file (or the reverse was pruned above): replace it.
    if ((e as NodeJS.ErrnoException).code === 'EISDIR' || (e as NodeJS.ErrnoException).code === 'ENOTEMPTY') {
      await rm(dest, { recursive: true, force: true });
      await rename(tmp, dest);
      return;
    }
    throw e;
  }
}

/** Removes directories left empty by removed files (deepest first), never the dataset root. */
function pruneEmptyDirs(dsReal: string, removed: readonly string[]): void {
  const dirs = new Set<string>();
  for (const p of removed) for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(join(dsReal, d));
    } catch {
      /* not empty, or gone */
    }
  }
}

/** `dataset verify`: re-reads every file (ignoring the stat cache) and, with `store`, every object. */
export interface VerifyResult {
  readonly name: string;
  readonly version: string;
  readonly files: number;
  readonly bytes: number;
  /** Working-copy differences from the version (empty when intact); null when not checked out. */
  readonly diff: ManifestDiff | null;
  /** Store objects of the version that are missing or damaged, with what is wrong. */
  readonly badObjects: readonly { readonly hash: string; readonly path: string; readonly problem: string }[];
}

export async function verifyDataset(ctx: DatasetContext, spec: string, opts: { store?: boolean } = {}): Promise<VerifyResult> {
  const { name, version } = await resolveVersion(ctx, spec);
  const wc = await scanWorkingCopy(ctx.root, name, version.path, StatCache.inMemory(), ctx.hashMany ?? defaultHashMany);
  const diff = wc.kind === 'missing' ? null : diffManifests(version.entries, wc.entries);
  const badObjects: { hash: string; path: string; problem: string }[] = [];
  if (opts.store === true) {
    const seen = new Set<string>();
    const unique = version.entries.filter((e) => (seen.has(e.hash) ? false : (seen.add(e.hash), true)));
    await mapLimit(unique, ctx.concurrency ?? 4, async (e) => {
      try {
        await ctx.store.verify(e.hash);
      } catch (err) {
        badObjects.push({ hash: e.hash, path: e.path, problem: (err as Error).message });
      }
    });
    badObjects.sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  return { name, version: version.version, files: version.files, bytes: version.bytes, diff, badObjects };
}

/** True when a verify found nothing wrong. */
export const verifyOk = (r: VerifyResult): boolean => (r.diff === null || isEmptyDiff(r.diff)) && r.badObjects.length === 0;

/** One entry of `dataset log`. */
export interface LogEntry {
  readonly commit: string;
  readonly version: string | null;
  readonly files: number;
  readonly bytes: number;
  readonly author: string;
  readonly timestamp: number;
  readonly message: string;
  readonly tags: readonly string[];
}

/** `dataset log <name>`: the versions in the version file's git history, newest first. */
export async function datasetLog(ctx: DatasetContext, name: string, limit = 100): Promise<LogEntry[]> {
  checkDatasetName(name);
  const dir = await findGitRoot(ctx.root);
  if (dir === null) throw new HpcflowError('HPCFLOW_GIT', 'the workspace is not in a git repository: dataset history is the git history of its version file');
  const rel = versionFileRel(name);
  const hist = await fileHistory(dir, repoPath(dir, join(ctx.root, rel)), limit);
  const tags = await listTags(dir, `dataset/${name}/`);
  return hist.map((c) => {
    const v = c.text === null ? null : parseVersionFile(c.text, `${c.oid.slice(0, 12)}:${rel}`, { headerOnly: true });
    return {
      commit: c.oid,
      version: v?.version ?? null,
      files: v?.files ?? 0,
      bytes: v?.bytes ?? 0,
      author: c.author,
      timestamp: c.timestamp,
      message: c.message.split('\n')[0] ?? '',
      tags: tags.filter((t) => t.oid === c.oid).map((t) => t.name.slice(`dataset/${name}/`.length)),
    };
  });
}

/** All objects of a version (each file and the manifest's tree object), deduplicated. */
export function versionObjects(v: DatasetVersion): { hash: string; size: number; path: string }[] {
  const seen = new Set<string>([v.version]);
  const out = [{ hash: v.version, size: Buffer.byteLength(v.text), path: '(manifest)' }];
  for (const e of v.entries) {
    if (seen.has(e.hash)) continue;
    seen.add(e.hash);
    out.push({ hash: e.hash, size: e.size, path: e.path });
  }
  return out;
}
