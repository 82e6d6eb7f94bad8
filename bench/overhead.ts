import Docker from 'dockerode';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, cli, summarize } from './lib.js';
import type { Sample } from './lib.js';

export interface OverheadResult {
  readonly stagesPerRun: number;
  /** Bare dockerode create/start/wait/remove of the same command, per container (ms). */
  readonly bareDockerodeMs: Sample;
  /** hpcflow run --force -j1, marginal cost per stage (ms): (T(K) − T(1)) / (K − 1). */
  readonly hpcflowPerStageMs: Sample;
  /** hpcflowPerStage − bareDockerode medians: what the runner adds per stage (target < 20 ms). */
  readonly overheadMs: number;
  readonly ratio: number;
}

async function workspace(k: number, image: string): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), `hpcflow-bench-ovh-${k}-`));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'out'));
  const stages = Array.from({ length: k }, (_, i) => `  s${i}:\n    cmd: echo ${i} > out/s${i}.txt\n    outs: [out/s${i}.txt]`);
  await writeFile(join(ws, 'pipelines/p.yaml'), `defaults:\n  image: ${image}\nstages:\n${stages.join('\n')}\n`);
  return ws;
}

/**
 * The runner's own cost per stage, beyond the container: K trivial stages run one at a time
 * by hpcflow, against K bare dockerode create/start/wait/remove cycles of the same command with
 * the same mount, user and network — measured alternately.
 */
export async function benchOverhead(k: number, reps: number, image: string): Promise<OverheadResult> {
  const docker = new Docker();
  const wsK = await workspace(k, image);
  const ws1 = await workspace(1, image);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  try {
    await cli(['run', '-j', '1'], wsK);
    await cli(['run', '-j', '1'], ws1);
    const bare = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < k; i++) {
        const c = await docker.createContainer({
          Image: image,
          Cmd: ['/bin/sh', '-c', `echo ${i} > out/s${i}.txt`],
          WorkingDir: wsK,
          User: `${uid}:${gid}`,
          HostConfig: { Binds: [`${wsK}:${wsK}`], NetworkMode: 'host' },
        });
        await c.start();
        await c.wait();
        await c.remove({ force: true });
      }
      return Number(process.hrtime.bigint() - t0) / 1e6 / k;
    };
    const viaHpcflow = async (): Promise<number> => {
      const tk = (await cli(['run', '--force', '-j', '1'], wsK)).ms;
      const t1 = (await cli(['run', '--force', '-j', '1'], ws1)).ms;
      return (tk - t1) / (k - 1);
    };
    const r = await alternate(reps, viaHpcflow, bare);
    return { stagesPerRun: k, bareDockerodeMs: r.b, hpcflowPerStageMs: r.a, overheadMs: r.a.median - r.b.median, ratio: r.ratio };
  } finally {
    await rm(wsK, { recursive: true, force: true });
    await rm(ws1, { recursive: true, force: true });
  }
}

export { summarize };
