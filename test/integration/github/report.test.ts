/**
 * `hpcflow report` against the fake GitHub (OpenAPI-validated): results commits fabricated with
 * the git CLI as `run --commit-results` writes them, one on main (the base) and one on the pull
 * request's branch (the head, with repeated measurements).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cmdReport } from '../../../runner/cli/cmd-report.js';
import type { CliIO } from '../../../runner/cli/io.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { createGitHubClient } from '../../../runner/github/client.js';
import { reportMarker } from '../../../runner/github/sticky-comment.js';
import { startFakeGitHub, type FakeGitHub } from '../../helpers/fake-github.js';
import { git } from '../../helpers/git.js';

const OWNER = 'octo-org';
const REPO = 'hpc-repo';
const PR = 5;

async function write(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

async function commitRun(repo: string, runId: string, input: string, metrics: unknown, stages: Record<string, unknown>): Promise<string> {
  const record = { schema: 1, runId, ok: true, aborted: false, wallMs: 1000, counts: { ran: 1 }, inputCommit: input, metrics: { solve: 'metrics/solve.json' }, stages };
  await write(repo, { [`runs/${runId}.json`]: `${JSON.stringify(record, null, 2)}\n`, 'metrics/solve.json': `${JSON.stringify(metrics)}\n` });
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-F', '-'], { input: `hpcflow: 1 ran (run ${runId})\n\nHpcflow-Run: ${runId}\nHpcflow-Input: ${input}\n` });
  return git(repo, ['rev-parse', 'HEAD']);
}

let tmp: string;
let repo: string;
let headInput: string;
let baseInput: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hpcflow-report-'));
  repo = join(tmp, 'ws');
  await mkdir(repo);
  await git(repo, ['init', '-q', '-b', 'main']);
  await write(repo, { 'params.yaml': 'n: 1\n' });
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-m', 'initial']);
  baseInput = await git(repo, ['rev-parse', 'HEAD']);
  await commitRun(repo, '20261124T100000Z-aaaaaa', baseInput, { time: { total: [10, 10.2, 9.9, 10.1, 10] }, gflops: [50, 50.5, 49.8, 50.2, 50] }, {
    solve: { status: 'ran', reasons: ['params changed'] },
  });
  await git(repo, ['checkout', '-q', '-b', 'pr']);
  await write(repo, { 'params.yaml': 'n: 2\n' });
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-m', 'faster']);
  headInput = await git(repo, ['rev-parse', 'HEAD']);
  await commitRun(repo, '20261124T120000Z-bbbbbb', headInput, { time: { total: [8.5, 8.6, 8.4, 8.55, 8.5] }, gflops: [58, 58.4, 57.9, 58.1, 58.2] }, {
    build: { status: 'up-to-date' },
    solve: { status: 'ran', reasons: ['param n changed: 1 → 2'] },
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let gh: FakeGitHub;
beforeEach(async () => {
  gh = await startFakeGitHub({ owner: OWNER, repo: REPO });
  gh.state.addPullRequest({ number: PR, headSha: headInput, headRef: 'pr', baseSha: baseInput, baseRef: 'main' });
});
afterEach(async () => {
  await gh.close();
});

function capture(env: Record<string, string> = { GITHUB_TOKEN: gh.token, GITHUB_API_URL: gh.url }): { io: CliIO; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false, env, cwd: repo }, out: () => out, err: () => err };
}

const fast = { client: (io: CliIO) => createGitHubClient({ env: io.env, retryBaseMs: 10, warn: (m) => io.err(`${m}\n`) }) };
const ARGS = ['--pr', String(PR), '--repo', `${OWNER}/${REPO}`, '--head', 'pr', '--pipeline', 'heat', '-C', '.'];

async function report(extra: string[] = [], c = capture()): Promise<{ code: number; out: string; err: string }> {
  const code = await cmdReport([...ARGS, ...extra], c.io, fast);
  return { code, out: c.out(), err: c.err() };
}

const ops = (): (string | undefined)[] => gh.requests().map((r) => r.operationId);

describe('hpcflow report', () => {
  it('creates the sticky comment once, then updates it in place, and sets a commit status', async () => {
    const first = await report(['--run-url', 'https://ci.example.org/run/1']);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/Improvement: comment created/);
    let comments = gh.state.commentsOf(PR);
    expect(comments).toHaveLength(1);
    expect(comments[0]?.body).toContain(reportMarker('heat'));
    expect(comments[0]?.body).toContain('🟢 hpcflow · heat: Improvement');
    expect(comments[0]?.body).toContain('`solve` re-ran: param n changed: 1 → 2');
    expect(comments[0]?.body).toContain('[the run](https://ci.example.org/run/1)');
    const id = comments[0]?.id;

    const second = await report(['--run-url', 'https://ci.example.org/run/2']);
    expect(second.out).toMatch(/comment updated/);
    comments = gh.state.commentsOf(PR);
    expect(comments).toHaveLength(1);
    expect(comments[0]?.id).toBe(id);
    expect(comments[0]?.body).toContain('run/2');
    expect(ops().filter((o) => o === 'issues/create-comment')).toHaveLength(1);
    expect(ops().filter((o) => o === 'issues/update-comment')).toHaveLength(1);

    expect(gh.state.statuses).toHaveLength(2);
    expect(gh.state.statuses[1]).toMatchObject({ sha: headInput, state: 'success', context: 'hpcflow/heat', targetUrl: 'https://ci.example.org/run/2' });
    // The base came from the pull request's base branch.
    expect(comments[0]?.body).toContain('vs base `main`');
    // The token never appears in output.
    expect(first.out + first.err + second.out + second.err).not.toContain(gh.token);
  });

  it('finds its comment on page 3 of 250 comments', async () => {
    for (let i = 0; i < 250; i++) {
      gh.state.addComment({ issueNumber: PR, body: i === 229 ? `old report\n\n${reportMarker('heat')}\n` : i === 10 ? `other\n${reportMarker('heat-other')}` : `comment ${i}` });
    }
    const target = gh.state.commentsOf(PR)[229]?.id;
    const r = await report();
    expect(r.out).toMatch(/comment updated/);
    expect(gh.state.commentsOf(PR)).toHaveLength(250);
    expect(gh.state.commentsOf(PR)[229]?.body).toContain('Improvement');
    expect(gh.state.comments.find((c) => c.id === target)?.body).toContain(reportMarker('heat'));
    const lists = gh.requests().filter((q) => q.operationId === 'issues/list-comments');
    expect(lists.map((q) => [q.query.per_page, q.query.page ?? '1'])).toEqual([
      ['100', '1'],
      ['100', '2'],
      ['100', '3'],
    ]);
    expect(ops()).not.toContain('issues/create-comment');
  });

  it('retries a 5xx', async () => {
    gh.failNext(2, 502);
    const r = await report();
    expect(r.code).toBe(0);
    const statuses = gh.requests().map((q) => q.status);
    expect(statuses.slice(0, 3)).toEqual([502, 502, 200]);
    expect(gh.state.commentsOf(PR)).toHaveLength(1);
  });

  it('waits out a secondary rate limit', async () => {
    gh.rateLimitNext(1, { retryAfter: 1 });
    const t0 = Date.now();
    const r = await report();
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(gh.requests()[0]?.status).toBe(403);
    expect(r.err).toMatch(/secondary rate limit.*waiting 1s/);
    expect(gh.state.commentsOf(PR)).toHaveLength(1);
  });

  it('gives up on a rate limit that does not end (bounded retries)', async () => {
    gh.rateLimitNext(10, { retryAfter: 0 });
    const c = capture();
    const e = await cmdReport(ARGS, c.io, { client: (io) => createGitHubClient({ env: io.env, rateLimitRetries: 2, rateLimitBaseMs: 1 }) }).catch((x: unknown) => x);
    expect(isHpcflowError(e) && e.message).toMatch(/secondary rate limit/);
    expect(gh.requests()).toHaveLength(3);
  });

  it('says clearly that a read-only token cannot post, and posts nothing', async () => {
    gh.state.readOnly = true;
    const e = await report().catch((x: unknown) => x);
    expect(isHpcflowError(e)).toBe(true);
    if (!isHpcflowError(e)) return;
    expect(e.message).toMatch(/token is read-only.*nothing was posted/);
    expect(e.hint).toMatch(/forks get a read-only GITHUB_TOKEN.*trusted workflow/);
    expect(e.message + (e.hint ?? '')).not.toContain(gh.token);
    expect(gh.state.comments).toHaveLength(0);
    expect(gh.state.statuses).toHaveLength(0);
  });

  it('--dry-run prints the markdown and makes no request (no token needed)', async () => {
    const r = await report(['--dry-run', '--base', 'main'], capture({}));
    expect(r.out).toContain('## 🟢 hpcflow · heat: Improvement');
    expect(r.out).toContain(reportMarker('heat'));
    expect(gh.requests()).toHaveLength(0);
  });

  it('--check-run creates a completed check run (validated against the OpenAPI) besides the status', async () => {
    const r = await report(['--check-run', '--run-url', 'https://ci.example.org/run/7']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/status hpcflow\/heat = success; check run hpcflow\/heat = success/);
    const creates = gh.requests().filter((q) => q.operationId === 'checks/create');
    expect(creates.map((q) => q.status)).toEqual([201]);
    const runs = [...gh.state.checkRuns.values()];
    expect(runs).toHaveLength(1);
    expect(runs[0]?.fields).toMatchObject({
      name: 'hpcflow/heat',
      head_sha: headInput,
      status: 'completed',
      conclusion: 'success',
      details_url: 'https://ci.example.org/run/7',
      output: { title: '🟢 hpcflow · heat: Improvement' },
    });
    const summary = (runs[0]?.fields.output as { summary?: string } | undefined)?.summary ?? '';
    expect(summary).toContain('| solve | time.total |');
    expect(summary).not.toContain(reportMarker('heat'));
    expect(gh.state.statuses).toHaveLength(1);
    // The comment has the chart.
    expect(gh.state.commentsOf(PR)[0]?.body).toContain('```mermaid\nxychart-beta');
  });

  it('--check-run: a 403 (no GitHub App token) is a warning; the comment and status stand', async () => {
    const c = capture();
    const client = (io: CliIO): ReturnType<typeof createGitHubClient> => {
      const octokit = fast.client(io);
      // The fake refuses the check run only (403 like GitHub to a token that is not an App's).
      octokit.hook.before('request', (options) => {
        if (String(options.url).includes('/check-runs')) gh.failNext(1, 403);
      });
      return octokit;
    };
    const code = await cmdReport([...ARGS, '--check-run', '--json'], c.io, { client });
    expect(code).toBe(0);
    expect(c.err()).toMatch(/warning: cannot create the check run hpcflow\/heat: GitHub refused \(403 .*\).*GitHub App token.*comment and the commit status stand/);
    expect(c.err()).not.toContain(gh.token);
    expect(gh.requests().filter((q) => q.operationId === undefined || q.path.includes('check-runs')).map((q) => q.status)).toEqual([403]);
    expect(gh.state.checkRuns.size).toBe(0);
    expect(gh.state.commentsOf(PR)).toHaveLength(1);
    expect(gh.state.statuses).toHaveLength(1);
    expect(JSON.parse(c.out())).toMatchObject({ verdict: 'improvement', checkRun: null, status: { state: 'success' } });
  });

  it('--check-run: other failures of the check run are errors', async () => {
    const c = capture();
    const client = (io: CliIO): ReturnType<typeof createGitHubClient> => {
      const octokit = fast.client(io);
      octokit.hook.before('request', (options) => {
        if (String(options.url).includes('/check-runs')) gh.failNext(1, 404);
      });
      return octokit;
    };
    const e = await cmdReport([...ARGS, '--check-run'], c.io, { client }).catch((x: unknown) => x);
    expect(isHpcflowError(e, 'HPCFLOW_GITHUB') && e.message).toMatch(/cannot create the check run hpcflow\/heat.*404/);
  });

  it('--fail-on-regression exits 1 after posting a regression, 0 for an improvement', async () => {
    // Swapped sides: the base's results as head, the pull request's as base: slower, fewer gflops.
    const bad = await report(['--head', 'main', '--base', 'pr', '--fail-on-regression', '--check-run']);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/Performance regression: comment created .*status hpcflow\/heat = failure; check run hpcflow\/heat = failure/);
    expect(gh.state.commentsOf(PR)[0]?.body).toContain('🔴 hpcflow · heat: Performance regression');
    expect([...gh.state.checkRuns.values()][0]?.fields.conclusion).toBe('failure');

    expect((await report(['--head', 'main', '--base', 'pr'])).code).toBe(0);
    expect((await report(['--fail-on-regression'])).code).toBe(0);
    expect((await report(['--head', 'main', '--base', 'pr', '--fail-on-regression', '--dry-run'], capture({}))).code).toBe(1);
  });

  it('needs a token to post', async () => {
    const e = await cmdReport(ARGS, capture({}).io).catch((x: unknown) => x);
    expect(isHpcflowError(e, 'HPCFLOW_USAGE') && e.message).toMatch(/no GitHub token: set HPCFLOW_GITHUB_TOKEN or GITHUB_TOKEN/);
  });
});
