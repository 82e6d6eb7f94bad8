/**
 * The GitHub REST client of `hpcflow report`: Octokit with retries (5xx and network errors, with
 * quadratic backoff) and throttling (a secondary rate limit is waited out for its `retry-after`,
 * a bounded number of times; the primary limit likewise, if the reset is near). GitHub
 * Enterprise through `baseUrl` (option, else $GITHUB_API_URL). The token is read from the
 * environment only ($HPCFLOW_GITHUB_TOKEN, else $GITHUB_TOKEN) and never printed.
 */
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import { HpcflowError } from '../errors.js';

export const TOKEN_VARIABLES = ['HPCFLOW_GITHUB_TOKEN', 'GITHUB_TOKEN'] as const;
export const DEFAULT_API_URL = 'https://api.github.com';

const HpcflowOctokit = Octokit.plugin(retry, throttling);
export type GitHubClient = InstanceType<typeof HpcflowOctokit>;

export interface GitHubClientOptions {
  /** Where the token and GITHUB_API_URL are read from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** API base URL (GitHub Enterprise: https://HOST/api/v3). Default $GITHUB_API_URL, else api.github.com. */
  readonly baseUrl?: string;
  /** Retries of a 5xx / network error (default 3). */
  readonly retries?: number;
  /** Times a rate limit is waited out for one request (default 3). */
  readonly rateLimitRetries?: number;
  /** Milliseconds per backoff unit of a 5xx retry (default 1000: waits 1 s, 4 s, 9 s). */
  readonly retryBaseMs?: number;
  /** Milliseconds per second of `retry-after` (default 1000; tests may shrink it). */
  readonly rateLimitBaseMs?: number;
  /** Longest rate-limit wait accepted, in seconds (default 600): a longer one fails instead. */
  readonly maxRateLimitWaitSeconds?: number;
  /** Warnings (rate limits being waited out); default: dropped. */
  readonly warn?: (message: string) => void;
}

/** The token from the environment ($HPCFLOW_GITHUB_TOKEN, else $GITHUB_TOKEN); undefined when neither is set. */
export function tokenFromEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  for (const name of TOKEN_VARIABLES) {
    const v = env[name]?.trim();
    if (v) return v;
  }
  return undefined;
}

/** The API base URL: the option, else $GITHUB_API_URL, else api.github.com; without trailing slash. */
export function apiBaseUrl(env: Readonly<Record<string, string | undefined>>, option?: string): string {
  const raw = option ?? (env.GITHUB_API_URL?.trim() || DEFAULT_API_URL);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new HpcflowError('HPCFLOW_USAGE', `the GitHub API URL '${raw}' is not a URL`, { hint: 'e.g. https://github.example.com/api/v3 for GitHub Enterprise Server' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new HpcflowError('HPCFLOW_USAGE', `the GitHub API URL must be http(s), got '${raw}'`);
  return raw.replace(/\/+$/, '');
}

/** A client; throws a usage error naming the variables when no token is set. */
export function createGitHubClient(opts: GitHubClientOptions = {}): GitHubClient {
  const env = opts.env ?? process.env;
  const token = tokenFromEnv(env);
  if (token === undefined) {
    throw new HpcflowError('HPCFLOW_USAGE', `no GitHub token: set ${TOKEN_VARIABLES.join(' or ')}`, {
      hint: 'in GitHub Actions: env: { GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} } with permissions pull-requests: write (or use --dry-run to print the comment)',
    });
  }
  const rateLimitRetries = opts.rateLimitRetries ?? 3;
  const maxWait = opts.maxRateLimitWaitSeconds ?? 600;
  const warn = opts.warn ?? ((): void => {});
  const onLimit =
    (kind: string) =>
    (retryAfter: number, options: { method?: string; url?: string }, _octokit: unknown, retryCount: number): boolean => {
      const what = `${options.method ?? ''} ${options.url ?? ''}`.trim();
      if (retryCount >= rateLimitRetries || retryAfter > maxWait) {
        warn(`GitHub ${kind} rate limit on ${what}: giving up after ${retryCount} retries (retry-after ${retryAfter}s)`);
        return false;
      }
      warn(`GitHub ${kind} rate limit on ${what}: waiting ${retryAfter}s before retry ${retryCount + 1}/${rateLimitRetries}`);
      return true;
    };
  const quiet = (): void => {};
  return new HpcflowOctokit({
    auth: token,
    baseUrl: apiBaseUrl(env, opts.baseUrl),
    userAgent: 'hpcflow',
    // Octokit's own log would print request lines and warnings to the console: route warnings only.
    log: { debug: quiet, info: quiet, warn: (m: string) => warn(String(m)), error: (m: string) => warn(String(m)) },
    request: { headers: { 'x-github-api-version': '2022-11-28' } },
    retry: { retries: opts.retries ?? 3, retryAfterBaseValue: opts.retryBaseMs ?? 1000 },
    throttle: {
      // Per-client pacing groups (the plugin's are shared by every client with the same id).
      id: `hpcflow-${process.pid}-${Math.random().toString(36).slice(2)}`,
      retryAfterBaseValue: opts.rateLimitBaseMs ?? 1000,
      onRateLimit: onLimit('primary'),
      onSecondaryRateLimit: onLimit('secondary'),
    },
  });
}

interface RequestErrorLike {
  readonly status: number;
  readonly message: string;
  readonly response?: { readonly data?: unknown };
}

function isRequestError(e: unknown): e is RequestErrorLike {
  return typeof e === 'object' && e !== null && typeof (e as { status?: unknown }).status === 'number' && e instanceof Error;
}

/** GitHub's message of a failed request (the response's `message`, else the error's). */
function githubMessage(e: RequestErrorLike): string {
  const data = e.response?.data;
  if (typeof data === 'object' && data !== null && typeof (data as { message?: unknown }).message === 'string') return (data as { message: string }).message;
  return e.message;
}

/** Is this GitHub's answer to a write with a read-only token (403 "Resource not accessible by integration")? */
export function isReadOnlyTokenError(e: unknown): boolean {
  return isRequestError(e) && e.status === 403 && /resource not accessible by (integration|personal access token)/i.test(githubMessage(e));
}

/**
 * GitHub's message when `e` is a 403 refusal of permission (not a rate limit), else null: e.g.
 * a check run written with a token that is not a GitHub App's.
 */
export function forbiddenMessage(e: unknown): string | null {
  if (!isRequestError(e) || e.status !== 403) return null;
  const msg = githubMessage(e);
  return /rate limit/i.test(msg) ? null : msg;
}

/**
 * Run one GitHub call of `what` (e.g. 'post the report comment on octo/repo#5') and turn its
 * failures into HpcflowErrors a person can act on; the token never appears in the message.
 */
export async function githubCall<T>(what: string, call: () => Promise<T>, opts: { write?: boolean } = {}): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw explainGitHubError(e, what, opts.write ?? false);
  }
}

/** The HpcflowError for a failed GitHub call (a non-request error is returned unchanged). */
export function explainGitHubError(e: unknown, what: string, write: boolean): unknown {
  if (e instanceof HpcflowError || !isRequestError(e)) return e;
  const msg = githubMessage(e);
  if (write && isReadOnlyTokenError(e)) {
    return new HpcflowError('HPCFLOW_GITHUB', `cannot ${what}: the GitHub token is read-only (403 Resource not accessible by integration); nothing was posted`, {
      cause: e,
      hint:
        'pull requests from forks get a read-only GITHUB_TOKEN. Post from a trusted workflow instead: run `hpcflow report --dry-run` in the pull_request ' +
        'workflow and upload the metrics as an artifact, then run `hpcflow report` in a workflow_run (or pull_request_target) workflow ' +
        'with permissions pull-requests: write and statuses: write — without checking out or running the fork\'s code there',
    });
  }
  if (e.status === 401) {
    return new HpcflowError('HPCFLOW_GITHUB', `cannot ${what}: GitHub rejected the token (401 ${msg})`, {
      cause: e,
      hint: `check ${TOKEN_VARIABLES.join(' / ')} (expired or for another GitHub host? GITHUB_API_URL selects GitHub Enterprise)`,
    });
  }
  if (e.status === 403 || e.status === 429) {
    return new HpcflowError('HPCFLOW_GITHUB', `cannot ${what}: GitHub refused (${e.status} ${msg})`, {
      cause: e,
      hint: /rate limit/i.test(msg) ? 'the rate limit outlasted the retries: run the report again later' : 'does the token have the permissions pull-requests: write and statuses: write?',
    });
  }
  if (e.status === 404) {
    return new HpcflowError('HPCFLOW_GITHUB', `cannot ${what}: GitHub answered 404 ${msg}`, {
      cause: e,
      hint: 'check --repo and --pr (a private repository also answers 404 to a token without access to it)',
    });
  }
  return new HpcflowError('HPCFLOW_GITHUB', `cannot ${what}: GitHub answered ${e.status} ${msg}`, { cause: e });
}
