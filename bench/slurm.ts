import { execa } from 'execa';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSiteConfig } from '../runner/config/site-config.js';
import { runtimeFor } from '../runner/executors/slurm/runtimes.js';
import type { SharedTempDir } from '../test/helpers/slurm.js';
import { sharedTempDir, slurmSiteYaml } from '../test/helpers/slurm.js';
import { BIN, ROOT, summarize } from './lib.js';
import type { Sample } from './lib.js';
import {
  BENCH_RUN_ID,
  CALL_TIMEOUT_MS,
  JOB_NAME,
  SLURM_ENV,
  TERMINAL,
  activeJobs,
  cleanUp,
  clusterUp,
  diffs,
  dither,
  hpcflowRun,
  imageId,
  jobIdOf,
  makeWorkspace,
  nowMs,
  since,
  stageEnd,
  timed,
} from './slurm-lib.js';

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
  /** Node counts 1..maxNodes of the nodes measurement (a trivial step or stage on every node). */
  readonly maxNodes: number;
  /** Alternated repetitions of the nodes measurement. */
  readonly nodeReps: number;
}

/** Cost of a trivial step or stage as it spans more nodes (one task, and one container, per node). */
export interface NodesScaling {
  readonly counts: readonly number[];
  readonly reps: number;
  /** `srun -N<n> --ntasks-per-node=1 true`, ms, per node count. */
  readonly srunMs: readonly Sample[];
  /** The same with hpcflow's docker task wrapper around `true`: a container on every node, ms. */
  readonly srunContainerMs: readonly Sample[];
  /** `hpcflow run -f --executor slurm` of one trivial stage with `resources: { nodes: n }`, end to end, ms. */
  readonly hpcflowMs: readonly Sample[];
  /** Bare `sbatch --nodes=<n> --wrap 'srun hostname'`: submit → COMPLETED seen (squeue every POLL_MS), ms. */
  readonly sbatchMs: readonly Sample[];
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
  readonly nodes: NodesScaling;
  /** Active jobs of others seen at the start of each repetition (the cluster is shared): max. */
  readonly foreignActiveJobsMax: number;
  /** Jobs and containers of this bench still there after its clean-up (should be 0). */
  readonly leftovers: { readonly jobs: number; readonly containers: number };
  readonly totalS: number;
}

const POLL_MS = 50;
/** One bare `sbatch --wrap`: the job writes its start and end times (ns, the nodes share this machine's clock). */
async function bareSbatch(dir: string, i: number | string, nodes = 0): Promise<{ startMs: number; endMs: number; endSeenMs: number }> {
  // nodes > 0: an allocation of that many nodes whose one step runs a task on each (as a stage of `nodes: n` does).
  const work = nodes > 0 ? `srun --ntasks-per-node=1 hostname > sb${i}.txt` : `echo hi > sb${i}.txt`;
  const wrap = `date +%s%N > sb${i}.start; ${work}; date +%s%N > sb${i}.end`;
  const shape = nodes > 0 ? [`--nodes=${nodes}`, '--ntasks-per-node=1'] : [];
  const submitted = nowMs();
  const id = (await timed('sbatch', ['--parsable', `--job-name=${JOB_NAME}`, `--chdir=${dir}`, '--output=/dev/null', '--error=/dev/null', ...shape, '--wrap', wrap])).stdout.trim().split(';')[0] ?? '';
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

/** K independent stages, each recording when its command ran (/proc/uptime: the kernel's, shared by host, nodes and containers). */
const trivialPipeline = (k: number, image: string): string =>
  `defaults:\n  image: ${image}\nstages:\n${Array.from({ length: k }, (_, i) => `  s${i}:\n    cmd: cat /proc/uptime > s${i}.txt\n    outs: [s${i}.txt]`).join('\n')}\n`;

/** One stage on n nodes, one task (and so one container) per node, each writing which node it ran on. */
const nodesPipeline = (n: number, image: string): string =>
  `defaults:\n  image: ${image}\nstages:\n  spread:\n    cmd: mkdir -p out && hostname > out/task-$SLURM_PROCID.txt\n    resources: { nodes: ${n} }\n    outs: [out]\n`;

/** Epoch ms of a /proc/uptime reading (10 ms resolution), via this machine's uptime↔clock offset now. */
async function uptimeToEpochMs(text: string): Promise<number> {
  const up = (t: string): number => Number(t.trim().split(/\s+/)[0]) * 1000;
  const before = Date.now();
  const hostUp = up(await readFile('/proc/uptime', 'utf8'));
  return before - hostUp + up(text);
}


export async function benchSlurm(o: SlurmBenchOptions): Promise<SlurmBenchResult> {
  const tStart = process.hrtime.bigint();
  await clusterUp();
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

    // ---------------------------------------------------------------- nodes
    const counts = Array.from({ length: o.maxNodes }, (_, i) => i + 1);
    const wsN: string[] = [];
    for (const n of counts) wsN.push(await makeWorkspace(spaces, `hpcflow-bench-n${n}-`, nodesPipeline(n, o.image), site));
    const srunOnN = (n: number, argv: readonly string[]): Promise<{ ms: number; stdout: string }> =>
      timed('srun', [`-N${n}`, '--ntasks-per-node=1', '-c1', `--job-name=${JOB_NAME}`, `--chdir=${ws1}`, ...argv], { env: stepEnv });
    log(`nodes: warm-up (1..${o.maxNodes} nodes)`);
    for (const [i, n] of counts.entries()) {
      await hpcflowRun(wsN[i] as string, join(wsN[i] as string, 'site.yaml'), []);
      await srunOnN(n, taskArgv(busybox, o.image, ws1, 'true'));
    }
    const nx = { srun: counts.map(() => [] as number[]), ctr: counts.map(() => [] as number[]), h: counts.map(() => [] as number[]), sb: counts.map(() => [] as number[]) };
    for (let r = 0; r < o.nodeReps; r++) {
      log(`nodes: rep ${r + 1}/${o.nodeReps}`);
      await foreign();
      for (const [i, n] of counts.entries()) {
        nx.srun[i]?.push((await srunOnN(n, ['true'])).ms);
        nx.ctr[i]?.push((await srunOnN(n, taskArgv(busybox, o.image, ws1, 'true'))).ms);
        await dither();
        nx.sb[i]?.push((await bareSbatch(sbDir, `n${n}-${r}`, n)).endSeenMs);
        await dither();
        nx.h[i]?.push((await hpcflowRun(wsN[i] as string, join(wsN[i] as string, 'site.yaml'), ['-f'])).ms);
      }
    }
    const nodes: NodesScaling = {
      counts,
      reps: o.nodeReps,
      srunMs: nx.srun.map((x) => summarize(x)),
      srunContainerMs: nx.ctr.map((x) => summarize(x)),
      hpcflowMs: nx.h.map((x) => summarize(x)),
      sbatchMs: nx.sb.map((x) => summarize(x)),
    };

    // ---------------------------------------------------------------- kernel
    const heatN = o.heatN;
    const heatArgs = `--gen --ic modes --nx ${heatN} --ny ${heatN} --steps ${o.heatSteps}`;
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
      nodes,
      foreignActiveJobsMax: foreignMax,
    };
  } finally {
    // Also on failure: nothing of this bench stays on the cluster or on disk.
    leftovers = await cleanUp(spaces.map((s) => s.path));
    for (const s of spaces) await s.cleanup();
  }
  return { ...result, leftovers, totalS: since(tStart) / 1000 };
}
