/**
 * Shared by the Slurm sections of the bench (bench/slurm.ts, bench/mpi.ts): the test cluster's
 * environment, timed Slurm CLI calls, `hpcflow run --executor slurm` as a process, workspaces on
 * the cluster's shared directory, and the clean-up that leaves no job or container behind.
 */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SharedTempDir } from '../test/helpers/slurm.js';
import { SLURM_CONF, sharedTempDir } from '../test/helpers/slurm.js';
import { BIN, ROOT } from './lib.js';

export const SLURM_ENV: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF };
/** Name of this bench's own srun/sbatch jobs (per process: the clean-up cancels by it). */
export const JOB_NAME = `hpcflow-bench-slurm-${process.pid}`;
/** Label of the containers this bench starts itself through the runtime's task wrapper. */
export const BENCH_RUN_ID = `bench-slurm-${process.pid}`;
export const CALL_TIMEOUT_MS = 240_000;
export const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

/** `scripts/slurm-cluster.sh up` (idempotent: a no-op on a healthy cluster; installs and starts it otherwise). */
export async function clusterUp(): Promise<void> {
  await execa('bash', ['scripts/slurm-cluster.sh', 'up'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000 });
}

/**
 * A batch job starts at slurmctld's next scheduling pass (about once a second), so submit → start
 * depends on the phase of that tick at submission. Every submission (bare or hpcflow's) is preceded
 * by an untimed random pause of up to one tick, so that all sides sample the phase uniformly instead
 * of each at whatever fixed offset the rhythm of the repetitions gives it.
 */
export const TICK_MS = 1000;
export const dither = (): Promise<void> => sleep(Math.random() * TICK_MS);

export const nowMs = (): number => Date.now();
export const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

export async function timed(file: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ ms: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  const r = await execa(file, args, { cwd: opts.cwd, env: opts.env ?? SLURM_ENV, timeout: CALL_TIMEOUT_MS, reject: false });
  const ms = since(t0);
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ').slice(0, 400)} failed (exit ${String(r.exitCode)}${r.timedOut ? ', timed out' : ''}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { ms, stdout: r.stdout };
}

export interface StageResult {
  readonly wallMs: number;
  readonly startOverheadMs: number;
  readonly scheduler?: { readonly jobId: string; readonly queueMs: number | null };
}
export type Ev = { type: 'stage-end'; stage: string; outcome: { status: string; error?: string; result?: StageResult } } | { type: 'stage-job'; stage: string; jobId: string } | { type: string; stage?: string };

/** `hpcflow run --json --executor slurm --site <site> …` as a process; throws unless every stage ran or was up to date. */
export async function hpcflowRun(ws: string, site: string, extra: readonly string[]): Promise<{ ms: number; events: Ev[]; startedAt: number; endedAt: number }> {
  const startedAt = Date.now();
  const t0 = process.hrtime.bigint();
  const r = await execa('node', [BIN, 'run', '--json', '--executor', 'slurm', '--site', site, ...extra], { cwd: ws, env: { CI: '1', SLURM_CONF }, timeout: CALL_TIMEOUT_MS, reject: false });
  const ms = since(t0);
  const endedAt = Date.now();
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Ev);
  const bad = events.filter((e): e is Extract<Ev, { type: 'stage-end' }> => e.type === 'stage-end' && 'outcome' in e && !['ran', 'up-to-date', 'restored'].includes(e.outcome.status));
  if (r.exitCode !== 0 || bad.length > 0) {
    throw new Error(`hpcflow run in ${ws} failed (exit ${String(r.exitCode)}${r.timedOut ? ', timed out' : ''}): ${JSON.stringify(bad.map((e) => [e.stage, e.outcome.status, e.outcome.error]))}\n${r.stderr.slice(-2000)}`);
  }
  return { ms, events, startedAt, endedAt };
}

export function stageEnd(events: readonly Ev[], stage: string): StageResult {
  const e = events.find((x): x is Extract<Ev, { type: 'stage-end' }> => x.type === 'stage-end' && x.stage === stage && 'outcome' in x);
  const r = e?.outcome.result;
  if (r === undefined) throw new Error(`no result for stage ${stage} (did it run?)`);
  return r;
}

export function jobIdOf(events: readonly Ev[], stage: string): string {
  const e = events.find((x): x is Extract<Ev, { type: 'stage-job' }> => x.type === 'stage-job' && x.stage === stage && 'jobId' in x);
  if (e === undefined) throw new Error(`no job for stage ${stage}`);
  return e.jobId;
}


export async function makeWorkspace(spaces: SharedTempDir[], prefix: string, pipeline: string, siteYaml: string): Promise<string> {
  const t = await sharedTempDir(prefix);
  spaces.push(t);
  await mkdir(join(t.path, 'pipelines'), { recursive: true });
  await writeFile(join(t.path, 'pipelines', 'p.yaml'), pipeline);
  await writeFile(join(t.path, 'site.yaml'), siteYaml);
  return t.path;
}

export async function imageId(ref: string): Promise<string> {
  return (await timed('docker', ['image', 'inspect', '-f', '{{.Id}}', ref])).stdout.trim();
}

/** Ids of active jobs (any user) and their working directories. */
export async function activeJobs(): Promise<{ id: string; dir: string; name: string }[]> {
  const r = await execa('squeue', ['-h', '-o', '%i|%Z|%j'], { env: SLURM_ENV, reject: false });
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [id = '', dir = '', name = ''] = l.split('|');
      return { id: id.trim(), dir, name };
    });
}

/** Cancel this bench's active jobs (by working directory or name), then remove their containers. */
export async function cleanUp(dirs: readonly string[]): Promise<{ jobs: number; containers: number }> {
  const mine = (j: { dir: string; name: string }): boolean => j.name === JOB_NAME || dirs.some((d) => j.dir === d || j.dir.startsWith(`${d}/`));
  const ids = (await activeJobs()).filter(mine).map((j) => j.id);
  if (ids.length > 0) {
    await execa('scancel', ids, { env: SLURM_ENV, reject: false });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await activeJobs()).some(mine)) await sleep(250);
  }
  const containers = async (): Promise<string[]> => {
    const out: string[] = [];
    const filters = [['--filter', `label=hpcflow.run-id=${BENCH_RUN_ID}`], ...dirs.map((d) => ['--filter', `volume=${d}`])];
    for (const f of filters) {
      const r = await execa('docker', ['ps', '-aq', ...f], { reject: false });
      out.push(...r.stdout.split('\n').filter(Boolean));
    }
    return [...new Set(out)];
  };
  const left = await containers();
  if (left.length > 0) await execa('docker', ['rm', '-f', ...left], { reject: false });
  return { jobs: (await activeJobs()).filter(mine).length, containers: (await containers()).length };
}

export const diffs = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x - (b[i] ?? 0));
