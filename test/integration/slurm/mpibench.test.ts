/**
 * The MPI kernel of the benchmarks (kernels/mpibench) on the real test cluster, the three ways the
 * bench launches it: as an hpcflow kernel stage (compiled by hpcflow with mpicc in the openmp image,
 * a batch job whose ranks each run in a container), then the very binary hpcflow compiled, bare on
 * the nodes (`srun --mpi=pmix`, no container: the nodes carry Open MPI and PMIx) and in a container
 * per rank through the docker task wrapper — with the commands bench/mpi.ts derives from the stage.
 * Every way must run 2 ranks on 2 nodes, pass the kernel's own validation and leave no container.
 */
import { execa } from 'execa';
import { cp, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MPI_SOURCE, MPI_STAGE, mpiBenchPipeline, mpiCommands } from '../../../bench/mpi.js';
import { parseSiteConfig } from '../../../runner/config/site-config.js';
import { runtimeFor } from '../../../runner/executors/slurm/runtimes.js';
import { applySite } from '../../../runner/frameworks/apply-site.js';
import { loadWorkspaceOrThrow } from '../../../runner/spec/load.js';
import { REPO_ROOT, outcomes } from '../../helpers/cli.js';
import { SLURM_CONF, ensureSlurmForTests, slurmSiteYaml } from '../../helpers/slurm.js';
import { endOf, jobOf, runContainers, runIdOf, runSlurm, slurmWorkspaces } from './slurm-ws.js';

const spaces = slurmWorkspaces();
const RUN_ID = `test-mpibench-${process.pid}`;

beforeAll(async () => {
  await ensureSlurmForTests();
}, 600_000);
afterAll(() => spaces.cleanup());

interface Metrics {
  valid: boolean;
  ranks: number;
  nodes: number;
  host: string;
  peer_host: string;
  wall_s: number;
  pingpong: { bytes: number; latency_us: number }[];
  allreduce: { bytes: number }[];
}

describe('kernels/mpibench across 2 nodes of the test cluster', () => {
  it('runs as an hpcflow stage, then bare and in a container per rank with the same binary and step', async () => {
    const ws = await spaces.make(mpiBenchPipeline({ iters: 20, maxBytes: 65536, nodes: 2, tasksPerNode: 1 }), {
      [MPI_SOURCE]: await readFile(join(REPO_ROOT, MPI_SOURCE), 'utf8'),
    });
    await cp(join(REPO_ROOT, 'containers/openmp'), join(ws, 'containers/openmp'), { recursive: true });
    const metrics = async (f: string): Promise<Metrics> => JSON.parse(await readFile(join(ws, f), 'utf8')) as Metrics;
    const check = (m: Metrics): void => {
      expect(m.valid).toBe(true);
      expect(m.ranks).toBe(2);
      expect(m.nodes).toBe(2);
      expect(m.host).not.toBe(m.peer_host);
      expect(m.pingpong.map((p) => p.bytes)).toEqual([1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]);
      expect(m.allreduce.map((p) => p.bytes)).toEqual([8, 32, 128, 512, 2048, 8192, 32768]);
      expect(m.wall_s).toBeGreaterThan(0);
    };

    // 1. hpcflow: compiles, submits, runs every rank in its container.
    const r = await runSlurm(ws);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(outcomes(r.stdout)).toEqual({ [MPI_STAGE]: 'ran' });
    expect([...(endOf(r.stdout, MPI_STAGE).result?.nodes ?? [])]).toHaveLength(2);
    check(await metrics('out/metrics.json'));
    expect(await runContainers(runIdOf(r.stdout))).toEqual([]);

    // 2. The binary hpcflow compiled needs only libmpi and libc (the nodes have no OpenMP runtime).
    const bins = await readdir(join(ws, '.hpcflow/bin'));
    expect(bins).toHaveLength(1);
    const kernelDir = join(ws, '.hpcflow/bin', bins[0] as string);
    const needed = (await execa('readelf', ['-d', join(kernelDir, 'mpibench')])).stdout;
    expect(needed).toContain('[libmpi.so.40]');
    expect(needed).not.toContain('libgomp');

    // 3. Bare and in a container per rank, the commands of the bench.
    const site = parseSiteConfig(slurmSiteYaml(), join(ws, 'site.yaml'));
    const stage = applySite(await loadWorkspaceOrThrow(ws), site, 'slurm').stages.find((s) => s.id === MPI_STAGE);
    if (stage === undefined) throw new Error(`no ${MPI_STAGE}`);
    // The image the stage ran in, as its batch script names it.
    const script = (await execa('scontrol', ['write', 'batch_script', jobOf(r.stdout, MPI_STAGE)?.jobId ?? '', '-'], { env: { ...process.env, SLURM_CONF } })).stdout;
    const tag = /^# runtime: \S+; image: (\S+)$/m.exec(script)?.[1] ?? '';
    const image = (await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', tag])).stdout.trim();
    expect(image).toMatch(/^sha256:/);
    const cmds = mpiCommands({
      stage,
      kernelDir,
      workspace: ws,
      image,
      imageTag: tag,
      runtime: runtimeFor(site.slurm),
      user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
      srunExtra: [`--job-name=${RUN_ID}`, `--chdir=${ws}`],
      metrics: { bare: 'bare/metrics.json', container: 'ctr/metrics.json' },
      labels: { 'hpcflow.run-id': RUN_ID },
    });
    await mkdir(join(ws, 'bare'));
    await mkdir(join(ws, 'ctr'));
    const env = { ...process.env, SLURM_CONF, ...cmds.env, TMPDIR: '/tmp' };
    for (const [argv, f] of [
      [cmds.bare, 'bare/metrics.json'],
      [cmds.container, 'ctr/metrics.json'],
    ] as const) {
      const x = await execa(argv[0] as string, argv.slice(1), { cwd: ws, env, reject: false, timeout: 240_000 });
      expect(x.exitCode, `${argv.join(' ').slice(0, 300)}\n${x.stdout}\n${x.stderr}`).toBe(0);
      check(await metrics(f));
    }
    expect(await runContainers(RUN_ID)).toEqual([]);
  }, 600_000);
});
