/** `hpcflow log`: one line (or JSON object) per results commit. Pure. */
import type { RunRecord } from './record.js';
import { formatDate, formatDuration, renderTable } from './table.js';

/** A results commit and the run record it holds (null: missing or unreadable). */
export interface LogEntry {
  /** The results commit. */
  readonly commit: string;
  /** Committer time, seconds since the epoch. */
  readonly timestamp: number;
  /** From the Hpcflow-Run trailer. */
  readonly runId: string;
  /** From the Hpcflow-Input trailer (the record's inputCommit is preferred when present). */
  readonly inputTrailer: string | null;
  readonly record: RunRecord | null;
  /** Repository path of the record that was looked for. */
  readonly recordPath: string;
}

/** ok | FAILED | aborted | ? (no record). */
export function runStatus(e: LogEntry): string {
  const r = e.record;
  if (r === null || r.ok === null) return '?';
  if (r.aborted) return 'aborted';
  return r.ok ? 'ok' : 'FAILED';
}

const inputOf = (e: LogEntry): string | null => e.record?.inputCommit ?? e.inputTrailer;

/** The machine form of one entry: a flat, stable object. */
export function logJson(e: LogEntry): Record<string, unknown> {
  const r = e.record;
  return {
    commit: e.commit,
    date: new Date(e.timestamp * 1000).toISOString(),
    runId: e.runId,
    inputCommit: inputOf(e),
    status: runStatus(e),
    ok: r?.ok ?? null,
    aborted: r?.aborted ?? null,
    counts: r?.counts ?? null,
    wallMs: r?.wallMs ?? null,
    executor: r?.environment.executor ?? null,
    record: r === null ? null : e.recordPath,
  };
}

/** The table of runs, newest first as given. */
export function renderLog(entries: readonly LogEntry[]): string {
  if (entries.length === 0) return 'no runs: no results commits (with an Hpcflow-Run trailer) in the history walked\n';
  const n = (r: RunRecord | null, k: string): string => (r === null ? '-' : String(r.counts[k] ?? 0));
  const rows = entries.map((e) => {
    const r = e.record;
    const extra: string[] = [];
    for (const k of ['skipped', 'canceled', 'not-started']) if ((r?.counts[k] ?? 0) > 0) extra.push(`${r?.counts[k]} ${k.replace('-', ' ')}`);
    if (r === null) extra.push(`no run record at ${e.recordPath}`);
    return [
      (inputOf(e) ?? e.commit).slice(0, 10),
      formatDate(e.timestamp),
      e.runId,
      runStatus(e),
      n(r, 'ran'),
      n(r, 'restored'),
      n(r, 'up-to-date'),
      n(r, 'failed'),
      r?.wallMs == null ? '-' : formatDuration(r.wallMs),
      r?.environment.executor ?? '-',
      extra.join(', '),
    ];
  });
  return renderTable(
    ['input', 'date (UTC)', 'run', 'status', 'ran', 'restored', 'up to date', 'failed', 'wall', 'executor', ''],
    rows,
    ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'left', 'left'],
  );
}
