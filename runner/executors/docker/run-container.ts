/**
 * The thin effectful shell around one container: create → attach → start → wait → inspect →
 * read usage → remove. The container is removed in every path (command failed, time limit,
 * abort, create/attach/start threw); only an unreachable engine at create time is thrown.
 *
 * An engine that goes away while the stage runs (stopped, restarted, crashed) is an engine error
 * of the stage, said as such: the container it stopped or left behind is removed by the next
 * run's orphan cleanup (it carries this process's pid, which is dead by then).
 */
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import type Dockerode from 'dockerode';
import type { ContainerCreateOptions } from 'dockerode';
import type { LogStream, StageRunResult } from '../executor.js';
import { describeEngineError, engineReachable, engineUnavailable, isConnectionError, statusCode } from './engine-api.js';
import { readCgroupUsage, removeCgroup } from './cgroup-usage.js';
import type { CgroupLayout, CgroupUsage } from './cgroup-usage.js';
import { createLineSplitter, createOutputPressure } from './log-lines.js';
import { roundMs, stageTimings, wallClockMs } from './run-timing.js';

export interface RunContainerOptions {
  onLog(stream: LogStream, line: string): void;
  readonly signal: AbortSignal;
  /** Time limit of the command (from start), or null for none. */
  readonly timeoutSec: number | null;
  /** Called once the container exists, and when it has been removed (for live tracking). */
  onCreated?(id: string): void;
  onRemoved?(id: string): void;
  /** Where to read usage when `createOpts.HostConfig.CgroupParent` is set; null → no usage. */
  readonly cgroup?: CgroupLayout | null;
  /** Recorded as the stage's node. Default: os.hostname(). */
  readonly node?: string;
  /** How long to wait for the output stream to drain after exit. Default 5 s. */
  readonly drainMs?: number;
  /** docker socket path, for error messages. */
  readonly socketPath?: string;
}

const NO_USAGE: CgroupUsage = { cpuMs: null, peakMemBytes: null };
const KILL_SIGNAL = 'SIGKILL';
const MAX_TIMER_MS = 2_147_483_647;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait for `p`, at most `ms`; the timer is cleared either way so it never holds the process open. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** setTimeout that also works past 24.8 days (Node fires at once above 2^31−1 ms). */
function longTimeout(ms: number, fn: () => void): () => void {
  let handle: NodeJS.Timeout;
  const arm = (left: number): void => {
    handle = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(left, MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(handle);
}

/**
 * force-remove; 404 means already gone; 409 "removal in progress" is waited out. An engine that
 * cannot be reached is not retried: the container stays until the next run's orphan cleanup.
 */
async function removeContainer(c: Dockerode.Container): Promise<{ error: string; unreachable: boolean } | null> {
  let last: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      await c.remove({ force: true, v: true });
      return null;
    } catch (e) {
      if (statusCode(e) === 404) return null;
      last = e;
      if (isConnectionError(e)) return { error: describeEngineError(e), unreachable: true };
      await sleep(100 * (attempt + 1));
    }
  }
  return { error: describeEngineError(last), unreachable: false };
}

/**
 * `POST /containers/{id}/wait`, read as a stream. Not dockerode's `wait()`: when the engine goes
 * away after answering with the headers (it sends them at once and the body at the exit),
 * docker-modem listens neither for the response's error nor for its close, so that promise never
 * settles — the runner then had nothing left to wait on and exited 0 in the middle of the run.
 */
function waitForExit(docker: Dockerode, id: string): Promise<{ StatusCode?: number }> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${id}/wait?`,
        method: 'POST',
        isStream: true,
        statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' },
        options: {},
      },
      (err, res) => {
        if (err !== null) {
          reject(err);
          return;
        }
        const body = res as IncomingMessage;
        const chunks: Buffer[] = [];
        let ended = false;
        const lost = (): void => {
          if (ended) return;
          ended = true;
          reject(Object.assign(new Error('connection lost while waiting for the container to exit'), { code: 'ECONNRESET' }));
        };
        body.on('data', (c: Buffer) => chunks.push(c));
        body.on('error', lost);
        body.on('close', lost);
        body.on('end', () => {
          if (ended) return;
          ended = true;
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { StatusCode?: number });
          } catch {
            reject(Object.assign(new Error('the engine answered the wait with no exit status'), { code: 'ECONNRESET' }));
          }
        });
      },
    );
  });
}

/** What a stage's result says when the engine went away while it ran. */
function engineLost(socketPath: string, cause: string): string {
  return `the Docker engine at unix://${socketPath} went away while the stage was running (${cause}): it was stopped, restarted or crashed; run again once it is back`;
}

export async function runContainer(
  docker: Dockerode,
  createOpts: ContainerCreateOptions,
  opts: RunContainerOptions,
): Promise<StageRunResult> {
  const t0 = wallClockMs();
  const node = opts.node ?? os.hostname();
  const cgroupParent = createOpts.HostConfig?.CgroupParent;
  const splitters = {
    stdout: createLineSplitter((line) => opts.onLog('stdout', line)),
    stderr: createLineSplitter((line) => opts.onLog('stderr', line)),
  };

  let container: Dockerode.Container | undefined;
  let stream: NodeJS.ReadWriteStream | undefined;
  let started = false;
  let canceled = opts.signal.aborted;
  let timedOut = false;
  let killed = false;
  let kill: Promise<void> | undefined;
  let engineError: string | null = null;
  let exitCode: number | null = null;
  let signal: string | null = null;
  let startedAt: string | undefined;
  let finishedAt: string | undefined;
  let startReturnedMs: number | null = null;
  let endMs = t0;
  let usage = NO_USAGE;
  let cancelTimer = (): void => {};

  const killNow = (): void => {
    const c = container;
    if (c === undefined || !started || kill !== undefined) return;
    kill = c.kill({ signal: KILL_SIGNAL }).then(
      () => {
        killed = true;
      },
      (e: unknown) => {
        // 409: it exited on its own meanwhile (its exit code stands); 404: someone force-removed
        // it (removeAllLive) — killed all the same. Anything else is the engine's failure.
        const code = statusCode(e);
        if (code === 404) killed = true;
        else if (code !== 409) engineError ??= `kill failed: ${describeEngineError(e)}`;
      },
    );
  };
  const onAbort = (): void => {
    canceled = true;
    killNow();
  };

  const socketPath = opts.socketPath ?? 'docker.sock';
  try {
    await execute();
  } catch (e) {
    if (container === undefined) throw e;
    engineError ??= isConnectionError(e) ? engineLost(socketPath, describeEngineError(e)) : describeEngineError(e);
  } finally {
    cancelTimer();
    opts.signal.removeEventListener('abort', onAbort);
    await kill;
    (stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    splitters.stdout.flush();
    splitters.stderr.flush();
    if (container !== undefined) {
      // A stage that did not succeed while the engine was going down (it stops containers on
      // its way out, and answers on connections it already had): a fresh connection tells.
      const suspect = engineError === null && !canceled && !timedOut && (killed || exitCode !== 0);
      if (suspect && opts.socketPath !== undefined && !(await engineReachable(opts.socketPath))) {
        engineError = engineLost(socketPath, 'it no longer answers');
      }
      const removal = await removeContainer(container);
      const id = container.id.slice(0, 12);
      if (removal === null) opts.onRemoved?.(container.id);
      else if (removal.unreachable) {
        const left = `container ${id} was left behind (the next run removes it)`;
        engineError = engineError === null ? `${engineLost(socketPath, removal.error)}; ${left}` : `${engineError}; ${left}`;
      } else engineError ??= `container ${id} could not be removed: ${removal.error}`;
      if (cgroupParent !== undefined && opts.cgroup) await removeCgroup(opts.cgroup, cgroupParent);
    }
  }
  return finish();

  async function execute(): Promise<void> {
    if (canceled) return;
    try {
      // No abortSignal on create: an aborted request may still create the container, and then
      // we would not know its id to remove it. We check the signal right after instead.
      container = await docker.createContainer(createOpts);
    } catch (e) {
      if (isConnectionError(e)) throw engineUnavailable(opts.socketPath ?? 'docker.sock', e);
      engineError = `cannot create the container: ${describeEngineError(e)}`;
      return;
    }
    const c = container;
    opts.onCreated?.(c.id);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.signal.aborted) canceled = true;

    const s = await c.attach({ stream: true, stdout: true, stderr: true });
    stream = s;
    const drained = new Promise<void>((resolve) => {
      s.on('end', resolve);
      s.on('close', resolve);
      s.on('error', () => resolve());
    });
    // Plain synchronous sinks: every frame is split into lines before the stream's 'end'; while
    // the runner's own output is backed up (a pipe to a slow reader), the stream waits.
    const hold = createOutputPressure(s);
    const sink = (name: LogStream) => ({ write: (chunk: Buffer) => (splitters[name].push(chunk), hold(), true) });
    docker.modem.demuxStream(
      s,
      sink('stdout') as unknown as NodeJS.WritableStream,
      sink('stderr') as unknown as NodeJS.WritableStream,
    );

    if (canceled) return;
    await c.start();
    started = true;
    startReturnedMs = wallClockMs();
    if (canceled) killNow();
    if (opts.timeoutSec !== null && opts.timeoutSec !== undefined) {
      cancelTimer = longTimeout(opts.timeoutSec * 1000, () => {
        timedOut = true;
        killNow();
      });
    }

    const waited = await waitForExit(docker, c.id);
    endMs = wallClockMs();
    cancelTimer();
    await kill;
    await within(drained, opts.drainMs ?? 5000);

    // 404: force-removed meanwhile (removeAllLive); the wait result and client clocks remain.
    const info = await c.inspect().catch((e: unknown) => {
      if (statusCode(e) === 404) return null;
      throw e;
    });
    startedAt = info?.State.StartedAt;
    finishedAt = info?.State.FinishedAt;
    // A canceled run was stopped by us, however its end was observed (removeAllLive may
    // force-remove the container before the abort handler's kill, so wait() can report 137).
    if (killed || canceled) {
      signal = KILL_SIGNAL;
    } else {
      // Docker reports a process killed by a signal as 128+n; whether it was the stage's shell or
      // a child the shell outlived cannot be told apart, so the code is reported as is.
      exitCode = typeof waited.StatusCode === 'number' ? waited.StatusCode : (info?.State.ExitCode ?? null);
    }
    if (info?.State.OOMKilled === true && !killed) {
      // OOMKilled means SOME process of the container was OOM-killed, not necessarily the shell
      // (a stage may survive it and exit 0); say so next to the stage's own output.
      const limit = createOpts.HostConfig?.Memory;
      opts.onLog('stderr', `hpcflow: a process of this stage was killed: out of memory (limit ${limit ?? 'none'} bytes)`);
    }
    if (cgroupParent !== undefined && opts.cgroup) usage = await readCgroupUsage(opts.cgroup, cgroupParent);
  }

  function finish(): StageRunResult {
    const timings = started
      ? stageTimings(t0, startedAt, finishedAt, startReturnedMs, endMs)
      : { startOverheadMs: 0, commandMs: 0 };
    return {
      exitCode,
      signal,
      timedOut,
      canceled,
      engineError,
      wallMs: roundMs(wallClockMs() - t0),
      startOverheadMs: timings.startOverheadMs,
      commandMs: timings.commandMs,
      cpuMs: usage.cpuMs === null ? null : roundMs(usage.cpuMs),
      peakMemBytes: usage.peakMemBytes,
      nodes: [node],
    };
  }
}
