/**
 * Which recorded run `hpcflow reproduce <rev>` compares against, and which tree it re-runs:
 *
 * 1. REV is a results commit (trailer `Hpcflow-Run`): its lockfile is the record; the tree re-run
 *    is its `Hpcflow-Input` commit's (on a results ref the results commit's own tree can hold an
 *    older pipeline), or its own tree when that commit is not in the repository.
 * 2. Otherwise the newest results commit, among the last `limit` commits of HEAD and of the
 *    results ref, whose `Hpcflow-Input` is REV.
 * 3. Otherwise REV's own tree, when it holds a lockfile (committed by hand).
 */
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { HpcflowError } from '../errors.js';
import { readFileAt, resolveRev } from '../git/repo.js';
import { fullRef } from '../git/results.js';
import { INPUT_TRAILER, parseTrailers, resultsRunId } from '../git/trailers.js';
import { LOCKFILE_NAME } from '../lockfile/lockfile.js';

export type TargetSource = 'results-commit' | 'results-of-input' | 'lockfile-in-commit';

export interface ReproduceTarget {
  /** REV as given. */
  readonly rev: string;
  /** REV resolved. */
  readonly commit: string;
  readonly source: TargetSource;
  /** The commit whose lockfile (and committed outputs) are the record. */
  readonly resultsCommit: string;
  /** The commit whose tree is re-run. */
  readonly inputCommit: string;
  /** The recorded run (results commits only). */
  readonly runId: string | null;
  /** The recorded lockfile's text. */
  readonly lockText: string;
  readonly warnings: readonly string[];
}

export interface ResolveTargetOptions {
  readonly gitRoot: string;
  /** The workspace's path in the repository ('' at the root). */
  readonly wsRel: string;
  readonly rev: string;
  /** hpcflow.yaml's results.ref, searched besides HEAD. */
  readonly resultsRef?: string | null;
  /** Commits searched per ref. Default 200. */
  readonly limit?: number;
  readonly cache?: object;
}

const short = (oid: string): string => oid.slice(0, 12);

/** The repository path of a workspace file. */
export const repoFile = (wsRel: string, rel: string): string => (wsRel === '' ? rel : `${wsRel}/${rel}`);

/** The `Hpcflow-Input` of a commit message, or null. */
export function inputTrailer(message: string): string | null {
  return parseTrailers(message).get(INPUT_TRAILER.toLowerCase())?.[0] || null;
}

const sameCommit = (trailer: string, oid: string): boolean => trailer === oid || (trailer.length >= 7 && /^[0-9a-f]+$/.test(trailer) && oid.startsWith(trailer));

export async function resolveTarget(o: ResolveTargetOptions): Promise<ReproduceTarget> {
  const { gitRoot: dir, rev } = o;
  const cache = o.cache ?? {};
  const lockPath = repoFile(o.wsRel, LOCKFILE_NAME);
  const commit = await resolveRev(dir, rev);
  if (commit === null) throw new HpcflowError('HPCFLOW_USAGE', `unknown revision '${rev}'`, { hint: 'name a commit, branch or tag of this repository (git log shows them)' });
  let message: string;
  try {
    message = (await git.readCommit({ fs, dir, oid: commit, cache })).commit.message;
  } catch (e) {
    throw new HpcflowError('HPCFLOW_USAGE', `'${rev}' (${short(commit)}) is not a commit`, { cause: e });
  }
  const lockAt = (oid: string): Promise<string | null> => readFileAt(dir, oid, lockPath);
  const warnings: string[] = [];

  const fromResults = async (results: string, msg: string, source: TargetSource): Promise<ReproduceTarget> => {
    const lockText = await lockAt(results);
    if (lockText === null) throw new HpcflowError('HPCFLOW_USAGE', `results commit ${short(results)} has no ${lockPath}`, { hint: 'it records no stage results to reproduce' });
    const trailer = inputTrailer(msg);
    let input: string | null = null;
    if (trailer !== null) {
      input = await resolveRev(dir, trailer);
      if (input !== null) {
        try {
          await git.readCommit({ fs, dir, oid: input, cache });
        } catch {
          input = null;
        }
      }
      if (input === null) warnings.push(`the input commit ${trailer.slice(0, 12)} of results commit ${short(results)} is not in this repository (fetch it for an exact re-run); re-running the results commit's own tree instead`);
    }
    return { rev, commit, source, resultsCommit: results, inputCommit: input ?? results, runId: resultsRunId(msg), lockText, warnings };
  };

  if (resultsRunId(message) !== null) return fromResults(commit, message, 'results-commit');

  // The newest results commit that names REV as its input.
  const refs = ['HEAD', ...(o.resultsRef ? [fullRef(o.resultsRef)] : [])];
  let best: { oid: string; message: string; time: number } | null = null;
  const seen = new Set<string>();
  for (const ref of refs) {
    let log: Awaited<ReturnType<typeof git.log>>;
    try {
      log = await git.log({ fs, dir, ref, depth: o.limit ?? 200, cache });
    } catch {
      continue; // no such ref, or an unborn HEAD
    }
    for (const c of log) {
      if (seen.has(c.oid)) continue;
      seen.add(c.oid);
      if (resultsRunId(c.commit.message) === null) continue;
      const input = inputTrailer(c.commit.message);
      if (input === null || !sameCommit(input, commit)) continue;
      const time = c.commit.committer.timestamp;
      if (best === null || time > best.time) best = { oid: c.oid, message: c.commit.message, time };
    }
  }
  if (best !== null) return fromResults(best.oid, best.message, 'results-of-input');

  const own = await lockAt(commit);
  if (own !== null) return { rev, commit, source: 'lockfile-in-commit', resultsCommit: commit, inputCommit: commit, runId: null, lockText: own, warnings };

  throw new HpcflowError('HPCFLOW_USAGE', `nothing recorded to reproduce for '${rev}' (${short(commit)})`, {
    hint:
      `it is not a results commit, no results commit among the last ${o.limit ?? 200} commits of HEAD${o.resultsRef ? ` and ${o.resultsRef}` : ''} names it as its input, ` +
      `and it has no ${lockPath}: run it with \`hpcflow run --commit-results\`, or name a commit that has a lockfile`,
  });
}
