import { resolve } from 'node:path';
import { acquireWorkspaceLock } from '../engine/workspace-lock.js';
import { HpcflowError, isHpcflowError } from '../errors.js';
import { parse } from './args.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

/**
 * `hpcflow watch --url URL [--branch main] [--workdir DIR] [--interval S] [--once] [--queue newest|all] [-- run options]`:
 * runs each new commit of the branch in DIR (a clone of its own) with `hpcflow run --commit-results
 * --push`, plus the run options given after `--` (e.g. --executor slurm --site FILE).
 */
export async function cmdWatch(args: readonly string[], io: CliIO): Promise<number> {
  const dash = args.indexOf('--');
  const own = dash < 0 ? args : args.slice(0, dash);
  const extra = dash < 0 ? [] : args.slice(dash + 1);
  const { values } = parse(own, {
    url: { type: 'string' },
    branch: { type: 'string', default: 'main' },
    workdir: { type: 'string' },
    interval: { type: 'string', default: '15' },
    once: { type: 'boolean', default: false },
    queue: { type: 'string', default: 'newest' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  if (values.url === undefined) throw new HpcflowError('HPCFLOW_USAGE', 'watch needs --url (the http(s) URL of the repository)');
  if (values.queue !== 'newest' && values.queue !== 'all') throw new HpcflowError('HPCFLOW_USAGE', `--queue must be newest or all (got '${values.queue}')`);
  const queue: 'newest' | 'all' = values.queue;
  const interval = Number(values.interval);
  if (!Number.isFinite(interval) || interval <= 0) throw new HpcflowError('HPCFLOW_USAGE', `--interval must be a positive number of seconds (got '${values.interval}')`);
  const workdir = resolve(io.cwd, values.workdir ?? `.hpcflow-watch/${values.branch.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
  const lockFile = `${workdir}.watch.lock`;
  const { upToDate, watch } = await import('../triggers/watch.js');
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const opts = {
    ...(await runOptions(io, values.url, extra, abort.signal)),
    branch: values.branch,
    workdir,
    intervalMs: interval * 1000,
    once: values.once,
    queue,
    log: (line: string) => io.out(`${new Date().toISOString()} [watch ${values.branch}] ${line}\n`),
  };
  try {
    for (;;) {
      let release: () => void;
      try {
        release = acquireWorkspaceLock(lockFile);
      } catch (e) {
        if (values.once && isHpcflowError(e, 'HPCFLOW_WORKSPACE_LOCKED')) {
          // Another watcher holds this clone; it runs the newest commit once it is done.
          opts.log('another watcher is running in this clone; it will pick up the newest commit');
          return EXIT.ok;
        }
        throw e;
      }
      let failed = false;
      try {
        failed = (await watch(opts)).some((r) => r.action === 'failed');
      } finally {
        release();
      }
      if (!values.once || abort.signal.aborted) return failed ? EXIT.stageFailed : EXIT.ok;
      // A push that arrived while we held the lock found it held and left: look once more.
      if (await upToDate(opts)) return failed ? EXIT.stageFailed : EXIT.ok;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/**
 * What `watch` and `serve` run in their clones, and how: `hpcflow run --commit-results --push`
 * plus the run options given after `--`, the token from HPCFLOW_GIT_TOKEN, the loop guard.
 */
export async function runOptions(io: CliIO, url: string, extra: readonly string[], signal: AbortSignal) {
  const { isResultsCommit } = await import('../git/trailers.js');
  const token = io.env.HPCFLOW_GIT_TOKEN;
  return {
    url,
    ...(token !== undefined && token !== '' ? { token } : {}),
    runArgv: [process.argv[1] ?? 'hpcflow', 'run', '--commit-results', '--push', ...extra],
    env: io.env,
    signal,
    isResultsCommit,
  };
}
