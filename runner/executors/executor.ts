import type { ImageSpec, Stage } from '../model/pipeline.js';

/** An image resolved to its content identity. `digest` is what goes into fingerprints. */
export interface ResolvedImage {
  /** The reference a container is created from (a tag, or the id itself). */
  readonly ref: string;
  /** Content identity: `sha256:…` image id (locally built) or repo digest. Never a tag. */
  readonly digest: string;
  /** The tag the user wrote / the build produced, for explanations ("tag did not change"). */
  readonly tag: string;
}

/** Where an image stands before a run, for `status` (which never builds). */
export type ImageState =
  | { readonly state: 'present'; readonly image: ResolvedImage }
  | { readonly state: 'needs-build'; readonly tag: string; readonly reason: string }
  | { readonly state: 'missing'; readonly tag: string; readonly reason: string };

/** An image that cannot be obtained; `dockerfile` is set when it is the FROM of a build context. */
export interface MissingImage {
  readonly ref: string;
  readonly dockerfile: string | null;
}

/** One stage execution request. */
export interface StageTask {
  readonly runId: string;
  readonly stage: Stage;
  readonly fingerprint: string;
  readonly image: ResolvedImage;
  /** Absolute path of the workspace on the host; mounted at the same path in the container. */
  readonly workspace: string;
}

export type LogStream = 'stdout' | 'stderr';

/** What happened to a stage's process. Shape follows execa's result (exitCode, signal, timedOut…). */
export interface StageRunResult {
  /** null when the process never exited normally (killed, canceled, engine failure). */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly canceled: boolean;
  /** Set when the engine itself failed (not the command). */
  readonly engineError: string | null;
  /** From the executor's create call to the container being removed. */
  readonly wallMs: number;
  /** Create + start until the command began (container start cost). */
  readonly startOverheadMs: number;
  /** The command's own run time (container start → exit). */
  readonly commandMs: number;
  /** user+system CPU time of the container, when the engine reported it. */
  readonly cpuMs: number | null;
  /** Peak memory of the container in bytes, when the engine reported it. */
  readonly peakMemBytes: number | null;
  /** Host(s) the stage ran on. */
  readonly nodes: readonly string[];
  /** Batch executors: the job and how the scheduler ended it. */
  readonly scheduler?: SchedulerRecord;
}

/** A batch job's identity and end, as the scheduler reported it. */
export interface SchedulerRecord {
  readonly jobId: string;
  /** Final state: COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, CANCELLED… */
  readonly state: string;
  /** Where the figures came from: `sacct` (accounting), or `scontrol` (no CPU time or memory). */
  readonly accounting: 'sacct' | 'scontrol';
  /** The job was submitted by an earlier runner and adopted by this one. */
  readonly adopted: boolean;
  /** Submission → start, ms (queue wait), when seen. */
  readonly queueMs: number | null;
  /** The job's output files (workspace-relative) and their last lines, for the run record. */
  readonly logs?: { readonly stdout: string; readonly stderr: string; readonly stdoutTail: readonly string[]; readonly stderrTail: readonly string[] };
}

/** Scheduler end states that are failures of their own kind (not the command's exit code). */
const SCHEDULER_FAILURES: Readonly<Record<string, string>> = {
  OUT_OF_MEMORY: 'out of memory: the job exceeded its memory limit (Slurm OUT_OF_MEMORY)',
  NODE_FAIL: 'node failure: a node of the job failed (Slurm NODE_FAIL)',
  PREEMPTED: 'preempted by the scheduler (Slurm PREEMPTED)',
  BOOT_FAIL: 'a node failed to boot (Slurm BOOT_FAIL)',
  DEADLINE: 'the job missed its deadline (Slurm DEADLINE)',
};

/** Why a finished process counts as a failure, or null if it succeeded. */
export function failureOf(r: StageRunResult): string | null {
  if (r.engineError !== null) return `container engine error: ${r.engineError}`;
  const sched = r.scheduler === undefined ? undefined : SCHEDULER_FAILURES[r.scheduler.state];
  if (sched !== undefined) return sched;
  if (r.timedOut) return `timed out after ${Math.round(r.commandMs / 1000)} s (time limit)`;
  if (r.canceled) return 'canceled';
  if (r.signal !== null) return `killed by ${r.signal}`;
  if (r.exitCode !== 0) return `exit code ${r.exitCode ?? 'unknown'}`;
  return null;
}

/** A stage's job in a batch scheduler. */
export interface SubmittedJob {
  readonly id: string;
  /** Submitted by an earlier runner of this workspace; found again instead of submitted twice. */
  readonly adopted: boolean;
  /** Resolves when the job has ended (never rejects). */
  readonly result: Promise<StageRunResult>;
  /** Cancel it (scancel); `result` then resolves as canceled. */
  cancel(): Promise<void>;
}

/** A stage submitted to a batch scheduler, possibly before its upstreams finished. */
export interface BatchTask {
  readonly runId: string;
  readonly stage: Stage;
  /**
   * Identifies this execution: the fingerprint when it is known at submission, else a key of
   * what is known (the stage, its image, its own inputs, its upstreams' keys).
   */
  readonly key: string;
  readonly image: ResolvedImage;
  readonly workspace: string;
  /** Jobs it must start after (successfully). */
  readonly after: readonly SubmittedJob[];
}

/**
 * Executors whose stages run as jobs of a batch scheduler: the engine submits a stage as soon as
 * its upstreams are submitted, chained on them, so no runner has to stay alive for the work to go
 * on; a runner started again finds its jobs (`adopt`) instead of submitting them twice.
 */
export interface BatchApi {
  /** An earlier runner's job for this execution that is running or ended well and was not collected. */
  adopt(stageId: string, key: string, hooks: RunHooks): Promise<SubmittedJob | null>;
  submit(task: BatchTask, hooks: RunHooks, signal: AbortSignal): Promise<SubmittedJob>;
  /** The job's outputs were stored under `fingerprint`. */
  collected(stageId: string, key: string, job: SubmittedJob, fingerprint: string): Promise<void>;
  /** The key of the job whose outputs were stored under `fingerprint`, if a job made them. */
  keyOf(stageId: string, fingerprint: string): string | undefined;
}

export interface RunHooks {
  onLog(stream: LogStream, line: string): void;
}

/**
 * Runs stages somewhere (local Docker, Slurm…). Implementations must remove every container /
 * job they started, also when `signal` aborts or the engine call throws.
 */
export interface Executor {
  readonly name: string;
  /** Look up an image without building or pulling anything (used by `status`/`plan`). */
  imageState(spec: ImageSpec, workspace: string): Promise<ImageState>;
  /** Make the image available (build a context if needed) and resolve its digest. */
  prepareImage(
    spec: ImageSpec,
    workspace: string,
    hooks: RunHooks,
    signal: AbortSignal,
  ): Promise<ResolvedImage>;
  /**
   * Images this spec needs that the engine does not have and cannot make from what it has: the
   * reference itself, or the FROM images of a context that is not built yet. [] = can be prepared.
   */
  missingImages(spec: ImageSpec, workspace: string): Promise<MissingImage[]>;
  run(task: StageTask, hooks: RunHooks, signal: AbortSignal): Promise<StageRunResult>;
  /** Present on batch-scheduler executors (Slurm). */
  readonly batch?: BatchApi;
  /** Remove containers/jobs labelled as hpcflow's that no live run owns. Returns how many. */
  cleanupOrphans(): Promise<number>;
  close(): Promise<void>;
}
