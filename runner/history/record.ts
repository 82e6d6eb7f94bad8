/**
 * The run records and results-commit messages that `hpcflow run --commit-results` writes, read
 * back for the history commands. Pure: text in, values out. Parsing is lenient — a record from an
 * older or newer hpcflow keeps the fields this version knows and ignores the rest — because
 * history must stay readable after the format grows.
 */

import { normaliseWorkspacePath, pathProblemText } from '../spec/paths.js';

export { parseTrailers, resultsTrailers } from '../git/trailers.js';

/** What the history commands use of a run record (runs/<runId>.json). */
export interface RunRecord {
  readonly runId: string;
  /** Null when the record does not say. */
  readonly ok: boolean | null;
  readonly aborted: boolean;
  readonly wallMs: number | null;
  /** Outcome status → number of stages ('ran', 'restored', 'up-to-date', 'failed', …). */
  readonly counts: Readonly<Record<string, number>>;
  readonly inputCommit: string | null;
  /** hpcflow and Node versions, platform, executor, host, site digest. */
  readonly environment: Readonly<Record<string, string>>;
  /** Stage id → its metrics file (workspace-relative). */
  readonly metrics: Readonly<Record<string, string>>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A run record from its JSON text; null when it is not JSON or has no run id. */
export function parseRunRecord(text: string): RunRecord | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(doc) || typeof doc.runId !== 'string' || doc.runId === '') return null;
  const counts: Record<string, number> = {};
  if (isObject(doc.counts)) for (const [k, x] of Object.entries(doc.counts)) if (typeof x === 'number' && Number.isFinite(x)) counts[k] = x;
  return {
    runId: doc.runId,
    ok: typeof doc.ok === 'boolean' ? doc.ok : null,
    aborted: doc.aborted === true,
    wallMs: typeof doc.wallMs === 'number' && Number.isFinite(doc.wallMs) ? doc.wallMs : null,
    counts,
    inputCommit: typeof doc.inputCommit === 'string' && doc.inputCommit !== '' ? doc.inputCommit : null,
    environment: stringMap(doc.environment),
    metrics: stringMap(doc.metrics),
  };
}

/** A run id usable as a file name in the runs directory (no separators, no dot-dot). */
export const isSafeRunId = (runId: string): boolean => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(runId) && !runId.includes('..');

/**
 * Why a workspace-relative path a run record names (a stage's metrics file) must not be read,
 * or null. A record is data from the repository's history: it may name `../x` or `/etc/x`, and
 * the history commands must not follow it out of the workspace.
 */
export function recordPathProblem(path: string): string | null {
  const n = normaliseWorkspacePath(path);
  if (!n.ok) return `the path ${pathProblemText(n.reason)} (refused)`;
  if (n.path === '') return 'the path names the workspace itself';
  return null;
}
