/**
 * The Slurm executor: every stage is one batch job (`sbatch --parsable`), chained on its upstreams'
 * jobs with `--dependency=afterok:` (see BatchApi), its tasks each in a container on their node
 * (the site's ContainerRuntime). Jobs carry the run id, stage and execution key in their comment
 * and in the workspace's journal, so a runner started again adopts what is still running. Images
 * are built and resolved by the Docker engine of this (login) machine.
 */
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { join, relative } from 'node:path';
import { HpcflowError } from '../../errors.js';
import type { BatchApi, BatchTask, Executor, RunHooks, StageRunResult, StageTask, SubmittedJob } from '../executor.js';
import { parseJobComment, sbatchArgs } from './job.js';
import { Journal } from './journal.js';
import type { LoginImages } from './base.js';
import { SlurmExecutorBase } from './base.js';
import type { FinalJob, LiveJob, SlurmCommands } from './slurm-cli.js';
import { slurmCommands, TERMINAL_STATES } from './slurm-cli.js';
import type { SlurmSite } from './types.js';
import { JobWatcher } from './watcher.js';

export interface SlurmExecutorOptions {
  readonly site: SlurmSite;
  /** The workspace (its .hpcflow/slurm holds the journal and the jobs' output files). */
  readonly workspace: string;
  /** Builds and resolves images (the login node's engine). */
  readonly images: LoginImages;
  /** `uid:gid` the stages run as. Default: this process's. */
  readonly user?: string;
  readonly commands?: SlurmCommands;
}

/** Last lines of each output stream kept in the run record (the files keep everything). */
const LOG_TAIL = 20;

const SIGNALS = new Map(Object.entries(constants.signals).map(([name, n]) => [n as number, name]));

export class SlurmExecutor extends SlurmExecutorBase implements Executor {
  readonly batch: BatchApi;
  readonly watcher: JobWatcher;
  private readonly cmds: SlurmCommands;
  private journalP: Promise<Journal> | null = null;
  /** Jobs this runner submitted or adopted that have not ended: cancelled on abort. */
  private readonly live = new Map<string, SubmittedJob>();
  private snapshot: { at: number; jobs: Promise<Map<string, LiveJob>> } | null = null;

  constructor(private readonly o: SlurmExecutorOptions) {
    super(o.images, o.site, o.workspace, o.user);
    this.cmds = o.commands ?? slurmCommands();
    this.watcher = new JobWatcher(this.cmds, o.site);
    this.batch = {
      adopt: (stage, key, hooks) => this.adopt(stage, key, hooks),
      submit: (task, hooks, signal) => this.submit(task, hooks, signal),
      collected: async (stage, key, job, fp) => (await this.journal()).markCollected(stage, key, job.id, fp),
      keyOf: (stage, fp) => this.journalSync?.keyOf(stage, fp),
    };
  }

  private journalSync: Journal | null = null;
  private journal(): Promise<Journal> {
    this.journalP ??= mkdir(this.dir, { recursive: true })
      .then(() => Journal.open(this.dir))
      .then((j) => {
        this.journalSync = j;
        return j;
      });
    return this.journalP;
  }

  /** Load the journal (before the engine asks keyOf synchronously). */
  async init(): Promise<void> {
    await this.journal();
  }

  /** One job, waited for (kernel compiles and other one-off steps). */
  async run(task: StageTask, hooks: RunHooks, signal: AbortSignal): Promise<StageRunResult> {
    const job = await this.submit({ runId: task.runId, stage: task.stage, key: task.fingerprint, image: task.image, workspace: task.workspace, after: [] }, hooks, signal);
    return job.result;
  }

  private async submit(task: BatchTask, hooks: RunHooks, signal: AbortSignal): Promise<SubmittedJob> {
    if (signal.aborted) throw new HpcflowError('HPCFLOW_ABORTED', 'aborted before submission');
    const journal = await this.journal();
    const { req, script, logDir } = await this.prepareJob(this.o.site, { ...task, after: task.after.map((j) => j.id) });
    const submittedAt = Date.now();
    const id = await this.cmds.sbatch(sbatchArgs(req, this.o.site), script);
    await journal.add({ stage: task.stage.id, key: task.key, jobId: id, runId: task.runId, submittedAt: new Date(submittedAt).toISOString() });
    return this.track(id, false, submittedAt, logDir, hooks, signal);
  }

  private async adopt(stageId: string, key: string, hooks: RunHooks): Promise<SubmittedJob | null> {
    const journal = await this.journal();
    const e = journal.pending(stageId, key);
    if (e === undefined) return null;
    const jobs = await this.liveJobs();
    const j = jobs.get(e.jobId);
    const logDir = join(this.dir, 'logs', e.runId);
    const submittedAt = Date.parse(e.submittedAt);
    const never = new AbortController().signal;
    if (j !== undefined) {
      // Job ids restart when a cluster loses its state: the comment must say it is this execution.
      const tag = parseJobComment(j.comment);
      if (tag === null || tag.stage !== stageId || tag.key !== key) return null;
      if (!TERMINAL_STATES.has(j.state) || j.state === 'COMPLETED') return this.track(e.jobId, true, submittedAt, logDir, hooks, never);
      return null;
    }
    // Gone from the controller's memory: only a successful end recorded by accounting counts.
    const acct = await this.cmds.sacct([e.jobId]).catch(() => null);
    const f = acct?.get(e.jobId);
    if (f === undefined || f.state !== 'COMPLETED') return null;
    const result = toResult(f, { submittedAt, startedAt: null, canceled: false, adopted: true });
    const job: SubmittedJob = { id: e.jobId, adopted: true, result: Promise.resolve(result), cancel: async () => {} };
    return job;
  }

  /** squeue, at most once a second for all adoption checks of a run. */
  private liveJobs(): Promise<Map<string, LiveJob>> {
    if (this.snapshot === null || Date.now() - this.snapshot.at > 1000) this.snapshot = { at: Date.now(), jobs: this.cmds.squeue() };
    return this.snapshot.jobs;
  }

  private track(id: string, adopted: boolean, submittedAt: number, logDir: string, hooks: RunHooks, signal: AbortSignal): SubmittedJob {
    let startedAt: number | null = null;
    let canceled = false;
    const cancel = async (): Promise<void> => {
      canceled = true;
      await this.cmds.scancel([id]);
      this.watcher.poke();
    };
    const onAbort = (): void => void cancel().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    const tails = { stdout: [] as string[], stderr: [] as string[] };
    const result = this.watcher
      .watch(id, {
        logDir,
        onLog: (stream, line) => {
          const t = tails[stream];
          t.push(line);
          if (t.length > LOG_TAIL) t.shift();
          hooks.onLog(stream, line);
        },
        onStart: (_nodes, at) => {
          startedAt = at;
        },
      })
      .then((f) => {
        signal.removeEventListener('abort', onAbort);
        this.live.delete(id);
        const base = toResult(f, { submittedAt, startedAt, canceled, adopted });
        const rel = (file: string): string => relative(this.o.workspace, join(logDir, file));
        const logs = { stdout: rel(`${id}.out`), stderr: rel(`${id}.err`), stdoutTail: tails.stdout, stderrTail: tails.stderr };
        const r: StageRunResult = { ...base, scheduler: { ...(base.scheduler as NonNullable<StageRunResult['scheduler']>), logs } };
        // Docker/Podman containers are the engine's processes, not the job's: Slurm's CPU time and
        // memory would be those of the task wrapper alone, so they are not reported as the stage's.
        return this.runtime.name === 'docker' || this.runtime.name === 'podman' ? { ...r, cpuMs: null, peakMemBytes: null } : r;
      });
    const job: SubmittedJob = { id, adopted, result, cancel };
    this.live.set(id, job);
    return job;
  }

  /** Cancel every job this runner submitted or adopted that is still going. */
  async cancelAll(): Promise<void> {
    const ids = [...this.live.keys()];
    if (ids.length === 0) return;
    await this.cmds.scancel(ids);
    this.watcher.poke();
  }

  /** Jobs are adopted by the next runner, never cleaned up as orphans; leftover build containers are. */
  cleanupOrphans(): Promise<number> {
    return this.images.cleanupOrphans();
  }

  async close(): Promise<void> {
    this.watcher.close();
    await this.images.close();
  }
}

export function toResult(f: FinalJob, t: { submittedAt: number; startedAt: number | null; canceled: boolean; adopted: boolean }): StageRunResult {
  const ended = f.end !== null ? Date.parse(f.end) : Date.now();
  const wallMs = Math.max(0, Math.max(ended, Date.now()) - t.submittedAt);
  const started = f.start !== null ? Date.parse(f.start) : t.startedAt;
  const queueMs = t.startedAt !== null ? t.startedAt - t.submittedAt : started !== null ? Math.max(0, started - t.submittedAt) : null;
  const base = {
    wallMs,
    startOverheadMs: queueMs ?? 0,
    commandMs: f.elapsedMs ?? Math.max(0, wallMs - (queueMs ?? 0)),
    cpuMs: f.cpuMs,
    peakMemBytes: f.maxRssBytes,
    nodes: f.nodes,
    engineError: null as string | null,
    scheduler: { jobId: f.id, state: f.state, accounting: f.source, adopted: t.adopted, queueMs },
  };
  const sig = f.signal !== null && f.signal > 0 ? (SIGNALS.get(f.signal) ?? `signal ${f.signal}`) : null;
  switch (f.state) {
    case 'COMPLETED':
      return { ...base, exitCode: 0, signal: null, timedOut: false, canceled: false };
    case 'TIMEOUT':
      return { ...base, exitCode: null, signal: null, timedOut: true, canceled: false };
    case 'CANCELLED':
      return t.canceled
        ? { ...base, exitCode: null, signal: null, timedOut: false, canceled: true }
        : { ...base, exitCode: null, signal: null, timedOut: false, canceled: false, engineError: 'cancelled outside hpcflow (scancel, or an upstream job failed)' };
    case 'FAILED':
      return { ...base, exitCode: f.exitCode !== null && f.exitCode !== 0 ? f.exitCode : null, signal: sig, timedOut: false, canceled: false };
    case 'UNKNOWN':
      return { ...base, exitCode: null, signal: null, timedOut: false, canceled: t.canceled, engineError: t.canceled ? null : `job ${f.id} left Slurm without a record of how it ended` };
    default:
      // OUT_OF_MEMORY, NODE_FAIL, PREEMPTED… (failureOf names them)
      return { ...base, exitCode: null, signal: sig, timedOut: false, canceled: false };
  }
}
