/**
 * Watches Slurm jobs gently: ONE squeue call per poll for every job of the run, at an interval that
 * starts at `pollMinMs` and backs off (×1.5) to `pollMaxMs` while nothing changes; any change
 * brings it back to the minimum. While a job runs, its stdout/stderr files are followed; when it
 * ends, its final state comes from scontrol (at once) and its accounting from sacct (elapsed, CPU
 * time, max RSS, nodes), waiting a few seconds for slurmdbd's asynchronous record — or, when the
 * cluster keeps no accounting, from scontrol alone, said so in the result.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { FinalJob, LiveJob, SlurmCommands } from './slurm-cli.js';
import { expandHostlist, TERMINAL_STATES } from './slurm-cli.js';

export interface WatchOptions {
  readonly logDir: string;
  onLog(stream: 'stdout' | 'stderr', line: string): void;
  /** The job left PENDING (nodes known), with the time it was seen. */
  onStart?(nodes: readonly string[], at: number): void;
}

interface Watched {
  readonly id: string;
  readonly opts: WatchOptions;
  state: string;
  started: boolean;
  readonly offsets: { stdout: number; stderr: number };
  readonly partial: { stdout: string; stderr: string };
  resolve(f: FinalJob): void;
}

export interface WatcherSettings {
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  readonly accounting: 'auto' | 'sacct' | 'none';
  /** How long to wait for slurmdbd's final record after a job ended (ms). */
  readonly sacctWaitMs?: number;
}

export class JobWatcher {
  private readonly jobs = new Map<string, Watched>();
  private loop: Promise<void> | null = null;
  private interval: number;
  private wake: (() => void) | null = null;
  private closed = false;
  /** Accounting answered at least once (null: not asked yet). */
  private accountingOn: boolean | null = null;
  /** squeue calls made (the bench and tests read it). */
  polls = 0;

  constructor(
    private readonly cmds: SlurmCommands,
    private readonly s: WatcherSettings,
  ) {
    this.interval = s.pollMinMs;
    if (s.accounting === 'none') this.accountingOn = false;
  }

  /** Resolves with the job's final record when it has ended (never rejects). */
  watch(id: string, opts: WatchOptions): Promise<FinalJob> {
    return new Promise((resolve) => {
      this.jobs.set(id, { id, opts, state: 'PENDING', started: false, offsets: { stdout: 0, stderr: 0 }, partial: { stdout: '', stderr: '' }, resolve });
      this.interval = this.s.pollMinMs;
      this.wake?.();
      this.loop ??= this.run().finally(() => {
        this.loop = null;
      });
    });
  }

  /** Poll now (after a cancel, say) instead of at the end of the current interval. */
  poke(): void {
    this.interval = this.s.pollMinMs;
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.jobs.size > 0 && !this.closed) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.interval);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
      if (this.closed) break;
      let live: Map<string, LiveJob>;
      try {
        live = await this.cmds.squeue();
        this.polls += 1;
        failures = 0;
      } catch {
        // The controller may be briefly unreachable (restart, overload): keep trying, slower.
        failures += 1;
        this.interval = Math.min(this.s.pollMaxMs, this.s.pollMinMs * 2 ** failures);
        continue;
      }
      let changed = false;
      const ended: Watched[] = [];
      for (const w of this.jobs.values()) {
        const j = live.get(w.id);
        const state = j?.state ?? 'GONE';
        if (state !== w.state) changed = true;
        w.state = state;
        if (!w.started && j !== undefined && state !== 'PENDING' && j.nodes !== '') {
          w.started = true;
          w.opts.onStart?.(expandHostlist(j.nodes), Date.now());
        }
        if (w.started) await this.follow(w, false);
        if (state === 'GONE' || TERMINAL_STATES.has(state)) ended.push(w);
      }
      if (ended.length > 0) await this.finish(ended);
      this.interval = changed ? this.s.pollMinMs : Math.min(this.s.pollMaxMs, Math.round(this.interval * 1.5));
    }
  }

  private async finish(ended: Watched[]): Promise<void> {
    for (const w of ended) this.jobs.delete(w.id);
    const finals = new Map<string, FinalJob>();
    for (const w of ended) {
      const f = await this.cmds.scontrolJob(w.id).catch(() => null);
      if (f !== null) finals.set(w.id, f);
    }
    const acct = await this.accounting(ended.map((w) => w.id), finals);
    for (const w of ended) {
      await this.follow(w, true);
      const a = acct?.get(w.id);
      const c = finals.get(w.id);
      // scontrol knows the job as the controller ran it (state, nodes, run time); sacct adds CPU
      // time and memory, and is the only source once the controller has forgotten the job.
      const f: FinalJob =
        a === undefined
          ? (c ?? unknownJob(w.id))
          : c === undefined
            ? a
            : { ...a, state: c.state, exitCode: c.exitCode ?? a.exitCode, signal: c.signal ?? a.signal, nodes: c.nodes.length > 0 ? c.nodes : a.nodes, elapsedMs: Math.max(c.elapsedMs ?? 0, a.elapsedMs ?? 0), start: c.start ?? a.start, end: c.end ?? a.end };
      w.resolve(f);
    }
  }

  /** sacct records for these jobs once slurmdbd has them in a final state, or null without accounting. */
  private async accounting(ids: readonly string[], live: ReadonlyMap<string, FinalJob>): Promise<Map<string, FinalJob> | null> {
    if (this.accountingOn === false) return null;
    const deadline = Date.now() + (this.s.sacctWaitMs ?? 15_000);
    let last = new Map<string, FinalJob>();
    for (let delay = 200; ; delay = Math.min(delay * 1.5, 2000)) {
      let got: Map<string, FinalJob> | null;
      try {
        got = await this.cmds.sacct(ids);
      } catch {
        got = new Map();
      }
      if (got === null) {
        this.accountingOn = false;
        return null;
      }
      this.accountingOn = true;
      last = got;
      // The dbd writes asynchronously: a fresh record may still say PENDING or lack the node list.
      const complete = ids.every((id) => {
        const r = got.get(id);
        const c = live.get(id);
        if (r === undefined || !TERMINAL_STATES.has(r.state)) return false;
        return c === undefined ? r.nodes.length > 0 : c.state === r.state && r.nodes.length === c.nodes.length;
      });
      if (complete || Date.now() > deadline) return last;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Emit the complete lines appended to the job's output files since the last look. */
  private async follow(w: Watched, final: boolean): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const file = join(w.opts.logDir, `${w.id}.${stream === 'stdout' ? 'out' : 'err'}`);
      let chunk = '';
      try {
        const fh = await open(file, 'r');
        try {
          const buf = Buffer.alloc(1 << 16);
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, w.offsets[stream]);
            if (bytesRead === 0) break;
            w.offsets[stream] += bytesRead;
            chunk += buf.subarray(0, bytesRead).toString('utf8');
          }
        } finally {
          await fh.close();
        }
      } catch {
        continue; // not created yet (pending) or on a filesystem this machine sees late
      }
      const text = w.partial[stream] + chunk;
      const lines = text.split('\n');
      w.partial[stream] = final ? '' : (lines.pop() ?? '');
      if (final && lines.at(-1) === '') lines.pop();
      for (const l of lines) w.opts.onLog(stream, l);
    }
  }
}

function unknownJob(id: string): FinalJob {
  return { id, state: 'UNKNOWN', exitCode: null, signal: null, elapsedMs: null, cpuMs: null, maxRssBytes: null, nodes: [], submit: null, start: null, end: null, source: 'scontrol' };
}
