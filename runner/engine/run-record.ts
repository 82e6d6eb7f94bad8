import { join } from 'node:path';
import { formatReason } from '../dag/reasons.js';
import type { StageGraph } from '../dag/graph.js';
import { HpcflowError } from '../errors.js';
import { isSafeRunId } from '../history/record.js';
import { sortKeys } from '../util/canonical-json.js';
import { ensureDir, writeFileAtomic } from '../util/fs-atomic.js';
import type { RunSummary, StageOutcome } from './events.js';

/** The JSON form of one stage's outcome in a run record. Pure. */
export function outcomeRecord(o: StageOutcome): Record<string, unknown> {
  switch (o.status) {
    case 'up-to-date':
      return { status: o.status, fingerprint: o.fingerprint };
    case 'restored':
      return { status: o.status, fingerprint: o.fingerprint, reasons: o.reasons.map(formatReason) };
    case 'ran':
      return { status: o.status, fingerprint: o.fingerprint, reasons: o.reasons.map(formatReason), result: o.result };
    case 'failed':
      return { status: o.status, fingerprint: o.fingerprint, error: o.error, reasons: o.reasons.map(formatReason), result: o.result ?? null };
    case 'skipped':
      return { status: o.status, reason: formatReason(o.reason) };
    case 'canceled':
      return { status: o.status, result: o.result ?? null };
    case 'not-started':
      return { status: o.status };
    default: {
      const never: never = o;
      return never;
    }
  }
}

/** What a run record says about where and on what a run ran (for history and reproduce). */
export interface RunContext {
  /** The commit whose pipeline ran (null: not a git repository, or no commit yet). */
  readonly inputCommit?: string | null;
  /** Which image (tag and digest) each stage used, from the lockfile. */
  readonly images?: Readonly<Record<string, { readonly tag: string; readonly digest: string }>>;
  /** hpcflow and Node versions, platform, executor, host, site digest. */
  readonly environment?: Readonly<Record<string, string>>;
  /** Stage id → its metrics file (workspace-relative), for every stage that declares one. */
  readonly metrics?: Readonly<Record<string, string>>;
}

/**
 * Writes `.hpcflow/runs/<runId>.json`: every stage's outcome, reasons, timings and resource use.
 * (The GitOps loop commits these; here they are the local history.)
 */
export async function writeRunRecord(root: string, s: RunSummary, graph: StageGraph, context: RunContext = {}): Promise<string> {
  const stages: Record<string, unknown> = {};
  for (const [id, o] of s.outcomes) {
    const image = context.images?.[id];
    stages[id] = { ...outcomeRecord(o), upstream: graph.upstream.get(id) ?? [], ...(image !== undefined ? { image } : {}) };
  }
  // The run id names the file: never let one climb out of the runs directory.
  if (!isSafeRunId(s.runId)) throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `run id ${JSON.stringify(s.runId)} cannot name a run record file`);
  const { images: _images, ...rest } = context;
  const record = { schema: 1, runId: s.runId, ok: s.ok, aborted: s.aborted, wallMs: s.wallMs, counts: s.counts, ...rest, stages };
  const dir = join(root, '.hpcflow', 'runs');
  await ensureDir(dir);
  const file = join(dir, `${s.runId}.json`);
  await writeFileAtomic(file, `${JSON.stringify(sortKeys(record), null, 2)}\n`);
  return file;
}
