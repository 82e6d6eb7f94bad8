/**
 * The Slurm command-line client: sbatch, squeue, sacct, scontrol and scancel, run with execa (no
 * shell) on the login node, and the PURE parsers of what they print. Every call is one process for
 * any number of jobs: the watcher asks squeue once per poll for all of them.
 */
import { execa } from 'execa';
import { HpcflowError } from '../../errors.js';

/** Job states (squeue %T / sacct State / scontrol JobState) that end a job. */
export const TERMINAL_STATES = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'REVOKED',
  'SPECIAL_EXIT',
]);

export interface LiveJob {
  readonly id: string;
  /** PENDING, RUNNING, COMPLETING, COMPLETED… */
  readonly state: string;
  /** Why it is pending (Dependency, Resources, DependencyNeverSatisfied…), or 'None'. */
  readonly reason: string;
  /** Compact node list (`n[1-2]`), '' while pending. */
  readonly nodes: string;
  readonly name: string;
  readonly comment: string;
}

/** Final state and accounting of a job. Null fields: not known (accounting disabled, or not recorded). */
export interface FinalJob {
  readonly id: string;
  readonly state: string;
  /** The batch script's exit code, and the signal that ended it (0 = none). */
  readonly exitCode: number | null;
  readonly signal: number | null;
  readonly elapsedMs: number | null;
  readonly cpuMs: number | null;
  /** Largest MaxRSS of the job's steps, bytes. */
  readonly maxRssBytes: number | null;
  readonly nodes: readonly string[];
  readonly submit: string | null;
  readonly start: string | null;
  readonly end: string | null;
  /** Where the figures came from: `sacct`, or `scontrol` (no CPU time or memory without accounting). */
  readonly source: 'sacct' | 'scontrol';
}

const SEP = '\u001f';

/** `squeue -h -t all --me -o …` → jobs. */
export const SQUEUE_FORMAT = ['%i', '%T', '%r', '%N', '%j', '%k'].join(SEP);

export function parseSqueue(text: string): Map<string, LiveJob> {
  const out = new Map<string, LiveJob>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [id = '', state = '', reason = '', nodes = '', name = '', comment = ''] = line.split(SEP);
    out.set(id.trim(), { id: id.trim(), state: state.trim(), reason: reason.trim(), nodes: nodes.trim(), name, comment: comment === '(null)' ? '' : comment });
  }
  return out;
}

export const SACCT_FIELDS = ['JobID', 'State', 'ExitCode', 'ElapsedRaw', 'TotalCPU', 'MaxRSS', 'NodeList', 'Submit', 'Start', 'End'];

/**
 * `sacct -n -P --delimiter=<US> -j ids --format=…` → one record per job: the job line gives the
 * state, exit code, elapsed time and nodes; MaxRSS is the largest over its steps (`id.batch`,
 * `id.0`…); TotalCPU of the job line includes its steps.
 */
export function parseSacct(text: string): Map<string, FinalJob> {
  const jobs = new Map<string, FinalJob>();
  const rss = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [jobId = '', state = '', exit = '', elapsed = '', cpu = '', maxRss = '', nodeList = '', submit = '', start = '', end = ''] = line.split(SEP);
    const [base = '', step] = jobId.split('.');
    const r = parseSize(maxRss);
    if (r !== null) rss.set(base, Math.max(rss.get(base) ?? 0, r));
    if (step !== undefined) continue;
    const [code, sig] = exit.split(':').map((x) => Number.parseInt(x, 10));
    jobs.set(base, {
      id: base,
      state: (state.split(' ')[0] ?? '').replace(/\+$/, ''),
      exitCode: Number.isFinite(code) ? (code as number) : null,
      signal: Number.isFinite(sig) ? (sig as number) : null,
      elapsedMs: /^\d+$/.test(elapsed) ? Number(elapsed) * 1000 : null,
      cpuMs: parseDuration(cpu),
      maxRssBytes: null,
      nodes: nodeList === '' || nodeList === 'None assigned' ? [] : expandHostlist(nodeList),
      submit: timeOrNull(submit),
      start: timeOrNull(start),
      end: timeOrNull(end),
      source: 'sacct',
    });
  }
  return new Map([...jobs].map(([id, j]) => [id, { ...j, maxRssBytes: rss.get(id) ?? null }]));
}

/** `scontrol show job -o <id>` → key=value fields (values may contain spaces only as the last key). */
export function parseScontrolJob(text: string): Record<string, string> | null {
  const line = text.split('\n').find((l) => l.startsWith('JobId='));
  if (line === undefined) return null;
  const out: Record<string, string> = {};
  const re = /(\w[\w:/]*)=(.*?)(?= \w[\w:/]*=|$)/g;
  for (const m of line.matchAll(re)) out[m[1] as string] = (m[2] as string).trim();
  return out;
}

export function finalFromScontrol(f: Record<string, string>): FinalJob {
  const [code, sig] = (f.ExitCode ?? '').split(':').map((x) => Number.parseInt(x, 10));
  const run = parseDuration(f.RunTime ?? '');
  return {
    id: f.JobId ?? '',
    state: f.JobState ?? 'UNKNOWN',
    exitCode: Number.isFinite(code) ? (code as number) : null,
    signal: Number.isFinite(sig) ? (sig as number) : null,
    elapsedMs: run,
    cpuMs: null,
    maxRssBytes: null,
    nodes: f.NodeList === undefined || f.NodeList === '(null)' ? [] : expandHostlist(f.NodeList),
    submit: timeOrNull(f.SubmitTime ?? ''),
    start: timeOrNull(f.StartTime ?? ''),
    end: timeOrNull(f.EndTime ?? ''),
    source: 'scontrol',
  };
}

function timeOrNull(s: string): string | null {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(s) ? s : null;
}

/** Slurm durations: `[D-][HH:]MM:SS[.mmm]` or `MM:SS.mmm` → ms. */
export function parseDuration(s: string): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (m === null) return null;
  const [, d, h, mi, se, frac] = m;
  const ms = frac === undefined ? 0 : Math.round(Number(`0.${frac}`) * 1000);
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(mi)) * 60_000 + Number(se) * 1000 + ms;
}

/** `1234K`, `56M`, `0`, `''` → bytes (Slurm's K is KiB). */
export function parseSize(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([KMGTP]?)$/.exec(s.trim());
  if (m === null) return null;
  const pow = { '': 0, K: 1, M: 2, G: 3, T: 4, P: 5 }[m[2] as '' | 'K'] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** pow);
}

/** Slurm host lists: `n[1-3,7],gpu01` → n1 n2 n3 n7 gpu01 (zero padding kept). */
export function expandHostlist(list: string): string[] {
  const out: string[] = [];
  for (const part of list.match(/[^,[]+(?:\[[^\]]*\])?[^,]*/g) ?? []) {
    const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(part);
    if (m === null) {
      out.push(part);
      continue;
    }
    const [, pre, ranges, post] = m as unknown as [string, string, string, string];
    for (const r of ranges.split(',')) {
      const [a = '', b] = r.split('-');
      if (b === undefined) {
        out.push(`${pre}${a}${post}`);
        continue;
      }
      for (let i = Number(a); i <= Number(b); i++) out.push(`${pre}${String(i).padStart(a.length, '0')}${post}`);
    }
  }
  return out;
}

/** What sacct says when the cluster keeps no accounting (no slurmdbd). */
export function accountingDisabled(stderr: string): boolean {
  return /accounting storage is disabled|not configured with slurmdbd|Problem talking to the database/i.test(stderr);
}

export interface SlurmCommands {
  sbatch(args: readonly string[], script: string): Promise<string>;
  /** Every job of this user still known to the controller (one squeue call). */
  squeue(): Promise<Map<string, LiveJob>>;
  /** Final records from accounting, or null when the cluster has none. */
  sacct(ids: readonly string[]): Promise<Map<string, FinalJob> | null>;
  scontrolJob(id: string): Promise<FinalJob | null>;
  scancel(ids: readonly string[]): Promise<void>;
}

/** The real client. `env` is the environment of the Slurm commands (SLURM_CONF…), never passed to jobs. */
export function slurmCommands(env: NodeJS.ProcessEnv = process.env): SlurmCommands {
  const run = async (cmd: string, args: readonly string[], input?: string): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
    try {
      const r = await execa(cmd, args, { env, extendEnv: false, reject: false, ...(input !== undefined ? { input } : { stdin: 'ignore' }), timeout: 120_000 });
      if (r.failed && r.exitCode === undefined) throw new Error(r.shortMessage);
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? 1 };
    } catch (e) {
      throw new HpcflowError('HPCFLOW_SCHEDULER', `cannot run ${cmd}: ${(e as Error).message}`, {
        hint: 'install the Slurm client on this machine (Debian: slurm-client) and set SLURM_CONF if the cluster is not the default one',
      });
    }
  };
  return {
    async sbatch(args, script) {
      const r = await run('sbatch', args, script);
      const id = /^(\d+)(?:;\S+)?\s*$/.exec(r.stdout.trim())?.[1];
      if (r.exitCode !== 0 || id === undefined) {
        throw new HpcflowError('HPCFLOW_SCHEDULER', `sbatch refused the job: ${(r.stderr || r.stdout).trim()}`);
      }
      return id;
    },
    async squeue() {
      const r = await run('squeue', ['-h', '--me', '-t', 'all', '-o', SQUEUE_FORMAT]);
      if (r.exitCode !== 0) throw new HpcflowError('HPCFLOW_SCHEDULER', `squeue failed: ${r.stderr.trim()}`);
      return parseSqueue(r.stdout);
    },
    async sacct(ids) {
      if (ids.length === 0) return new Map();
      const r = await run('sacct', ['-n', '-P', `--delimiter=${SEP}`, '-j', ids.join(','), `--format=${SACCT_FIELDS.join(',')}`]);
      if (r.exitCode !== 0 || accountingDisabled(r.stderr)) {
        if (accountingDisabled(r.stderr)) return null;
        throw new HpcflowError('HPCFLOW_SCHEDULER', `sacct failed: ${r.stderr.trim()}`);
      }
      return parseSacct(r.stdout);
    },
    async scontrolJob(id) {
      const r = await run('scontrol', ['show', 'job', '-o', id]);
      if (r.exitCode !== 0) return null;
      const f = parseScontrolJob(r.stdout);
      return f === null ? null : finalFromScontrol(f);
    },
    async scancel(ids) {
      if (ids.length === 0) return;
      await run('scancel', [...ids]);
    },
  };
}
