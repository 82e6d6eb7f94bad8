import { execa } from 'execa';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSiteConfig } from '../runner/config/site-config.js';
import { runtimeFor } from '../runner/executors/slurm/runtimes.js';
import type { SharedTempDir } from '../test/helpers/slurm.js';
import { SLURM_CONF, sharedTempDir, slurmSiteYaml } from '../test/helpers/slurm.js';
import { BIN, ROOT, summarize } from './lib.js';
import type { Sample } from './lib.js';

/**
 * `npm run bench -- slurm`: hpcflow's Slurm executor on the real test cluster of
 * scripts/slurm-cluster.sh (controller + nodes n1..n3, each a container on this machine; this
 * machine is the login node), against bare Slurm doing the same thing — every comparison measured
 * alternately in one run, reported as medians with quartiles and ratios of medians.
 *
 *   latency  bare `srun hostname`, bare `sbatch --wrap` (submit→start from the job's own clock,
 *            submit→end as seen by polling), `hpcflow run -f --executor slurm` of 1 and of K
 *            independent trivial stages (per-stage overhead, marginal cost per stage), and the cost
 *            of the docker runtime's task wrapper on a node (`srun <task wrapper> true` vs `srun true`)
 *   kernel   the heat kernel (kernels/heat/openmp/heat.c, compiled ONCE in the openmp image on a node,
 *            statically: the node image has no libgomp) run bare on n1 by srun, in the openmp
 *            container on n1 by srun + the runtime's task wrapper, and as an hpcflow stage on n1
 *
 * Workspaces live under the cluster's shared directory and are removed at the end; jobs still active
 * in them are cancelled and their containers removed, and whatever is left is counted in the result.
 */

const SLURM_ENV: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF };
/** Name of this bench's own srun/sbatch jobs (per process: the clean-up cancels by it). */
const JOB_NAME = `hpcflow-bench-slurm-${process.pid}`;
/** Label of the containers this bench starts itself through the runtime's task wrapper. */
const BENCH_RUN_ID = `bench-slurm-${process.pid}`;
const CALL_TIMEOUT_MS = 240_000;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

export interface SlurmBenchOptions {
  /** Alternated repetitions of the latency measurements. */
  readonly latencyReps: number;
  /** Stages of the independent pipeline (marginal cost per stage). */
  readonly stages: number;
  /** Alternated repetitions of the kernel measurements. */
  readonly kernelReps: number;
  /** Heat kernel size: nx = ny = n, and steps. */
  readonly heatN: number;
  readonly heatSteps: number;
  /** Trivial image (busybox). */
  readonly image: string;
}

export interface KernelSide {
  /** The kernel's own compute time (heat's metrics `wall_s`, omp_get_wtime around the sweeps), ms. */
  readonly kernelMs: Sample;
  /** Wall time of the whole command as this process saw it (srun / hpcflow run), ms. */
  readonly wallMs: Sample;
}

export interface SlurmBenchResult {
  readonly cluster: string;
  readonly latencyReps: number;
  readonly stages: number;
  /** `srun -N1 hostname`, `srun -N2 hostname` wall (ms). */
  readonly srunN1Ms: Sample;
  readonly srunN2Ms: Sample;
  /** `sbatch --parsable --wrap …`: submit → the job's first command (its own clock), ms. */
  readonly sbatchStartMs: Sample;
  /** submit → the job's last command (its own clock), ms. */
  readonly sbatchEndMs: Sample;
  /** submit → COMPLETED seen by polling squeue every POLL_MS, ms. */
  readonly sbatchEndSeenMs: Sample;
  readonly pollMs: number;
  /** `hpcflow status` on the one-stage workspace: the CLI's floor (process start, planning), ms. */
  readonly hpcflowStatusMs: Sample;
  /** `hpcflow run -f --executor slurm`, one trivial stage, end to end (ms). */
  readonly hpcflow1Ms: Sample;
  /** That stage's result.scheduler.queueMs (submit → seen running by hpcflow's watcher), ms. */
  readonly hpcflow1QueueMs: Sample;
  /** That stage's result.wallMs (submit → end as recorded by hpcflow), ms. */
  readonly hpcflow1StageWallMs: Sample;
  /** `hpcflow run` spawned → the stage's command ran in its container on the node (/proc/uptime, 10 ms), ms. */
  readonly hpcflow1SpawnToCmdMs: Sample;
  /** The stage's command ran → `hpcflow run` exited, ms. */
  readonly hpcflow1CmdToExitMs: Sample;
  /** Bare sbatch: the job's first command → its end seen by polling, ms. */
  readonly sbatchStartToSeenMs: Sample;
  /** `hpcflow run -f`, K independent trivial stages, end to end (ms). */
  readonly hpcflowKMs: Sample;
  /** (T(K) − T(1)) / (K − 1) of the same repetition, ms. */
  readonly hpcflowMarginalMs: Sample;
  /** hpcflow one-stage wall − bare sbatch submit→end-seen of the same repetition, ms. */
  readonly perStageOverheadMs: Sample;
  /** `srun -N1 -w n1 true` vs `srun -N1 -w n1 <docker task wrapper> true` (busybox), ms. */
  readonly srunTrueMs: Sample;
  readonly srunContainerTrueMs: Sample;
  /** Paired difference of the two, ms. */
  readonly containerCostMs: Sample;
  readonly kernel: {
    readonly reps: number;
    readonly args: string;
    readonly image: string;
    readonly bare: KernelSide;
    readonly container: KernelSide;
    readonly hpcflow: KernelSide;
    /** Ratios of medians to bare (kernel time, wall time). */
    readonly containerKernelRatio: number;
    readonly hpcflowKernelRatio: number;
    readonly containerWallRatio: number;
    readonly hpcflowWallRatio: number;
  };
  /** Active jobs of others seen at the start of each repetition (the cluster is shared): max. */
  readonly foreignActiveJobsMax: number;
  /** Jobs and containers of this bench still there after its clean-up (should be 0). */
  readonly leftovers: { readonly jobs: number; readonly containers: number };
  readonly totalS: number;
}

const POLL_MS = 50;
/**
 * A batch job starts at slurmctld's next scheduling pass (about once a second), so submit → start
 * depends on the phase of that tick at submission. Every submission (bare or hpcflow's) is preceded
 * by an untimed random pause of up to one tick, so that all sides sample the phase uniformly instead
 * of each at whatever fixed offset the rhythm of the repetitions gives it.
 */
const TICK_MS = 1000;
const dither = (): Promise<void> => sleep(Math.random() * TICK_MS);

const nowMs = (): number => Date.now();
const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function timed(file: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ ms: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  const r = await execa(file, args, { cwd: opts.cwd, env: opts.env ?? SLURM_ENV, timeout: CALL_TIMEOUT_MS, reject: false });
  const ms = since(t0);
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ').slice(0, 400)} failed (exit ${String(r.exitCode)}${r.timedOut ? ', timed out' : ''}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { ms, stdout: r.stdout };
}

interface StageResult {
  readonly wallMs: number;
  readonly startOverheadMs: number;
  readonly scheduler?: { readonly jobId: string; readonly queueMs: number | null };
}
type Ev = { type: 'stage-end'; stage: string; outcome: { status: string; error?: string; result?: StageResult } } | { type: 'stage-job'; stage: string; jobId: string } | { type: string; stage?: string };

/** `hpcflow run --json --executor slurm --site <site> …` as a process; throws unless every stage ran or was up to date. */
async function hpcflowRun(ws: string, site: string, extra: readonly string[]): Promise<{ ms: number; events: Ev[]; startedAt: number; endedAt: number }> {
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

function stageEnd(events: readonly Ev[], stage: string): StageResult {
  const e = events.find((x): x is Extract<Ev, { type: 'stage-end' }> => x.type === 'stage-end' && x.stage === stage && 'outcome' in x);
  const r = e?.outcome.result;
  if (r === undefined) throw new Error(`no result for stage ${stage} (did it run?)`);
  return r;
}

function jobIdOf(events: readonly Ev[], stage: string): string {
  const e = events.find((x): x is Extract<Ev, { type: 'stage-job' }> => x.type === 'stage-job' && x.stage === stage && 'jobId' in x);
  if (e === undefined) throw new Error(`no job for stage ${stage}`);
  return e.jobId;
}

/** One bare `sbatch --wrap`: the job writes its start and end times (ns, the nodes share this machine's clock). */
async function bareSbatch(dir: string, i: number): Promise<{ startMs: number; endMs: number; endSeenMs: number }> {
  const wrap = `date +%s%N > sb${i}.start; echo hi > sb${i}.txt; date +%s%N > sb${i}.end`;
  const submitted = nowMs();
  const id = (await timed('sbatch', ['--parsable', `--job-name=${JOB_NAME}`, `--chdir=${dir}`, '--output=/dev/null', '--error=/dev/null', '--wrap', wrap])).stdout.trim().split(';')[0] ?? '';
  const deadline = Date.now() + CALL_TIMEOUT_MS;
  for (;;) {
    const r = await execa('squeue', ['-h', '-t', 'all', '-j', id, '-o', '%T'], { env: SLURM_ENV, reject: false });
    const state = r.stdout.trim();
    if (TERMINAL.has(state) || (r.exitCode === 0 && state === '') || r.stderr.includes('Invalid job id')) {
      if (state !== 'COMPLETED') throw new Error(`bare sbatch job ${id} ended ${state || 'out of squeue'}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`bare sbatch job ${id} did not end in time (state ${state})`);
    await sleep(POLL_MS);
  }
  const endSeenMs = nowMs() - submitted;
  const ns = async (f: string): Promise<number> => Number(BigInt((await readFile(join(dir, f), 'utf8')).trim()) / 1000n) / 1000;
  return { startMs: (await ns(`sb${i}.start`)) - submitted, endMs: (await ns(`sb${i}.end`)) - submitted, endSeenMs };
}

async function makeWorkspace(spaces: SharedTempDir[], prefix: string, pipeline: string, siteYaml: string): Promise<string> {
  const t = await sharedTempDir(prefix);
  spaces.push(t);
  await mkdir(join(t.path, 'pipelines'), { recursive: true });
  await writeFile(join(t.path, 'pipelines', 'p.yaml'), pipeline);
  await writeFile(join(t.path, 'site.yaml'), siteYaml);
  return t.path;
}

/** K independent stages, each recording when its command ran (/proc/uptime: the kernel's, shared by host, nodes and containers). */
const trivialPipeline = (k: number, image: string): string =>
  `defaults:\n  image: ${image}\nstages:\n${Array.from({ length: k }, (_, i) => `  s${i}:\n    cmd: cat /proc/uptime > s${i}.txt\n    outs: [s${i}.txt]`).join('\n')}\n`;

/** Epoch ms of a /proc/uptime reading (10 ms resolution), via this machine's uptime↔clock offset now. */
async function uptimeToEpochMs(text: string): Promise<number> {
  const up = (t: string): number => Number(t.trim().split(/\s+/)[0]) * 1000;
  const before = Date.now();
  const hostUp = up(await readFile('/proc/uptime', 'utf8'));
  return before - hostUp + up(text);
}

async function imageId(ref: string): Promise<string> {
  return (await timed('docker', ['image', 'inspect', '-f', '{{.Id}}', ref])).stdout.trim();
}

/** Ids of active jobs (any user) and their working directories. */
async function activeJobs(): Promise<{ id: string; dir: string; name: string }[]> {
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
async function cleanUp(dirs: readonly string[]): Promise<{ jobs: number; containers: number }> {
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

const diffs = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x - (b[i] ?? 0));

export async function benchSlurm(o: SlurmBenchOptions): Promise<SlurmBenchResult> {
  const tStart = process.hrtime.bigint();
  await execa('bash', ['scripts/slurm-cluster.sh', 'up'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000 });
  const cluster = (await timed('sinfo', ['-h', '-o', '%D nodes (%N), %c CPUs each, partition %P'])).stdout.trim().split('\n').join('; ');
  const spaces: SharedTempDir[] = [];
  const log = (s: string): void => void process.stderr.write(`bench slurm: ${s}\n`);
  let foreignMax = 0;
  let result: Omit<SlurmBenchResult, 'leftovers' | 'totalS'>;
  let leftovers: SlurmBenchResult['leftovers'];
  try {
    const site = slurmSiteYaml();
    const ws1 = await makeWorkspace(spaces, 'hpcflow-bench-1-', trivialPipeline(1, o.image), site);
    const wsK = await makeWorkspace(spaces, `hpcflow-bench-${o.stages}-`, trivialPipeline(o.stages, o.image), site);
    const sbSpace = await sharedTempDir('hpcflow-bench-sbatch-');
    spaces.push(sbSpace);
    const sbDir = sbSpace.path;
    // The wrapper hpcflow's docker runtime puts around every task, generated by the same code.
    const runtime = runtimeFor(parseSiteConfig(site, join(ws1, 'site.yaml')).slurm);
    const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    const taskArgv = (image: string, imageTag: string, ws: string, cmd: string): string[] => {
      const step = runtime.step({
        image,
        imageTag,
        workspace: ws,
        workdir: ws,
        envNames: ['OMP_NUM_THREADS'],
        argv: ['/bin/sh', '-c', cmd],
        user,
        labels: { 'hpcflow.run-id': BENCH_RUN_ID, 'hpcflow.stage': 'bench' },
        mpi: false,
      });
      return [...step.srunArgs, ...step.taskArgv];
    };
    const stepEnv: NodeJS.ProcessEnv = { ...SLURM_ENV, OMP_NUM_THREADS: '1', TMPDIR: '/tmp' };
    const srunN1 = (ws: string, argv: readonly string[]): Promise<{ ms: number; stdout: string }> =>
      timed('srun', ['-N1', '-n1', '-c1', '-w', 'n1', `--job-name=${JOB_NAME}`, `--chdir=${ws}`, ...argv], { env: stepEnv });
    const busybox = await imageId(o.image);
    const mine = (dir: string): boolean => spaces.some((s) => dir === s.path || dir.startsWith(`${s.path}/`));
    const foreign = async (): Promise<void> => {
      foreignMax = Math.max(foreignMax, (await activeJobs()).filter((j) => j.name !== JOB_NAME && !mine(j.dir)).length);
    };

    // ---------------------------------------------------------------- latency, warm-up first
    log(`latency: warm-up (first runs of the 1- and ${o.stages}-stage pipelines)`);
    await hpcflowRun(ws1, join(ws1, 'site.yaml'), []);
    await hpcflowRun(wsK, join(wsK, 'site.yaml'), []);
    await srunN1(ws1, taskArgv(busybox, o.image, ws1, 'true'));
    await bareSbatch(sbDir, -1);
    const x = {
      srunN1: [] as number[],
      srunN2: [] as number[],
      sbStart: [] as number[],
      sbEnd: [] as number[],
      sbSeen: [] as number[],
      status: [] as number[],
      h1: [] as number[],
      h1Queue: [] as number[],
      h1StageWall: [] as number[],
      h1ToCmd: [] as number[],
      h1FromCmd: [] as number[],
      hK: [] as number[],
      srunTrue: [] as number[],
      srunCtr: [] as number[],
    };
    for (let i = 0; i < o.latencyReps; i++) {
      log(`latency: rep ${i + 1}/${o.latencyReps}`);
      await foreign();
      x.srunN1.push((await timed('srun', ['-N1', `--job-name=${JOB_NAME}`, 'hostname'])).ms);
      x.srunN2.push((await timed('srun', ['-N2', `--job-name=${JOB_NAME}`, 'hostname'])).ms);
      await dither();
      const sb = await bareSbatch(sbDir, i);
      x.sbStart.push(sb.startMs);
      x.sbEnd.push(sb.endMs);
      x.sbSeen.push(sb.endSeenMs);
      x.status.push((await timed('node', [BIN, 'status'], { cwd: ws1, env: { ...process.env, CI: '1' } })).ms);
      await dither();
      const r1 = await hpcflowRun(ws1, join(ws1, 'site.yaml'), ['-f']);
      const s = stageEnd(r1.events, 'p/s0');
      x.h1.push(r1.ms);
      x.h1Queue.push(s.scheduler?.queueMs ?? s.startOverheadMs);
      x.h1StageWall.push(s.wallMs);
      const cmdAt = await uptimeToEpochMs(await readFile(join(ws1, 's0.txt'), 'utf8'));
      x.h1ToCmd.push(cmdAt - r1.startedAt);
      x.h1FromCmd.push(r1.endedAt - cmdAt);
      await dither();
      x.hK.push((await hpcflowRun(wsK, join(wsK, 'site.yaml'), ['-f'])).ms);
      x.srunTrue.push((await srunN1(ws1, ['true'])).ms);
      x.srunCtr.push((await srunN1(ws1, taskArgv(busybox, o.image, ws1, 'true'))).ms);
    }

    // ---------------------------------------------------------------- kernel
    const nx = o.heatN;
    const heatArgs = `--gen --ic modes --nx ${nx} --ny ${nx} --steps ${o.heatSteps}`;
    const kernelPipeline = `stages:
  build:
    image: { build: openmp }
    cmd: mkdir -p bin && gcc -O3 -march=x86-64-v2 -ffp-contract=off -fopenmp -static -o bin/heat src/heat.c -lm
    deps: [src/heat.c]
    outs: [bin/heat]
  heat:
    image: { build: openmp }
    cmd: mkdir -p out && bin/heat ${heatArgs} --out out/heat.bin --metrics out/metrics.json
    deps: [bin/heat]
    outs: [out]
`;
    // Pinned to n1 like the bare runs (all nodes share this machine's CPUs, but the same node keeps it simple).
    const wsH = await makeWorkspace(spaces, 'hpcflow-bench-heat-', kernelPipeline, slurmSiteYaml('  sbatch_args: ["--nodelist=n1"]'));
    await mkdir(join(wsH, 'src'));
    await cp(join(ROOT, 'kernels/heat/openmp/heat.c'), join(wsH, 'src/heat.c'));
    await cp(join(ROOT, 'containers/openmp'), join(wsH, 'containers/openmp'), { recursive: true });
    await mkdir(join(wsH, 'bare'));
    await mkdir(join(wsH, 'ctr'));
    log('kernel: building the openmp image (cached by docker after the first time), compiling heat once on a node, one warm-up run');
    const first = await hpcflowRun(wsH, join(wsH, 'site.yaml'), []);
    // The image the stage ran in, as the job's batch script names it (a tag built by hpcflow).
    const script = (await timed('scontrol', ['write', 'batch_script', jobIdOf(first.events, 'p/heat'), '-'])).stdout;
    const tag = /^# runtime: \S+; image: (\S+)$/m.exec(script)?.[1];
    if (tag === undefined) throw new Error(`cannot find the image in the batch script:\n${script}`);
    const openmp = await imageId(tag);
    const metricsMs = async (f: string): Promise<number> => (JSON.parse(await readFile(join(wsH, f), 'utf8')) as { wall_s: number }).wall_s * 1000;
    const k = { bareK: [] as number[], bareW: [] as number[], ctrK: [] as number[], ctrW: [] as number[], hK: [] as number[], hW: [] as number[] };
    await srunN1(wsH, [join(wsH, 'bin/heat'), ...heatArgs.split(' '), '--out', 'bare/heat.bin', '--metrics', 'bare/metrics.json']);
    for (let i = 0; i < o.kernelReps; i++) {
      log(`kernel: rep ${i + 1}/${o.kernelReps}`);
      await foreign();
      k.bareW.push((await srunN1(wsH, [join(wsH, 'bin/heat'), ...heatArgs.split(' '), '--out', 'bare/heat.bin', '--metrics', 'bare/metrics.json'])).ms);
      k.bareK.push(await metricsMs('bare/metrics.json'));
      k.ctrW.push((await srunN1(wsH, taskArgv(openmp, tag, wsH, `bin/heat ${heatArgs} --out ctr/heat.bin --metrics ctr/metrics.json`))).ms);
      k.ctrK.push(await metricsMs('ctr/metrics.json'));
      await dither();
      k.hW.push((await hpcflowRun(wsH, join(wsH, 'site.yaml'), ['-f', 'p/heat'])).ms);
      k.hK.push(await metricsMs('out/metrics.json'));
    }

    const S = summarize;
    const bare = { kernelMs: S(k.bareK), wallMs: S(k.bareW) };
    const container = { kernelMs: S(k.ctrK), wallMs: S(k.ctrW) };
    const hpcflow = { kernelMs: S(k.hK), wallMs: S(k.hW) };
    result = {
      cluster,
      latencyReps: o.latencyReps,
      stages: o.stages,
      srunN1Ms: S(x.srunN1),
      srunN2Ms: S(x.srunN2),
      sbatchStartMs: S(x.sbStart),
      sbatchEndMs: S(x.sbEnd),
      sbatchEndSeenMs: S(x.sbSeen),
      pollMs: POLL_MS,
      hpcflowStatusMs: S(x.status),
      hpcflow1Ms: S(x.h1),
      hpcflow1QueueMs: S(x.h1Queue),
      hpcflow1StageWallMs: S(x.h1StageWall),
      hpcflow1SpawnToCmdMs: S(x.h1ToCmd),
      hpcflow1CmdToExitMs: S(x.h1FromCmd),
      sbatchStartToSeenMs: S(diffs(x.sbSeen, x.sbStart)),
      hpcflowKMs: S(x.hK),
      hpcflowMarginalMs: S(diffs(x.hK, x.h1).map((d) => d / (o.stages - 1))),
      perStageOverheadMs: S(diffs(x.h1, x.sbSeen)),
      srunTrueMs: S(x.srunTrue),
      srunContainerTrueMs: S(x.srunCtr),
      containerCostMs: S(diffs(x.srunCtr, x.srunTrue)),
      kernel: {
        reps: o.kernelReps,
        args: heatArgs,
        image: tag,
        bare,
        container,
        hpcflow,
        containerKernelRatio: container.kernelMs.median / bare.kernelMs.median,
        hpcflowKernelRatio: hpcflow.kernelMs.median / bare.kernelMs.median,
        containerWallRatio: container.wallMs.median / bare.wallMs.median,
        hpcflowWallRatio: hpcflow.wallMs.median / bare.wallMs.median,
      },
      foreignActiveJobsMax: foreignMax,
    };
  } finally {
    // Also on failure: nothing of this bench stays on the cluster or on disk.
    leftovers = await cleanUp(spaces.map((s) => s.path));
    for (const s of spaces) await s.cleanup();
  }
  return { ...result, leftovers, totalS: since(tStart) / 1000 };
}
