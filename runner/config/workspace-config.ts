/**
 * `hpcflow.yaml` at the workspace root: settings that belong to the project rather than to one
 * pipeline. Committed to git; it holds no secrets (credentials come from the environment).
 *
 *   remotes:
 *     shared: { url: /lustre/project/hpcflow-store }   # a filesystem path (default kind)
 *     s3: { url: s3://bucket/prefix, endpoint: https://s3.example.org, region: us-east-1 }
 *   default_remote: shared
 *   datasets:
 *     link: [reflink, copy]      # how checkout materialises files; first that works wins
 *   results:                     # what `hpcflow run --commit-results` commits, and where
 *     ref: refs/hpcflow/results/main   # default: the checked-out branch itself
 *     max_file_bytes: 1048576    # outputs up to this size are committed with the metrics
 *     runs_dir: runs             # run records: <runs_dir>/<run id>.json
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RemoteConfig } from '../datasets/remotes/index.js';
import { parseConfigSource } from './config-source.js';

export const CONFIG_FILE = 'hpcflow.yaml';

/** How a checked-out file is made from its store object. */
export type LinkKind = 'reflink' | 'hardlink' | 'copy';
export const LINK_KINDS: readonly LinkKind[] = ['reflink', 'hardlink', 'copy'];

/** One remote's settings, as the remote factory takes them. */
export type RemoteSettings = RemoteConfig;

export interface ResultsConfig {
  /** The ref results are committed to; null: the checked-out branch. */
  readonly ref: string | null;
  readonly maxFileBytes: number;
  readonly runsDir: string;
}

export const DEFAULT_RESULTS: ResultsConfig = { ref: null, maxFileBytes: 1 << 20, runsDir: 'runs' };

export interface WorkspaceConfig {
  readonly remotes: Readonly<Record<string, RemoteSettings>>;
  readonly defaultRemote: string | null;
  readonly link: readonly LinkKind[];
  readonly results: ResultsConfig;
}

/** Reflink where the filesystem can (no data copied), else a copy: never a shared inode by default. */
export const DEFAULT_LINK: readonly LinkKind[] = ['reflink', 'copy'];

const REMOTE_KEYS = ['url', 'endpoint', 'region', 'force_path_style', 'multipart_threshold', 'part_size'];

/** Reads `hpcflow.yaml` (all defaults when absent); errors point at file:line:col. */
export function loadWorkspaceConfig(root: string): WorkspaceConfig {
  let text: string;
  try {
    text = readFileSync(join(root, CONFIG_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { remotes: {}, defaultRemote: null, link: DEFAULT_LINK, results: DEFAULT_RESULTS };
    throw e;
  }
  return parseWorkspaceConfig(text);
}

export function parseWorkspaceConfig(text: string, file = CONFIG_FILE): WorkspaceConfig {
  const { src, fail } = parseConfigSource(text, file);
  const doc = (src.value ?? {}) as Record<string, unknown>;
  if (typeof doc !== 'object' || Array.isArray(doc)) fail([], 'hpcflow.yaml must be a mapping');
  for (const k of Object.keys(doc)) {
    if (!['remotes', 'default_remote', 'datasets', 'results'].includes(k)) fail([k], `unknown key "${k}"`, 'known keys: remotes, default_remote, datasets, results', true);
  }
  const remotes: Record<string, RemoteSettings> = {};
  const rs = doc.remotes ?? {};
  if (typeof rs !== 'object' || rs === null || Array.isArray(rs)) fail(['remotes'], 'remotes must map names to { url: … }');
  for (const [name, raw] of Object.entries(rs as Record<string, unknown>)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) fail(['remotes', name], `invalid remote name "${name}"`, undefined, true);
    const r = typeof raw === 'string' ? { url: raw } : raw;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) fail(['remotes', name], `remote "${name}" must be a URL or { url: … }`);
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!REMOTE_KEYS.includes(k)) fail(['remotes', name, k], `unknown remote setting "${k}"`, `known: ${REMOTE_KEYS.join(', ')}`, true);
    }
    if (typeof o.url !== 'string' || o.url === '') fail(['remotes', name], `remote "${name}" needs a url (a path, file://…, or s3://bucket/prefix)`);
    const str = (k: string): string | undefined => {
      const v = o[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string') fail(['remotes', name, k], `${k} must be a string`);
      return v as string;
    };
    const int = (k: string): number | undefined => {
      const v = o[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(['remotes', name, k], `${k} must be a positive byte count`);
      return v as number;
    };
    if (o.force_path_style !== undefined && typeof o.force_path_style !== 'boolean') fail(['remotes', name, 'force_path_style'], 'force_path_style must be true or false');
    const endpoint = str('endpoint');
    const region = str('region');
    const mt = int('multipart_threshold');
    const ps = int('part_size');
    remotes[name] = {
      url: o.url as string,
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(o.force_path_style !== undefined ? { forcePathStyle: o.force_path_style as boolean } : {}),
      ...(mt !== undefined ? { multipartThreshold: mt } : {}),
      ...(ps !== undefined ? { partSize: ps } : {}),
    };
  }
  let defaultRemote: string | null = null;
  if (doc.default_remote !== undefined) {
    if (typeof doc.default_remote !== 'string' || !(doc.default_remote in remotes)) {
      fail(['default_remote'], `default_remote "${String(doc.default_remote)}" is not one of the remotes`, `remotes: ${Object.keys(remotes).join(', ') || '(none)'}`);
    }
    defaultRemote = doc.default_remote as string;
  } else if (Object.keys(remotes).length === 1) {
    defaultRemote = Object.keys(remotes)[0] as string;
  }
  let link = DEFAULT_LINK;
  const ds = doc.datasets;
  if (ds !== undefined) {
    if (typeof ds !== 'object' || ds === null || Array.isArray(ds)) fail(['datasets'], 'datasets must be a mapping');
    for (const k of Object.keys(ds as object)) if (k !== 'link') fail(['datasets', k], `unknown key "${k}"`, 'known: link', true);
    const l = (ds as Record<string, unknown>).link;
    if (l !== undefined) link = parseLinkList(l, () => fail(['datasets', 'link'], `link must be a list of ${LINK_KINDS.join(', ')}`));
  }
  let results = DEFAULT_RESULTS;
  const rc = doc.results;
  if (rc !== undefined) {
    if (typeof rc !== 'object' || rc === null || Array.isArray(rc)) fail(['results'], 'results must be a mapping');
    const r = rc as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!['ref', 'max_file_bytes', 'runs_dir'].includes(k)) fail(['results', k], `unknown key "${k}"`, 'known: ref, max_file_bytes, runs_dir', true);
    if (r.ref !== undefined && (typeof r.ref !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(r.ref) || r.ref.includes('..'))) fail(['results', 'ref'], 'ref must be a git ref name such as refs/hpcflow/results/main or results/main');
    if (r.max_file_bytes !== undefined && (typeof r.max_file_bytes !== 'number' || !Number.isSafeInteger(r.max_file_bytes) || r.max_file_bytes < 0)) fail(['results', 'max_file_bytes'], 'max_file_bytes must be a byte count');
    if (r.runs_dir !== undefined && (typeof r.runs_dir !== 'string' || r.runs_dir === '' || r.runs_dir.startsWith('/') || r.runs_dir.split('/').includes('..'))) fail(['results', 'runs_dir'], 'runs_dir must be a directory inside the workspace');
    results = { ref: (r.ref as string | undefined) ?? null, maxFileBytes: (r.max_file_bytes as number | undefined) ?? DEFAULT_RESULTS.maxFileBytes, runsDir: (r.runs_dir as string | undefined) ?? DEFAULT_RESULTS.runsDir };
  }
  return { remotes, defaultRemote, link, results };
}

/** `[reflink, copy]` or `"hardlink,copy"` → kinds; calls `bad` on anything else. */
export function parseLinkList(v: unknown, bad: () => never): LinkKind[] {
  const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
  if (!Array.isArray(items) || items.length === 0) bad();
  const out: LinkKind[] = [];
  for (const x of items as unknown[]) {
    if (typeof x !== 'string' || !(LINK_KINDS as readonly string[]).includes(x)) bad();
    out.push(x as LinkKind);
  }
  return out;
}
