/**
 * The Slurm test cluster itself (scripts/slurm-cluster.sh), through the plain Slurm CLI on the login
 * node: steps on several nodes, batch jobs with their accounting record, and MPI with every rank in
 * its own Docker container on its node (the shape of the Slurm executor's docker runtime).
 */
import { execa } from 'execa';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listContainersByLabel, removeContainersByLabel, REPO_ROOT, uniqueId } from '../../helpers/docker.js';
import {
  activeJobs,
  ensureSlurmForTests,
  listJobs,
  SLURM_NODE_CONTAINER_PREFIX,
  SLURM_RUN,
  SLURM_SHARED,
  sharedTempDir,
  slurmEnv,
} from '../../helpers/slurm.js';
import type { SharedTempDir } from '../../helpers/slurm.js';

/** Built from containers/openmp (the image of hpcflow's C/OpenMP/MPI kernels); cached by docker. */
const MPI_IMAGE = 'hpcflow-test/mpi:1';
/** Every job of this file is named after it, every container it starts carries it as a label. */
const TAG = uniqueId('slurm-cluster-test');
const LABEL = 'hpcflow-test';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function slurm(cmd: string, args: readonly string[], timeout = 120_000) {
  return execa(cmd, args, { env: slurmEnv(), timeout });
}

const HELLO_C = `#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int rank, size, sum = 0;
  char host[256];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  gethostname(host, sizeof host);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank=%d size=%d host=%s sum=%d\\n", rank, size, host, sum);
  MPI_Finalize();
  return 0;
}
`;

/**
 * One MPI rank = one container, started by the task on its node with the host's docker: it joins
 * the node container's network namespace (hostname, IP; the step's PMIx server on 127.0.0.1), IPC
 * namespace (/dev/shm for Open MPI's shared memory between ranks of a node) and PID namespace
 * (single-copy transfers between ranks of a node), binds SLURM_RUN (slurmd's spool and TmpFS: the
 * PMIx server's shared-memory store) and SLURM_SHARED (the job directory), and gets the task's
 * PMIx/Slurm/Open MPI environment. The container is named after the task and removed on SIGTERM, so
 * a cancelled step leaves none behind (killing the docker client alone would not stop it).
 */
function rankWrapper(dir: string): string {
  return `#!/bin/bash
set -euo pipefail
node=${SLURM_NODE_CONTAINER_PREFIX}$SLURMD_NODENAME
name=${TAG}-$SLURM_JOB_ID-$SLURM_STEP_ID-$SLURM_PROCID
envf=$(mktemp -p ${dir} .rank-env.XXXXXX)
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -f "$envf"' EXIT
trap 'exit 143' TERM INT
env | grep -E '^(PMIX_|PMI_|SLURM_|OMPI_)' >"$envf" || true
docker run --rm --name "$name" --label ${LABEL}=${TAG} \\
  --network "container:$node" --ipc "container:$node" --pid "container:$node" \\
  -v ${SLURM_RUN}:${SLURM_RUN} -v ${SLURM_SHARED}:${SLURM_SHARED} \\
  --env-file "$envf" -e OMPI_ALLOW_RUN_AS_ROOT=1 -e OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \\
  --user 0:0 -w "$PWD" ${MPI_IMAGE} "$@" &
wait $!
`;
}

interface RankLine {
  rank: number;
  size: number;
  host: string;
  sum: number;
}

function parseRanks(stdout: string): RankLine[] {
  return stdout
    .split('\n')
    .map((l) => /^rank=(\d+) size=(\d+) host=(\S+) sum=(-?\d+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ rank: Number(m[1]), size: Number(m[2]), host: m[3] ?? '', sum: Number(m[4]) }))
    .sort((a, b) => a.rank - b.rank);
}

describe('Slurm test cluster', () => {
  let tmp: SharedTempDir | undefined;

  beforeAll(async () => {
    await ensureSlurmForTests();
    tmp = await sharedTempDir('cluster-test-');
  }, 900_000);

  afterAll(async () => {
    // cleanup first, assertions after: a failing check must not leave anything behind
    // A step that has just ended is COMPLETING for a moment (slurmd reports its end): wait that out.
    let mine = (await activeJobs()).filter((j) => j.name.startsWith(TAG));
    for (let i = 0; i < 100 && mine.some((j) => j.state === 'COMPLETING') && mine.every((j) => j.state === 'COMPLETING'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      mine = (await activeJobs()).filter((j) => j.name.startsWith(TAG));
    }
    if (mine.length > 0) await slurm('scancel', mine.map((j) => j.id)).catch(() => undefined);
    const containers = await listContainersByLabel(LABEL, TAG);
    await removeContainersByLabel(LABEL, TAG);
    await tmp?.cleanup();
    expect(mine, 'jobs of this file still active').toEqual([]);
    expect(containers.map((c) => c.names.join(',')), 'containers of this file left behind').toEqual([]);
  }, 120_000);

  it('srun -N2 runs one task on each of two distinct nodes', async () => {
    const r = await slurm('srun', ['-N2', '-J', `${TAG}-srun`, `--chdir=${tmp!.path}`, 'hostname']);
    const hosts = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
    expect(hosts).toHaveLength(2);
    expect(new Set(hosts).size).toBe(2);
    for (const h of hosts) expect(h).toMatch(/^n\d+$/);
  }, 120_000);

  it('sbatch: the job completes and sacct reports it COMPLETED with its nodes', async () => {
    const dir = tmp!.path;
    const script = path.join(dir, 'job.sh');
    await writeFile(script, '#!/bin/bash\nsrun hostname\n');
    const sub = await slurm('sbatch', ['--parsable', '-N2', '-J', `${TAG}-sbatch`, `--chdir=${dir}`, '-o', `${dir}/%j.out`, script]);
    const id = sub.stdout.trim().split(';')[0] ?? '';
    expect(id).toMatch(/^\d+$/);

    // the accounting record is written asynchronously (2-5 s after the end): poll
    const deadline = Date.now() + 120_000;
    let row: string[] = [];
    for (;;) {
      const r = await slurm('sacct', ['-n', '-P', '-X', '-j', id, '-o', 'JobID,JobName,State,ExitCode,NodeList']);
      row = (r.stdout.split('\n')[0] ?? '').split('|');
      const [, , state, , nodes] = row;
      if (state === 'COMPLETED' && nodes !== undefined && /^n/.test(nodes) && nodes.includes('[')) break;
      if (state !== undefined && /^(FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)/.test(state)) break;
      if (Date.now() > deadline) break;
      await sleep(500);
    }
    expect(row[0]).toBe(id);
    expect(row[1]).toBe(`${TAG}-sbatch`);
    expect(row[2]).toBe('COMPLETED');
    expect(row[3]).toBe('0:0');
    expect(row[4]).toMatch(/^n\[\d+[-,]\d+\]$/);

    const jobs = await listJobs();
    expect(jobs.find((j) => j.id === id)?.state).toBe('COMPLETED');
  }, 180_000);

  describe('MPI across nodes, every rank in its own container', () => {
    let dir = '';

    beforeAll(async () => {
      dir = path.join(tmp!.path, 'mpi');
      await mkdir(dir, { recursive: true });
      // the image hpcflow builds from containers/openmp (gcc, Open MPI); a cached no-op when built
      await execa('docker', ['build', '--network', 'host', '-t', MPI_IMAGE, path.join(REPO_ROOT, 'containers', 'openmp')], {
        timeout: 900_000,
      });
      await writeFile(path.join(dir, 'hello.c'), HELLO_C);
      await execa('docker', ['run', '--rm', '--label', `${LABEL}=${TAG}`, '--network', 'none', '-v', `${dir}:${dir}`, '-w', dir, MPI_IMAGE, 'mpicc', '-O2', '-o', 'hello', 'hello.c'], {
        timeout: 300_000,
      });
      await writeFile(path.join(dir, 'rank.sh'), rankWrapper(dir));
      await chmod(path.join(dir, 'rank.sh'), 0o755);
    }, 900_000);

    it('2 nodes x 1 rank: ranks 0 and 1 on n1 and n2, allreduce over both', async () => {
      const r = await slurm('srun', ['--mpi=pmix', '-N2', '--ntasks-per-node=1', '--nodelist=n1,n2', '-J', `${TAG}-mpi`, `--chdir=${dir}`, './rank.sh', './hello'], 180_000);
      expect(parseRanks(r.stdout)).toEqual([
        { rank: 0, size: 2, host: 'n1', sum: 1 },
        { rank: 1, size: 2, host: 'n2', sum: 1 },
      ]);
      expect(r.stderr).not.toMatch(/PMIX ERROR|error/i);
    }, 240_000);

    it('2 nodes x 2 ranks: shared memory between the containers of a node works too', async () => {
      const r = await slurm('srun', ['--mpi=pmix', '-N2', '--ntasks-per-node=2', '--nodelist=n1,n2', '-J', `${TAG}-mpi4`, `--chdir=${dir}`, './rank.sh', './hello'], 180_000);
      expect(parseRanks(r.stdout)).toEqual([
        { rank: 0, size: 4, host: 'n1', sum: 6 },
        { rank: 1, size: 4, host: 'n1', sum: 6 },
        { rank: 2, size: 4, host: 'n2', sum: 6 },
        { rank: 3, size: 4, host: 'n2', sum: 6 },
      ]);
      expect(r.stderr).not.toMatch(/PMIX ERROR|error/i);
    }, 240_000);
  });
});
