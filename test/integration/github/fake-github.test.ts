import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Octokit } from '@octokit/rest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SECONDARY_RATE_LIMIT_MESSAGE, startFakeGitHub, type FakeGitHub } from '../../helpers/fake-github.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const OWNER = 'octo-org';
const REPO = 'hpc-repo';
const ISSUE = 7;

let gh: FakeGitHub;

beforeEach(async () => {
  gh = await startFakeGitHub({ owner: OWNER, repo: REPO });
});
afterEach(async () => {
  await gh.close();
});

function api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${gh.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${gh.token}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
}

function parseLink(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const m = /<([^>]+)>;\s*rel="([^"]+)"/.exec(part.trim());
    if (m) out[m[2]!] = Number(new URL(m[1]!).searchParams.get('page'));
  }
  return out;
}

describe('the OpenAPI subset', () => {
  it('equals what scripts/extract-github-openapi.mjs extracts from the installed @octokit/openapi', () => {
    const fresh = execFileSync(process.execPath, ['scripts/extract-github-openapi.mjs', '--stdout'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    const committed = readFileSync(new URL('../../helpers/github-openapi/subset.json', import.meta.url), 'utf8');
    // Regenerate with: node scripts/extract-github-openapi.mjs
    expect(committed === fresh, 'test/helpers/github-openapi/subset.json is stale: run node scripts/extract-github-openapi.mjs').toBe(true);
  });
});

describe('fake GitHub with fetch', () => {
  it('create, list and update a comment; bodies are shaped like GitHub’s', async () => {
    const created = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: { body: 'perf: no change' } });
    expect(created.status).toBe(201);
    const c = (await created.json()) as Record<string, unknown>;
    expect(c).toMatchObject({ body: 'perf: no change', user: { login: 'hpcflow[bot]', type: 'Bot' }, author_association: 'NONE' });
    expect(typeof c.id).toBe('number');
    expect(c.html_url).toBe(`https://github.com/${OWNER}/${REPO}/pull/${ISSUE}#issuecomment-${String(c.id)}`);
    expect(c.url).toBe(`${gh.url}/repos/${OWNER}/${REPO}/issues/comments/${String(c.id)}`);
    expect(created.headers.get('location')).toBe(c.url);

    const list = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`);
    expect(list.status).toBe(200);
    expect(list.headers.get('link')).toBeNull();
    expect(((await list.json()) as { id: number }[]).map((x) => x.id)).toEqual([c.id]);

    const upd = await api(`/repos/${OWNER}/${REPO}/issues/comments/${String(c.id)}`, { method: 'PATCH', body: { body: 'perf: 3% faster' } });
    expect(upd.status).toBe(200);
    const u = (await upd.json()) as { body: string; updated_at: string; created_at: string };
    expect(u.body).toBe('perf: 3% faster');
    expect(u.updated_at > u.created_at).toBe(true);
    expect(gh.state.commentsOf(ISSUE).map((x) => x.body)).toEqual(['perf: 3% faster']);
    expect(gh.requests().map((r) => [r.operationId, r.status])).toEqual([
      ['issues/create-comment', 201],
      ['issues/list-comments', 200],
      ['issues/update-comment', 200],
    ]);
  });

  it('an invalid body is a 422 with GitHub-style validation messages; bad JSON is a 400', async () => {
    const missing = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: { text: 'oops' } });
    expect(missing.status).toBe(422);
    expect(((await missing.json()) as { message: string }).message).toMatch(/Invalid request\.[\s\S]*"body" wasn't supplied\./);
    const wrongType = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: { body: 42 } });
    expect(wrongType.status).toBe(422);
    expect(((await wrongType.json()) as { message: string }).message).toMatch(/For 'properties\/body', 42 is not a string\./);
    const badEnum = await api(`/repos/${OWNER}/${REPO}/statuses/abc123`, { method: 'POST', body: { state: 'green' } });
    expect(badEnum.status).toBe(422);
    expect(((await badEnum.json()) as { message: string }).message).toMatch(/"green" is not a member of/);
    const badJson = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: '{"body": ' });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { message: string }).message).toBe('Problems parsing JSON');
    expect(gh.state.comments).toHaveLength(0);
  });

  it('unknown routes, unsupported methods and non-numeric ids are 404', async () => {
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/labels`)).status).toBe(404);
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'DELETE' })).status).toBe(404);
    const r = await api(`/repos/${OWNER}/${REPO}/issues/abc/comments`);
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ message: 'Not Found' });
    expect((await api(`/repos/${OWNER}/${REPO}/issues/comments/999999`, { method: 'PATCH', body: { body: 'x' } })).status).toBe(404);
    expect((await api(`/repos/${OWNER}/${REPO}/pulls/1`)).status).toBe(404);
  });

  it('query parameter types are checked: per_page=abc is a 422', async () => {
    const r = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments?per_page=abc`);
    expect(r.status).toBe(422);
    expect(((await r.json()) as { message: string }).message).toMatch(/per_page/);
  });

  it('authentication and Accept are required', async () => {
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { headers: { authorization: '' } })).status).toBe(401);
    const bad = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { headers: { authorization: 'token nope' } });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ message: 'Bad credentials' });
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { headers: { authorization: `token ${gh.token}` } })).status).toBe(200);
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { headers: { accept: 'text/html' } })).status).toBe(415);
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { headers: { 'x-github-api-version': '1999-01-01' } })).status).toBe(400);
  });

  it('paginates 75 comments with per_page=30 into 3 pages with GitHub’s Link header', async () => {
    for (let i = 0; i < 75; i++) gh.state.addComment({ issueNumber: ISSUE, body: `c${i}` });
    const base = `/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`;
    const p1 = await api(`${base}?per_page=30`);
    expect(((await p1.json()) as unknown[]).length).toBe(30);
    expect(parseLink(p1.headers.get('link'))).toEqual({ next: 2, last: 3 });
    expect(p1.headers.get('link')).toContain(`<${gh.url}${base}?per_page=30&page=2>; rel="next"`);
    const p2 = await api(`${base}?per_page=30&page=2`);
    expect(((await p2.json()) as unknown[]).length).toBe(30);
    expect(parseLink(p2.headers.get('link'))).toEqual({ prev: 1, next: 3, last: 3, first: 1 });
    const p3 = await api(`${base}?per_page=30&page=3`);
    const last = (await p3.json()) as { body: string }[];
    expect(last.map((c) => c.body)).toEqual(Array.from({ length: 15 }, (_, i) => `c${60 + i}`));
    expect(parseLink(p3.headers.get('link'))).toEqual({ prev: 2, first: 1 });
    // Defaults and clamping: 30 per page by default, at most 100.
    expect(((await (await api(base)).json()) as unknown[]).length).toBe(30);
    expect(((await (await api(`${base}?per_page=500`)).json()) as unknown[]).length).toBe(75);
  });

  it('failNext: the next n requests fail with a 5xx, then the API works again', async () => {
    gh.failNext(2, 503);
    const path = `/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`;
    expect((await api(path)).status).toBe(503);
    expect((await api(path)).status).toBe(503);
    expect((await api(path)).status).toBe(200);
  });

  it('rateLimitNext: 403 secondary rate limit with retry-after and the documented message', async () => {
    gh.rateLimitNext(1);
    const r = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: { body: 'x' } });
    expect(r.status).toBe(403);
    expect(r.headers.get('retry-after')).toBe('1');
    const body = (await r.json()) as { message: string; documentation_url: string };
    expect(body.message).toContain(SECONDARY_RATE_LIMIT_MESSAGE);
    expect(body.message).toMatch(/secondary rate limit/);
    expect(body.documentation_url).toMatch(/secondary-rate-limits/);
    expect(gh.state.comments).toHaveLength(0);
  });

  it('a read-only token: reads work, writes are 403 "Resource not accessible by integration"', async () => {
    gh.state.readOnly = true;
    expect((await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`)).status).toBe(200);
    const w = await api(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, { method: 'POST', body: { body: 'x' } });
    expect(w.status).toBe(403);
    expect(await w.json()).toMatchObject({ message: 'Resource not accessible by integration' });
    expect((await api(`/repos/${OWNER}/${REPO}/check-runs`, { method: 'POST', body: { name: 'perf', head_sha: 'a'.repeat(40) } })).status).toBe(403);
  });
});

describe('fake GitHub with @octokit/rest', () => {
  function octokit(): Octokit {
    const quiet = (): void => undefined;
    return new Octokit({ auth: gh.token, baseUrl: gh.url, log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
  }

  it('comments, check runs, statuses and pull requests validate against the description', async () => {
    const o = octokit();
    gh.state.addPullRequest({ number: ISSUE, headSha: 'b'.repeat(40), headRef: 'feature', baseSha: 'c'.repeat(40), baseRef: 'main', title: 'Faster solver' });
    const pr = await o.rest.pulls.get({ owner: OWNER, repo: REPO, pull_number: ISSUE });
    expect(pr.data).toMatchObject({ number: ISSUE, title: 'Faster solver', head: { sha: 'b'.repeat(40), ref: 'feature' }, base: { ref: 'main' } });
    expect(pr.data.html_url).toBe(`https://github.com/${OWNER}/${REPO}/pull/${ISSUE}`);

    const c = await o.rest.issues.createComment({ owner: OWNER, repo: REPO, issue_number: ISSUE, body: 'hello' });
    await o.rest.issues.updateComment({ owner: OWNER, repo: REPO, comment_id: c.data.id, body: 'hello again' });
    const all = await o.paginate(o.rest.issues.listComments, { owner: OWNER, repo: REPO, issue_number: ISSUE, per_page: 100 });
    expect(all.map((x) => x.body)).toEqual(['hello again']);

    const run = await o.rest.checks.create({ owner: OWNER, repo: REPO, name: 'hpcflow perf', head_sha: pr.data.head.sha, status: 'in_progress' });
    expect(run.data).toMatchObject({ name: 'hpcflow perf', status: 'in_progress', conclusion: null, head_sha: 'b'.repeat(40) });
    const done = await o.rest.checks.update({
      owner: OWNER,
      repo: REPO,
      check_run_id: run.data.id,
      conclusion: 'success',
      output: { title: 'No regressions', summary: '3 metrics, no change' },
    });
    expect(done.data).toMatchObject({ status: 'completed', conclusion: 'success', output: { title: 'No regressions' } });

    const st = await o.rest.repos.createCommitStatus({ owner: OWNER, repo: REPO, sha: pr.data.head.sha, state: 'pending', context: 'hpcflow/perf' });
    expect(st.data).toMatchObject({ state: 'pending', context: 'hpcflow/perf', target_url: null });
    expect(gh.state.statuses).toHaveLength(1);
    // Octokit's own headers pass the checks.
    expect(gh.requests().every((r) => r.status < 400)).toBe(true);
  });

  it('octokit.paginate walks the Link headers over 75 comments', async () => {
    for (let i = 0; i < 75; i++) gh.state.addComment({ issueNumber: ISSUE, body: `c${i}` });
    const o = octokit();
    const all = await o.paginate(o.rest.issues.listComments, { owner: OWNER, repo: REPO, issue_number: ISSUE, per_page: 30 });
    expect(all).toHaveLength(75);
    expect(gh.requests().map((r) => r.query.page ?? '1')).toEqual(['1', '2', '3']);
  });

  it('errors surface as RequestError with GitHub’s status and message', async () => {
    const o = octokit();
    await expect(o.rest.issues.createComment({ owner: OWNER, repo: REPO, issue_number: ISSUE } as never)).rejects.toMatchObject({ status: 422 });
    gh.state.readOnly = true;
    await expect(o.rest.issues.createComment({ owner: OWNER, repo: REPO, issue_number: ISSUE, body: 'x' })).rejects.toMatchObject({
      status: 403,
      message: expect.stringContaining('Resource not accessible by integration') as unknown,
    });
  });
});
