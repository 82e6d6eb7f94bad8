import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSiteConfig } from '../runner/config/site-config.js';
import { runtimeFor } from '../runner/executors/slurm/runtimes.js';
import type { ContainerRuntime } from '../runner/executors/slurm/types.js';
import { stepOf } from '../runner/executors/slurm/job.js';
import { applySite } from '../runner/frameworks/apply-site.js';
import type { Stage } from '../runner/model/pipeline.js';
import { loadWorkspaceOrThrow } from '../runner/spec/load.js';
import type { SharedTempDir } from '../test/helpers/slurm.js';
import { slurmSiteYaml } from '../test/helpers/slurm.js';
import { ROOT, summarize } from './lib.js';
import type { Sample } from './lib.js';
import { BENCH_RUN_ID, JOB_NAME, SLURM_ENV, activeJobs, cleanUp, clusterUp, dither, hpcflowRun, imageId, jobIdOf, makeWorkspace, since, timed } from './slurm-lib.js';

/**
 * `npm run bench -- mpi`: an MPI kernel across 2 nodes of the Slurm test cluster (scripts/slurm-cluster.sh),
 * launched three ways and alternated, the order rotated every repetition:
 *
 *   bare       `srun --mpi=pmix` of the binary in the node's own environment, no container per task
 *              (the nodes carry Open MPI's runtime and PMIx themselves)
 *   container  the same `srun`, every rank in a container on its node through hpcflow's docker task
 *              wrapper (the runtime code the Slurm executor writes into its batch scripts)
 *   hpcflow    `hpcflow run -f --executor slurm` of the one-stage pipeline: a batch job whose one step
 *              starts the ranks, each in its container
 *
 * The kernel is kernels/mpibench (ping-pong between two nodes and Allreduce, message sizes 1 B to
 * 4 MiB), compiled ONCE by hpcflow itself (the openmp framework's `mpicc` in the openmp image, cached in
 * .hpcflow/bin/) on the first, untimed run; the bare and container ways run that very binary. It is
 * linked with `--as-needed`, so it needs only libmpi and libc: the nodes have no OpenMP runtime.
 * The srun options and the command come from the planned stage itself (job.ts `stepOf`), so all
 * three start the same step shape. The kernel's own time (`wall_s`: rank 0's MPI_Wtime around all
 * its measurements) is what is compared; wall time (spawn to exit) is reported beside it.
 */

export const MPI_STAGE = 'p/mpibench';
export const MPI_SOURCE = 'kernels/mpibench/mpibench.c';

export interface MpiBenchOptions {
  readonly reps: number;
  /** The kernel's --iters and --max-bytes. */
  readonly iters: number;
  readonly maxBytes: number;
  readonly nodes: number;
  readonly tasksPerNode: number;
}

/** The bench's one-stage pipeline (workspace-relative metrics file out/metrics.json). Pure. */
export function mpiBenchPipeline(o: Pick<MpiBenchOptions, 'iters' | 'maxBytes' | 'nodes' | 'tasksPerNode'>): string {
  return `stages:
  mpibench:
    kernel:
      framework: openmp
      source: ${MPI_SOURCE}
      launch: mpi
      # only libmpi and libc at run time: the kernel uses no OpenMP, and the nodes have no libgomp
      ldflags: ["-Wl,--as-needed"]
      args: [--iters, "${o.iters}", --max-bytes, "${o.maxBytes}", --metrics, out/metrics.json]
    resources: { nodes: ${o.nodes}, tasks_per_node: ${o.tasksPerNode} }
    outs: [out]
`;
}

export interface MpiCommands {
  /** The step's srun options as the planned stage gives them (`--mpi=pmix --nodes=… …`). */
  readonly srun: readonly string[];
  /** The command every rank runs (`/bin/sh -c`), with `$HPCFLOW_KERNEL_DIR` in it. */
  readonly command: string;
  /** Environment of the step: the stage's, and HPCFLOW_KERNEL_DIR. */
  readonly env: Readonly<Record<string, string>>;
  /** Full argv (from `srun`) of the bare way, writing its metrics to `metrics.bare`. */
  readonly bare: readonly string[];
  /** Full argv of the container way, writing its metrics to `metrics.container`. */
  readonly container: readonly string[];
}

/**
 * The bare and container commands of the planned kernel stage: `srun <extra> <the stage's srun
 * options>` then the stage's command either as it is (bare) or inside the runtime's task wrapper with
 * the MPI environment forwarded (container) — what the batch script's `exec srun` does. Pure.
 */
export function mpiCommands(input: {
  readonly stage: Stage;
  readonly kernelDir: string;
  readonly workspace: string;
  readonly image: string;
  readonly imageTag: string;
  readonly runtime: ContainerRuntime;
  readonly user: string;
  readonly srunExtra: readonly string[];
  readonly metrics: { readonly bare: string; readonly container: string };
  readonly labels: Readonly<Record<string, string>>;
}): MpiCommands {
  const step = stepOf(input.stage);
  if (!step.mpi) throw new Error(`stage ${input.stage.id} is not an MPI step: ${input.stage.cmd}`);
  const at = (metrics: string): string => {
    const c = step.command.replace(/ --metrics \S+/, ` --metrics ${metrics}`);
    if (c === step.command && !step.command.includes(` --metrics ${metrics}`)) throw new Error(`no --metrics in ${step.command}`);
    return c;
  };
  const env: Record<string, string> = { ...input.stage.env, HPCFLOW_KERNEL_DIR: input.kernelDir };
  env.OMP_NUM_THREADS ??= String(input.stage.resources.cpusPerTask);
  const rt = input.runtime.step({
    image: input.image,
    imageTag: input.imageTag,
    workspace: input.workspace,
    workdir: input.workspace,
    envNames: Object.keys(env).sort(),
    argv: ['/bin/sh', '-c', at(input.metrics.container)],
    user: input.user,
    labels: input.labels,
    mpi: true,
  });
  return {
    srun: step.srun,
    command: step.command,
    env,
    bare: ['srun', ...input.srunExtra, ...step.srun, '/bin/sh', '-c', at(input.metrics.bare)],
    container: ['srun', ...input.srunExtra, ...step.srun, ...rt.srunArgs, ...rt.taskArgv],
  };
}

interface Metrics {
  readonly valid: boolean;
  readonly nodes: number;
  readonly ranks: number;
  readonly host: string;
  readonly peer_host: string;
  readonly wall_s: number;
  readonly pingpong: readonly { bytes: number; latency_us: number; mb_per_s: number }[];
  readonly allreduce: readonly { bytes: number; us: number; busbw_mb_per_s: number }[];
}

export interface MpiWay {
  /** The kernel's own time (`wall_s`), ms. */
  readonly kernelMs: Sample;
  /** Spawn to exit of srun / hpcflow run, ms. */
  readonly wallMs: Sample;
  /** Ping-pong one-way latency of the smallest message (1 B), µs. */
  readonly latencyUs: Sample;
  /** Ping-pong bandwidth of the largest message, MB/s (10⁶ B/s). */
  readonly bandwidthMBs: Sample;
  /** Allreduce time per call of the largest message, µs. */
  readonly allreduceUs: Sample;
  /** Per message size: one-way latency (µs) and bandwidth (MB/s) medians over repetitions. */
  readonly pingpong: readonly { readonly bytes: number; readonly latencyUs: Sample; readonly mbPerS: Sample }[];
}

export interface MpiBenchResult {
  readonly cluster: string;
  readonly nodes: number;
  readonly tasksPerNode: number;
  readonly reps: number;
  readonly args: string;
  readonly image: string;
  /** libopenmpi3 on the nodes and in the image (the same Debian package, or not). */
  readonly openmpi: { readonly node: string; readonly image: string };
  /** The binary's dynamic dependencies (readelf NEEDED). */
  readonly needed: readonly string[];
  /** The step's srun options (from the planned stage) and the hosts rank 0 and its peer ran on. */
  readonly srun: string;
  readonly hosts: string;
  /** null when bare could not run on the nodes (then the reason). */
  readonly bare: MpiWay | null;
  readonly bareError: string | null;
  readonly container: MpiWay;
  readonly hpcflow: MpiWay;
  /** Ratios of medians of kernel time to bare (to container when bare could not run). */
  readonly containerKernelRatio: number | null;
  readonly hpcflowKernelRatio: number | null;
  readonly hpcflowToContainerKernelRatio: number;
  /** Per-repetition ratios to bare of the same repetition: median and p25–p75. */
  readonly containerKernelRatioPaired: Sample | null;
  readonly hpcflowKernelRatioPaired: Sample | null;
  readonly containerWallRatio: number | null;
  readonly hpcflowWallRatio: number | null;
  readonly foreignActiveJobsMax: number;
  readonly leftovers: { readonly jobs: number; readonly containers: number };
  readonly totalS: number;
}

const log = (s: string): void => void process.stderr.write(`bench mpi: ${s}\n`);

export async function benchMpi(o: MpiBenchOptions): Promise<MpiBenchResult> {
  const tStart = process.hrtime.bigint();
  await clusterUp();
  const cluster = (await timed('sinfo', ['-h', '-o', '%D nodes (%N), %c CPUs each, partition %P'])).stdout.trim().split('\n').join('; ');
  const spaces: SharedTempDir[] = [];
  // Not pinned to nodes (a site's sbatch_args would apply to the one-node compile job too): on an
  // idle cluster every way gets the first free nodes; the hosts each way ran on are recorded.
  const site = slurmSiteYaml();
  let foreignMax = 0;
  let result: Omit<MpiBenchResult, 'leftovers' | 'totalS' | 'foreignActiveJobsMax'>;
  let leftovers: MpiBenchResult['leftovers'];
  try {
    const ws = await makeWorkspace(spaces, 'hpcflow-bench-mpi-', mpiBenchPipeline(o), site);
    const sitePath = join(ws, 'site.yaml');
    await mkdir(join(ws, 'kernels/mpibench'), { recursive: true });
    await cp(join(ROOT, MPI_SOURCE), join(ws, MPI_SOURCE));
    await cp(join(ROOT, 'containers/openmp'), join(ws, 'containers/openmp'), { recursive: true });
    for (const d of ['bare', 'ctr']) await mkdir(join(ws, d));
    const mine = (dir: string): boolean => spaces.some((s) => dir === s.path || dir.startsWith(`${s.path}/`));
    const foreign = async (): Promise<void> => {
      foreignMax = Math.max(foreignMax, (await activeJobs()).filter((j) => j.name !== JOB_NAME && !mine(j.dir)).length);
    };

    log('building the openmp image if needed, compiling the kernel with hpcflow, one untimed run');
    const first = await hpcflowRun(ws, sitePath, []);
    const script = (await timed('scontrol', ['write', 'batch_script', jobIdOf(first.events, MPI_STAGE), '-'])).stdout;
    const tag = /^# runtime: \S+; image: (\S+)$/m.exec(script)?.[1];
    if (tag === undefined) throw new Error(`cannot find the image in the batch script:\n${script}`);
    const image = await imageId(tag);
    const binDirs = (await readdir(join(ws, '.hpcflow/bin'))).map((d) => join(ws, '.hpcflow/bin', d));
    const kernelDir = binDirs.find((d) => d.length > 0);
    if (binDirs.length !== 1 || kernelDir === undefined) throw new Error(`expected one compiled kernel in ${ws}/.hpcflow/bin, found ${binDirs.length}`);
    const needed = [...(await timed('readelf', ['-d', join(kernelDir, 'mpibench')])).stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] as string);

    const siteConfig = parseSiteConfig(site, sitePath);
    const stage = applySite(await loadWorkspaceOrThrow(ws), siteConfig, 'slurm').stages.find((s) => s.id === MPI_STAGE);
    if (stage === undefined) throw new Error(`no stage ${MPI_STAGE}`);
    const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    const cmds = mpiCommands({
      stage,
      kernelDir,
      workspace: ws,
      image,
      imageTag: tag,
      runtime: runtimeFor(siteConfig.slurm),
      user,
      srunExtra: [`--job-name=${JOB_NAME}`, `--chdir=${ws}`],
      metrics: { bare: 'bare/metrics.json', container: 'ctr/metrics.json' },
      labels: { 'hpcflow.run-id': BENCH_RUN_ID, 'hpcflow.stage': 'bench-mpi' },
    });
    const stepEnv: NodeJS.ProcessEnv = { ...SLURM_ENV, ...cmds.env, TMPDIR: '/tmp' };
    const run = (argv: readonly string[]): Promise<{ ms: number; stdout: string }> => timed(argv[0] as string, argv.slice(1), { env: stepEnv, cwd: ws });
    const pkg = "dpkg-query -W -f '${Version}' libopenmpi3";
    const openmpi = {
      node: (await timed('srun', ['-N1', '-n1', `--job-name=${JOB_NAME}`, '-w', 'n1', 'sh', '-c', pkg])).stdout.trim(),
      image: (await timed('docker', ['run', '--rm', '--network', 'host', '--entrypoint', '', image, 'sh', '-c', pkg])).stdout.trim(),
    };

    const metricsOf = async (f: string): Promise<Metrics> => {
      const m = JSON.parse(await readFile(join(ws, f), 'utf8')) as Metrics;
      if (!m.valid) throw new Error(`${f}: the kernel's validation failed`);
      if (m.nodes !== o.nodes) throw new Error(`${f}: ran on ${m.nodes} node(s), not ${o.nodes}`);
      return m;
    };
    type Rec = { wall: number[]; m: Metrics[] };
    const rec = (): Rec => ({ wall: [], m: [] });
    const x = { bare: rec(), ctr: rec(), h: rec() };
    let bareError: string | null = null;
    const bare = async (): Promise<void> => {
      if (bareError !== null) return;
      x.bare.wall.push((await run(cmds.bare)).ms);
      x.bare.m.push(await metricsOf('bare/metrics.json'));
    };
    const container = async (): Promise<void> => {
      x.ctr.wall.push((await run(cmds.container)).ms);
      x.ctr.m.push(await metricsOf('ctr/metrics.json'));
    };
    const viaHpcflow = async (): Promise<void> => {
      await dither();
      x.h.wall.push((await hpcflowRun(ws, sitePath, ['-f', MPI_STAGE])).ms);
      x.h.m.push(await metricsOf('out/metrics.json'));
    };
    log('one untimed run of the bare and container ways');
    try {
      await bare();
    } catch (e) {
      // The closest honest thing: report container vs hpcflow only, and why bare could not run.
      bareError = (e as Error).message.split('\n').slice(0, 6).join(' ').slice(0, 600);
      log(`bare could not run: ${bareError}`);
    }
    await container();
    for (const r of Object.values(x)) {
      r.wall.length = 0;
      r.m.length = 0;
    }
    const ways = [bare, container, viaHpcflow];
    for (let i = 0; i < o.reps; i++) {
      log(`rep ${i + 1}/${o.reps}`);
      await foreign();
      for (let j = 0; j < 3; j++) await (ways[(i + j) % 3] as () => Promise<void>)();
    }

    const way = (r: Rec): MpiWay => {
      const sizes = r.m[0]?.pingpong.map((p) => p.bytes) ?? [];
      const last = <T>(a: readonly T[]): T => a[a.length - 1] as T;
      return {
        kernelMs: summarize(r.m.map((m) => m.wall_s * 1000)),
        wallMs: summarize(r.wall),
        latencyUs: summarize(r.m.map((m) => m.pingpong[0]?.latency_us ?? NaN)),
        bandwidthMBs: summarize(r.m.map((m) => last(m.pingpong).mb_per_s)),
        allreduceUs: summarize(r.m.map((m) => last(m.allreduce).us)),
        pingpong: sizes.map((bytes, k) => ({
          bytes,
          latencyUs: summarize(r.m.map((m) => m.pingpong[k]?.latency_us ?? NaN)),
          mbPerS: summarize(r.m.map((m) => m.pingpong[k]?.mb_per_s ?? NaN)),
        })),
      };
    };
    const B = bareError === null ? way(x.bare) : null;
    const C = way(x.ctr);
    const H = way(x.h);
    const kb = x.bare.m.map((m) => m.wall_s);
    const paired = (r: Rec): Sample | null => (B === null ? null : summarize(r.m.map((m, i) => m.wall_s / (kb[i] ?? NaN))));
    const ratio = (a: Sample, b: Sample | undefined): number | null => (b === undefined ? null : a.median / b.median);
    const h0 = x.h.m[0];
    result = {
      cluster,
      nodes: o.nodes,
      tasksPerNode: o.tasksPerNode,
      reps: o.reps,
      args: `--iters ${o.iters} --max-bytes ${o.maxBytes}`,
      image: tag,
      openmpi,
      needed,
      srun: cmds.srun.join(' '),
      hosts: h0 === undefined ? '?' : `${h0.ranks} ranks on ${h0.nodes} nodes; ping-pong ${h0.host} ↔ ${h0.peer_host}`,
      bare: B,
      bareError,
      container: C,
      hpcflow: H,
      containerKernelRatio: ratio(C.kernelMs, B?.kernelMs),
      hpcflowKernelRatio: ratio(H.kernelMs, B?.kernelMs),
      hpcflowToContainerKernelRatio: H.kernelMs.median / C.kernelMs.median,
      containerKernelRatioPaired: paired(x.ctr),
      hpcflowKernelRatioPaired: paired(x.h),
      containerWallRatio: ratio(C.wallMs, B?.wallMs),
      hpcflowWallRatio: ratio(H.wallMs, B?.wallMs),
    };
  } finally {
    leftovers = await cleanUp(spaces.map((s) => s.path));
    for (const s of spaces) await s.cleanup();
  }
  return { ...result, foreignActiveJobsMax: foreignMax, leftovers, totalS: since(tStart) / 1000 };
}
