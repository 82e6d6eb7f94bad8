/**
 * The site configuration: what differs between machines, not between pipelines. It maps each
 * framework to the image this site has for it (a mirror, a locally built tag, a build context)
 * and to launcher settings, so the same pipeline runs on a laptop, in CI and on a cluster
 * without being edited. Read from `--site FILE`, else `$HPCFLOW_SITE`; no file = built-in defaults.
 *
 *   frameworks:
 *     chapel:
 *       image: registry.example.org/mirror/chapel:2.6.0     # single-locale
 *       multilocale_image: { build: chapel-gasnet }          # a context under containers/
 *       substrate: udp                                      # the GASNet substrate it was built with
 *       env: { GASNET_MASTERIP: 10.0.0.1 }                  # extra run environment
 *     julia: { image: julia-site:1.12, cpu_target: "generic;skylake-avx512,clone_all" }
 *     openmp: { image: local/openmp:1, cc: gcc, mpicc: mpicc }
 *   launch: { srun_mpi: pmix, mpirun: mpirun }
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { Framework, FrameworkSite, LaunchSite } from '../frameworks/types.js';
import { FRAMEWORKS } from '../frameworks/types.js';
import type { ImageSpec } from '../model/pipeline.js';
import { parseConfigSource } from './config-source.js';
import type { ExecutorName } from './slurm-site.js';
import { parseExecutor, parseSlurmSite } from './slurm-site.js';
import type { SlurmSite } from '../executors/slurm/types.js';
import { DEFAULT_SLURM_SITE } from '../executors/slurm/types.js';
import { namedSiteFile, SITE_ENV_VAR } from './site-digest.js';

export { SITE_ENV_VAR, siteDigest } from './site-digest.js';

export interface SiteConfig {
  /** The file it came from (absolute), or null for the built-in defaults. */
  readonly file: string | null;
  /** sha256 of the file's text ('' for none): part of the status snapshot key. */
  readonly digest: string;
  readonly frameworks: Readonly<Partial<Record<Framework, FrameworkSite>>>;
  readonly launch: LaunchSite;
  /** The executor the site runs stages on unless --executor says otherwise (null: docker). */
  readonly executor: ExecutorName | null;
  /** The `slurm:` section (defaults when absent). */
  readonly slurm: SlurmSite;
}

export const DEFAULT_SITE: SiteConfig = { file: null, digest: '', frameworks: {}, launch: {}, executor: null, slurm: DEFAULT_SLURM_SITE };

/** The site file named by `--site` (explicit) or `$HPCFLOW_SITE`, or the defaults. */
export function loadSiteConfig(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string): SiteConfig {
  const named = namedSiteFile(explicit, env);
  if (named === undefined) return DEFAULT_SITE;
  const file = resolve(cwd, named);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const how = explicit !== undefined ? '--site' : `$${SITE_ENV_VAR}`;
    throw new HpcflowError('HPCFLOW_USAGE', `cannot read the site configuration ${file} (from ${how}): ${(e as Error).message}`);
  }
  return parseSiteConfig(text, file);
}

const TOP_KEYS = ['executor', 'frameworks', 'launch', 'slurm'];
const FW_KEYS = ['image', 'multilocale_image', 'env', 'build_env', 'cc', 'mpicc', 'substrate', 'cpu_target'];
const SUBSTRATES = ['udp', 'smp', 'ibv', 'ofi', 'mpi'] as const;

export function parseSiteConfig(text: string, file: string): SiteConfig {
  const { src, fail } = parseConfigSource(text, file);
  const doc = src.value ?? {};
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(doc)) fail([], 'the site configuration must be a mapping');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!TOP_KEYS.includes(k)) fail([k], `unknown key "${k}"`, `known keys: ${TOP_KEYS.join(', ')}`, true);
  const str = (path: readonly PropertyKey[], v: unknown): string => {
    if (typeof v !== 'string' || v === '') fail(path, 'expected a non-empty string');
    return v as string;
  };
  const envMap = (path: readonly PropertyKey[], v: unknown): Record<string, string> => {
    if (!isMap(v)) fail(path, 'expected a mapping NAME: value');
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail([...path, k], `"${k}" is not an environment variable name`, undefined, true);
      if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') fail([...path, k], 'expected a string, number or boolean');
      out[k] = String(x);
    }
    return out;
  };
  const image = (path: readonly PropertyKey[], v: unknown): ImageSpec => {
    if (typeof v === 'string' && v !== '') return { kind: 'ref', ref: v };
    if (isMap(v) && typeof v.build === 'string' && v.build !== '' && Object.keys(v).every((k) => k === 'build' || k === 'dockerfile')) {
      if (v.build.split('/').includes('..') || v.build.startsWith('/')) fail([...path, 'build'], 'build names a directory under containers/');
      return { kind: 'build', context: v.build, dockerfile: v.dockerfile === undefined ? 'Dockerfile' : str([...path, 'dockerfile'], v.dockerfile) };
    }
    return fail(path, 'expected an image reference or { build: <dir under containers/> }');
  };
  const frameworks: Partial<Record<Framework, FrameworkSite>> = {};
  if (d.frameworks !== undefined) {
    if (!isMap(d.frameworks)) fail(['frameworks'], 'frameworks must map a framework to its settings');
    for (const [name, raw] of Object.entries(d.frameworks as Record<string, unknown>)) {
      const p = ['frameworks', name];
      if (!(FRAMEWORKS as readonly string[]).includes(name)) fail(p, `unknown framework "${name}"`, `frameworks: ${FRAMEWORKS.join(', ')}`, true);
      if (!isMap(raw)) fail(p, `settings of ${name} must be a mapping`);
      const o = raw as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!FW_KEYS.includes(k)) fail([...p, k], `unknown setting "${k}"`, `known: ${FW_KEYS.join(', ')}`, true);
      let substrate: FrameworkSite['substrate'];
      if (o.substrate !== undefined) {
        if (!(SUBSTRATES as readonly unknown[]).includes(o.substrate)) fail([...p, 'substrate'], `substrate must be one of ${SUBSTRATES.join(', ')}`);
        substrate = o.substrate as FrameworkSite['substrate'];
      }
      frameworks[name as Framework] = {
        ...(o.image !== undefined ? { image: image([...p, 'image'], o.image) } : {}),
        ...(o.multilocale_image !== undefined ? { multilocaleImage: image([...p, 'multilocale_image'], o.multilocale_image) } : {}),
        ...(o.env !== undefined ? { env: envMap([...p, 'env'], o.env) } : {}),
        ...(o.build_env !== undefined ? { buildEnv: envMap([...p, 'build_env'], o.build_env) } : {}),
        ...(o.cc !== undefined ? { cc: str([...p, 'cc'], o.cc) } : {}),
        ...(o.mpicc !== undefined ? { mpicc: str([...p, 'mpicc'], o.mpicc) } : {}),
        ...(substrate !== undefined ? { substrate } : {}),
        ...(o.cpu_target !== undefined ? { cpuTarget: str([...p, 'cpu_target'], o.cpu_target) } : {}),
      };
    }
  }
  let launch: LaunchSite = {};
  if (d.launch !== undefined) {
    if (!isMap(d.launch)) fail(['launch'], 'launch must be a mapping');
    const l = d.launch as Record<string, unknown>;
    for (const k of Object.keys(l)) if (k !== 'srun_mpi' && k !== 'mpirun') fail(['launch', k], `unknown setting "${k}"`, 'known: srun_mpi, mpirun', true);
    launch = {
      ...(l.srun_mpi !== undefined ? { srunMpi: str(['launch', 'srun_mpi'], l.srun_mpi) } : {}),
      ...(l.mpirun !== undefined ? { mpirun: str(['launch', 'mpirun'], l.mpirun) } : {}),
    };
  }
  const executor = d.executor === undefined ? null : parseExecutor(fail, d.executor);
  const slurm = d.slurm === undefined ? DEFAULT_SLURM_SITE : parseSlurmSite(fail, d.slurm);
  return { file, digest: createHash('sha256').update(text).digest('hex'), frameworks, launch, executor, slurm };
}

