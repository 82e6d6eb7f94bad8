/**
 * PURE: how each task of a Slurm job step starts its container. A runtime turns a step into options
 * for the `srun` that launches it and the argv every task of the step runs on its node; the Slurm
 * executor writes `srun <shape> <srunArgs> <taskArgv>` into the batch script. Tasks inherit the
 * environment the batch script exported (the stage's variables, named in `envNames`).
 *
 *   docker / podman  a small POSIX sh wrapper per task: `docker run` in the background, the
 *                    container named after the job, step and task, removed on TERM/INT/HUP (a
 *                    killed `docker run` client does not stop its container)
 *   apptainer        `apptainer exec`: the task's environment passes through, MPI ranks talk to
 *                    srun's PMIx natively (the "hybrid" model)
 *   pyxis            NVIDIA Pyxis/Enroot: `srun --container-image=…`, the task argv unchanged
 *   oci              Slurm's own `srun --container=<bundle>` (an OCI bundle directory per image)
 */
import path from 'node:path';
import { HpcflowError } from '../../errors.js';
import { shellWord } from '../../frameworks/common.js';
import type {
  ApptainerRuntimeSite,
  ContainerRuntime,
  DockerRuntimeSite,
  OciRuntimeSite,
  PyxisRuntimeSite,
  RuntimeStep,
  SlurmSite,
  StepInput,
} from './types.js';

/** The runtime the site's compute nodes use. */
export function runtimeFor(site: SlurmSite): ContainerRuntime {
  switch (site.runtime) {
    case 'docker':
    case 'podman':
      return dockerRuntime(site.runtime, site.docker);
    case 'apptainer':
      return apptainerRuntime(site.apptainer);
    case 'pyxis':
      return pyxisRuntime(site.pyxis);
    case 'oci':
      return ociRuntime(site.oci);
  }
}

/** `$0` of the task wrappers' `/bin/sh -c` (shows in `ps` and in the shell's own messages). */
export const TASK_ARG0 = 'hpcflow-task';

/** Environment prefixes forwarded into docker/podman containers of MPI steps (PMIx/Slurm rank env). */
export const MPI_ENV_PREFIXES = ['PMIX_', 'PMI_', 'SLURM_', 'OMPI_', 'PRTE_'] as const;
/** Every task's container sees its Slurm task environment (SLURM_PROCID, SLURM_NODEID, SLURM_NTASKS…). */
export const TASK_ENV_PREFIXES = ['SLURM_'] as const;

interface Paths {
  /** Normalized workspace (no trailing slash). */
  readonly ws: string;
  /** Normalized working directory, inside `ws`. */
  readonly wd: string;
}

/** Absolute workspace, absolute working directory inside it. */
function checkPaths(input: StepInput): Paths {
  const { workspace, workdir } = input;
  if (!path.posix.isAbsolute(workspace)) throw new HpcflowError('HPCFLOW_USAGE', `workspace must be an absolute path, got '${workspace}'`);
  if (!path.posix.isAbsolute(workdir)) throw new HpcflowError('HPCFLOW_USAGE', `working directory must be an absolute path, got '${workdir}'`);
  const ws = path.posix.normalize(workspace).replace(/(.)\/+$/, '$1');
  const wd = path.posix.normalize(workdir).replace(/(.)\/+$/, '$1');
  if (wd !== ws && !wd.startsWith(ws === '/' ? '/' : `${ws}/`)) {
    throw new HpcflowError('HPCFLOW_PATH_ESCAPE', `working directory ${wd} is outside the workspace ${ws}`);
  }
  return { ws, wd };
}

/** Bind/mount specs separate fields with `:` and entries with `,`: a workspace cannot contain them. */
function checkBindable(ws: string, runtime: string): void {
  if (/[:,\n]/.test(ws)) {
    throw new HpcflowError('HPCFLOW_USAGE', `the workspace ${JSON.stringify(ws)} cannot be mounted by ${runtime}: its path contains ':', ',' or a newline`, {
      hint: 'move the workspace to a path without those characters',
    });
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkEnvNames(names: readonly string[]): void {
  for (const n of names) if (!ENV_NAME.test(n)) throw new HpcflowError('HPCFLOW_USAGE', `'${n}' is not a valid environment variable name`);
}

/** `host` alone means `host:host` (the same path in the container). */
const sameIfAlone = (bind: string): string => (bind.includes(':') ? bind : `${bind}:${bind}`);

/**
 * A site string as one shell word where `{node}` becomes the node's name at run time. Without
 * `{node}` it is a plain (shellWord-quoted) word; with it, a double-quoted word in which only
 * `${SLURMD_NODENAME}` expands.
 */
export function nodeWord(value: string): string {
  if (!value.includes('{node}')) return shellWord(value);
  const dq = (s: string): string => s.replace(/[\\"$`]/g, '\\$&');
  return `"${value.split('{node}').map(dq).join('${SLURMD_NODENAME}')}"`;
}

/**
 * The wrapper every task of a docker/podman step runs as `/bin/sh -c SCRIPT hpcflow-task ARGV…`.
 * The container runs in the background so the trap fires while the shell waits for it (a shell
 * runs traps only between commands). Residual race: a signal in the instant between `docker run`
 * being sent and the daemon creating the container finds nothing to remove.
 */
export function dockerTaskScript(binary: 'docker' | 'podman', site: DockerRuntimeSite, input: StepInput): string {
  const { ws, wd } = checkPaths(input);
  checkBindable(ws, binary);
  checkEnvNames(input.envNames);
  const labels = Object.keys(input.labels)
    .sort()
    .map((k) => `--label ${shellWord(`${k}=${input.labels[k] as string}`)}`);
  const run = [
    `${binary} run --rm --name "$n"`,
    ...labels,
    `--network ${nodeWord(site.network)} --ipc ${nodeWord(site.ipc)} --pid ${nodeWord(site.pid)}`,
    `--user ${shellWord(input.user)} --workdir ${shellWord(wd)}`,
    `-v ${shellWord(`${ws}:${ws}`)}`,
    ...[...site.binds, ...(input.binds ?? [])].map((b) => `-v ${shellWord(sameIfAlone(b))}`),
    ...input.envNames.map((n) => `-e ${n}`),
    '--env-file "$e"',
    `--entrypoint "" ${shellWord(input.image)} "$@" &`,
  ];
  const prefixes = [...(input.mpi ? MPI_ENV_PREFIXES : TASK_ENV_PREFIXES), ...(input.forward ?? [])].map((p) => p.replace(/_$/, '')).join('|');
  const cleanup = ' rm -f "$e";';
  return [
    // Not `hpcflow-<digits>-…`: that is the local executor's owner-pid naming, which its orphan
    // cleanup reads (a job id would pass for a dead pid).
    'n="hpcflow-job${SLURM_JOB_ID}-${SLURM_STEP_ID}-${SLURM_PROCID}"',
    'e="${TMPDIR:-/tmp}/$n.env"',
    `stop() { ${binary} rm -f "$n" >/dev/null 2>&1;${cleanup} exit 143; }`,
    'trap stop TERM INT HUP',
    // The task's Slurm environment (and for MPI ranks PMIx's, for the MPI library in the
    // container); owner-only: PMIx secrets.
    `(umask 077 && env | grep -E "^(${prefixes})_" >"$e")`,
    run.join(' \\\n  '),
    'wait $!',
    's=$?',
    'rm -f "$e"',
    'exit $s',
  ].join('\n');
}

export function dockerRuntime(name: 'docker' | 'podman', site: DockerRuntimeSite): ContainerRuntime {
  return {
    name,
    step: (input): RuntimeStep => ({ srunArgs: [], taskArgv: ['/bin/sh', '-c', dockerTaskScript(name, site, input), TASK_ARG0, ...input.argv] }),
  };
}

export function apptainerRuntime(site: ApptainerRuntimeSite): ContainerRuntime {
  return {
    name: 'apptainer',
    step: (input): RuntimeStep => {
      const { ws, wd } = checkPaths(input);
      checkBindable(ws, 'apptainer');
      const image = site.images[input.imageTag] ?? `docker://${input.imageTag}`;
      const binds = [...site.binds, ...(input.binds ?? [])].flatMap((b) => ['--bind', b]);
      return { srunArgs: [], taskArgv: ['apptainer', 'exec', '--bind', ws, ...binds, '--pwd', wd, image, ...input.argv] };
    },
  };
}

/**
 * Enroot names registry images `[REGISTRY#]IMAGE[:TAG]`: a Docker-style reference whose first
 * component is a registry host (has a `.` or a `:`, or is `localhost`) gets the `#`; anything else
 * (no registry = Docker Hub, a `#` already, a squashfs path) is left as it is.
 */
export function enrootImage(ref: string): string {
  if (ref.includes('#') || ref.startsWith('/') || ref.startsWith('.')) return ref;
  const slash = ref.indexOf('/');
  if (slash < 0) return ref;
  const host = ref.slice(0, slash);
  return /[.:]/.test(host) || host === 'localhost' ? `${host}#${ref.slice(slash + 1)}` : ref;
}

export function pyxisRuntime(site: PyxisRuntimeSite): ContainerRuntime {
  return {
    name: 'pyxis',
    step: (input): RuntimeStep => {
      const { ws, wd } = checkPaths(input);
      checkBindable(ws, 'pyxis');
      checkEnvNames(input.envNames);
      const image = site.images[input.imageTag] ?? enrootImage(input.imageTag);
      const mounts = [`${ws}:${ws}`, ...site.mounts.map(sameIfAlone), ...(input.binds ?? []).map(sameIfAlone)].join(',');
      return {
        srunArgs: [
          `--container-image=${image}`,
          `--container-mounts=${mounts}`,
          `--container-workdir=${wd}`,
          '--no-container-mount-home',
          '--no-container-remap-root',
          // The stage's values win over the image's ENV of the same names.
          ...(input.envNames.length > 0 ? [`--container-env=${input.envNames.join(',')}`] : []),
        ],
        taskArgv: [...input.argv],
      };
    },
  };
}

/** Slurm 22.05's OCI support does not set the working directory: each task changes to it first. */
export const OCI_CD_SCRIPT = 'cd "$1" && shift && exec "$@"';

export function ociRuntime(site: OciRuntimeSite): ContainerRuntime {
  return {
    name: 'oci',
    step: (input): RuntimeStep => {
      const { wd } = checkPaths(input);
      const bundle = site.bundles[input.imageTag];
      if (bundle === undefined) {
        const ref = JSON.stringify(input.imageTag);
        throw new HpcflowError(
          'HPCFLOW_USAGE',
          `the Slurm OCI runtime has no bundle for the image ${input.imageTag}: add slurm.oci.bundles: { ${ref}: /path/to/bundle } to the site configuration`,
          { hint: 'a bundle is a directory holding config.json and rootfs/ (srun --container takes its path)' },
        );
      }
      return { srunArgs: [`--container=${bundle}`], taskArgv: ['/bin/sh', '-c', OCI_CD_SCRIPT, TASK_ARG0, wd, ...input.argv] };
    },
  };
}
