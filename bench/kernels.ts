import Docker from 'dockerode';
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, summarize } from './lib.js';
import type { Sample } from './lib.js';

/**
 * Kernel overhead on local Docker (no Slurm): the heat stencil (kernels/heat/openmp) and the
 * STREAM-like bandwidth kernel (kernels/stream), compiled once, statically, inside the openmp image,
 * then run alternately three ways — a bare process on the host, `docker run --rm` of the same binary
 * in the same image, and a one-stage `hpcflow run -f` using that image. Kernel time is what each
 * program measures itself; wall time is spawn to exit. Also, for trivial stages: a bare `/bin/true`
 * spawn, `docker run --rm … true` and a bare dockerode create/start/wait/remove of `true`.
 */
export interface Way {
  readonly kernelMs: Sample;
  readonly wallMs: Sample;
}
export interface KernelResult {
  readonly name: 'heat' | 'stream';
  readonly args: string;
  readonly bare: Way;
  readonly container: Way;
  readonly hpcflow: Way;
  /** Ratios of medians to bare. */
  readonly containerKernelRatio: number;
  readonly hpcflowKernelRatio: number;
  readonly containerWallRatio: number;
  readonly hpcflowWallRatio: number;
  /** Per-repetition ratio to the bare run of the same repetition (paired): median and p25–p75. */
  readonly containerKernelRatioPaired: Sample;
  readonly hpcflowKernelRatioPaired: Sample;
  /** stream only: best-of GB/s per op, median over repetitions. */
  readonly gbs?: { readonly bare: Record<string, Sample>; readonly container: Record<string, Sample>; readonly hpcflow: Record<string, Sample> };
}
export interface KernelsResult {
  readonly image: string;
  readonly reps: number;
  readonly threads: number;
  readonly kernels: readonly KernelResult[];
  readonly trivial: { readonly reps: number; readonly spawnTrueMs: Sample; readonly dockerRunTrueMs: Sample; readonly dockerodeTrueMs: Sample; readonly busybox: string };
  readonly totalS: number;
}

const CFLAGS = ['-O3', '-march=x86-64-v2', '-ffp-contract=off', '-fopenmp', '-static'];

async function openmpImage(): Promise<string> {
  const tags = (await execa('docker', ['images', 'hpcflow/openmp', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((x) => x.length > 0 && !x.endsWith(':<none>'));
  if (tags[0] !== undefined) return tags[0];
  // Not built yet: build it from containers/openmp under a bench tag (hpcflow itself tags by content hash).
  const tag = 'hpcflow/openmp:bench';
  await execa('docker', ['build', '--network', 'host', '-t', tag, join(ROOT, 'containers/openmp')], { stdio: 'inherit' });
  return tag;
}

async function timed(cmd: string, args: readonly string[], cwd: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await execa(cmd, args, { cwd, env: { ...process.env, CI: '1' } });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function benchKernels(o: { reps: number; trivialReps: number; heatN: number; heatSteps: number; streamNtimes: number; busybox: string }): Promise<KernelsResult> {
  const tStart = process.hrtime.bigint();
  const image = await openmpImage();
  const ws = await mkdtemp(join(tmpdir(), 'hpcflow-bench-kernels-'));
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  try {
    await mkdir(join(ws, 'src'));
    await mkdir(join(ws, 'bin'));
    await mkdir(join(ws, 'pipelines'));
    await copyFile(join(ROOT, 'kernels/heat/openmp/heat.c'), join(ws, 'src/heat.c'));
    await copyFile(join(ROOT, 'kernels/stream/stream.c'), join(ws, 'src/stream.c'));
    // The stage asks for every CPU: hpcflow's default is 1 CPU (NanoCpus, OMP_NUM_THREADS=1), unlike bare and docker run.
    // Compiled once inside the image, statically (-fopenmp: libgomp linked in), so the same binary runs bare on this host.
    const inImage = (cmd: readonly string[]): string[] => ['run', '--rm', '--network', 'host', '-u', `${uid}:${gid}`, '-v', `${ws}:${ws}`, '-w', ws, image, ...cmd];
    for (const k of ['heat', 'stream']) await execa('docker', inImage(['gcc', ...CFLAGS, '-o', `bin/${k}`, `src/${k}.c`, '-lm']));

    const heatArgs = `--gen --ic modes --nx ${o.heatN} --ny ${o.heatN} --steps ${o.heatSteps}`;
    const streamArgs = `--ntimes ${o.streamNtimes}`;
    const argsOf = (k: 'heat' | 'stream', dir: string): string =>
      k === 'heat' ? `${ws}/bin/heat ${heatArgs} --out ${dir}/heat.bin --metrics ${dir}/metrics.json` : `${ws}/bin/stream ${streamArgs} --metrics ${dir}/metrics.json`;
    const stages = (['heat', 'stream'] as const).map((k) => `  ${k}:\n    cmd: ${argsOf(k, `out/${k}`)}\n    resources: { cpus_per_task: ${cpus().length} }\n    outs: [out/${k}]`);
    await writeFile(join(ws, 'pipelines/p.yaml'), `defaults:\n  image: ${image}\nstages:\n${stages.join('\n')}\n`);

    type M = { wall_s: number; ops?: Record<string, { gb_per_s: number }> };
    const metrics = async (f: string): Promise<M> => JSON.parse(await readFile(join(ws, f), 'utf8')) as M;
    const kernels: KernelResult[] = [];
    let threads = 0;
    for (const k of ['heat', 'stream'] as const) {
      const x = { bK: [] as number[], bW: [] as number[], cK: [] as number[], cW: [] as number[], hK: [] as number[], hW: [] as number[] };
      const g = { bare: [] as M[], container: [] as M[], hpcflow: [] as M[] };
      const bare = async (): Promise<void> => {
        const argv = argsOf(k, `${ws}/bare/${k}`).split(' ');
        x.bW.push(await timed(argv[0] ?? '', argv.slice(1), ws));
        const m = await metrics(`bare/${k}/metrics.json`);
        x.bK.push(m.wall_s * 1000);
        g.bare.push(m);
        threads = (m as { threads?: number }).threads ?? threads;
      };
      const container = async (): Promise<void> => {
        x.cW.push(await timed('docker', inImage(argsOf(k, `${ws}/ctr/${k}`).split(' ')), ws));
        const m = await metrics(`ctr/${k}/metrics.json`);
        x.cK.push(m.wall_s * 1000);
        g.container.push(m);
      };
      const hpcflow = async (): Promise<void> => {
        x.hW.push(await timed('node', [BIN, 'run', '-f', `p/${k}`], ws));
        const m = await metrics(`out/${k}/metrics.json`);
        x.hK.push(m.wall_s * 1000);
        g.hpcflow.push(m);
      };
      // One untimed warm-up of each way (page cache, docker layers, hpcflow's first run and cache).
      await bare();
      await container();
      await hpcflow();
      for (const a of Object.values(x)) a.length = 0;
      for (const a of Object.values(g)) a.length = 0;
      // Alternated, the order rotated each repetition so that none always runs first.
      const ways = [bare, container, hpcflow];
      for (let i = 0; i < o.reps; i++) for (let j = 0; j < 3; j++) await (ways[(i + j) % 3] as () => Promise<void>)();
      const S = summarize;
      const B = { kernelMs: S(x.bK), wallMs: S(x.bW) };
      const C = { kernelMs: S(x.cK), wallMs: S(x.cW) };
      const H = { kernelMs: S(x.hK), wallMs: S(x.hW) };
      const paired = (ys: number[]): Sample => S(ys.map((y, i) => y / (x.bK[i] ?? NaN)));
      const gbs = (ms: M[]): Record<string, Sample> => {
        const out: Record<string, Sample> = {};
        for (const op of ['copy', 'scale', 'add', 'triad']) out[op] = S(ms.map((m) => m.ops?.[op]?.gb_per_s ?? NaN));
        return out;
      };
      kernels.push({
        name: k,
        args: k === 'heat' ? heatArgs : streamArgs,
        bare: B,
        container: C,
        hpcflow: H,
        containerKernelRatio: C.kernelMs.median / B.kernelMs.median,
        hpcflowKernelRatio: H.kernelMs.median / B.kernelMs.median,
        containerWallRatio: C.wallMs.median / B.wallMs.median,
        hpcflowWallRatio: H.wallMs.median / B.wallMs.median,
        containerKernelRatioPaired: paired(x.cK),
        hpcflowKernelRatioPaired: paired(x.hK),
        ...(k === 'stream' ? { gbs: { bare: gbs(g.bare), container: gbs(g.container), hpcflow: gbs(g.hpcflow) } } : {}),
      });
    }

    // Trivial stages: the floor of each way of starting a command.
    const docker = new Docker();
    const t = { spawn: [] as number[], run: [] as number[], dockerode: [] as number[] };
    const spawnTrue = async (): Promise<void> => void t.spawn.push(await timed('/bin/true', [], ws));
    const dockerRunTrue = async (): Promise<void> =>
      void t.run.push(await timed('docker', ['run', '--rm', '--network', 'host', '-u', `${uid}:${gid}`, '-v', `${ws}:${ws}`, '-w', ws, o.busybox, 'true'], ws));
    const dockerodeTrue = async (): Promise<void> => {
      const t0 = process.hrtime.bigint();
      const c = await docker.createContainer({ Image: o.busybox, Cmd: ['true'], WorkingDir: ws, User: `${uid}:${gid}`, HostConfig: { Binds: [`${ws}:${ws}`], NetworkMode: 'host' } });
      await c.start();
      await c.wait();
      await c.remove({ force: true });
      t.dockerode.push(Number(process.hrtime.bigint() - t0) / 1e6);
    };
    await spawnTrue();
    await dockerRunTrue();
    await dockerodeTrue();
    for (const a of Object.values(t)) a.length = 0;
    for (let i = 0; i < o.trivialReps; i++) {
      await spawnTrue();
      await dockerRunTrue();
      await dockerodeTrue();
    }
    return {
      image,
      reps: o.reps,
      threads,
      kernels,
      trivial: { reps: o.trivialReps, spawnTrueMs: summarize(t.spawn), dockerRunTrueMs: summarize(t.run), dockerodeTrueMs: summarize(t.dockerode), busybox: o.busybox },
      totalS: Number(process.hrtime.bigint() - tStart) / 1e9,
    };
  } finally {
    // Files written by the container belong to uid:gid, so plain rm works.
    await rm(ws, { recursive: true, force: true });
  }
}
