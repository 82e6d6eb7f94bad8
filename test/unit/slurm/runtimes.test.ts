/**
 * The container runtimes of the Slurm executor: what each makes of a job step, as snapshots (read
 * the snapshot file as the documentation of the srun lines hpcflow writes), and the docker/podman
 * task wrapper run for real by /bin/sh (and bash / busybox sh when present) against a fake `docker`
 * that records its argv: quoting, `{node}`, the MPI env file, and the container removed on SIGTERM.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { shellJoin } from '../../../runner/frameworks/common.js';
import { OCI_CD_SCRIPT, enrootImage, nodeWord, runtimeFor } from '../../../runner/executors/slurm/runtimes.js';
import type { RuntimeName, RuntimeStep, SlurmSite, StepInput } from '../../../runner/executors/slurm/types.js';
import { DEFAULT_SLURM_SITE } from '../../../runner/executors/slurm/types.js';

const DIGEST = `hpcflow/openmp@sha256:${'ab'.repeat(32)}`;

const PLAIN: StepInput = {
  image: DIGEST,
  imageTag: 'hpcflow/openmp:1',
  workspace: '/scratch/alice/ws',
  workdir: '/scratch/alice/ws/runs/heat',
  envNames: ['HPCFLOW_STAGE', 'OMP_NUM_THREADS'],
  argv: ['$HPCFLOW_KERNEL_DIR/heat', '--steps', '500', '--out', 'results/heat/x.bin'],
  user: '1000:1000',
  labels: { 'hpcflow.stage': 'heat', 'hpcflow.run-id': 'r-20250101-abc' },
  mpi: false,
};

const MPI: StepInput = { ...PLAIN, workdir: PLAIN.workspace, argv: ['$HPCFLOW_KERNEL_DIR/heat_mpi', '--steps', '500'], mpi: true };

const site = (runtime: RuntimeName, over: Partial<SlurmSite> = {}): SlurmSite => ({ ...DEFAULT_SLURM_SITE, runtime, ...over });

const NODE_SITE = site('docker', {
  docker: { network: 'container:hpcflow-slurm-{node}', ipc: 'container:hpcflow-slurm-{node}', pid: 'host', binds: ['/var/spool/slurmd/pmix', '/data:/data:ro'] },
});

const render = (s: RuntimeStep): string => ['srun', shellJoin(s.srunArgs), shellJoin(s.taskArgv)].filter((x) => x !== '').join(' ');
const step = (st: SlurmSite, input: StepInput): RuntimeStep => runtimeFor(st).step(input);

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('runtimeFor', () => {
  it('picks the site runtime', () => {
    for (const r of ['docker', 'podman', 'apptainer', 'pyxis', 'oci'] as const) expect(runtimeFor(site(r)).name).toBe(r);
  });
});

describe('step commands (snapshots)', () => {
  it('docker, default site (host network, ipc, pid)', () => {
    expect(render(step(site('docker'), PLAIN))).toMatchSnapshot();
    expect(render(step(site('docker'), MPI))).toMatchSnapshot();
  });
  it('docker, nodes that are containers: {node} becomes $SLURMD_NODENAME; binds', () => {
    expect(render(step(NODE_SITE, PLAIN))).toMatchSnapshot();
    expect(render(step(NODE_SITE, MPI))).toMatchSnapshot();
  });
  it('podman: the docker wrapper with the podman binary', () => {
    const p = render(step(site('podman'), MPI));
    expect(p).toMatchSnapshot();
    expect(p).toBe(render(step(site('docker'), MPI)).replaceAll('docker ', 'podman '));
  });
  it('apptainer, with and without an image mapping', () => {
    expect(render(step(site('apptainer'), PLAIN))).toMatchSnapshot();
    const mapped = site('apptainer', { apptainer: { images: { 'hpcflow/openmp:1': '/sif/openmp 1.sif' }, binds: ['/scratch/shared', '/opt/x:/x:ro'] } });
    expect(render(step(mapped, PLAIN))).toMatchSnapshot();
    expect(render(step(mapped, MPI))).toMatchSnapshot();
  });
  it('pyxis', () => {
    expect(render(step(site('pyxis'), PLAIN))).toMatchSnapshot();
    const mapped = site('pyxis', { pyxis: { images: { 'hpcflow/openmp:1': '/squash/openmp.sqsh' }, mounts: ['/scratch/shared', '/opt/x:/x:ro'] } });
    expect(render(step(mapped, { ...MPI, envNames: [] }))).toMatchSnapshot();
    expect(render(step(site('pyxis'), { ...PLAIN, imageTag: 'ghcr.io/acme/heat:2' }))).toMatchSnapshot();
  });
  it('oci: bundle present, bundle missing', () => {
    const oci = site('oci', { oci: { bundles: { 'hpcflow/openmp:1': '/bundles/openmp' } } });
    expect(render(step(oci, PLAIN))).toMatchSnapshot();
    expect(render(step(oci, MPI))).toMatchSnapshot();
    const e = thrown(() => step(site('oci'), PLAIN));
    expect(isHpcflowError(e, 'HPCFLOW_USAGE')).toBe(true);
    expect((e as Error).message).toMatchSnapshot();
    expect((e as Error).message).toContain('slurm.oci.bundles: { "hpcflow/openmp:1": /path/to/bundle }');
  });
});

describe('pure helpers', () => {
  it('nodeWord: plain words untouched, {node} as a double-quoted expansion', () => {
    expect(nodeWord('host')).toBe('host');
    expect(nodeWord('container:hpcflow-slurm-{node}')).toBe('"container:hpcflow-slurm-${SLURMD_NODENAME}"');
    expect(nodeWord('a b')).toBe(`'a b'`);
    expect(nodeWord('x"$`\\{node}')).toBe('"x\\"\\$\\`\\\\${SLURMD_NODENAME}"');
  });
  it('enrootImage: a registry host gets the #', () => {
    expect(enrootImage('hpcflow/openmp:1')).toBe('hpcflow/openmp:1');
    expect(enrootImage('ubuntu:24.04')).toBe('ubuntu:24.04');
    expect(enrootImage('ghcr.io/acme/heat:2')).toBe('ghcr.io#acme/heat:2');
    expect(enrootImage('localhost:5000/heat:2')).toBe('localhost:5000#heat:2');
    expect(enrootImage('nvcr.io#nvidia/pytorch:24.01-py3')).toBe('nvcr.io#nvidia/pytorch:24.01-py3');
    expect(enrootImage('/squash/x.sqsh')).toBe('/squash/x.sqsh');
  });
});

describe('validation', () => {
  const all = ['docker', 'podman', 'apptainer', 'pyxis', 'oci'] as const;
  const oci = { oci: { bundles: { 'hpcflow/openmp:1': '/b' } } };
  it.each(all)('%s: workdir outside the workspace is a path escape', (r) => {
    for (const workdir of ['/scratch/alice/other', '/scratch/alice/ws/../wx', '/scratch/alice/wsx']) {
      expect(isHpcflowError(thrown(() => step(site(r, oci), { ...PLAIN, workdir })), 'HPCFLOW_PATH_ESCAPE')).toBe(true);
    }
  });
  it.each(all)('%s: relative paths are refused', (r) => {
    expect(isHpcflowError(thrown(() => step(site(r, oci), { ...PLAIN, workspace: 'ws', workdir: 'ws/a' })), 'HPCFLOW_USAGE')).toBe(true);
    expect(isHpcflowError(thrown(() => step(site(r, oci), { ...PLAIN, workdir: 'runs' })), 'HPCFLOW_USAGE')).toBe(true);
  });
  it('a trailing slash or the workspace itself is fine', () => {
    expect(step(site('apptainer'), { ...PLAIN, workspace: '/scratch/alice/ws/', workdir: '/scratch/alice/ws/' }).taskArgv.slice(0, 6)).toEqual([
      'apptainer',
      'exec',
      '--bind',
      '/scratch/alice/ws',
      '--pwd',
      '/scratch/alice/ws',
    ]);
  });
  it('a workspace that a bind spec cannot carry, and bad env names, are refused', () => {
    expect(isHpcflowError(thrown(() => step(site('docker'), { ...PLAIN, workspace: '/a:b', workdir: '/a:b' })), 'HPCFLOW_USAGE')).toBe(true);
    expect(isHpcflowError(thrown(() => step(site('pyxis'), { ...PLAIN, workspace: '/a,b', workdir: '/a,b' })), 'HPCFLOW_USAGE')).toBe(true);
    expect(isHpcflowError(thrown(() => step(site('docker'), { ...PLAIN, envNames: ['A B'] })), 'HPCFLOW_USAGE')).toBe(true);
    expect(isHpcflowError(thrown(() => step(site('pyxis'), { ...PLAIN, envNames: ['A,B'] })), 'HPCFLOW_USAGE')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// The generated shell, run for real.

/** Shells to run the task wrapper with: /bin/sh always, bash and busybox sh when installed. */
const SHELLS: Array<[string, string[]]> = [
  ['/bin/sh', ['/bin/sh']],
  ...(['/bin/bash', '/usr/bin/bash'].some(existsSync) ? [['bash', ['bash']] as [string, string[]]] : []),
  ...(['/bin/busybox', '/usr/bin/busybox'].some(existsSync) ? [['busybox sh', ['busybox', 'sh']] as [string, string[]]] : []),
];

/**
 * A fake docker/podman: `run` writes its argv one per line to run.argv and copies the --env-file;
 * with FAKE_SLEEP it records its pid and sleeps (a container that runs); `rm` appends to rm.log.
 */
const FAKE_DOCKER = `#!/bin/sh
d="$FAKE_DIR"
case "$1" in
  rm) printf '%s\\n' "$@" >>"$d/rm.log"; exit 0 ;;
  run)
    printf '%s\\n' "$@" >"$d/run.argv"
    prev=
    for a in "$@"; do
      if [ "$prev" = --env-file ]; then cp "$a" "$d/env-file"; fi
      prev=$a
    done
    if [ -n "$FAKE_SLEEP" ]; then echo $$ >"$d/pid.tmp"; mv "$d/pid.tmp" "$d/pid"; exec sleep "$FAKE_SLEEP" </dev/null >/dev/null 2>&1; fi
    exit "\${FAKE_EXIT:-0}" ;;
esac
exit 99
`;

let dir: string;
const pids: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-runtimes-'));
  await mkdir(path.join(dir, 'bin'));
  await mkdir(path.join(dir, 'tmp'));
  for (const b of ['docker', 'podman']) {
    await writeFile(path.join(dir, 'bin', b), FAKE_DOCKER);
    await chmod(path.join(dir, 'bin', b), 0o755);
  }
});

afterEach(async () => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** What srun gives each task, and nothing of the test runner's environment. */
const taskEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: `${path.join(dir, 'bin')}:/usr/local/bin:/usr/bin:/bin`,
  FAKE_DIR: dir,
  TMPDIR: path.join(dir, 'tmp'),
  SLURM_JOB_ID: '12',
  SLURM_STEP_ID: '3',
  SLURM_PROCID: '1',
  SLURMD_NODENAME: 'node-7',
  HPCFLOW_KERNEL_DIR: '/kernels',
  ...extra,
});

const lines = async (file: string): Promise<string[]> => (await readFile(path.join(dir, file), 'utf8')).replace(/\n$/, '').split('\n');

/** The task's argv with its shell replaced (`/bin/sh` → e.g. `busybox sh`). */
const withShell = (argv: readonly string[], sh: readonly string[]): string[] => [...sh, ...argv.slice(1)];

/** Runs argv as slurmstepd runs a task: directly, with only the task environment. */
const runTask = (argv: readonly string[], extra: Record<string, string> = {}) =>
  execa(argv[0]!, argv.slice(1), { env: taskEnv(extra), extendEnv: false, reject: false, stdin: 'ignore' });

async function waitFor(file: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!existsSync(file)) {
    if (Date.now() - t0 > ms) throw new Error(`${file} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const WEIRD_WS = `/work/it's a $HOME "ws"`;
const WEIRD: StepInput = {
  ...PLAIN,
  image: 'hpcflow/openmp:1',
  workspace: WEIRD_WS,
  workdir: `${WEIRD_WS}/sub dir`,
  envNames: ['HPCFLOW_STAGE', 'OMP_NUM_THREADS'],
  argv: ['$HPCFLOW_KERNEL_DIR/heat', 'a b', "it's", '$HOME', '"q"', '`id`', '$(id)', '*', '', 'x;y'],
  labels: { 'hpcflow.stage': `st'age $(id) \`x\``, 'hpcflow.run-id': 'r1' },
};
const WEIRD_SITE = site('docker', {
  docker: { network: 'container:hpcflow-slurm-{node}', ipc: 'container:we"ird $x-{node}`x`', pid: 'host', binds: ['/opt/my binds', '/data:/data:ro'] },
});

describe.each(SHELLS)('docker task wrapper under %s', (_name, sh) => {
  it('docker receives exactly the intended argv (quoting, {node}, env names, the task argv)', async () => {
    const { taskArgv } = step(WEIRD_SITE, WEIRD);
    // The batch script's line: the outer /bin/sh expands $HPCFLOW_KERNEL_DIR, as shellWord intends.
    const r = await runTask(['/bin/sh', '-c', shellJoin(withShell(taskArgv, sh))]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(await lines('run.argv')).toEqual([
      'run',
      '--rm',
      '--name',
      'hpcflow-job12-3-1',
      '--label',
      'hpcflow.run-id=r1',
      '--label',
      "hpcflow.stage=st'age $(id) `x`",
      '--network',
      'container:hpcflow-slurm-node-7',
      '--ipc',
      'container:we"ird $x-node-7`x`',
      '--pid',
      'host',
      '--user',
      '1000:1000',
      '--workdir',
      `${WEIRD_WS}/sub dir`,
      '-v',
      `${WEIRD_WS}:${WEIRD_WS}`,
      '-v',
      '/opt/my binds:/opt/my binds',
      '-v',
      '/data:/data:ro',
      '-e',
      'HPCFLOW_STAGE',
      '-e',
      'OMP_NUM_THREADS',
      // Every task's SLURM_* environment (SLURM_PROCID…) goes in through an env file.
      '--env-file',
      expect.stringMatching(/\/hpcflow-job12-3-1\.env$/),
      '--entrypoint',
      '',
      'hpcflow/openmp:1',
      '/kernels/heat',
      'a b',
      "it's",
      '$HOME',
      '"q"',
      '`id`',
      '$(id)',
      '*',
      '',
      'x;y',
    ]);
    expect(existsSync(path.join(dir, 'rm.log'))).toBe(false);
  });

  it("exits with the container's status", async () => {
    const { taskArgv } = step(site('podman'), PLAIN);
    const r = await runTask(withShell(taskArgv, sh), { FAKE_EXIT: '7' });
    expect(r.exitCode).toBe(7);
    expect((await lines('run.argv')).slice(0, 4)).toEqual(['run', '--rm', '--name', 'hpcflow-job12-3-1']);
  });

  it('MPI: the env file holds only the PMIx/PMI/Slurm/Open MPI/PRRTE variables, and is removed', async () => {
    const { taskArgv } = step(site('docker'), { ...MPI, argv: ['heat_mpi'] });
    const mpiEnv = {
      PMIX_RANK: '1',
      PMIX_SERVER_URI41: 'pmix-server.4242;tcp4://127.0.0.1:40001',
      PMI_FD: '5',
      SLURM_NTASKS: '4',
      OMPI_MCA_btl: '^openib',
      PRTE_MCA_x: 'a b=c',
    };
    const noise = { MYPMIX_X: '1', PMIXNOT: '1', XSLURM_A: '1', HPCFLOW_STAGE: 'heat', OMP_NUM_THREADS: '4' };
    const r = await runTask(withShell(taskArgv, sh), { ...mpiEnv, ...noise });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const argv = await lines('run.argv');
    const envFile = path.join(dir, 'tmp', 'hpcflow-job12-3-1.env');
    expect(argv.slice(argv.indexOf('--env-file'), argv.indexOf('--env-file') + 2)).toEqual(['--env-file', envFile]);
    expect(argv.slice(-4)).toEqual(['--entrypoint', '', DIGEST, 'heat_mpi']);
    const expected = Object.entries({ ...mpiEnv, SLURM_JOB_ID: '12', SLURM_STEP_ID: '3', SLURM_PROCID: '1' }).map(([k, v]) => `${k}=${v}`);
    expect((await lines('env-file')).sort()).toEqual(expected.sort());
    expect(existsSync(envFile)).toBe(false);
  });

  it('SIGTERM (scancel, time limit) removes the container and exits 143', async () => {
    const { taskArgv } = step(site('docker'), { ...MPI, argv: ['heat_mpi'] });
    const child = runTask(withShell(taskArgv, sh), { FAKE_SLEEP: '30' });
    await waitFor(path.join(dir, 'pid'));
    pids.push(Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim()));
    const envFile = path.join(dir, 'tmp', 'hpcflow-job12-3-1.env');
    expect(existsSync(envFile)).toBe(true);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(await lines('rm.log')).toEqual(['rm', '-f', 'hpcflow-job12-3-1']);
    expect(existsSync(envFile)).toBe(false);
  });
});

describe('generated shell parses (sh -n)', () => {
  const scripts: Array<[string, string]> = [];
  for (const [name, st] of [
    ['docker', site('docker')],
    ['docker {node}', NODE_SITE],
    ['docker weird', WEIRD_SITE],
    ['podman', site('podman')],
  ] as const) {
    for (const input of [PLAIN, MPI, WEIRD]) {
      const s = step(st, input);
      scripts.push([`${name} ${input === MPI ? 'mpi' : input === WEIRD ? 'weird' : 'plain'}: task script`, s.taskArgv[2]!]);
      scripts.push([`${name} ${input === MPI ? 'mpi' : input === WEIRD ? 'weird' : 'plain'}: batch line`, render(s)]);
    }
  }
  const oci = site('oci', { oci: { bundles: { 'hpcflow/openmp:1': '/bundles/my openmp' } } });
  scripts.push(['oci: task script', OCI_CD_SCRIPT], ['oci: batch line', render(step(oci, WEIRD))]);
  for (const r of ['apptainer', 'pyxis'] as const) scripts.push([`${r}: batch line`, render(step(site(r), WEIRD))]);

  it.each(scripts)('%s', async (_name, script) => {
    const r = await execa('/bin/sh', ['-n', '-c', script], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });
});

describe('oci task wrapper', () => {
  it('changes to the working directory, then runs the argv unchanged', async () => {
    const oci = site('oci', { oci: { bundles: { 'hpcflow/openmp:1': '/b' } } });
    const wd = path.join(dir, "it's a dir");
    await mkdir(wd);
    const { taskArgv } = step(oci, { ...PLAIN, workspace: dir, workdir: wd, argv: ['/bin/sh', '-c', 'pwd; printf "%s|" "$@"', 'x', 'a b', '$HOME', ''] });
    const r = await runTask(taskArgv);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`${wd}\na b|$HOME||`);
  });
});
