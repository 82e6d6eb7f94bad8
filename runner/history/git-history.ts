/**
 * The thin git shell of the history commands: finds results commits (those with an Hpcflow-Run
 * trailer) on a ref, and reads run records and metrics files at commits — blob by blob, through
 * isomorphic-git with one shared object cache, never checking anything out. Everything that
 * decides what to show lives in the pure modules beside this one.
 */
import * as fs from 'node:fs';
import { posix } from 'node:path';
import git from 'isomorphic-git';
import { CONFIG_FILE, DEFAULT_RESULTS, loadWorkspaceConfig, parseWorkspaceConfig } from '../config/workspace-config.js';
import { HpcflowError } from '../errors.js';
import { findGitRoot, repoPath, resolveRev } from '../git/repo.js';
import type { LogEntry } from './log-view.js';
import type { MetricRow, MetricsProblem, MetricsSnapshot } from './metrics.js';
import { flattenMetrics } from './metrics.js';
import type { RunRecord } from './record.js';
import { isSafeRunId, parseRunRecord, recordPathProblem, resultsTrailers } from './record.js';

/** A workspace's repository, opened for reading history. */
export interface HistoryRepo {
  /** The git root. */
  readonly dir: string;
  /** The workspace's path inside the repository: '' at the root, else `sub/dir/`. */
  readonly prefix: string;
  /** results.ref of the working tree's hpcflow.yaml (null: results go on the branch). */
  readonly resultsRef: string | null;
  /** isomorphic-git's object cache, shared by every read. */
  readonly cache: object;
  /** hpcflow.yaml text → runs directory (most commits share one text). */
  readonly runsDirs: Map<string, string>;
  /** Metrics blob id → its flattened metrics, or why there are none. */
  readonly flattened: Map<string, { metric: string; value: number }[] | string>;
}

export async function openHistory(root: string): Promise<HistoryRepo> {
  const dir = await findGitRoot(root);
  if (dir === null) {
    throw new HpcflowError('HPCFLOW_GIT', `${root} is not in a git repository: run history is the git history of results commits`, {
      hint: 'commit results with `hpcflow run --commit-results` in a clone of the pipeline repository',
    });
  }
  const rel = repoPath(dir, root);
  const prefix = rel === '' || rel === '.' ? '' : `${rel}/`;
  const resultsRef = loadWorkspaceConfig(root).results.ref;
  return { dir, prefix, resultsRef, cache: {}, runsDirs: new Map(), flattened: new Map() };
}

/** `refs/...` as given; anything else names a branch (as results commits are made). */
const fullRef = (ref: string): string => (ref.startsWith('refs/') ? ref : `refs/heads/${ref}`);

/** Where history is read from: `rev` as the user named it; else the results ref; else HEAD. */
export async function startCommit(repo: HistoryRepo, rev: string | undefined): Promise<{ name: string; oid: string }> {
  if (rev !== undefined) return { name: rev, oid: await resolveCommit(repo, rev) };
  if (repo.resultsRef !== null) {
    const ref = fullRef(repo.resultsRef);
    const oid = await resolveRev(repo.dir, ref);
    if (oid === null) {
      throw new HpcflowError('HPCFLOW_GIT', `the results ref ${ref} (results.ref in hpcflow.yaml) does not exist in ${repo.dir}`, {
        hint: `no results committed yet? run \`hpcflow run --commit-results\`; in a clone, fetch it: git fetch origin '${ref}:${ref}'`,
      });
    }
    return { name: ref, oid };
  }
  const oid = await resolveRev(repo.dir, 'HEAD');
  if (oid === null) throw new HpcflowError('HPCFLOW_GIT', `${repo.dir} has no commits yet`, { hint: 'commit the pipeline and run it with `hpcflow run --commit-results`' });
  return { name: 'HEAD', oid };
}

/** A revision the user named, as a commit id. */
export async function resolveCommit(repo: HistoryRepo, rev: string): Promise<string> {
  const oid = await resolveRev(repo.dir, rev);
  if (oid === null) {
    throw new HpcflowError('HPCFLOW_USAGE', `unknown revision '${rev}'`, {
      hint: 'name a commit id (or a prefix), a branch, a tag, HEAD~N, or a ref such as refs/hpcflow/results/main',
    });
  }
  try {
    const o = await git.readObject({ fs, dir: repo.dir, oid, cache: repo.cache });
    if (o.type !== 'commit') throw new HpcflowError('HPCFLOW_USAGE', `'${rev}' is a ${o.type}, not a commit`);
  } catch (e) {
    if (e instanceof HpcflowError) throw e;
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${rev} (${oid}): ${(e as Error).message}`, { cause: e });
  }
  return oid;
}

/** The blob at `path` in commit `oid` (null when there is no file there). */
async function blobAt(repo: HistoryRepo, oid: string, path: string): Promise<{ oid: string; text: string } | null> {
  try {
    const r = await git.readBlob({ fs, dir: repo.dir, oid, filepath: path, cache: repo.cache });
    return { oid: r.oid, text: Buffer.from(r.blob).toString('utf8') };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${path} at ${oid.slice(0, 12)}: ${(e as Error).message}`, { cause: e });
  }
}

/** A workspace-relative path as a repository path; null when it leaves the repository. */
function inRepo(repo: HistoryRepo, rel: string): string | null {
  const p = posix.normalize(posix.join(repo.prefix, rel));
  return p.startsWith('../') || p === '..' || p.startsWith('/') || p === '.' ? null : p;
}

/** The runs directory (repository path) at a commit: its hpcflow.yaml's results.runs_dir, else `runs`. */
export async function runsDirAt(repo: HistoryRepo, oid: string): Promise<string> {
  const cfg = await blobAt(repo, oid, `${repo.prefix}${CONFIG_FILE}`);
  const text = cfg?.text ?? '';
  let runsDir = repo.runsDirs.get(text);
  if (runsDir === undefined) {
    runsDir = DEFAULT_RESULTS.runsDir;
    if (cfg !== null) {
      try {
        runsDir = parseWorkspaceConfig(cfg.text).results.runsDir;
      } catch {
        // An invalid hpcflow.yaml in the past: the run could not have read it either; use the default.
      }
    }
    repo.runsDirs.set(text, runsDir);
  }
  return `${repo.prefix}${runsDir}`;
}

/** A commit with an Hpcflow-Run trailer. */
export interface ResultsCommit {
  readonly oid: string;
  /** Committer time, seconds since the epoch. */
  readonly timestamp: number;
  readonly runId: string;
  readonly inputCommit: string | null;
}

/** Commits read at most while looking for results commits. */
export const MAX_SCAN = 20_000;

/**
 * Up to `limit` results commits reachable from `tip`, newest first (git log order: by commit
 * time, all parents). Walks `git log` with a depth limit, deepening only while too few results
 * commits were found and there is more history.
 */
export async function resultsCommits(repo: HistoryRepo, tip: string, limit: number): Promise<ResultsCommit[]> {
  let depth = Math.min(MAX_SCAN, Math.max(16, limit * 2 + 1));
  for (;;) {
    let log: Awaited<ReturnType<typeof git.log>>;
    try {
      log = await git.log({ fs, dir: repo.dir, ref: tip, depth, cache: repo.cache });
    } catch (e) {
      throw new HpcflowError('HPCFLOW_GIT', `cannot read the history of ${tip.slice(0, 12)}: ${(e as Error).message}`, { cause: e, hint: 'a shallow clone? fetch more history: git fetch --deepen=100' });
    }
    const out: ResultsCommit[] = [];
    for (const c of log) {
      const t = resultsTrailers(c.commit.message);
      if (t === null) continue;
      out.push({ oid: c.oid, timestamp: c.commit.committer.timestamp, runId: t.runId, inputCommit: t.inputCommit });
      if (out.length >= limit) return out;
    }
    if (log.length < depth || depth >= MAX_SCAN) return out;
    depth = Math.min(MAX_SCAN, depth * 4);
  }
}

/** The run record a results commit names (record null: missing or unreadable). */
export async function recordAt(repo: HistoryRepo, c: ResultsCommit): Promise<LogEntry> {
  const runs = await runsDirAt(repo, c.oid);
  const path = `${runs}/${c.runId}.json`;
  const blob = isSafeRunId(c.runId) ? await blobAt(repo, c.oid, path) : null;
  const record = blob === null ? null : parseRunRecord(blob.text);
  return { commit: c.oid, timestamp: c.timestamp, runId: c.runId, inputTrailer: c.inputCommit, record, recordPath: path };
}

/** `hpcflow log`: the newest `limit` runs on the history of `tip`. */
export async function runLog(repo: HistoryRepo, tip: string, limit: number): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const c of await resultsCommits(repo, tip, limit)) out.push(await recordAt(repo, c));
  return out;
}

/** The newest (by run id) readable run record in the runs directory at `oid`. */
export async function newestRecordAt(repo: HistoryRepo, oid: string): Promise<{ record: RunRecord; path: string } | null> {
  const runs = await runsDirAt(repo, oid);
  let entries: Awaited<ReturnType<typeof git.readTree>>['tree'];
  try {
    entries = (await git.readTree({ fs, dir: repo.dir, oid, filepath: runs, cache: repo.cache })).tree;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${runs} at ${oid.slice(0, 12)}: ${(e as Error).message}`, { cause: e });
  }
  const names = entries
    .filter((e) => e.type === 'blob' && e.path.endsWith('.json'))
    .map((e) => e.path)
    .sort();
  for (let i = names.length - 1; i >= 0; i--) {
    const path = `${runs}/${names[i] as string}`;
    const blob = await blobAt(repo, oid, path);
    const record = blob === null ? null : parseRunRecord(blob.text);
    if (record !== null) return { record, path };
  }
  return null;
}

/** One stage's metrics file at a commit, flattened; a string says why there are none. */
export async function stageMetricsAt(repo: HistoryRepo, oid: string, file: string): Promise<{ metric: string; value: number }[] | string> {
  const refused = recordPathProblem(file);
  if (refused !== null) return refused;
  const path = inRepo(repo, file);
  if (path === null) return 'outside the repository';
  const blob = await blobAt(repo, oid, path);
  if (blob === null) return 'not in the commit';
  const memo = repo.flattened.get(blob.oid);
  if (memo !== undefined) return memo;
  let result: { metric: string; value: number }[] | string;
  try {
    result = flattenMetrics(JSON.parse(blob.text));
    if (result.length === 0) result = 'no numeric values';
  } catch {
    result = 'not valid JSON';
  }
  repo.flattened.set(blob.oid, result);
  return result;
}

/** `metrics show`: every stage's metrics at `oid`, as the newest run record there names them. */
export async function metricsAt(repo: HistoryRepo, oid: string, rev: string): Promise<MetricsSnapshot> {
  const newest = await newestRecordAt(repo, oid);
  if (newest === null) {
    throw new HpcflowError('HPCFLOW_GIT', `no run record in ${await runsDirAt(repo, oid)}/ at ${rev} (${oid.slice(0, 12)})`, {
      hint: 'name a commit that has results (see `hpcflow log`), or commit some with `hpcflow run --commit-results`',
    });
  }
  const rows: MetricRow[] = [];
  const problems: MetricsProblem[] = [];
  for (const stage of Object.keys(newest.record.metrics).sort()) {
    const file = newest.record.metrics[stage] as string;
    const m = await stageMetricsAt(repo, oid, file);
    if (typeof m === 'string') problems.push({ stage, file, problem: m });
    else for (const x of m) rows.push({ stage, metric: x.metric, value: x.value });
  }
  return { rev, commit: oid, runId: newest.record.runId, rows, problems };
}

/** One point of a metric's history. */
export interface SeriesPoint {
  readonly commit: string;
  readonly inputCommit: string | null;
  readonly runId: string;
  readonly timestamp: number;
  readonly value: number;
}

/**
 * `metrics plot`: the value of `stage`'s `metric` at each of the newest `limit` results commits
 * reachable from `tip` that have it (the metrics file the commit's run record names), oldest first.
 */
export async function metricSeries(repo: HistoryRepo, tip: string, stage: string, metric: string, limit: number): Promise<{ points: SeriesPoint[]; commits: number }> {
  const commits = await resultsCommits(repo, tip, limit);
  const points: SeriesPoint[] = [];
  for (const c of commits) {
    const e = await recordAt(repo, c);
    const file = e.record?.metrics[stage];
    if (file === undefined) continue;
    const m = await stageMetricsAt(repo, c.oid, file);
    const hit = typeof m === 'string' ? undefined : m.find((x) => x.metric === metric);
    if (hit === undefined) continue;
    points.push({ commit: c.oid, inputCommit: e.record?.inputCommit ?? c.inputCommit, runId: c.runId, timestamp: c.timestamp, value: hit.value });
  }
  return { points: points.reverse(), commits: commits.length };
}
