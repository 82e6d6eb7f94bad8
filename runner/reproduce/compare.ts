/**
 * Output and metrics comparison of a re-run with its record. Hashes first (equal hashes are
 * identical without reading a byte); then, for outputs of stages that declare a tolerance,
 * number by number (numeric.ts). The recorded bytes come from the user's content store, or
 * from the results commit when the output was committed there (checked against the recorded
 * hash); the new bytes from the re-run's worktree.
 */
import * as fs from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import git from 'isomorphic-git';
import type { OutputRecord } from '../cache/records.js';
import type { ContentStore } from '../cache/store.js';
import { hashBytes, hashFile } from '../fingerprint/hash-file.js';
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { digestManifest } from '../fingerprint/manifest.js';
import { realWorkspace, resolveRel } from '../fingerprint/paths.js';
import { walkDir } from '../fingerprint/walk.js';
import type { Tolerance } from '../model/pipeline.js';
import { mapLimit } from '../util/pool.js';
import type { Content } from './numeric.js';
import { absoluteError, asText, compareNumeric, EXACT, numericLeaves, numericWithin, withinTolerance } from './numeric.js';
import type { FileReport, MetricRow, OutputReport, Verdict } from './report.js';
import { repoFile } from './resolve.js';

/** Where the bytes of one side of the comparison come from. */
export interface Side {
  /** The content of the file at workspace path `path` whose hash is `hash`, or null when it is not available. */
  file(hash: string, size: number, path: string): Promise<Content | null>;
  /** The manifest of the directory at `path` whose hash is `hash`, or null. */
  tree(hash: string, path: string): Promise<ManifestEntry[] | null>;
}

/** The recorded side: the user's content store, else the results commit's tree. */
export function recordedSide(o: { store: ContentStore; gitRoot: string; commit: string; wsRel: string; cache?: object }): Side {
  const cache = o.cache ?? {};
  const blobAt = async (path: string): Promise<Buffer | null> => {
    try {
      const { blob } = await git.readBlob({ fs, dir: o.gitRoot, oid: o.commit, filepath: repoFile(o.wsRel, path), cache });
      return Buffer.from(blob);
    } catch {
      return null;
    }
  };
  return {
    async file(hash, size, path) {
      if (await o.store.has(hash)) return { file: o.store.path(hash), size };
      const b = await blobAt(path);
      return b !== null && hashBytes(b) === hash ? { bytes: b } : null;
    },
    async tree(hash, path) {
      if (await o.store.has(hash)) {
        try {
          return await o.store.readTree(hash);
        } catch {
          /* damaged: try git */
        }
      }
      const entries: ManifestEntry[] = [];
      const walk = async (treeOid: string, prefix: string): Promise<void> => {
        for (const e of (await git.readTree({ fs, dir: o.gitRoot, oid: treeOid, cache })).tree) {
          const rel = prefix === '' ? e.path : `${prefix}/${e.path}`;
          if (e.type === 'tree') await walk(e.oid, rel);
          else if (e.type === 'blob' && e.mode !== '120000') {
            const { blob } = await git.readBlob({ fs, dir: o.gitRoot, oid: e.oid, cache });
            entries.push({ path: rel, size: blob.byteLength, hash: hashBytes(Buffer.from(blob)), exec: e.mode === '100755' });
          }
        }
      };
      try {
        const t = await git.readTree({ fs, dir: o.gitRoot, oid: o.commit, filepath: repoFile(o.wsRel, path), cache });
        await walk(t.oid, '');
      } catch {
        return null;
      }
      return digestManifest(entries).hash === hash ? entries : null;
    },
  };
}

/** The re-run's side: the files in the worktree (directories through the re-run's store when it has them). */
export function freshSide(o: { store: ContentStore; worktree: string }): Side {
  const wsReal = realWorkspace(o.worktree);
  return {
    async file(_hash, _size, path) {
      const r = resolveRel(wsReal, path);
      if (r.kind !== 'file') return null;
      return { file: r.real, size: (await stat(r.real)).size };
    },
    async tree(hash, path) {
      if (await o.store.has(hash)) {
        try {
          return await o.store.readTree(hash);
        } catch {
          /* hash the files instead */
        }
      }
      const r = resolveRel(wsReal, path);
      if (r.kind !== 'dir') return null;
      const files = walkDir(wsReal, r.real, path);
      return mapLimit(files, 8, async (f): Promise<ManifestEntry> => {
        const h = await hashFile(f.abs);
        return { path: f.rel, size: h.size, hash: h.hash, exec: ((await stat(f.abs)).mode & 0o100) !== 0 };
      });
    },
  };
}

/** Without a tolerance, files up to this size are still compared numerically, to say by how much they differ. */
const INFO_MAX_BYTES = 64 << 20;

/** One file: identical by hash, else numerically (with a tolerance), else different. */
export async function compareFile(
  path: string,
  recorded: { hash: string; size: number },
  fresh: { hash: string; size: number },
  tol: Tolerance | null,
  rec: Side,
  now: Side,
  paths: { recorded: string; fresh: string } = { recorded: path, fresh: path },
): Promise<FileReport> {
  if (recorded.hash === fresh.hash) return { path, verdict: 'identical' };
  const nc = await now.file(fresh.hash, fresh.size, paths.fresh);
  if (nc === null) return { path, verdict: 'missing', detail: 'not produced by the re-run' };
  const rc = await rec.file(recorded.hash, recorded.size, paths.recorded);
  if (rc === null) return { path, verdict: 'different', detail: 'hashes differ; the recorded bytes are in neither the local content store nor the results commit, so they were not compared' };
  if (tol === null && (recorded.size > INFO_MAX_BYTES || fresh.size > INFO_MAX_BYTES)) return { path, verdict: 'different' };
  const r = await compareNumeric(path, rc, nc, tol ?? EXACT);
  if ('reason' in r) return { path, verdict: 'different', ...(tol !== null ? { detail: r.reason } : {}) };
  const within = tol !== null && numericWithin(r.comparison);
  return { path, verdict: within ? 'within' : 'different', numeric: r.comparison };
}

const worst = (vs: readonly Verdict[]): Verdict => (vs.includes('missing') || vs.includes('different') ? 'different' : vs.includes('within') ? 'within' : 'identical');

/** One recorded output against its record in the re-run's lockfile (undefined: not recorded by the re-run). */
export async function compareOutput(recorded: OutputRecord, fresh: OutputRecord | undefined, tol: Tolerance | null, rec: Side, now: Side): Promise<OutputReport> {
  const { path, kind } = recorded;
  if (fresh === undefined) return { path, kind, verdict: 'missing', detail: 'not recorded by the re-run' };
  if (fresh.kind !== kind) return { path, kind, verdict: 'different', detail: `a ${kind === 'dir' ? 'directory' : 'file'} was recorded, the re-run made a ${fresh.kind === 'dir' ? 'directory' : 'file'}` };
  if (recorded.kind === 'file') {
    const r = await compareFile(path, recorded, fresh, tol, rec, now);
    return { ...r, kind };
  }
  if (recorded.hash === fresh.hash) return { path, kind, verdict: 'identical' };
  const [rm, nm] = await Promise.all([rec.tree(recorded.hash, path), now.tree(fresh.hash, path)]);
  if (nm === null) return { path, kind, verdict: 'missing', detail: 'not produced by the re-run' };
  if (rm === null) return { path, kind, verdict: 'different', detail: 'hashes differ; the recorded directory listing is in neither the local content store nor the results commit' };
  const a = new Map(rm.map((e) => [e.path, e]));
  const b = new Map(nm.map((e) => [e.path, e]));
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  const files = await mapLimit(names, 4, async (n): Promise<FileReport> => {
    const x = a.get(n);
    const y = b.get(n);
    if (x === undefined) return { path: n, verdict: 'different', detail: 'only in the re-run' };
    if (y === undefined) return { path: n, verdict: 'missing', detail: 'only in the recorded output' };
    return compareFile(n, x, y, tol, rec, now, { recorded: `${path}/${n}`, fresh: `${path}/${n}` });
  });
  const counts: Record<Verdict, number> = { identical: 0, within: 0, different: 0, missing: 0 };
  for (const f of files) counts[f.verdict]++;
  const verdict = worst(files.map((f) => f.verdict));
  const notIdentical = files.filter((f) => f.verdict !== 'identical');
  return { path, kind, verdict, counts, files: notIdentical, ...(verdict === 'identical' ? { detail: 'same files; only executable bits differ' } : {}) };
}

/** Reads JSON of a content; null when it is not JSON. */
async function readJson(c: Content | null): Promise<unknown> {
  if (c === null) return undefined;
  const text = asText('bytes' in c ? c.bytes : await readFile(c.file));
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The numeric leaves of a stage's metrics file, recorded against re-run. Returns the rows and a
 * note when a side could not be read.
 */
export async function compareMetrics(
  file: string,
  recorded: OutputRecord | undefined,
  fresh: OutputRecord | undefined,
  tol: Tolerance | null,
  rec: Side,
  now: Side,
): Promise<{ rows: MetricRow[]; note: string | null }> {
  if (recorded === undefined || recorded.kind !== 'file') return { rows: [], note: `no recorded metrics file ${file}` };
  const rj = await readJson(await rec.file(recorded.hash, recorded.size, file));
  if (rj === undefined) return { rows: [], note: `the recorded metrics ${file} are not available as JSON (not in the local content store or the results commit)` };
  const nj = fresh === undefined || fresh.kind !== 'file' ? undefined : await readJson(await now.file(fresh.hash, fresh.size, file));
  if (nj === undefined) return { rows: [], note: `the re-run wrote no readable metrics file ${file}` };
  const a = numericLeaves(rj);
  const b = new Map(numericLeaves(nj));
  const rows: MetricRow[] = [];
  const t = tol ?? EXACT;
  for (const [key, v] of a) {
    const w = b.get(key);
    b.delete(key);
    if (w === undefined) {
      rows.push({ file, key, recorded: v, value: null, absChange: null, relChange: null, within: false });
      continue;
    }
    const abs = absoluteError(v, w);
    const rel = v === 0 || !Number.isFinite(v) || !Number.isFinite(w) ? (abs === 0 ? 0 : null) : (w - v) / Math.abs(v);
    rows.push({ file, key, recorded: v, value: w, absChange: abs, relChange: rel, within: withinTolerance(v, w, t) });
  }
  for (const [key, w] of b) rows.push({ file, key, recorded: null, value: w, absChange: null, relChange: null, within: false });
  return { rows, note: null };
}
