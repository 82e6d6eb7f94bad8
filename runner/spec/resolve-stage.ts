/**
 * One YAML stage → its resolved cells: defaults merged, params and matrix applied, `${…}`
 * substituted, paths normalised, image context checked. Problems become diagnostics at the
 * node that caused them; a stage with structural problems yields no cells.
 */
import type { Diagnostic } from '../model/diagnostic.js';
import { posix } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { Framework, KernelSpec } from '../frameworks/index.js';
import { FRAMEWORKS, kernelCommand, planKernel } from '../frameworks/index.js';
import type { DepSpec, ImageSpec, OutSpec, ParamValue, SourcePos, Stage, StageKernel } from '../model/pipeline.js';
import { didYouMean } from './did-you-mean.js';
import { interpolate } from './interpolate.js';
import { normaliseWorkspacePath, pathProblemText } from './paths.js';
import type { MatrixValue, ResolvedParams } from './resolve-params.js';
import type { DefaultsInput, KernelInput, StageInput } from './schema.js';
import type { SpecContext, StageSource } from './types.js';
import { parseMemory, parseTimeLimit } from './units.js';
import type { ValuePath, YamlSource } from './yaml-source.js';

const DATASET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Output locations owned by hpcflow and git. */
const RESERVED_DIRS = ['.hpcflow', '.git'];

export interface StageEnv {
  readonly pipeline: string;
  readonly src: YamlSource;
  readonly defaults: DefaultsInput | undefined;
  readonly ctx: SpecContext;
  /** Memo of image context checks, shared by the stages of a file. */
  readonly imageChecks: Map<string, Diagnostic | null>;
}

export interface ResolvedStage {
  readonly cells: readonly { readonly stage: Stage; readonly source: StageSource }[];
  readonly diagnostics: readonly Diagnostic[];
  /** Structural problems: the cells are not known (and `cells` is empty). */
  readonly broken: boolean;
}

type PathKind = 'dep' | 'out' | 'metrics' | 'wdir';
/** How a path kind is named in messages: the key it is written under, and what it is. */
const FIELD: Record<PathKind, string> = { dep: 'deps', out: 'outs', metrics: 'metrics', wdir: 'wdir' };
const NOUN: Record<PathKind, string> = { dep: 'dep', out: 'output', metrics: 'metrics', wdir: 'wdir' };

/** Resolve one stage (all its matrix cells). */
export function resolveStage(name: string, input: StageInput, rp: ResolvedParams, env: StageEnv): ResolvedStage {
  const { src, defaults, pipeline } = env;
  const baseId = `${pipeline}/${name}`;
  const stagePath: ValuePath = ['stages', name];
  const stagePos = src.keyPos(stagePath);
  const diagnostics: Diagnostic[] = [...rp.diagnostics];
  let broken = rp.diagnostics.length > 0 || rp.failed.size > 0;
  const fail = (d: Diagnostic, structural = true): void => {
    diagnostics.push(d);
    if (structural) broken = true;
  };
  const own = (key: keyof StageInput): ValuePath => (input[key] !== undefined ? [...stagePath, key] : ['defaults', key]);

  const kernel = input.kernel;
  if (kernel !== undefined && input.cmd !== undefined) {
    fail({
      code: 'HPCFLOW_SPEC_TYPE',
      message: `stage ${baseId} has both cmd and kernel`,
      pos: src.keyPos([...stagePath, 'kernel']),
      hint: 'a kernel stage gets its command from the framework adapter: remove cmd, or remove kernel and write the command yourself',
    });
  }
  // A kernel stage runs in its framework's image unless it names one itself (defaults.image is
  // for cmd stages: an OpenMP image is no place for a Chapel kernel).
  const image: StageInput['image'] | null | undefined = kernel !== undefined ? (input.image ?? null) : (input.image ?? defaults?.image);
  const cmd = kernel !== undefined ? '' : (input.cmd ?? defaults?.cmd);
  for (const [key, v] of [['image', image], ['cmd', cmd]] as const) {
    if (v === undefined) {
      fail({
        code: 'HPCFLOW_SPEC_TYPE',
        message: `stage ${baseId} has no ${key}`,
        pos: stagePos,
        hint: `add '${key}:' to the stage, or to 'defaults:' for every stage`,
      });
    }
  }
  if (broken || image === undefined || cmd === undefined) return { cells: [], diagnostics, broken: true };

  const paramByName = new Map(rp.params.map((p) => [p.name, p.value]));
  const resources = resolveResources(input, defaults, src, fail, own);
  const cells: { stage: Stage; source: StageSource }[] = [];
  for (const coords of rp.cells) {
    const matrix = new Map<string, MatrixValue>(coords);
    const names = [...matrix.keys(), ...paramByName.keys()];
    const lookup = (n: string): unknown => {
      if (matrix.has(n)) return matrix.get(n);
      if (paramByName.has(n)) return paramByName.get(n);
      // Declared but unresolvable (already reported): substitute silently.
      return rp.failed.has(n) ? '' : undefined;
    };
    const interp = (text: string, path: ValuePath, field: string): string => {
      const r = interpolate(text, lookup);
      for (const p of r.problems) {
        const what = p.name === null ? `unterminated '\${'` : p.name === '' ? `empty '\${}'` : `unknown variable '\${${p.name}}'`;
        fail({
          code: 'HPCFLOW_SPEC_INTERPOLATION',
          message: `${what} in ${field} of stage ${baseId}`,
          pos: src.tokenPos(path, p.token),
          hint:
            p.name === null || p.name === ''
              ? `close it as \${name}, or write $\${ for a literal '\${'`
              : `${didYouMean(p.name, names)}declare '${p.name}' under params: or matrix: of the stage, or write $\${${p.name}} for a literal '\${${p.name}}'`,
        });
      }
      return r.text;
    };
    const wsPath = (raw: string, path: ValuePath, kind: PathKind): string => {
      const text = interp(raw, path, FIELD[kind]);
      const n = normaliseWorkspacePath(text);
      if (!n.ok) {
        fail({
          code: 'HPCFLOW_SPEC_PATH_ESCAPE',
          message: `${NOUN[kind]} path '${text}' ${pathProblemText(n.reason)}`,
          pos: src.pos(path),
          hint: 'paths are relative to the workspace root (the directory holding pipelines/); stages cannot read or write outside it',
        });
        return text;
      }
      if (n.path === '' && kind !== 'wdir') {
        fail({
          code: 'HPCFLOW_SPEC_BAD_VALUE',
          message: `${NOUN[kind]} path '${text}' is the workspace root`,
          pos: src.pos(path),
          hint: 'name a file or directory inside the workspace',
        });
      } else if ((kind === 'out' || kind === 'metrics') && RESERVED_DIRS.some((r) => n.path === r || n.path.startsWith(`${r}/`))) {
        fail({
          code: 'HPCFLOW_SPEC_BAD_VALUE',
          message: `${NOUN[kind]} path '${n.path}' is inside ${n.path.split('/')[0]}/, which hpcflow and git manage`,
          pos: src.pos(path),
          hint: 'write outputs elsewhere in the workspace',
        });
      }
      return n.path;
    };

    const kernelPath: ValuePath = [...stagePath, 'kernel'];
    const k = kernel === undefined ? null : resolveKernel(kernel, kernelPath, resources, interp, (raw, p) => wsPath(raw, p, 'dep'), env, fail);
    const imagePath = own('image');
    const imageSpec =
      image !== null
        ? resolveImage(image, imagePath, interp, env, fail)
        : k === null
          ? { kind: 'ref' as const, ref: '' }
          : k.plan.image.kind === 'build'
            ? resolveImage({ build: k.plan.image.context }, [...kernelPath, 'framework'], interp, env, fail)
            : k.plan.image;
    const cmdPath = own('cmd');
    const cmdText = k !== null ? k.cmd : Array.isArray(cmd) ? cmd.map((c, i) => interp(c, [...cmdPath, i], 'cmd')).join(' && ') : interp(cmd, cmdPath, 'cmd');
    const wdirRaw = input.wdir ?? defaults?.wdir;
    const wdir = wdirRaw === undefined ? '' : wsPath(wdirRaw, own('wdir'), 'wdir');

    const deps: DepSpec[] = [];
    const depPos: SourcePos[] = [];
    (input.deps ?? []).forEach((d, i) => {
      const path = [...stagePath, 'deps', i];
      if (typeof d === 'string') {
        deps.push({ kind: 'path', path: wsPath(d, path, 'dep') });
        depPos.push(src.pos(path));
      } else if ('dataset' in d) {
        deps.push({ kind: 'dataset', dataset: d.dataset, version: d.version === undefined ? null : interp(d.version, [...path, 'version'], 'deps') });
        depPos.push(src.pos([...path, 'dataset']));
      } else {
        const ref = interp(d.stage, [...path, 'stage'], 'deps');
        deps.push({ kind: 'stage', stage: ref.includes('/') ? ref : `${pipeline}/${ref}` });
        depPos.push(src.pos([...path, 'stage']));
      }
    });
    if (k !== null) {
      for (const p of k.deps) {
        deps.push({ kind: 'path', path: p });
        depPos.push(src.pos(k.depPath));
      }
    }
    const outs: OutSpec[] = [];
    const outPos: SourcePos[] = [];
    (input.outs ?? []).forEach((o, i) => {
      const path = typeof o === 'string' ? [...stagePath, 'outs', i] : [...stagePath, 'outs', i, 'path'];
      let dataset: string | undefined;
      if (typeof o !== 'string' && o.dataset !== undefined) {
        const dsPath = [...stagePath, 'outs', i, 'dataset'];
        dataset = interp(o.dataset, dsPath, 'outs');
        if (!DATASET_NAME_RE.test(dataset)) {
          fail({ code: 'HPCFLOW_SPEC_BAD_VALUE', message: `invalid dataset name '${dataset}'`, pos: src.pos(dsPath), hint: 'dataset names contain letters, digits, ".", "_" and "-" and start with a letter or digit (at most 100 characters)' });
        }
      }
      outs.push({
        path: wsPath(typeof o === 'string' ? o : o.path, path, 'out'),
        cache: typeof o === 'string' ? true : (o.cache ?? true),
        ...(dataset !== undefined ? { dataset } : {}),
      });
      outPos.push(src.pos(path));
    });
    const metricsPath = [...stagePath, 'metrics'];
    const metrics = input.metrics === undefined ? null : wsPath(input.metrics, metricsPath, 'metrics');

    const envVars: Record<string, string> = {};
    const merged = { ...defaults?.env, ...input.env };
    // The adapter's environment first: the stage's own env wins over it, key by key.
    const adapterEnv = k === null ? {} : k.env;
    for (const key of [...new Set([...Object.keys(adapterEnv), ...Object.keys(merged)])].sort()) {
      if (merged[key] === undefined) {
        envVars[key] = adapterEnv[key] as string;
        continue;
      }
      const path = input.env?.[key] !== undefined ? [...stagePath, 'env', key] : ['defaults', 'env', key];
      envVars[key] = interp(String(merged[key]), path, `env ${key}`);
    }

    const params: ParamValue[] = [...rp.params, ...coords.map(([n, value]) => ({ name: n, value, source: 'matrix' }))];
    params.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const id = coords.length === 0 ? baseId : `${baseId}@${coords.map(([k, v]) => `${k}=${String(v)}`).join(',')}`;
    cells.push({
      stage: {
        id,
        pipeline,
        name,
        matrix: Object.fromEntries(coords),
        image: imageSpec,
        cmd: cmdText,
        wdir,
        deps,
        params,
        outs,
        metrics,
        resources,
        env: envVars,
        pos: stagePos,
        ...(k !== null ? { kernel: { ...k.kernel, env: Object.fromEntries(Object.keys(merged).sort().map((key) => [key, envVars[key] as string])) } } : {}),
        ...(input.tolerance !== undefined ? { tolerance: { rel: input.tolerance.rel ?? 0, abs: input.tolerance.abs ?? 0 } } : {}),
      },
      source: { deps: depPos, outs: outPos, metrics: metrics === null ? null : src.pos(metricsPath) },
    });
  }
  return broken ? { cells: [], diagnostics, broken } : { cells, diagnostics, broken };
}

type Fail = (d: Diagnostic, structural?: boolean) => void;

interface ResolvedKernel {
  readonly kernel: Omit<StageKernel, 'env'>;
  readonly plan: ReturnType<typeof planKernel>;
  readonly cmd: string;
  /** The adapter's run environment plus the compile recipe (so a change of flags is explained). */
  readonly env: Readonly<Record<string, string>>;
  readonly deps: readonly string[];
  readonly depPath: ValuePath;
}

function resolveKernel(
  input: KernelInput,
  path: ValuePath,
  resources: Stage['resources'],
  interp: (text: string, path: ValuePath, field: string) => string,
  wsPath: (raw: string, path: ValuePath) => string,
  env: StageEnv,
  fail: Fail,
): ResolvedKernel | null {
  const { src } = env;
  const fwText = interp(input.framework, [...path, 'framework'], 'kernel.framework');
  if (!(FRAMEWORKS as readonly string[]).includes(fwText)) {
    fail({
      code: 'HPCFLOW_SPEC_BAD_VALUE',
      message: `unknown kernel framework '${fwText}'`,
      pos: src.pos([...path, 'framework']),
      hint: `${didYouMean(fwText, FRAMEWORKS)}frameworks: ${FRAMEWORKS.join(', ')}`,
    });
    return null;
  }
  const framework = fwText as Framework;
  const variant = input[framework];
  const at = (key: keyof NonNullable<KernelInput[Framework]>): ValuePath => (variant?.[key] !== undefined ? [...path, framework, key] : [...path, key]);
  const sourceRaw = variant?.source ?? input.source;
  if (sourceRaw === undefined) {
    fail({
      code: 'HPCFLOW_SPEC_TYPE',
      message: `kernel has no source for framework ${framework}`,
      pos: src.keyPos(path),
      hint: `add 'source:' to the kernel, or to its '${framework}:' block`,
    });
    return null;
  }
  const source = wsPath(sourceRaw, at('source'));
  // A refused path (reported by wsPath) is not even looked up: no probing outside the workspace.
  if (!normaliseWorkspacePath(source).ok) return null;
  const unit = posix.dirname(source);
  if (env.ctx.exists(source) !== 'file') {
    fail({
      code: 'HPCFLOW_SPEC_BAD_VALUE',
      message: `kernel source ${source} does not exist`,
      pos: src.pos(at('source')),
      hint: 'the source is a file in the workspace, e.g. kernels/heat/chapel/heat.chpl',
    });
    return null;
  }
  if (unit === '.' || unit === '') {
    fail({ code: 'HPCFLOW_SPEC_BAD_VALUE', message: `kernel source ${source} is at the workspace root`, pos: src.pos(at('source')), hint: 'put each kernel in a directory of its own (the directory is its compile unit)' });
    return null;
  }
  const list = (key: 'args' | 'flags' | 'ldflags'): string[] => ((variant?.[key] ?? input[key]) ?? []).map((a, i) => interp(a, [...at(key), i], `kernel.${key}`));
  const projectRaw = variant?.project ?? input.project;
  const spec: KernelSpec = {
    framework,
    source,
    args: list('args'),
    flags: list('flags'),
    ldflags: list('ldflags'),
    launch: variant?.launch ?? input.launch ?? 'auto',
    project: projectRaw === undefined ? null : wsPath(projectRaw, at('project')),
  };
  if (spec.project !== null && !normaliseWorkspacePath(spec.project).ok) return null;
  let plan: ReturnType<typeof planKernel>;
  try {
    plan = planKernel({ kernel: spec, shape: resources, placement: 'local', site: {}, launch: {} });
  } catch (e) {
    if (!(e instanceof HpcflowError)) throw e;
    fail({ code: 'HPCFLOW_SPEC_BAD_VALUE', message: e.message, pos: src.pos(variant?.launch !== undefined || input.launch !== undefined ? at('launch') : path), hint: 'set kernel.launch to a mode of the framework, or change resources' });
    return null;
  }
  // The compile unit is a dependency (edits to any file of the kernel's directory rerun it);
  // framework files (Julia's Project.toml, Manifest.toml) are too, when present.
  const deps = [unit, ...plan.deps.filter((p) => !p.startsWith(`${unit}/`) && env.ctx.exists(p) === 'file')];
  const { cmd, env: kernelEnv } = kernelCommand(plan);
  return {
    kernel: { spec, mode: plan.mode, unit, build: plan.build },
    plan,
    cmd,
    env: kernelEnv,
    deps,
    depPath: at('source'),
  };
}

function resolveImage(
  image: NonNullable<StageInput['image']>,
  path: ValuePath,
  interp: (text: string, path: ValuePath, field: string) => string,
  env: StageEnv,
  fail: Fail,
): ImageSpec {
  if (typeof image === 'string') return { kind: 'ref', ref: interp(image, path, 'image') };
  const buildPath = [...path, 'build'];
  const context = normaliseWorkspacePath(interp(image.build, buildPath, 'image'));
  const dockerfile = normaliseWorkspacePath(interp(image.dockerfile ?? 'Dockerfile', [...path, 'dockerfile'], 'image'));
  for (const [n, raw, p, what] of [
    [context, image.build, buildPath, 'image build context'],
    [dockerfile, image.dockerfile ?? 'Dockerfile', [...path, 'dockerfile'], 'dockerfile'],
  ] as const) {
    if (!n.ok || n.path === '') {
      fail({
        code: 'HPCFLOW_SPEC_PATH_ESCAPE',
        message: `${what} '${raw}' must name a path inside ${what === 'dockerfile' ? 'the context directory' : 'containers/'}`,
        pos: env.src.pos(p),
        hint: what === 'dockerfile' ? 'write the Dockerfile path relative to the context, e.g. Dockerfile.gpu' : 'write the directory name under containers/, e.g. build: openmp',
      });
      return { kind: 'build', context: image.build, dockerfile: image.dockerfile ?? 'Dockerfile' };
    }
  }
  const spec: ImageSpec = { kind: 'build', context: context.ok ? context.path : '', dockerfile: dockerfile.ok ? dockerfile.path : '' };
  const dir = `containers/${spec.context}`;
  const file = `${dir}/${spec.dockerfile}`;
  let problem = env.imageChecks.get(file);
  if (problem === undefined) {
    problem = null;
    if (env.ctx.exists(file) !== 'file') {
      const dirMissing = env.ctx.exists(dir) !== 'dir';
      const siblings = dirMissing ? (env.ctx.listDir?.('containers') ?? []) : (env.ctx.listDir?.(dir) ?? []);
      const word = dirMissing ? spec.context : spec.dockerfile;
      problem = {
        code: 'HPCFLOW_SPEC_IMAGE_CONTEXT',
        message: dirMissing ? `image build context ${dir}/ does not exist` : `image build context ${dir}/ has no ${spec.dockerfile}`,
        pos: env.src.pos(dirMissing ? buildPath : image.dockerfile === undefined ? buildPath : [...path, 'dockerfile']),
        hint: dirMissing
          ? `${didYouMean(word, siblings)}create ${dir}/ with a Dockerfile, or fix image.build`
          : `${didYouMean(word, siblings)}add ${file}, or set image.dockerfile to the Dockerfile's name`,
      };
    }
    env.imageChecks.set(file, problem);
  }
  if (problem) fail(problem, false);
  return spec;
}

function resolveResources(
  input: StageInput,
  defaults: DefaultsInput | undefined,
  src: YamlSource,
  fail: Fail,
  own: (key: keyof StageInput) => ValuePath,
): Stage['resources'] {
  const r = { ...defaults?.resources, ...input.resources };
  const at = (key: string): ValuePath =>
    input.resources?.[key as keyof typeof input.resources] !== undefined ? [...own('resources'), key] : ['defaults', 'resources', key];
  let memoryBytes: number | null = null;
  if (r.memory !== undefined) {
    memoryBytes = parseMemory(r.memory);
    if (memoryBytes === null) {
      fail(
        { code: 'HPCFLOW_SPEC_BAD_VALUE', message: `memory '${r.memory}' is too large`, pos: src.pos(at('memory')), hint: 'use a smaller value' },
        false,
      );
    }
  }
  let timeLimitSec: number | null = null;
  if (r.time !== undefined) {
    timeLimitSec = parseTimeLimit(r.time);
    if (timeLimitSec === null) {
      fail(
        {
          code: 'HPCFLOW_SPEC_BAD_VALUE',
          message: `time '${r.time}' is not a positive time limit`,
          pos: src.pos(at('time')),
          hint: 'write a positive duration: seconds, "MM:SS", "HH:MM:SS" or "D-HH:MM:SS" (hours below 24)',
        },
        false,
      );
    }
  }
  return {
    nodes: r.nodes ?? 1,
    tasksPerNode: r.tasks_per_node ?? 1,
    cpusPerTask: r.cpus_per_task ?? 1,
    memoryBytes,
    timeLimitSec,
    ...(r.partition !== undefined ? { partition: r.partition } : {}),
    ...(r.account !== undefined ? { account: r.account } : {}),
    ...(r.qos !== undefined ? { qos: r.qos } : {}),
    ...(r.constraint !== undefined ? { constraint: r.constraint } : {}),
  };
}
