/** `hpcflow log`: the runs recorded in the git history, newest first. */
import { openHistory, runLog, startCommit } from '../history/git-history.js';
import { logJson, renderLog } from '../history/log-view.js';
import { parseCount } from '../history/options.js';
import { HpcflowError } from '../errors.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const LOG_HELP = `hpcflow log — the runs committed to git history (results commits), newest first.

Usage: hpcflow log [--ref REF] [-n N] [--json]

One line per results commit (a commit with an Hpcflow-Run trailer, as \`run --commit-results\`
makes them): the input commit that ran, the date, the run id, ok/FAILED, how many stages ran,
were restored, were up to date or failed, the wall time and the executor — from the run record
the commit holds (runs/<run id>.json, or results.runs_dir of hpcflow.yaml).

Options:
  --ref REF          the history to read (default: results.ref of hpcflow.yaml if set, else HEAD);
                     a branch, tag, commit, HEAD~N or a full ref such as refs/hpcflow/results/main
  -n, --max-count N  at most N runs (default 20)
  --json             one JSON object per line
  -C, --workspace DIR
`;

const OPTIONS = { ...COMMON_OPTIONS, ref: { type: 'string' }, 'max-count': { type: 'string', short: 'n' } } as const;

export async function cmdLog(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.out(LOG_HELP);
    return EXIT.ok;
  }
  if (positionals.length > 0) {
    throw new HpcflowError('HPCFLOW_USAGE', `hpcflow log takes no arguments (got '${positionals.join(' ')}')`, { hint: 'name the history with --ref REF' });
  }
  const limit = parseCount(values['max-count'], 20);
  const repo = await openHistory(workspaceRoot(values, io));
  const start = await startCommit(repo, values.ref);
  const entries = await runLog(repo, start.oid, limit);
  if (values.json) {
    for (const e of entries) io.out(`${JSON.stringify(logJson(e))}\n`);
  } else if (entries.length === 0) {
    io.out(`no runs on ${start.name}: no results commits (with an Hpcflow-Run trailer) in its history\n`);
  } else {
    io.out(renderLog(entries));
  }
  return EXIT.ok;
}
