/**
 * The `slurm:` section of the site configuration: scheduler defaults, the container runtime of the
 * compute nodes and how gently to poll. Every key is optional; see DEFAULT_SLURM_SITE.
 *
 *   executor: slurm                       # run stages on Slurm unless --executor says otherwise
 *   slurm:
 *     runtime: apptainer                  # docker | podman | apptainer | pyxis | oci
 *     partition: compute                  # defaults for stages that do not name them
 *     account: proj42
 *     qos: normal
 *     constraint: "skylake|icelake"
 *     sbatch_args: ["--reservation=hpcflow"]
 *     shared_roots: [/home, /scratch]     # a workspace must be under one (the nodes mount them)
 *     path: /usr/bin:/bin                 # PATH of job scripts (jobs start with --export=NONE)
 *     poll: { min_ms: 250, max_ms: 5000 } # squeue: one call for all jobs, backing off to max_ms
 *     launcher_binds: [/usr/bin/srun, /etc/slurm, /run/munge]   # Chapel/Julia launchers call srun
 *     accounting: auto                    # auto | sacct | none
 *     docker: { network: host, ipc: host, pid: host, binds: [/scratch] }   # docker and podman
 *     apptainer: { images: { "hpcflow/openmp:1": /sif/openmp.sif }, binds: [/scratch] }
 *     pyxis: { images: { "hpcflow/openmp:1": "registry#hpcflow/openmp:1" }, mounts: [/scratch] }
 *     oci: { bundles: { "hpcflow/openmp:1": /bundles/openmp } }
 */
import type { ConfigSource } from './config-source.js';
import type { SlurmSite } from '../executors/slurm/types.js';
import { DEFAULT_SLURM_SITE, RUNTIMES } from '../executors/slurm/types.js';

export const EXECUTORS = ['docker', 'slurm'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

type Fail = ConfigSource['fail'];
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkKeys(fail: Fail, path: readonly PropertyKey[], o: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail([...path, k], `unknown setting "${k}"`, `known: ${known.join(', ')}`, true);
}

export function parseExecutor(fail: Fail, v: unknown): ExecutorName {
  if (!(EXECUTORS as readonly unknown[]).includes(v)) fail(['executor'], `executor must be one of ${EXECUTORS.join(', ')}`);
  return v as ExecutorName;
}

export function parseSlurmSite(fail: Fail, raw: unknown): SlurmSite {
  const P = ['slurm'];
  if (!isMap(raw)) return fail(P, 'slurm must be a mapping');
  checkKeys(fail, P, raw, ['runtime', 'partition', 'account', 'qos', 'constraint', 'sbatch_args', 'shared_roots', 'path', 'poll', 'launcher_binds', 'accounting', 'docker', 'apptainer', 'pyxis', 'oci']);
  const str = (path: readonly PropertyKey[], v: unknown): string => {
    if (typeof v !== 'string' || v === '') fail(path, 'expected a non-empty string');
    return v as string;
  };
  const opt = (k: string): string | null => (raw[k] === undefined ? null : str([...P, k], raw[k]));
  const list = (path: readonly PropertyKey[], v: unknown): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) fail(path, 'expected a list of strings');
    return (v as unknown[]).map((x, i) => str([...path, i], x));
  };
  const absList = (path: readonly PropertyKey[], v: unknown): string[] => {
    const l = list(path, v);
    l.forEach((x, i) => {
      if (!x.startsWith('/')) fail([...path, i], `'${x}' is not an absolute path`);
    });
    return l;
  };
  const strMap = (path: readonly PropertyKey[], v: unknown): Record<string, string> => {
    if (v === undefined) return {};
    if (!isMap(v)) fail(path, 'expected a mapping image: value');
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, str([...path, k], x)]));
  };
  const block = (k: string, known: readonly string[]): Record<string, unknown> => {
    const v = raw[k];
    if (v === undefined) return {};
    if (!isMap(v)) fail([...P, k], `${k} must be a mapping`);
    checkKeys(fail, [...P, k], v as Record<string, unknown>, known);
    return v as Record<string, unknown>;
  };
  if (raw.runtime !== undefined && !(RUNTIMES as readonly unknown[]).includes(raw.runtime)) fail([...P, 'runtime'], `runtime must be one of ${RUNTIMES.join(', ')}`);
  if (raw.accounting !== undefined && !['auto', 'sacct', 'none'].includes(raw.accounting as string)) fail([...P, 'accounting'], 'accounting must be auto, sacct or none');
  const poll = block('poll', ['min_ms', 'max_ms']);
  const ms = (k: string, d: number): number => {
    const v = poll[k];
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 10 || v > 600_000) fail([...P, 'poll', k], 'expected milliseconds between 10 and 600000');
    return v as number;
  };
  const pollMinMs = ms('min_ms', DEFAULT_SLURM_SITE.pollMinMs);
  const pollMaxMs = ms('max_ms', Math.max(pollMinMs, DEFAULT_SLURM_SITE.pollMaxMs));
  if (pollMaxMs < pollMinMs) fail([...P, 'poll', 'max_ms'], 'max_ms is below min_ms');
  const docker = block('docker', ['network', 'ipc', 'pid', 'binds']);
  const apptainer = block('apptainer', ['images', 'binds']);
  const pyxis = block('pyxis', ['images', 'mounts']);
  const oci = block('oci', ['bundles']);
  const d = DEFAULT_SLURM_SITE;
  const dockerStr = (k: 'network' | 'ipc' | 'pid'): string => (docker[k] === undefined ? d.docker[k] : str([...P, 'docker', k], docker[k]));
  return {
    runtime: (raw.runtime as SlurmSite['runtime'] | undefined) ?? d.runtime,
    partition: opt('partition'),
    account: opt('account'),
    qos: opt('qos'),
    constraint: opt('constraint'),
    sbatchArgs: list([...P, 'sbatch_args'], raw.sbatch_args),
    path: raw.path === undefined ? d.path : str([...P, 'path'], raw.path),
    sharedRoots: absList([...P, 'shared_roots'], raw.shared_roots),
    pollMinMs,
    pollMaxMs,
    launcherBinds: absList([...P, 'launcher_binds'], raw.launcher_binds),
    accounting: (raw.accounting as SlurmSite['accounting'] | undefined) ?? d.accounting,
    docker: { network: dockerStr('network'), ipc: dockerStr('ipc'), pid: dockerStr('pid'), binds: absList([...P, 'docker', 'binds'], docker.binds) },
    apptainer: { images: strMap([...P, 'apptainer', 'images'], apptainer.images), binds: absList([...P, 'apptainer', 'binds'], apptainer.binds) },
    pyxis: { images: strMap([...P, 'pyxis', 'images'], pyxis.images), mounts: list([...P, 'pyxis', 'mounts'], pyxis.mounts) },
    oci: { bundles: strMap([...P, 'oci', 'bundles'], oci.bundles) },
  };
}
