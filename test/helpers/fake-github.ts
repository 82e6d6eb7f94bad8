/**
 * A fake GitHub REST API for tests: a local HTTP server on 127.0.0.1 (ephemeral port) that
 * validates every request against GitHub's official OpenAPI description and answers like GitHub.
 *
 * The description is the subset in github-openapi/subset.json, extracted from the npm package
 * @octokit/openapi by scripts/extract-github-openapi.mjs (the integration test checks it still
 * equals what the script extracts from the installed package). Only these operations exist:
 * issues list/create/update comment, checks create/update, statuses create, pulls get; anything
 * else is a 404 like an unknown route on GitHub.
 *
 * What it checks, in GitHub's order: authentication (`Authorization: token|Bearer <token>`,
 * 401 "Requires authentication" / "Bad credentials"), the `Accept` header (a GitHub or JSON
 * media type; 415 otherwise), `X-GitHub-Api-Version` when sent, the route (method + path), path
 * parameters (integers where the description says so; 404 otherwise, as GitHub), query parameter
 * types (422), write permission (read-only token: 403 "Resource not accessible by integration"),
 * the JSON body (400 "Problems parsing JSON"; 422 with GitHub-style messages from the request
 * schema). OpenAPI 3.0's `nullable` is honoured, including on enums.
 *
 * Responses: bodies start from the description's own response examples, overwritten with the
 * server's state (ids, html_url, bodies, timestamps), and are validated against the response
 * schema before they are sent (a mismatch is a 500 naming the problem, so the fake cannot drift
 * from GitHub's shapes unnoticed). Lists paginate like GitHub: `per_page` (default 30, at most
 * 100), `page`, and a `Link` header with rel="prev", "next", "last", "first".
 *
 * Faults: `failNext(n, status)` answers the next n requests with a 5xx (or any status);
 * `rateLimitNext(n)` with GitHub's secondary rate limit (403, `retry-after: 1`, the documented
 * "You have exceeded a secondary rate limit" message); `state.readOnly = true` (or the option)
 * makes the token read-only. Every request is recorded for assertions.
 *
 * What it does not model: issues themselves (comments can be listed/created on any issue
 * number), reactions, conditional requests (ETag/304), the primary rate limit's accounting
 * (x-ratelimit-* headers are constant), GraphQL, and media types other than JSON.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';

const SUBSET_URL = new URL('./github-openapi/subset.json', import.meta.url);
const DOCS = 'https://docs.github.com/rest';
export const SECONDARY_RATE_LIMIT_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID';
export const API_VERSIONS = ['2022-11-28'] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export interface RecordedRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Parsed JSON body (undefined when there was none or it did not parse). */
  readonly body: unknown;
  /** The matched operation, e.g. 'issues/create-comment'. */
  operationId: string | undefined;
  status: number;
}

export interface IssueComment {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly issueNumber: number;
  body: string;
  readonly createdAt: string;
  updatedAt: string;
  readonly login: string;
}

export interface CheckRun {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  /** The request fields as last set (name, head_sha, status, conclusion, output, ...). */
  fields: JsonObject;
}

export interface CommitStatus {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly sha: string;
  readonly state: string;
  readonly targetUrl: string | null;
  readonly description: string | null;
  readonly context: string;
  readonly createdAt: string;
}

export interface PullRequestSeed {
  readonly owner?: string;
  readonly repo?: string;
  readonly number: number;
  readonly title?: string;
  readonly body?: string | null;
  readonly state?: 'open' | 'closed';
  readonly headSha: string;
  readonly headRef: string;
  readonly baseSha: string;
  readonly baseRef: string;
  /** Head repository as owner/name, for pull requests from forks (default: the base repository). */
  readonly headRepo?: string;
}

export interface FakeGitHubState {
  /** When true, every write answers 403 "Resource not accessible by integration". */
  readOnly: boolean;
  readonly comments: IssueComment[];
  readonly checkRuns: Map<number, CheckRun>;
  readonly statuses: CommitStatus[];
  readonly pulls: Map<string, PullRequestSeed>;
  /** Add a comment directly (no request). */
  addComment(c: { owner?: string; repo?: string; issueNumber: number; body: string; login?: string }): IssueComment;
  addPullRequest(pr: PullRequestSeed): void;
  /** Comments of one issue, oldest first. */
  commentsOf(issueNumber: number, owner?: string, repo?: string): IssueComment[];
}

export interface FakeGitHubOptions {
  /** Default owner/repo for state helpers (default 'octo-org' / 'hpc-repo'). */
  readonly owner?: string;
  readonly repo?: string;
  /** The token that authenticates (default: a random `ghs_…`). */
  readonly token?: string;
  /** The login of the token's user, shown as comment author (default 'hpcflow[bot]'). */
  readonly login?: string;
  readonly readOnly?: boolean;
}

export interface FakeGitHub {
  /** `http://127.0.0.1:<port>`: the API base URL (use as Octokit's baseUrl). */
  readonly url: string;
  readonly token: string;
  readonly state: FakeGitHubState;
  /** Every request answered so far, in order of arrival. */
  requests(): RecordedRequest[];
  /** Answer the next `n` requests with `status` (default 502) and a GitHub-like error body. */
  failNext(n: number, status?: number): void;
  /** Answer the next `n` requests with a secondary rate limit (403 or 429, retry-after seconds). */
  rateLimitNext(n?: number, opts?: { status?: 403 | 429; retryAfter?: number }): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The description

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonObject;
}

interface Operation {
  method: string;
  template: string;
  operationId: string;
  regex: RegExp;
  pathParams: string[];
  parameters: Parameter[];
  bodySchemaRef: string | undefined;
  bodyRequired: boolean;
  /** Success status and the pointer of its JSON schema. */
  successStatus: number;
  successSchemaRef: string | undefined;
  /** The first response example's value (the template for bodies). */
  example: Json | undefined;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function resolve(doc: JsonObject, value: Json | undefined): Json | undefined {
  let cur = value;
  for (let i = 0; i < 10 && cur && typeof cur === 'object' && !Array.isArray(cur) && typeof cur.$ref === 'string'; i++) {
    let node: Json | undefined = doc;
    for (const raw of cur.$ref.slice(2).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      node = node && typeof node === 'object' && !Array.isArray(node) ? node[key] : undefined;
    }
    cur = node;
  }
  return cur;
}

/** OpenAPI 3.0 `nullable: true` next to an `enum`: null must be allowed too (Ajv's nullable covers `type` only). */
function fixNullableEnums(node: Json): void {
  if (Array.isArray(node)) {
    for (const x of node) fixNullableEnums(x);
    return;
  }
  if (!node || typeof node !== 'object') return;
  if (node.nullable === true && Array.isArray(node.enum) && !node.enum.includes(null)) node.enum.push(null);
  for (const v of Object.values(node)) fixNullableEnums(v);
}

interface Description {
  doc: JsonObject;
  ajv: Ajv;
  operations: Operation[];
}

let cachedDescription: Description | undefined;

function loadDescription(): Description {
  if (cachedDescription) return cachedDescription;
  const doc = JSON.parse(readFileSync(SUBSET_URL, 'utf8')) as JsonObject;
  fixNullableEnums(doc);
  // OpenAPI 3.0 schemas are a draft-04/05 dialect: Ajv's default (draft-07) class with
  // `nullable` support fits them; `strict: false` ignores the x-* and example keywords.
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true, logger: false });
  addFormatsPlugin.default(ajv);
  ajv.addSchema(doc as object, 'github');
  const operations: Operation[] = [];
  const paths = doc.paths as Record<string, JsonObject>;
  for (const [template, item] of Object.entries(paths)) {
    for (const [method, rawOp] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const op = rawOp as JsonObject;
      const parameters = [...((item.parameters as Json[] | undefined) ?? []), ...((op.parameters as Json[] | undefined) ?? [])].map(
        (p) => resolve(doc, p) as unknown as Parameter,
      );
      const pathParams: string[] = [];
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, name: string) => {
        pathParams.push(name);
        const p = parameters.find((x) => x.name === name && x.in === 'path') as (Parameter & { 'x-multi-segment'?: boolean }) | undefined;
        return p?.['x-multi-segment'] ? '(.+)' : '([^/]+)';
      });
      const ptr = `github#/paths/${escapePointer(template)}/${method}`;
      const body = op.requestBody as JsonObject | undefined;
      const responses = op.responses as Record<string, Json>;
      const successCode = Object.keys(responses).find((c) => c.startsWith('2')) ?? '200';
      const success = resolve(doc, responses[successCode]) as JsonObject | undefined;
      const content = (success?.content as JsonObject | undefined)?.['application/json'] as JsonObject | undefined;
      const examples = content?.examples as Record<string, Json> | undefined;
      const firstExample = examples ? (resolve(doc, Object.values(examples)[0]) as JsonObject | undefined) : undefined;
      operations.push({
        method: method.toUpperCase(),
        template,
        operationId: String(op.operationId),
        regex: new RegExp(`^${pattern}$`),
        pathParams,
        parameters,
        bodySchemaRef: body ? `${ptr}/requestBody/content/application~1json/schema` : undefined,
        bodyRequired: body?.required === true,
        successStatus: Number(successCode),
        successSchemaRef: content?.schema ? `${ptr}/responses/${successCode}/content/application~1json/schema` : undefined,
        example: firstExample?.value,
      });
    }
  }
  cachedDescription = { doc, ajv, operations };
  return cachedDescription;
}

function validator(d: Description, ref: string): ValidateFunction {
  return d.ajv.getSchema(ref) ?? d.ajv.compile({ $ref: ref });
}

/** GitHub-style validation messages: '"body" wasn't supplied.', "For 'properties/body', 1 is not a string." */
function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'required') {
      out.push(`"${String((e.params as { missingProperty: string }).missingProperty)}" wasn't supplied.`);
    } else {
      const where = e.instancePath
        .split('/')
        .filter(Boolean)
        .map((p) => `properties/${p}`)
        .join('/');
      const data = JSON.stringify(e.data);
      if (e.keyword === 'type') out.push(`For '${where || 'body'}', ${data} is not ${/^[aeiou]/.test(String(e.params.type)) ? 'an' : 'a'} ${String(e.params.type)}.`);
      else if (e.keyword === 'enum') out.push(`For '${where}', ${data} is not a member of ${JSON.stringify((e.params as { allowedValues: Json[] }).allowedValues)}.`);
      else out.push(`For '${where || 'body'}', ${data} ${e.message ?? 'is invalid'}.`);
    }
  }
  return [...new Set(out)];
}

// ---------------------------------------------------------------------------------------------
// The server

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: JsonObject,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

const err = (status: number, message: string, docs = DOCS, extra: JsonObject = {}): HttpError =>
  new HttpError(status, { message, documentation_url: docs, status: String(status), ...extra });

const ACCEPTABLE = /^(application\/vnd\.github(\.v3)?(\.[a-z-]+)?\+json|application\/vnd\.github(\.v3)?(\.(raw|text|html|full))?|application\/json|\*\/\*)$/i;

function isoNow(clock: { t: number }): string {
  // A monotonic fake clock (one second per event) so ordering and `since` are deterministic.
  clock.t += 1000;
  return new Date(clock.t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeGitHub(opts: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const d = loadDescription();
  const defOwner = opts.owner ?? 'octo-org';
  const defRepo = opts.repo ?? 'hpc-repo';
  const token = opts.token ?? `ghs_${randomBytes(18).toString('base64url')}`;
  const login = opts.login ?? 'hpcflow[bot]';
  const clock = { t: Date.UTC(2025, 0, 1) };
  let nextId = 1000;
  const recorded: RecordedRequest[] = [];
  const faults: { status: number; headers: Record<string, string>; body: JsonObject }[] = [];
  let url = '';
  const webBase = 'https://github.com';

  const state: FakeGitHubState = {
    readOnly: opts.readOnly ?? false,
    comments: [],
    checkRuns: new Map(),
    statuses: [],
    pulls: new Map(),
    addComment(c) {
      const now = isoNow(clock);
      const comment: IssueComment = {
        id: nextId++,
        owner: c.owner ?? defOwner,
        repo: c.repo ?? defRepo,
        issueNumber: c.issueNumber,
        body: c.body,
        createdAt: now,
        updatedAt: now,
        login: c.login ?? login,
      };
      state.comments.push(comment);
      return comment;
    },
    addPullRequest(pr) {
      state.pulls.set(`${pr.owner ?? defOwner}/${pr.repo ?? defRepo}#${pr.number}`, pr);
    },
    commentsOf(issueNumber, owner = defOwner, repo = defRepo) {
      return state.comments.filter((c) => c.issueNumber === issueNumber && c.owner === owner && c.repo === repo);
    },
  };

  // --- response bodies (the description's examples, overwritten with state) ---
  const exampleOf = (operationId: string): JsonObject => {
    const op = d.operations.find((o) => o.operationId === operationId)!;
    const ex = Array.isArray(op.example) ? op.example[0] : op.example;
    return structuredClone((ex ?? {}) as JsonObject);
  };
  const userJson = (name: string): JsonObject => {
    const base = (exampleOf('issues/create-comment').user ?? {}) as JsonObject;
    const api = `${url}/users/${encodeURIComponent(name)}`;
    return {
      ...base,
      login: name,
      id: 1 + [...name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1_000_000, 7),
      node_id: Buffer.from(`User:${name}`).toString('base64'),
      url: api,
      // Bots' profile pages are their apps' pages (a login with [ ] is not a valid URI path).
      html_url: name.endsWith('[bot]') ? `${webBase}/apps/${name.slice(0, -5)}` : `${webBase}/${encodeURIComponent(name)}`,
      type: name.endsWith('[bot]') ? 'Bot' : 'User',
      site_admin: false,
    };
  };
  const commentJson = (c: IssueComment): JsonObject => ({
    ...exampleOf('issues/create-comment'),
    id: c.id,
    node_id: Buffer.from(`IssueComment:${c.id}`).toString('base64'),
    url: `${url}/repos/${c.owner}/${c.repo}/issues/comments/${c.id}`,
    html_url: `${webBase}/${c.owner}/${c.repo}/pull/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: `${url}/repos/${c.owner}/${c.repo}/issues/${c.issueNumber}`,
    body: c.body,
    user: userJson(c.login),
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    author_association: 'NONE',
    performed_via_github_app: null,
  });
  const checkRunJson = (r: CheckRun): JsonObject => {
    const t = exampleOf('checks/create');
    const f = r.fields;
    const output = (f.output ?? {}) as JsonObject;
    return {
      ...t,
      id: r.id,
      node_id: Buffer.from(`CheckRun:${r.id}`).toString('base64'),
      head_sha: f.head_sha ?? null,
      external_id: (f.external_id as string | undefined) ?? '',
      url: `${url}/repos/${r.owner}/${r.repo}/check-runs/${r.id}`,
      html_url: `${webBase}/${r.owner}/${r.repo}/runs/${r.id}`,
      details_url: (f.details_url as string | undefined) ?? `${webBase}/${r.owner}/${r.repo}/runs/${r.id}`,
      name: f.name ?? null,
      status: f.status ?? 'queued',
      conclusion: f.conclusion ?? null,
      started_at: f.started_at ?? null,
      completed_at: f.completed_at ?? null,
      output: {
        title: (output.title as string | undefined) ?? null,
        summary: (output.summary as string | undefined) ?? null,
        text: (output.text as string | undefined) ?? null,
        annotations_count: Array.isArray(output.annotations) ? output.annotations.length : 0,
        annotations_url: `${url}/repos/${r.owner}/${r.repo}/check-runs/${r.id}/annotations`,
      },
      pull_requests: [],
    };
  };
  const statusJson = (s: CommitStatus): JsonObject => ({
    ...exampleOf('repos/create-commit-status'),
    id: s.id,
    node_id: Buffer.from(`StatusContext:${s.id}`).toString('base64'),
    url: `${url}/repos/${s.owner}/${s.repo}/statuses/${s.sha}`,
    state: s.state,
    description: s.description,
    target_url: s.targetUrl,
    context: s.context,
    created_at: s.createdAt,
    updated_at: s.createdAt,
    creator: userJson(login),
  });
  const pullJson = (owner: string, repo: string, pr: PullRequestSeed): JsonObject => {
    const t = exampleOf('pulls/get');
    const api = `${url}/repos/${owner}/${repo}`;
    const side = (tmpl: Json | undefined, full: string, ref: string, sha: string): JsonObject => {
      const s = structuredClone((tmpl ?? {}) as JsonObject);
      const [o = owner, n = repo] = full.split('/');
      const repoJson: JsonObject = { ...((s.repo ?? {}) as JsonObject), name: n, full_name: `${o}/${n}`, html_url: `${webBase}/${o}/${n}`, url: `${url}/repos/${o}/${n}` };
      if (repoJson.owner && typeof repoJson.owner === 'object') repoJson.owner = { ...(repoJson.owner as JsonObject), login: o };
      return { ...s, label: `${o}:${ref}`, ref, sha, repo: repoJson, user: { ...((s.user ?? {}) as JsonObject), login: o } };
    };
    return {
      ...t,
      id: 100000 + pr.number,
      node_id: Buffer.from(`PullRequest:${pr.number}`).toString('base64'),
      number: pr.number,
      title: pr.title ?? `PR #${pr.number}`,
      body: pr.body ?? null,
      state: pr.state ?? 'open',
      url: `${api}/pulls/${pr.number}`,
      html_url: `${webBase}/${owner}/${repo}/pull/${pr.number}`,
      issue_url: `${api}/issues/${pr.number}`,
      comments_url: `${api}/issues/${pr.number}/comments`,
      statuses_url: `${api}/statuses/${pr.headSha}`,
      head: side(t.head, pr.headRepo ?? `${owner}/${repo}`, pr.headRef, pr.headSha),
      base: side(t.base, `${owner}/${repo}`, pr.baseRef, pr.baseSha),
      // The description's example lists teams without the (required) `type`: keep it valid.
      requested_teams: [],
    };
  };

  // --- routing ---
  function link(path: string, query: URLSearchParams, page: number, lastPage: number): string | undefined {
    if (lastPage <= 1 && page <= 1) return undefined;
    const mk = (p: number, rel: string): string => {
      const q = new URLSearchParams(query);
      q.set('page', String(p));
      return `<${url}${path}?${q.toString()}>; rel="${rel}"`;
    };
    const parts: string[] = [];
    if (page > 1) parts.push(mk(page - 1, 'prev'));
    if (page < lastPage) parts.push(mk(page + 1, 'next'), mk(lastPage, 'last'));
    if (page > 1) parts.push(mk(1, 'first'));
    return parts.join(', ');
  }

  type Handled = { status: number; body: Json; headers?: Record<string, string> };

  function handle(op: Operation, params: Record<string, string | number>, query: URLSearchParams, path: string, body: JsonObject): Handled {
    const owner = String(params.owner);
    const repo = String(params.repo);
    switch (op.operationId) {
      case 'issues/list-comments': {
        const perPage = Math.min(100, Math.max(1, Number(params.per_page ?? 30)));
        const page = Math.max(1, Number(params.page ?? 1));
        let items = state.commentsOf(Number(params.issue_number), owner, repo);
        if (params.since !== undefined) items = items.filter((c) => c.updatedAt >= String(params.since));
        const lastPage = Math.max(1, Math.ceil(items.length / perPage));
        const slice = items.slice((page - 1) * perPage, page * perPage);
        const l = link(path, query, page, lastPage);
        return { status: 200, body: slice.map(commentJson), headers: l ? { link: l } : {} };
      }
      case 'issues/create-comment': {
        const c = state.addComment({ owner, repo, issueNumber: Number(params.issue_number), body: String(body.body) });
        return { status: 201, body: commentJson(c), headers: { location: `${url}/repos/${owner}/${repo}/issues/comments/${c.id}` } };
      }
      case 'issues/update-comment': {
        const c = state.comments.find((x) => x.id === Number(params.comment_id) && x.owner === owner && x.repo === repo);
        if (!c) throw err(404, 'Not Found', `${DOCS}/issues/comments#update-an-issue-comment`);
        c.body = String(body.body);
        c.updatedAt = isoNow(clock);
        return { status: 200, body: commentJson(c) };
      }
      case 'checks/create':
      case 'checks/update': {
        let run: CheckRun;
        if (op.operationId === 'checks/create') {
          run = { id: nextId++, owner, repo, fields: {} };
        } else {
          const found = state.checkRuns.get(Number(params.check_run_id));
          if (!found || found.owner !== owner || found.repo !== repo) throw err(404, 'Not Found', `${DOCS}/checks/runs#update-a-check-run`);
          run = found;
        }
        const fields = { ...run.fields, ...body };
        if (body.conclusion !== undefined && body.conclusion !== null) fields.status = 'completed';
        if (fields.status === 'completed' && (fields.conclusion === undefined || fields.conclusion === null)) {
          throw err(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.', `${DOCS}/checks/runs`);
        }
        if (fields.status === 'completed' && fields.completed_at === undefined) fields.completed_at = isoNow(clock);
        if (fields.started_at === undefined) fields.started_at = isoNow(clock);
        run.fields = fields;
        state.checkRuns.set(run.id, run);
        return { status: op.successStatus, body: checkRunJson(run) };
      }
      case 'repos/create-commit-status': {
        const s: CommitStatus = {
          id: nextId++,
          owner,
          repo,
          sha: String(params.sha),
          state: String(body.state),
          targetUrl: (body.target_url as string | null | undefined) ?? null,
          description: (body.description as string | null | undefined) ?? null,
          context: (body.context as string | undefined) ?? 'default',
          createdAt: isoNow(clock),
        };
        state.statuses.push(s);
        return { status: 201, body: statusJson(s) };
      }
      case 'pulls/get': {
        const pr = state.pulls.get(`${owner}/${repo}#${Number(params.pull_number)}`);
        if (!pr) throw err(404, 'Not Found', `${DOCS}/pulls/pulls#get-a-pull-request`);
        return { status: 200, body: pullJson(owner, repo, pr) };
      }
      default:
        throw err(404, 'Not Found');
    }
  }

  async function serve(req: IncomingMessage, rec: RecordedRequest, rawBody: string): Promise<Handled> {
    const fault = faults.shift();
    if (fault) return { status: fault.status, body: fault.body, headers: fault.headers };

    const auth = rec.headers.authorization;
    if (!auth) throw err(401, 'Requires authentication');
    const m = /^(?:token|bearer) +(\S+)$/i.exec(auth);
    if (!m || m[1] !== token) throw err(401, 'Bad credentials');

    const accept = rec.headers.accept;
    if (!accept) throw err(415, "Missing 'Accept' header: send application/vnd.github+json");
    const types = accept.split(',').map((s) => s.split(';')[0]!.trim());
    if (!types.some((t) => ACCEPTABLE.test(t))) throw err(415, `Unsupported 'Accept' header: '${accept}'. Must accept 'application/json'.`);
    const version = rec.headers['x-github-api-version'];
    if (version !== undefined && !(API_VERSIONS as readonly string[]).includes(version)) {
      throw err(400, `API version ${version} is not supported.`);
    }

    const routePath = rec.path.length > 1 ? rec.path.replace(/\/+$/, '') : rec.path;
    const op = d.operations.find((o) => o.method === req.method && o.regex.test(routePath));
    if (!op) throw err(404, 'Not Found');
    rec.operationId = op.operationId;
    const match = op.regex.exec(routePath)!;

    const params: Record<string, string | number> = {};
    const query = new URLSearchParams(rec.query);
    for (const p of op.parameters) {
      let raw: string | undefined;
      if (p.in === 'path') raw = decodeURIComponent(match[op.pathParams.indexOf(p.name) + 1] ?? '');
      else if (p.in === 'query') raw = query.get(p.name) ?? undefined;
      else continue;
      if (raw === undefined) {
        if (p.required) throw err(422, `Invalid request.\n\n"${p.name}" wasn't supplied.`);
        continue;
      }
      const type = p.schema?.type;
      const value: string | number = type === 'integer' || type === 'number' ? (/^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN) : raw;
      const v = d.ajv.compile(p.schema ?? {});
      if (Number.isNaN(value) || !v(value)) {
        // GitHub answers a malformed path parameter (a non-numeric id) with 404.
        if (p.in === 'path') throw err(404, 'Not Found');
        throw err(422, `Invalid request.\n\nFor '${p.name}', ${JSON.stringify(raw)} is not ${type === 'integer' ? 'an integer' : `a ${String(type)}`}.`);
      }
      params[p.name] = value;
    }

    if (state.readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
      throw err(403, 'Resource not accessible by integration', `${DOCS}/${op.operationId.split('/')[0]}`);
    }

    let body: JsonObject = {};
    if (op.bodySchemaRef) {
      if (rawBody.trim() === '') {
        if (op.bodyRequired) throw err(422, 'Invalid request.\n\nNo request body was supplied.');
      } else {
        const v = validator(d, op.bodySchemaRef);
        if (!v(rec.body)) throw err(422, `Invalid request.\n\n${describeErrors(v.errors).join('\n')}`, `${DOCS}/${op.operationId.split('/')[0]}`);
        body = rec.body as JsonObject;
      }
    }
    const out = handle(op, params, query, routePath, body);
    if (op.successSchemaRef && out.status === op.successStatus) {
      const v = validator(d, op.successSchemaRef);
      if (!v(out.body)) {
        throw err(500, `fake-github: its own ${op.operationId} response does not match GitHub's schema: ${d.ajv.errorsText(v.errors)}`);
      }
    }
    return out;
  }

  const server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const rawBody = await readBody(req);
      let parsed: unknown;
      let parseError = false;
      if (rawBody.trim() !== '') {
        try {
          parsed = JSON.parse(rawBody);
        } catch {
          parseError = true;
        }
      }
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        headers,
        body: parsed,
        operationId: undefined,
        status: 0,
      };
      recorded.push(rec);
      let out: Handled;
      try {
        if (parseError && faults.length === 0 && req.method !== 'GET') {
          // Authentication still comes first: only an authenticated request learns its JSON is bad.
          const a = /^(?:token|bearer) +(\S+)$/i.exec(headers.authorization ?? '');
          if (a && a[1] === token) throw err(400, 'Problems parsing JSON');
        }
        out = await serve(req, rec, rawBody);
      } catch (e) {
        if (e instanceof HttpError) out = { status: e.status, body: e.body, headers: e.headers };
        else out = { status: 500, body: { message: `fake-github: ${e instanceof Error ? e.message : String(e)}` } };
      }
      rec.status = out.status;
      const text = JSON.stringify(out.body);
      res.writeHead(out.status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'x-github-media-type': 'github.v3; format=json',
        'x-github-api-version-selected': API_VERSIONS[0],
        'x-github-request-id': `FAKE:${recorded.length}`,
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4999',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
        'x-ratelimit-used': '1',
        'x-ratelimit-resource': 'core',
        ...(out.headers ?? {}),
      });
      res.end(text);
    })();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    token,
    state,
    requests: () => recorded.slice(),
    failNext(n, status = 502) {
      for (let i = 0; i < n; i++) {
        faults.push({ status, headers: {}, body: { message: status >= 500 ? 'Server Error' : `HTTP ${status}`, documentation_url: DOCS, status: String(status) } });
      }
    },
    rateLimitNext(n = 1, o = {}) {
      for (let i = 0; i < n; i++) {
        faults.push({
          status: o.status ?? 403,
          headers: { 'retry-after': String(o.retryAfter ?? 1), 'x-ratelimit-remaining': '4990' },
          body: {
            message: `${SECONDARY_RATE_LIMIT_MESSAGE} FAKE:${recorded.length + i}.`,
            documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
          },
        });
      }
    },
    close: () =>
      new Promise<void>((ok, fail) => {
        server.closeAllConnections();
        server.close((e) => (e ? fail(e) : ok()));
      }),
  };
}
