import { formatReason } from '../dag/reasons.js';
import type { EngineEvent, StageOutcome } from '../engine/events.js';
import type { CliIO } from './io.js';

export interface Reporter {
  onEvent(e: EngineEvent): void;
  stop(): void;
}

/** One line for a finished stage. Pure. */
export function describeOutcome(o: StageOutcome): string {
  switch (o.status) {
    case 'up-to-date':
      return 'up to date';
    case 'restored':
      return `restored from cache (${o.reasons.map(formatReason).join('; ')})`;
    case 'ran': {
      const r = o.result;
      const extra = [`${(r.commandMs / 1000).toFixed(2)} s`, `start ${Math.round(r.startOverheadMs)} ms`];
      if (r.cpuMs !== null) extra.push(`cpu ${(r.cpuMs / 1000).toFixed(2)} s`);
      if (r.peakMemBytes !== null) extra.push(`peak ${(r.peakMemBytes / 2 ** 20).toFixed(1)} MiB`);
      const sched = r.scheduler;
      if (sched !== undefined) {
        extra.unshift(`job ${sched.jobId}${sched.adopted ? ', adopted' : ''}`);
        if (r.nodes.length > 0) extra.push(`on ${r.nodes.join(',')}`);
        if (sched.accounting === 'scontrol') extra.push('no accounting: cpu and memory unknown');
        else if (r.cpuMs === null) extra.push('cpu and memory of engine-started containers are not in Slurm accounting');
      }
      return `ran (${extra.join(', ')})`;
    }
    case 'failed':
      return `FAILED: ${o.error}`;
    case 'skipped':
      return `skipped: ${formatReason(o.reason)}`;
    case 'canceled':
      return o.result?.scheduler !== undefined ? `canceled (job ${o.result.scheduler.jobId} cancelled)` : 'canceled (container removed)';
    case 'not-started':
      return 'not started';
    default: {
      const never: never = o;
      return String(never);
    }
  }
}

/** `job 12 submitted (after 10, 11)` / `job 12 adopted: submitted by an earlier runner`. */
export function describeJob(e: Extract<EngineEvent, { type: 'stage-job' }>): string {
  if (e.adopted) return `job ${e.jobId} adopted: submitted by an earlier runner, not submitted again`;
  return `job ${e.jobId} submitted${e.after.length > 0 ? ` (starts after ${e.after.join(', ')} succeed)` : ''}`;
}

/** JSON lines: one event per line, for machines. */
export function jsonReporter(io: CliIO): Reporter {
  return {
    onEvent(e) {
      const v = e.type === 'run-end' ? { ...e, summary: { ...e.summary, outcomes: Object.fromEntries(e.summary.outcomes) } } : e;
      io.out(`${JSON.stringify(v)}\n`);
    },
    stop() {},
  };
}

/** "kernel compiled in 3.2 s (key 1a2b3c4d5e6f)" and the like. */
export function describeKernelBuild(e: Extract<EngineEvent, { type: 'kernel-build' }>): string {
  const key = e.key.slice(0, 12);
  if (e.action === 'compiled') return `kernel compiled in ${(e.ms / 1000).toFixed(1)} s (compile key ${key})`;
  return `kernel binary ${e.action === 'cached' ? 'up to date' : 'restored from the cache'}, nothing compiled (compile key ${key})`;
}

/** Plain timestamped lines (logs, CI): every stage log line prefixed with its stage. */
export function plainReporter(io: CliIO, now: () => Date = () => new Date()): Reporter {
  const ts = (): string => now().toISOString();
  return {
    onEvent(e) {
      switch (e.type) {
        case 'stage-start':
          io.out(`${ts()} [${e.stage}] ${e.action === 'run' ? 'running' : 'restoring'}: ${e.reasons.map(formatReason).join('; ')}\n`);
          break;
        case 'stage-log':
          (e.stream === 'stderr' ? io.err : io.out)(`${ts()} [${e.stage}] ${e.line}\n`);
          break;
        case 'stage-end':
          if (e.outcome.status !== 'up-to-date') io.out(`${ts()} [${e.stage}] ${describeOutcome(e.outcome)}\n`);
          break;
        case 'image-build':
          io.out(`${ts()} [image ${e.tag}] build ${e.phase}\n`);
          break;
        case 'image-log':
          io.out(`${ts()} [image] ${e.line}\n`);
          break;
        case 'kernel-build':
          io.out(`${ts()} [${e.stage}] ${describeKernelBuild(e)}\n`);
          break;
        case 'stage-job':
          io.out(`${ts()} [${e.stage}] ${describeJob(e)}\n`);
          break;
        case 'run-start':
        case 'run-end':
          break;
      }
    },
    stop() {},
  };
}

/** On a terminal: an ora spinner naming the running stages, with log lines printed above it. */
export async function ttyReporter(io: CliIO): Promise<Reporter> {
  const { default: ora } = await import('ora');
  const running = new Set<string>();
  const spinner = ora({ text: 'planning', discardStdin: false }).start();
  const above = (line: string): void => {
    spinner.clear();
    io.out(`${line}\n`);
    spinner.render();
  };
  const text = (): string => (running.size === 0 ? 'waiting' : `running ${[...running].join(', ')}`);
  return {
    onEvent(e) {
      switch (e.type) {
        case 'stage-start':
          running.add(e.stage);
          above(`▶ ${e.stage}: ${e.action === 'run' ? 'running' : 'restoring'} (${e.reasons.map(formatReason).join('; ')})`);
          spinner.text = text();
          break;
        case 'stage-log':
          above(`  ${e.stage} │ ${e.line}`);
          break;
        case 'stage-end': {
          running.delete(e.stage);
          const ok = e.outcome.status === 'ran' || e.outcome.status === 'restored' || e.outcome.status === 'up-to-date';
          if (e.outcome.status !== 'up-to-date') above(`${ok ? '✔' : '✖'} ${e.stage}: ${describeOutcome(e.outcome)}`);
          spinner.text = text();
          break;
        }
        case 'image-build':
          spinner.text = `image ${e.tag}: build ${e.phase}`;
          break;
        case 'kernel-build':
          above(`  ${e.stage} │ ${describeKernelBuild(e)}`);
          break;
        case 'stage-job':
          above(`  ${e.stage} │ ${describeJob(e)}`);
          break;
        default:
          break;
      }
    },
    stop() {
      spinner.stop();
    },
  };
}
