/**
 * Slurm, inside one allocation the caller already holds (`salloc`, or `hpcflow measure
 * --allocate`): every stage is a job STEP of that allocation instead of a batch job of its own.
 * The step is the very `srun` line the batch executor's job script would run (job.ts), started
 * here with SLURM_JOB_ID naming the allocation, so the stage's tasks land on the allocation's
 * nodes, in containers, exactly as in a batch job — only without queueing, and all on the same
 * nodes. That is what comparing two revisions needs: the same hardware for both, alternately.
 *
 * There is no chaining and no adoption (a step ends with its srun): the engine schedules stages
 * as it does for a local executor, and several steps may share the allocation at once.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { HpcflowError } from '../../errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import type { Executor, RunHooks, StageRunResult, StageTask } from '../executor.js';
import type { LoginImages } from './base.js';
import { SlurmExecutorBase } from './base.js';
import type { SlurmSite } from './types.js';

export interface SlurmStepExecutorOptions {
  readonly site: SlurmSite;
  readonly workspace: string;
  /** The job id of the allocation the steps run in. */
  readonly allocation: string;
  /** Its nodes (recorded as the stages' nodes: a step runs on some of them). */
  readonly nodes: readonly string[];
  readonly images: LoginImages;
  readonly user?: string;
  /** Environment of srun besides SLURM_JOB_ID (default: SLURM_CONF, HOME, USER, LANG of this process). */
  readonly env?: NodeJS.ProcessEnv;
  /** After asking a step to stop (SIGTERM to srun), wait this long before SIGKILL. */
  readonly killGraceMs?: number;
}

/** `HPCFLOW_SLURM_ALLOCATION`: a job id (digits). */
export function parseAllocation(v: string): string {
  if (!/^\d+$/.test(v)) throw new HpcflowError('HPCFLOW_USAGE', `HPCFLOW_SLURM_ALLOCATION must be a Slurm job id (got '${v}')`, { hint: 'the id salloc printed ("Granted job allocation N"), or $SLURM_JOB_ID inside it' });
  return v;
}

/** The variables srun may need from this process, and nothing else (no tokens). */
const PASSED_ENV = ['SLURM_CONF', 'HOME', 'USER', 'LOGNAME', 'LANG', 'TZ'];

const LOG_TAIL = 20;

export class SlurmStepExecutor extends SlurmExecutorBase implements Executor {

  constructor(private readonly o: SlurmStepExecutorOptions) {
    super(o.images, o.site, o.workspace, o.user);
    parseAllocation(o.allocation);
  }

  async run(task: StageTask, hooks: RunHooks, signal: AbortSignal): Promise<StageRunResult> {
    if (signal.aborted) throw new HpcflowError('HPCFLOW_ABORTED', 'aborted before the step started');
    const { script, logDir } = await this.prepareJob(this.o.site, { ...task, key: task.fingerprint, after: [] });
    const base = task.stage.id.replace(/[^A-Za-z0-9_.@=,-]+/g, '_');
    const scriptPath = join(logDir, `${base}.step.sh`);
    await writeFileAtomic(scriptPath, script, { mode: 0o755 });
    const source = this.o.env ?? process.env;
    const env: NodeJS.ProcessEnv = { PATH: this.o.site.path, SLURM_JOB_ID: this.o.allocation, SLURM_JOBID: this.o.allocation };
    for (const k of PASSED_ENV) if (source[k] !== undefined) env[k] = source[k];

    const t0 = Date.now();
    const child = spawn('/bin/bash', [scriptPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const files = { stdout: join(logDir, `${base}.step.out`), stderr: join(logDir, `${base}.step.err`) };
    const tails = { stdout: [] as string[], stderr: [] as string[] };
    const streams = (['stdout', 'stderr'] as const).map(
      (stream) =>
        new Promise<void>((resolve) => {
          const file = createWriteStream(files[stream]);
          const lines = createInterface({ input: child[stream], crlfDelay: Infinity });
          lines.on('line', (line) => {
            file.write(`${line}\n`);
            const t = tails[stream];
            t.push(line);
            if (t.length > LOG_TAIL) t.shift();
            hooks.onLog(stream, line);
          });
          lines.once('close', () => file.end(resolve));
        }),
    );

    let canceled = false;
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    // srun passes SIGTERM to the step's tasks (the container wrappers stop their containers) and
    // ends with them; a step that does not stop is killed.
    const stop = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), this.o.killGraceMs ?? 10_000);
    };
    const onAbort = (): void => {
      canceled = true;
      stop();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const limit = task.stage.resources.timeLimitSec;
    const limitTimer =
      limit === null
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stop();
          }, limit * 1000);
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error: Error | null }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('exit', (code, sig) => resolve({ code, signal: sig, error: null }));
    });
    // A process the step left behind may hold the pipes open: read what is there, then stop.
    let drained: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(streams), new Promise<void>((r) => (drained = setTimeout(r, 2000)))]);
    clearTimeout(drained);
    child.stdout.destroy();
    child.stderr.destroy();
    signal.removeEventListener('abort', onAbort);
    clearTimeout(limitTimer);
    clearTimeout(killTimer);
    const wallMs = Date.now() - t0;
    const rel = (f: string): string => relative(this.o.workspace, f);
    // bash exec'd srun: srun's exit code is the step's (the largest of its tasks'); killed by a
    // signal, 128+n or the signal itself.
    const failed = exit.code !== 0;
    return {
      exitCode: timedOut || canceled ? null : exit.code,
      signal: timedOut || canceled ? null : exit.signal,
      timedOut,
      canceled: canceled && !timedOut,
      engineError: exit.error === null ? null : `cannot start srun: ${exit.error.message}`,
      wallMs,
      startOverheadMs: 0,
      commandMs: wallMs,
      cpuMs: null,
      peakMemBytes: null,
      nodes: this.o.nodes.slice(0, task.stage.resources.nodes),
      scheduler: {
        jobId: this.o.allocation,
        state: timedOut ? 'TIMEOUT' : canceled ? 'CANCELLED' : failed ? 'FAILED' : 'COMPLETED',
        accounting: 'scontrol',
        adopted: false,
        queueMs: null,
        logs: { stdout: rel(files.stdout), stderr: rel(files.stderr), stdoutTail: tails.stdout, stderrTail: tails.stderr },
      },
    };
  }

  cleanupOrphans(): Promise<number> {
    return this.images.cleanupOrphans();
  }

  close(): Promise<void> {
    return this.images.close();
  }
}
