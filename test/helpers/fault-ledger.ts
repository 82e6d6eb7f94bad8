import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The fault-injection ledger: every fault scenario records how many faults it injected, how many
 * runs recovered afterwards and how much data was lost (must be 0). The summary reporter (in the
 * vitest main process) adds them up into one table at the end of the test run.
 *
 * Test files run in forked workers whose parent is the vitest main process, so the ledger file is
 * named after that process: the workers append with `process.ppid`, the reporter reads `process.pid`.
 */
export interface FaultEntry {
  /** A short name of the scenario, e.g. `SIGKILL during a run`. */
  readonly scenario: string;
  readonly injected: number;
  readonly recovered: number;
  /** Completed work or stored data that was lost or corrupted. Anything but 0 is a failure. */
  readonly lost: number;
}

export function ledgerPath(mainPid: number): string {
  return join(tmpdir(), `hpcflow-fault-ledger-${mainPid}.jsonl`);
}

export function recordFaults(entry: FaultEntry): void {
  appendFileSync(ledgerPath(process.ppid), `${JSON.stringify(entry)}\n`);
}
