/**
 * PURE: the trailers of results commits. `Hpcflow-Run: <run id>` marks a commit hpcflow made for a
 * run's results — its presence is the loop guard every trigger applies — and `Hpcflow-Input:` names
 * the commit whose pipeline ran. One reading for the committer, the triggers and the history.
 */

/** The trailer naming the run a results commit records; its presence is the loop guard. */
export const RESULTS_TRAILER = 'Hpcflow-Run';
/** The trailer naming the commit whose pipeline ran. */
export const INPUT_TRAILER = 'Hpcflow-Input';

/** `summary`, a blank line, then the run and input trailers. */
export function resultsMessage(summary: string, runId: string, inputCommit: string): string {
  const line = summary.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return `${line}\n\n${RESULTS_TRAILER}: ${runId}\n${INPUT_TRAILER}: ${inputCommit}\n`;
}

/** The trailers of a commit message (its last paragraph's `Key: value` lines), lower-cased key → values. */
export function parseTrailers(message: string): Map<string, string[]> {
  const paragraphs = message.replace(/\r\n/g, '\n').trim().split(/\n\s*\n/);
  const out = new Map<string, string[]>();
  if (paragraphs.length < 2) return out; // a subject line alone has no trailers
  const last = paragraphs[paragraphs.length - 1] as string;
  for (const line of last.split('\n')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*?)\s*$/.exec(line);
    if (m === null) continue;
    const key = (m[1] as string).toLowerCase();
    out.set(key, [...(out.get(key) ?? []), m[2] as string]);
  }
  return out;
}

/** The run id a results commit records, or null for any other commit. */
export function resultsRunId(message: string): string | null {
  const v = parseTrailers(message).get(RESULTS_TRAILER.toLowerCase())?.[0];
  return v !== undefined && /^\S+$/.test(v) ? v : null; // run ids are one word
}

/** Loop guard: is this the message of a commit hpcflow made for a run's results? */
export function isResultsCommit(message: string): boolean {
  return resultsRunId(message) !== null;
}

/** The run and input commit a results commit names; null for any other commit. */
export function resultsTrailers(message: string): { runId: string; inputCommit: string | null } | null {
  const runId = resultsRunId(message);
  if (runId === null) return null;
  const input = parseTrailers(message).get(INPUT_TRAILER.toLowerCase())?.[0];
  return { runId, inputCommit: input === undefined || input === '' ? null : input };
}
