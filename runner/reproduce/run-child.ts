/**
 * The re-run is `hpcflow run --json` of this very CLI in a child process: the same code path as
 * any run (image builds, kernels, Slurm), isolated from this process, and its JSON events are
 * the record of what happened.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HpcflowError } from '../errors.js';

/**
 * The command that starts this CLI: node and the `hpcflow` script that started this process,
 * else bin/hpcflow.js next to this module's bundle (dist/) or source (runner/reproduce/).
 */
export function defaultCli(): string[] {
  const argv1 = process.argv[1];
  if (argv1 !== undefined && /(^|[\\/])hpcflow(\.js)?$/.test(argv1)) return [process.execPath, argv1];
  for (const rel of ['../bin/hpcflow.js', '../../bin/hpcflow.js']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return [process.execPath, p];
  }
  throw new HpcflowError('HPCFLOW_USAGE', 'cannot find the hpcflow CLI to re-run the pipeline with', { hint: 'run reproduce through the hpcflow command' });
}

/** What the child run reported. */
export interface ChildRun {
  readonly code: number;
  readonly runId: string | null;
  /** The stages the run set out to run (its run-start event); null when it never started. */
  readonly selected: readonly string[] | null;
  /** Stage id → its outcome. */
  readonly outcomes: ReadonlyMap<string, { readonly status: string; readonly error?: string; readonly ms: number }>;
  /** The last log lines of each stage. */
  readonly logs: ReadonlyMap<string, readonly string[]>;
  /** The tail of the child's stderr (its error messages). */
  readonly stderr: string;
}

const LOG_LINES = 20;
const STDERR_MAX = 16 << 10;

export interface ChildEvents {
  onStageEnd?(stage: string, status: string, ms: number, error?: string): void;
  onStageStart?(stage: string): void;
}

/**
 * Runs `cli ...args`, parsing its JSON-lines events. Aborting `signal` sends the child one SIGTERM
 * (it stops its stages cleanly) — unless the reason is 'SIGINT': a Ctrl-C reaches the child from
 * the terminal itself, and a second interrupt would make it exit without cleaning up.
 */
export async function runChild(cli: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv, hooks: ChildEvents = {}, signal?: AbortSignal, cwd?: string): Promise<ChildRun> {
  const [cmd, ...pre] = cli as [string, ...string[]];
  const child = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, ...(cwd !== undefined ? { cwd } : {}) });
  let runId: string | null = null;
  let selected: string[] | null = null;
  const outcomes = new Map<string, { status: string; error?: string; ms: number }>();
  const logs = new Map<string, string[]>();
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_MAX);
  });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (e.type) {
      case 'run-start':
        runId = typeof e.runId === 'string' ? e.runId : null;
        selected = Array.isArray(e.stages) ? (e.stages as string[]) : [];
        break;
      case 'stage-start':
        hooks.onStageStart?.(e.stage as string);
        break;
      case 'stage-log': {
        const l = logs.get(e.stage as string) ?? [];
        l.push(String(e.line));
        if (l.length > LOG_LINES) l.shift();
        logs.set(e.stage as string, l);
        break;
      }
      case 'stage-end': {
        const o = e.outcome as { status: string; error?: string };
        const ms = typeof e.ms === 'number' ? e.ms : 0;
        outcomes.set(e.stage as string, { status: o.status, ...(typeof o.error === 'string' ? { error: o.error } : {}), ms });
        hooks.onStageEnd?.(e.stage as string, o.status, ms, o.error);
        break;
      }
      default:
        break;
    }
  });
  let terminated = false;
  const onAbort = (): void => {
    if (terminated || child.exitCode !== null || signal?.reason === 'SIGINT') return;
    terminated = true;
    child.kill('SIGTERM');
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, sig) => resolve(c ?? (sig === 'SIGINT' || sig === 'SIGTERM' ? 130 : 70)));
  }).finally(() => signal?.removeEventListener('abort', onAbort));
  return { code, runId, selected, outcomes, logs, stderr };
}
