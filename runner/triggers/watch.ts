/**
 * `hpcflow watch`: follows a branch of a remote and runs each new commit in a clone of its own
 * (outputs and cache stay there between runs, so each run is incremental), committing and pushing
 * the results. One run at a time per clone; when commits pile up the newest wins. A results commit
 * (trailer `Hpcflow-Run:`) never triggers a run: that is the loop guard.
 */
import * as fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { execa } from 'execa';
import { liveLockOwner } from '../engine/workspace-lock.js';
import { HpcflowError } from '../errors.js';

export interface WatchOptions {
  /** The remote's URL (http/https; isomorphic-git speaks no ssh or git://). */
  readonly url: string;
  readonly branch: string;
  /** The clone the runs happen in (created on first use). */
  readonly workdir: string;
  readonly intervalMs: number;
  /** Handle what is there now (and whatever arrives meanwhile), then return. */
  readonly once: boolean;
  /** When commits pile up: run only the newest (default), or each one in order, oldest first. */
  readonly queue?: 'newest' | 'all';
  /** From HPCFLOW_GIT_TOKEN; never printed. */
  readonly token?: string;
  /** The `hpcflow run` to start in the clone: argv after `node` (bin path, 'run', options). */
  readonly runArgv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
  log(line: string): void;
  /** Decides the loop guard (isResultsCommit of git/results). */
  isResultsCommit(message: string): boolean;
}

export interface WatchOutcome {
  readonly commit: string;
  readonly action: 'ran' | 'failed' | 'skipped-results-commit';
  readonly exitCode?: number;
}

const auth = (token: string | undefined) => (token === undefined ? {} : { onAuth: () => ({ username: token }) });

/** The remote branch's tip, or null when the branch does not exist. */
export async function remoteTip(url: string, branch: string, token?: string): Promise<string | null> {
  try {
    const refs = await git.listServerRefs({ http, url, prefix: `refs/heads/${branch}`, ...auth(token) });
    return refs.find((r) => r.ref === `refs/heads/${branch}`)?.oid ?? null;
  } catch (e) {
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${url}: ${(e as Error).message}`);
  }
}

/** Clone (first time) or fetch, then check out exactly `tip` on the branch: tracked files reset, outputs kept. */
async function fetchBranch(o: WatchOptions): Promise<void> {
  const dir = o.workdir;
  if (!fs.existsSync(join(dir, '.git'))) {
    await mkdir(dir, { recursive: true });
    await git.clone({ fs, http, dir, url: o.url, ref: o.branch, singleBranch: true, ...auth(o.token) });
  } else {
    await git.fetch({ fs, http, dir, remote: 'origin', ref: o.branch, singleBranch: true, ...auth(o.token) });
  }
}

async function checkoutCommit(o: WatchOptions, oid: string): Promise<void> {
  await git.writeRef({ fs, dir: o.workdir, ref: `refs/heads/${o.branch}`, value: oid, force: true });
  await git.checkout({ fs, dir: o.workdir, ref: o.branch, force: true });
}

/**
 * `queue: all`: the oldest commit after the last one a results commit covers, walking first
 * parents back from the tip (at most 200); the tip itself when no results commit is in reach (a
 * first start does not replay the whole history).
 */
async function oldestUnrun(o: WatchOptions, tip: string): Promise<string> {
  const covered = new Set<string>();
  let oldest: string | null = null;
  for (const c of await git.log({ fs, dir: o.workdir, ref: tip, depth: 200 })) {
    const m = c.commit.message;
    if (o.isResultsCommit(m)) {
      const input = /^Hpcflow-Input:\s*(\S+)\s*$/im.exec(m)?.[1];
      if (input !== undefined) covered.add(input);
      continue;
    }
    if (covered.has(c.oid)) return oldest ?? tip;
    oldest = c.oid;
  }
  return tip;
}

/** One pass: run the remote tip if it is new. Returns what happened, or null when there was nothing new. */
export async function watchOnce(o: WatchOptions, last: string | null): Promise<WatchOutcome | null> {
  // A run still going in this clone (its watcher was killed; the run was not) finishes first.
  await waitForRun(o);
  const remote = await remoteTip(o.url, o.branch, o.token);
  if (remote === null || remote === last) return null;
  await fetchBranch(o);
  const tip = o.queue === 'all' ? await oldestUnrun(o, remote) : remote;
  if (tip === last) return null;
  await checkoutCommit(o, tip);
  const { commit } = await git.readCommit({ fs, dir: o.workdir, oid: tip });
  if (o.isResultsCommit(commit.message)) {
    o.log(`${tip.slice(0, 12)} is a results commit: not run (loop guard)`);
    return { commit: tip, action: 'skipped-results-commit' };
  }
  o.log(`${tip.slice(0, 12)} ${commit.message.split('\n')[0] ?? ''}: running`);
  // The run writes to a file, not to a pipe of ours: if this watcher is killed, the run is not
  // (a broken pipe would end it between its stages and its results commit); it finishes alone.
  const logFile = `${o.workdir}.run.log`;
  fs.writeFileSync(logFile, '');
  const r = await execa(process.execPath, [...o.runArgv], {
    cwd: o.workdir,
    env: o.env,
    reject: false,
    cancelSignal: o.signal,
    stdin: 'ignore',
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
  });
  for (const l of fs.readFileSync(logFile, 'utf8').split('\n')) if (l !== '') o.log(`  ${l}`);
  const code = r.exitCode ?? 1;
  o.log(`${tip.slice(0, 12)}: run ${code === 0 ? 'succeeded' : `failed (exit ${code})`}`);
  return { commit: tip, action: code === 0 ? 'ran' : 'failed', exitCode: code };
}

/** Waits while a live process holds the clone's run lock (`.hpcflow/tmp/run.lock`). */
async function waitForRun(o: WatchOptions): Promise<void> {
  const file = join(o.workdir, '.hpcflow', 'tmp', 'run.lock');
  let said = false;
  for (let pid = liveLockOwner(file); pid !== null && !o.signal.aborted; pid = liveLockOwner(file)) {
    if (!said) o.log(`a run (pid ${pid}) is still going in ${o.workdir}: waiting for it`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The remote's tip is what this clone last fetched or checked out (nothing new to run). */
export async function upToDate(o: WatchOptions): Promise<boolean> {
  const tip = await remoteTip(o.url, o.branch, o.token);
  if (tip === null) return true;
  const at = (ref: string): Promise<string | null> => git.resolveRef({ fs, dir: o.workdir, ref }).catch(() => null);
  return tip === (await at(`refs/remotes/origin/${o.branch}`)) || tip === (await at(`refs/heads/${o.branch}`));
}

/** Follow the branch until aborted (or, with `once`, until no new commit is left). */
export async function watch(o: WatchOptions): Promise<WatchOutcome[]> {
  const done: WatchOutcome[] = [];
  let last: string | null = null;
  while (!o.signal.aborted) {
    const r = await watchOnce(o, last);
    if (r !== null) {
      done.push(r);
      // The run pushed a results commit: that is the tip now, seen (and skipped) next time.
      last = r.commit;
      continue;
    }
    if (o.once) break;
    await new Promise<void>((res) => {
      const t = setTimeout(res, o.intervalMs);
      o.signal.addEventListener('abort', () => {
        clearTimeout(t);
        res();
      }, { once: true });
    });
  }
  return done;
}

/**
 * Runs triggered branches one at a time per branch: a trigger while that branch is running marks
 * it to be looked at again afterwards (newest commit wins); other branches run alongside.
 */
export class BranchQueue {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly last = new Map<string, string | null>();

  constructor(private readonly optionsFor: (branch: string) => WatchOptions) {}

  trigger(branch: string): Promise<void> {
    const busy = this.running.get(branch);
    if (busy !== undefined) {
      this.again.add(branch);
      return busy;
    }
    const p = this.drain(branch).finally(() => this.running.delete(branch));
    this.running.set(branch, p);
    return p;
  }

  /** Waits for every running branch. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private async drain(branch: string): Promise<void> {
    const o = this.optionsFor(branch);
    do {
      this.again.delete(branch);
      try {
        for (;;) {
          const r = await watchOnce(o, this.last.get(branch) ?? null);
          if (r === null) break;
          this.last.set(branch, r.commit);
        }
      } catch (e) {
        o.log(`error: ${(e as Error).message}`);
      }
    } while (this.again.has(branch) && !o.signal.aborted);
  }
}
