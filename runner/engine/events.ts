import type { Action } from '../dag/decide.js';
import type { Reason } from '../dag/reasons.js';
import type { LogStream, StageRunResult } from '../executors/executor.js';

/** How one stage ended in a run. Expected failures are values here, never exceptions. */
export type StageOutcome =
  | { readonly status: 'up-to-date'; readonly fingerprint: string }
  | { readonly status: 'restored'; readonly fingerprint: string; readonly reasons: readonly Reason[] }
  | { readonly status: 'ran'; readonly fingerprint: string; readonly reasons: readonly Reason[]; readonly result: StageRunResult }
  | {
      readonly status: 'failed';
      readonly fingerprint: string | null;
      /** What went wrong, for people: "exit code 3", "timed out after 10 s", "output x was not produced". */
      readonly error: string;
      readonly reasons: readonly Reason[];
      readonly result?: StageRunResult;
    }
  | { readonly status: 'skipped'; readonly reason: Reason }
  | { readonly status: 'canceled'; readonly result?: StageRunResult }
  /** Never started because the run stopped early (failure mode `stop`, or an abort). */
  | { readonly status: 'not-started' };

export type OutcomeStatus = StageOutcome['status'];

export type EngineEvent =
  | { readonly type: 'run-start'; readonly runId: string; readonly stages: readonly string[] }
  | { readonly type: 'image-build'; readonly tag: string; readonly phase: 'start' | 'done' | 'failed' }
  | { readonly type: 'image-log'; readonly tag: string; readonly line: string }
  | { readonly type: 'stage-start'; readonly stage: string; readonly action: Action; readonly reasons: readonly Reason[] }
  | { readonly type: 'stage-log'; readonly stage: string; readonly stream: LogStream; readonly line: string }
  /** A kernel stage's binaries: compiled now, found in place, or restored from the cache (compile key). */
  | { readonly type: 'kernel-build'; readonly stage: string; readonly key: string; readonly action: 'compiled' | 'cached' | 'restored'; readonly ms: number }
  /** A batch scheduler job of the stage: submitted now (chained on `after`), or adopted from an earlier runner. */
  | { readonly type: 'stage-job'; readonly stage: string; readonly jobId: string; readonly adopted: boolean; readonly after: readonly string[] }
  | { readonly type: 'stage-end'; readonly stage: string; readonly outcome: StageOutcome; readonly ms: number }
  | { readonly type: 'run-end'; readonly runId: string; readonly summary: RunSummary };

export interface RunSummary {
  readonly runId: string;
  readonly ok: boolean;
  readonly aborted: boolean;
  readonly counts: Readonly<Record<OutcomeStatus, number>>;
  readonly outcomes: ReadonlyMap<string, StageOutcome>;
  readonly wallMs: number;
}

/** `stop`: start nothing new, let running stages finish; `continue`: keep running stages that do
 * not depend on the failure; `cancel`: abort running stages too. */
export type FailureMode = 'stop' | 'continue' | 'cancel';
