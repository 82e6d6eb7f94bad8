/** `hpcflow report`: the metrics verdict of a pull request as one sticky comment (and a commit status, optionally a check run). */
import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { basename, posix, resolve } from 'node:path';
import git from 'isomorphic-git';
import { HpcflowError } from '../errors.js';
import type { GitHubClient } from '../github/client.js';
import { createGitHubClient, forbiddenMessage, githubCall } from '../github/client.js';
import type { ReportSide } from '../github/render.js';
import { OVERALL, renderCheckOutput, renderReport } from '../github/render.js';
import type { MetricSeries, ReportReferences, StageOutcomeInfo } from '../github/report-model.js';
import {
  checkConclusion,
  failsOnRegression,
  judgeMetrics,
  overallVerdict,
  parseReferences,
  repeatedMetrics,
  stageOutcomes,
  statusState,
} from '../github/report-model.js';
import { upsertStickyComment } from '../github/sticky-comment.js';
import type { SamplesFile } from '../measure/samples.js';
import { describeSamples, parseSamples, toSeries } from '../measure/samples.js';
import type { HistoryRepo } from '../history/git-history.js';
import { newestRecordAt, openHistory, resolveCommit, startCommit } from '../history/git-history.js';
import { recordPathProblem } from '../history/record.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';

export const REPORT_HELP = `hpcflow report — post the metrics verdict of a pull request as a sticky comment.

Usage: hpcflow report --pr N [options]

Reads the committed metrics (as 'hpcflow metrics show' does) at the head and at the base, decides
a verdict per metric (repeated measurements — an array of numbers per metric — by a Mann–Whitney
test with a bootstrap CI; single values by reference thresholds only), and creates or updates ONE
comment per pipeline on the pull request (found by a hidden marker), plus a commit status and,
with --check-run, a check run. The comment has a table of the metrics and, when both sides have
metrics, a Mermaid bar chart of head relative to base (base = 100), the most changed first.

Options:
  --pr N                     the pull request number (required)
  --repo OWNER/NAME          the repository (default $GITHUB_REPOSITORY)
  --head REV                 the results to report (default: tip of results.ref, else HEAD)
  --base REV                 the results to compare with (default: the pull request's base branch,
                             locally or as origin/<branch>; none found: references only)
  --run-url URL              link to the CI run (default from $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/
                             actions/runs/$GITHUB_RUN_ID when set)
  --references FILE.json     reference thresholds: { "<system or *>": { "<stage>:<metric>":
                             { "ref": N, "lower": -0.1, "upper": 0.1, "unit": "s",
                               "direction": "lower-is-better" } } }
  --system NAME              the system key of the references (default '*')
  --pipeline NAME            the name in the comment's marker (default: the workspace's directory)
  --samples FILE.json        judge on the samples 'hpcflow measure' took (base and head run
                             alternately on the same machine or Slurm allocation) instead of the
                             committed metrics; their commits must be the report's head and base
  --alpha P                  significance level (default 0.05)
  --min-effect F             smallest relative change that counts (default 0.02)
  --no-status                do not set the commit status hpcflow/<pipeline>
  --check-run                also create a completed check run hpcflow/<pipeline> on the head commit
                             (conclusion success, failure, or neutral when inconclusive; output:
                             the headline and the metrics table). Needs a GitHub App token (the
                             Actions GITHUB_TOKEN with checks: write is one); a 403 is a warning
                             and the comment and commit status stand
  --fail-on-regression       exit 1 when the verdict is a regression or a stage failure (after
                             posting; with --dry-run, after printing)
  --dry-run                  print the markdown; post nothing (no token needed)
  --json                     print { verdict, markdown, comment, status, checkRun } as JSON
  -C, --workspace DIR

Environment: HPCFLOW_GITHUB_TOKEN or GITHUB_TOKEN (never printed), GITHUB_API_URL (GitHub Enterprise).
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  pr: { type: 'string' },
  repo: { type: 'string' },
  head: { type: 'string' },
  base: { type: 'string' },
  'run-url': { type: 'string' },
  references: { type: 'string' },
  system: { type: 'string' },
  pipeline: { type: 'string' },
  alpha: { type: 'string' },
  'min-effect': { type: 'string' },
  'no-status': { type: 'boolean', default: false },
  'check-run': { type: 'boolean', default: false },
  'fail-on-regression': { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  samples: { type: 'string' },
} as const;

/** Test seams: the GitHub client options (baseUrl, retry timings). */
export interface ReportDeps {
  readonly client?: (io: CliIO) => GitHubClient;
}

const usage = (msg: string, hint = "run 'hpcflow report --help'"): HpcflowError => new HpcflowError('HPCFLOW_USAGE', msg, { hint });

function parseRepo(v: string | undefined): { owner: string; repo: string } {
  const m = v === undefined ? null : /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(v.trim());
  if (m === null) throw usage(v === undefined ? '--repo OWNER/NAME is required (or set $GITHUB_REPOSITORY)' : `--repo must be OWNER/NAME (got '${v}')`);
  return { owner: m[1] as string, repo: m[2] as string };
}

function parseFraction(flag: string, v: string | undefined, ok: (x: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw usage(`${flag} is out of range (got '${v}')`);
  return x;
}

/** The run URL of a GitHub Actions run, from its environment; undefined outside Actions. */
export function actionsRunUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: id } = env;
  return server && repo && id ? `${server.replace(/\/+$/, '')}/${repo}/actions/runs/${id}` : undefined;
}

function loadSamples(file: string, io: CliIO): SamplesFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(resolve(io.cwd, file), 'utf8'));
  } catch (e) {
    throw usage(`cannot read the samples ${file}: ${(e as Error).message}`, "the file 'hpcflow measure' wrote");
  }
  return parseSamples(json, file);
}

/** The samples must have been measured at the commits the report is about. */
function checkSamplesMatch(samples: SamplesFile, file: string, side: 'head' | 'base', s: Side | null): void {
  if (s === null) return;
  const ids = [s.side.commit, s.inputCommit].filter((x): x is string => x !== null);
  const got = samples[side].commit;
  if (!ids.includes(got)) {
    throw usage(`${file} measured the ${side} at ${got.slice(0, 12)}, but the report's ${side} is ${s.side.rev} (${ids.map((x) => x.slice(0, 12)).join(', input ')})`, `measure the pull request's own ${side} (hpcflow measure --base … --head …), or name it with --${side}`);
  }
}

function loadReferences(file: string | undefined, io: CliIO): ReportReferences | undefined {
  if (file === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(resolve(io.cwd, file), 'utf8'));
  } catch (e) {
    throw usage(`cannot read the references ${file}: ${(e as Error).message}`, 'a JSON file, see hpcflow report --help');
  }
  const r = parseReferences(json);
  if (typeof r === 'string') throw usage(`${file}: ${r}`, 'see hpcflow report --help for the format');
  return r;
}

async function blobText(repo: HistoryRepo, oid: string, path: string): Promise<string | null> {
  try {
    const r = await git.readBlob({ fs, dir: repo.dir, oid, filepath: path, cache: repo.cache });
    return Buffer.from(r.blob).toString('utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw new HpcflowError('HPCFLOW_GIT', `cannot read ${path} at ${oid.slice(0, 12)}: ${(e as Error).message}`, { cause: e });
  }
}

interface Side {
  readonly side: ReportSide;
  readonly ok: boolean | null;
  readonly inputCommit: string | null;
  readonly stages: StageOutcomeInfo[];
  readonly series: MetricSeries[];
  readonly notes: string[];
}

/** The metrics (with repetitions) and stage outcomes of the newest run record at a commit. */
async function readSide(repo: HistoryRepo, oid: string, rev: string): Promise<Side> {
  const newest = await newestRecordAt(repo, oid);
  if (newest === null) {
    throw new HpcflowError('HPCFLOW_GIT', `no run record at ${rev} (${oid.slice(0, 12)})`, {
      hint: 'name a commit that has results (see `hpcflow log`), or commit some with `hpcflow run --commit-results`',
    });
  }
  const rawText = await blobText(repo, oid, newest.path);
  let raw: unknown = null;
  try {
    raw = rawText === null ? null : JSON.parse(rawText);
  } catch {
    raw = null;
  }
  const series: MetricSeries[] = [];
  const notes: string[] = [];
  for (const stage of Object.keys(newest.record.metrics).sort()) {
    const file = newest.record.metrics[stage] as string;
    const refused = recordPathProblem(file);
    if (refused !== null) {
      notes.push(`${stage}: ${file}: ${refused}`);
      continue;
    }
    const text = await blobText(repo, oid, posix.normalize(posix.join(repo.prefix, file)));
    if (text === null) {
      notes.push(`${stage}: ${file} is not in ${rev}`);
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      notes.push(`${stage}: ${file} at ${rev} is not valid JSON`);
      continue;
    }
    for (const m of repeatedMetrics(json)) series.push({ stage, metric: m.metric, values: m.values });
  }
  return {
    side: { rev, commit: oid, runId: newest.record.runId },
    ok: newest.record.ok,
    inputCommit: newest.record.inputCommit,
    stages: stageOutcomes(raw),
    series,
    notes,
  };
}

/** The base: as named; else the PR's base branch, locally, then as origin/<branch>; else none. */
async function resolveBase(repo: HistoryRepo, named: string | undefined, prBaseRef: string | undefined): Promise<{ name: string; oid: string } | null> {
  if (named !== undefined) return { name: named, oid: await resolveCommit(repo, named) };
  if (prBaseRef === undefined) return null;
  for (const candidate of [prBaseRef, `origin/${prBaseRef}`]) {
    try {
      return { name: candidate, oid: await resolveCommit(repo, candidate) };
    } catch {
      // try the next
    }
  }
  return null;
}

export async function cmdReport(args: readonly string[], io: CliIO, deps: ReportDeps = {}): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.out(REPORT_HELP);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw usage(`unexpected argument '${positionals[0] as string}'`);
  if (values.pr === undefined) throw usage('--pr N is required');
  if (!/^\d+$/.test(values.pr) || Number(values.pr) < 1) throw usage(`--pr must be a pull request number (got '${values.pr}')`);
  const prNumber = Number(values.pr);
  const dryRun = values['dry-run'];
  const alpha = parseFraction('--alpha', values.alpha, (x) => x > 0 && x < 1);
  const minEffect = parseFraction('--min-effect', values['min-effect'], (x) => x >= 0);
  const references = loadReferences(values.references, io);
  const runUrl = values['run-url'] ?? actionsRunUrl(io.env);
  if (runUrl !== undefined && !/^https?:\/\//.test(runUrl)) throw usage(`--run-url must be an http(s) URL (got '${runUrl}')`);

  const root = workspaceRoot(values, io);
  const repo = await openHistory(root);
  const pipeline = values.pipeline ?? (repo.prefix === '' ? basename(repo.dir) : repo.prefix.replace(/\/$/, ''));

  // GitHub: only when posting. A dry run needs no token and makes no request.
  let gh: GitHubClient | null = null;
  let target: { owner: string; repo: string } | null = null;
  let prHeadSha: string | undefined;
  let prBaseRef: string | undefined;
  if (!dryRun) {
    target = parseRepo(values.repo ?? io.env.GITHUB_REPOSITORY);
    gh = deps.client ? deps.client(io) : createGitHubClient({ env: io.env, warn: (m) => io.err(`hpcflow: ${m}\n`) });
    const { owner, repo: name } = target;
    const client = gh;
    const pr = await githubCall(`read pull request ${owner}/${name}#${prNumber}`, () => client.rest.pulls.get({ owner, repo: name, pull_number: prNumber }));
    prHeadSha = pr.data.head.sha;
    prBaseRef = pr.data.base.ref;
  }

  const headStart = await startCommit(repo, values.head);
  const head = await readSide(repo, headStart.oid, headStart.name);
  const baseStart = await resolveBase(repo, values.base, prBaseRef);
  const base = baseStart === null ? null : await readSide(repo, baseStart.oid, baseStart.name);

  const samples = values.samples === undefined ? null : loadSamples(values.samples, io);
  if (samples !== null) {
    checkSamplesMatch(samples, values.samples as string, 'head', head);
    checkSamplesMatch(samples, values.samples as string, 'base', base);
  }
  const metrics = judgeMetrics(samples !== null ? toSeries(samples.samples.base) : (base?.series ?? []), samples !== null ? toSeries(samples.samples.head) : head.series, {
    ...(references ? { references } : {}),
    ...(values.system !== undefined ? { system: values.system } : {}),
    ...(alpha !== undefined ? { alpha } : {}),
    ...(minEffect !== undefined ? { minEffect } : {}),
  });
  const notes = [...head.notes, ...(base?.notes ?? [])];
  if (base === null && samples === null) notes.push('no base results found: pass --base REV to compare with a base');
  const reportInput = {
    pipeline,
    head: head.side,
    base: base?.side ?? (samples !== null ? { rev: samples.base.rev, commit: samples.base.commit, runId: '' } : null),
    ...(samples !== null ? { measured: describeSamples(samples) } : {}),
    stages: head.stages,
    metrics,
    runOk: head.ok,
    ...(runUrl !== undefined ? { runUrl } : {}),
    notes,
  };
  const markdown = renderReport(reportInput);
  const verdict = overallVerdict(head.stages, metrics, head.ok);
  const exitCode = values['fail-on-regression'] && failsOnRegression(verdict) ? EXIT.stageFailed : EXIT.ok;

  if (dryRun || gh === null || target === null) {
    if (values.json) io.out(`${JSON.stringify({ verdict, markdown, comment: null, status: null, checkRun: null })}\n`);
    else io.out(markdown);
    return exitCode;
  }

  const sticky = await upsertStickyComment(gh, { owner: target.owner, repo: target.repo, issueNumber: prNumber, pipeline }, markdown);
  const sha = prHeadSha ?? head.inputCommit ?? head.side.commit;
  let status: { sha: string; state: string; context: string } | null = null;
  if (!values['no-status']) {
    const state = statusState(verdict);
    const context = `hpcflow/${pipeline}`;
    const description = `${OVERALL[verdict].word} (${metrics.length} metric${metrics.length === 1 ? '' : 's'})`.slice(0, 140);
    const client = gh;
    const { owner, repo: name } = target;
    await githubCall(
      `set the commit status ${context} on ${sha.slice(0, 12)}`,
      () => client.rest.repos.createCommitStatus({ owner, repo: name, sha, state, context, description, ...(runUrl !== undefined ? { target_url: runUrl } : {}) }),
      { write: true },
    );
    status = { sha, state, context };
  }
  let checkRun: { id: number; sha: string; name: string; conclusion: string; url: string } | null = null;
  if (values['check-run']) {
    const name = `hpcflow/${pipeline}`;
    const conclusion = checkConclusion(verdict);
    const client = gh;
    const { owner, repo: repoName } = target;
    try {
      const res = await githubCall(
        `create the check run ${name} on ${sha.slice(0, 12)}`,
        () =>
          client.rest.checks.create({
            owner,
            repo: repoName,
            name,
            head_sha: sha,
            status: 'completed',
            conclusion,
            completed_at: new Date().toISOString(),
            output: renderCheckOutput(reportInput),
            ...(runUrl !== undefined ? { details_url: runUrl } : {}),
          }),
        { write: true },
      );
      checkRun = { id: res.data.id, sha, name, conclusion, url: res.data.html_url ?? res.data.url };
    } catch (e) {
      const forbidden = forbiddenMessage((e as { cause?: unknown }).cause ?? e);
      if (forbidden === null) throw e;
      io.err(
        `hpcflow: warning: cannot create the check run ${name}: GitHub refused (403 ${forbidden}); ` +
          `check runs need a GitHub App token (the Actions GITHUB_TOKEN with permissions checks: write); the comment${status ? ' and the commit status stand' : ' stands'}\n`,
      );
    }
  }
  if (values.json) io.out(`${JSON.stringify({ verdict, markdown, comment: sticky, status, checkRun })}\n`);
  else {
    const parts = [
      `comment ${sticky.action} ${sticky.url}`,
      ...(status ? [`status ${status.context} = ${status.state}`] : []),
      ...(checkRun ? [`check run ${checkRun.name} = ${checkRun.conclusion}`] : []),
    ];
    io.out(`${OVERALL[verdict].emoji} ${OVERALL[verdict].word}: ${parts.join('; ')}\n`);
  }
  return exitCode;
}
