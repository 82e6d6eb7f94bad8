/**
 * One sticky comment per pipeline on a pull request: found by a hidden HTML marker
 * (`<!-- hpcflow:report pipeline=<name> -->`) among ALL the pull request's comments (paged
 * through 100 at a time, following the Link header), updated in place when found, else created.
 * The marker helpers are pure.
 */
import type { GitHubClient } from './client.js';
import { githubCall } from './client.js';

/** A pipeline name as it may stand in the marker: no `-->`, no line breaks, no spaces. */
function markerName(pipeline: string): string {
  const clean = pipeline.trim().replace(/\s+/g, '_').replace(/-->/g, '--_').replace(/[<>]/g, '_');
  return clean === '' ? 'default' : clean;
}

/** `<!-- hpcflow:report pipeline=<name> -->` (pure). */
export function reportMarker(pipeline: string): string {
  return `<!-- hpcflow:report pipeline=${markerName(pipeline)} -->`;
}

/** Does this comment body carry the marker of `pipeline` (on a line of its own)? Pure. */
export function hasMarker(body: string | null | undefined, pipeline: string): boolean {
  if (!body) return false;
  const marker = reportMarker(pipeline);
  return body.split(/\r?\n/).some((line) => line.trim() === marker);
}

/** The pipeline named by the first report marker in a body, or null (pure). */
export function markerPipeline(body: string | null | undefined): string | null {
  const m = /^\s*<!-- hpcflow:report pipeline=(\S+) -->\s*$/m.exec(body ?? '');
  return m ? (m[1] as string) : null;
}

/** The body with exactly one marker of `pipeline`, as the last line (pure). */
export function withMarker(body: string, pipeline: string): string {
  const marker = reportMarker(pipeline);
  const text = body
    .split('\n')
    .filter((l) => l.trim() !== marker)
    .join('\n')
    .replace(/\s+$/, '');
  return `${text}\n\n${marker}\n`;
}

export interface StickyTarget {
  readonly owner: string;
  readonly repo: string;
  readonly issueNumber: number;
  readonly pipeline: string;
}

export interface StickyResult {
  readonly action: 'created' | 'updated' | 'unchanged';
  readonly commentId: number;
  readonly url: string;
  /** Comments looked through to find the marker. */
  readonly scanned: number;
}

/** The existing sticky comment of a pipeline (the oldest, if several), scanning every page. */
export async function findStickyComment(
  gh: GitHubClient,
  t: StickyTarget,
): Promise<{ comment: { id: number; body: string; url: string } | null; scanned: number }> {
  let scanned = 0;
  const iterator = gh.paginate.iterator(gh.rest.issues.listComments, { owner: t.owner, repo: t.repo, issue_number: t.issueNumber, per_page: 100 });
  const comment = await githubCall(`list the comments of ${t.owner}/${t.repo}#${t.issueNumber}`, async () => {
    for await (const page of iterator) {
      for (const c of page.data) {
        scanned++;
        if (hasMarker(c.body, t.pipeline)) return { id: c.id, body: c.body ?? '', url: c.html_url };
      }
    }
    return null;
  });
  return { comment, scanned };
}

/** Create or update the sticky comment of `t.pipeline` with `body` (the marker is added). */
export async function upsertStickyComment(gh: GitHubClient, t: StickyTarget, body: string): Promise<StickyResult> {
  const full = withMarker(body, t.pipeline);
  const { comment: existing, scanned } = await findStickyComment(gh, t);
  const where = `${t.owner}/${t.repo}#${t.issueNumber}`;
  if (existing === null) {
    const res = await githubCall(
      `post the report comment on ${where}`,
      () => gh.rest.issues.createComment({ owner: t.owner, repo: t.repo, issue_number: t.issueNumber, body: full }),
      { write: true },
    );
    return { action: 'created', commentId: res.data.id, url: res.data.html_url, scanned };
  }
  if (existing.body === full) return { action: 'unchanged', commentId: existing.id, url: existing.url, scanned };
  const res = await githubCall(
    `update the report comment ${existing.id} on ${where}`,
    () => gh.rest.issues.updateComment({ owner: t.owner, repo: t.repo, comment_id: existing.id, body: full }),
    { write: true },
  );
  return { action: 'updated', commentId: res.data.id, url: res.data.html_url, scanned };
}
