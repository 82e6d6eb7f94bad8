import { join } from 'node:path';
import { formatReason } from '../dag/reasons.js';
import type { StageGraph } from '../dag/graph.js';
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

/**
 * Writes `.hpcflow/runs/<runId>.json`: every stage's outcome, reasons, timings and resource use.
 * (The GitOps loop commits these; here they are the local history.)
 */
export async function writeRunRecord(root: string, s: RunSummary, graph: StageGraph): Promise<string> {
  const stages: Record<string, unknown> = {};
  for (const [id, o] of s.outcomes) stages[id] = { ...outcomeRecord(o), upstream: graph.upstream.get(id) ?? [] };
  const record = { schema: 1, runId: s.runId, ok: s.ok, aborted: s.aborted, wallMs: s.wallMs, counts: s.counts, stages };
  const dir = join(root, '.hpcflow', 'runs');
  await ensureDir(dir);
  const file = join(dir, `${s.runId}.json`);
  await writeFileAtomic(file, `${JSON.stringify(sortKeys(record), null, 2)}\n`);
  return file;
}
