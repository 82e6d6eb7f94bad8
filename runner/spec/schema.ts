/**
 * The pipeline file format (`pipelines/<name>.yaml`) as a zod schema: the single source of the
 * input types (`z.infer`), of validation, and of the JSON Schema editors use for completion.
 * Everything that needs more than one node to decide (defaults merging, interpolation, params
 * files, existence of paths) happens after validation, in resolve-stage.ts and link.ts.
 */
import { z } from 'zod';
import { MEMORY_RE, TIME_RE } from './units.js';

/** Stage and pipeline names: they become ids and directory names, so no slashes or spaces. */
export const STAGE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Names usable as `${name}`; dots allowed because list-form params are named by dotted key. */
export const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** POSIX environment variable names. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Matrix string values appear in stage ids (`@k=v,k=v`), so they cannot contain its separators. */
export const MATRIX_VALUE_RE = /^[^\s,=/@]+$/;

const nonEmpty = () => z.string().min(1, { error: 'must not be empty' });
const positiveInt = () => z.int({ error: 'expected a whole number ≥ 1' }).positive({ error: 'expected a whole number ≥ 1' });

const ImageBuildSchema = z
  .strictObject({
    build: nonEmpty().describe('Build context: a directory under containers/ (e.g. "openmp" for containers/openmp/).'),
    dockerfile: nonEmpty().optional().describe('Dockerfile inside the context. Default: "Dockerfile".'),
  })
  .describe('An image built from containers/<build>/, tagged by the content hash of that directory.');

const ImageSchema = z
  .union([nonEmpty().describe('An image reference, e.g. "debian:bookworm".'), ImageBuildSchema], {
    error: 'expected an image reference string or { build: <dir under containers/> }',
  })
  .meta({
    id: 'HpcflowImage',
    description: 'The container image the stage runs in: a reference, or { build: <dir> } for containers/<dir>/. ${…} allowed.',
  });

const CmdSchema = z
  .union([nonEmpty(), z.array(nonEmpty()).min(1, { error: 'must not be an empty list' })], {
    error: 'expected a command string or a list of command strings',
  })
  .meta({
    id: 'HpcflowCommand',
    description: 'Shell command run by /bin/sh -c in the container; a list is joined with " && ". ${param} is substituted, $${ is a literal ${.',
  });

const WdirSchema = z.string().describe('Working directory, workspace-relative. Default: the workspace root. ${…} allowed.');

const DepSchema = z
  .union(
    [
      nonEmpty().describe('A workspace path (file or directory), possibly another stage\'s output. ${…} allowed.'),
      z
        .strictObject({
          stage: nonEmpty().describe('A stage name of this pipeline, or "<pipeline>/<stage>" of another one.'),
        })
        .describe('Every output of another stage (all cells of a matrix stage).'),
      z
        .strictObject({
          dataset: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { error: 'dataset names contain letters, digits, ".", "_" and "-"' }).describe('A dataset name (datasets/<name>.yaml).'),
          version: nonEmpty().optional().describe('Require this version: a dataset tag, a version id prefix, or a git revision. Default: the current (committed) version.'),
        })
        .describe('A versioned dataset; its version id enters the fingerprint.'),
    ],
    { error: 'expected a path string, { stage: <name> } or { dataset: <name> }' },
  )
  .describe('A dependency: a path, { stage: <name> }, or { dataset: <name>, version? }.');

const ParamRefSchema = z
  .strictObject({
    from: nonEmpty().optional().describe('Params file, workspace-relative. Default: the pipeline\'s params_file.'),
    key: nonEmpty().describe('Dotted key in the params file, e.g. "heat.alpha".'),
  })
  .describe('A value read from a params file.');

const ParamValueSchema = z
  .union([ParamRefSchema, z.string(), z.number(), z.boolean(), z.null(), z.array(z.unknown())], {
    error: 'expected an inline value or { from: <params file>, key: <dotted key> }',
  })
  .describe('An inline literal, or { from, key } to read it from a params file.');

const ParamsSchema = z
  .union(
    [
      z.array(nonEmpty()).describe('Dotted keys of params_file; each is available as ${<key>}.'),
      z.record(
        z.string().regex(PARAM_NAME_RE, { error: 'param names start with a letter or "_" and contain letters, digits, "_", "." or "-"' }),
        ParamValueSchema,
      ),
    ],
    { error: 'expected a list of params-file keys or a mapping name → value' },
  )
  .describe('Parameters: a list of params_file keys, or a mapping name → inline value | { from, key }.');

const OutSchema = z
  .union(
    [
      nonEmpty().describe('Output path (file or directory), workspace-relative. ${…} allowed.'),
      z
        .strictObject({
          path: nonEmpty().describe('Output path (file or directory), workspace-relative. ${…} allowed.'),
          cache: z.boolean().optional().describe('false: not stored in the content cache (still checked). Default: true.'),
          dataset: nonEmpty().optional().describe('Record this output directory as a new version of this dataset after every run. ${…} allowed (one dataset per matrix cell).'),
        })
        .describe('An output with options.'),
    ],
    { error: 'expected an output path or { path, cache }' },
  )
  .describe('An output: a path, or { path, cache }.');

const MemorySchema = z
  .union(
    [
      z.int({ error: 'expected a whole number of bytes' }).nonnegative({ error: 'must not be negative' }),
      z.string().regex(MEMORY_RE, { error: 'expected a number of bytes or a number with a K/M/G/T suffix, e.g. 2G' }),
    ],
    { error: 'expected a number of bytes or a string like "2G"' },
  )
  .describe('Memory per node: bytes, or a number with K/M/G/T suffix (binary: 1G = 1024^3 bytes).');

const TimeSchema = z
  .union(
    [
      z.int({ error: 'expected a whole number of seconds' }).positive({ error: 'must be positive' }),
      z.string().regex(TIME_RE, { error: 'expected seconds or "MM:SS", "HH:MM:SS" or "D-HH:MM:SS"' }),
    ],
    { error: 'expected seconds or a string like "01:30:00"' },
  )
  .describe('Time limit: seconds, or "MM:SS" / "HH:MM:SS" / "D-HH:MM:SS".');

const ResourcesSchema = z
  .strictObject({
    nodes: positiveInt().optional().describe('Number of nodes. Default: 1.'),
    tasks_per_node: positiveInt().optional().describe('Processes per node (MPI ranks). Default: 1.'),
    cpus_per_task: positiveInt().optional().describe('CPUs (threads) per process. Default: 1.'),
    memory: MemorySchema.optional(),
    time: TimeSchema.optional(),
    partition: z.string().min(1).optional().describe('Slurm partition (sbatch --partition). Default: the site\'s. Not part of the fingerprint.'),
    account: z.string().min(1).optional().describe('Slurm account to charge (sbatch --account). Default: the site\'s.'),
    qos: z.string().min(1).optional().describe('Slurm quality of service (sbatch --qos). Default: the site\'s.'),
    constraint: z.string().min(1).optional().describe('Slurm node features (sbatch --constraint), e.g. "skylake|icelake". Default: the site\'s.'),
  })
  .meta({ id: 'HpcflowResources', description: 'Launch shape. Merged field by field over defaults.resources.' });

const EnvSchema = z
  .record(
    z.string().regex(ENV_NAME_RE, { error: 'environment variable names contain letters, digits and "_" and do not start with a digit' }),
    z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' }),
  )
  .meta({
    id: 'HpcflowEnv',
    description: 'Environment variables (numbers and booleans are stringified). Merged over defaults.env. ${…} allowed in values.',
  });

const MatrixSchema = z
  .record(
    z.string().regex(PARAM_NAME_RE, { error: 'matrix keys start with a letter or "_" and contain letters, digits, "_", "." or "-"' }),
    z
      .array(
        z.union(
          [
            z.string().regex(MATRIX_VALUE_RE, { error: 'matrix values must not contain whitespace, ",", "=", "/" or "@"' }),
            z.number(),
            z.boolean(),
          ],
          { error: 'matrix values must be strings, numbers or booleans' },
        ),
      )
      .min(1, { error: 'must not be an empty list' }),
  )
  .describe('Expands the stage into the cartesian product of these lists; each value is available as ${key}.');

const KERNEL_FRAMEWORKS = ['openmp', 'chapel', 'julia', 'python'] as const;
const LAUNCH = ['auto', 'threads', 'locales', 'distributed', 'mpi'] as const;

/** What may differ between frameworks of one kernel stage (a matrix over implementations). */
const kernelVariantShape = {
  source: nonEmpty().optional().describe('The entry source file (.c, .chpl, .jl), workspace-relative; its directory is the compile unit and a dependency. ${…} allowed.'),
  args: z.array(z.string()).optional().describe('The program\'s arguments, one list item per argument (no shell). ${…} allowed.'),
  flags: z.array(nonEmpty()).optional().describe('Compile flags after the adapter\'s own (chpl, cc); for Julia, extra julia options.'),
  ldflags: z.array(nonEmpty()).optional().describe('C only: link flags after the source, e.g. -lm.'),
  launch: z.enum(LAUNCH, { error: `expected one of ${LAUNCH.join(', ')}` }).optional().describe('How the processes are laid out. Default auto: threads for one task, else locales (Chapel), distributed (Julia), mpi (C).'),
  project: nonEmpty().optional().describe('Julia: the environment directory (Project.toml, Manifest.toml). Default: the source\'s directory.'),
};

const KernelVariantSchema = z.strictObject(kernelVariantShape).describe('Settings for one framework; they override the kernel\'s common settings.');

const KernelSchema = z
  .strictObject({
    framework: nonEmpty().describe(`${KERNEL_FRAMEWORKS.join(' | ')}; \${…} allowed (e.g. \${impl} over a matrix).`),
    ...kernelVariantShape,
    openmp: KernelVariantSchema.optional(),
    chapel: KernelVariantSchema.optional(),
    julia: KernelVariantSchema.optional(),
    python: KernelVariantSchema.optional(),
  })
  .meta({
    id: 'HpcflowKernel',
    description:
      'A kernel run through a framework adapter instead of a cmd: hpcflow compiles it (cached by source, image and settings), ' +
      'launches it for the stage\'s resources (threads, locales, workers or MPI ranks) and picks the framework\'s image unless the stage or the site names one.',
  });

const nonNegative = (what: string) =>
  z.number({ error: `expected a ${what} tolerance: a number ≥ 0` }).nonnegative({ error: 'must not be negative' });

const ToleranceSchema = z
  .strictObject({
    rel: nonNegative('relative').optional().describe('Relative tolerance, e.g. 1e-6. Default: 0.'),
    abs: nonNegative('absolute').optional().describe('Absolute tolerance, e.g. 1e-12. Default: 0.'),
  })
  .describe(
    'How exactly a re-run must reproduce this stage\'s outputs and metrics (`hpcflow reproduce`): a value v\' reproduces v when |v\' − v| ≤ abs + rel·|v|. ' +
      'Not part of the fingerprint: changing it re-runs nothing.',
  );

/** The keys a stage and `defaults` share. */
const commonStageShape = {
  image: ImageSchema.optional(),
  cmd: CmdSchema.optional(),
  wdir: WdirSchema.optional(),
  resources: ResourcesSchema.optional(),
  env: EnvSchema.optional(),
};

export const DefaultsSchema = z
  .strictObject(commonStageShape)
  .describe('Values merged under every stage: stage values win; resources and env merge key by key.');

export const StageSchema = z
  .strictObject({
    ...commonStageShape,
    deps: z.array(DepSchema).optional().describe('Inputs: paths, or { stage: <name> } for all outputs of a stage.'),
    params: ParamsSchema.optional(),
    outs: z.array(OutSchema).optional().describe('Outputs (files or directories) the stage writes.'),
    metrics: nonEmpty().optional().describe('Path of a metrics JSON file the stage writes; it is an output too.'),
    matrix: MatrixSchema.optional(),
    kernel: KernelSchema.optional(),
    tolerance: ToleranceSchema.optional(),
  })
  .describe('A stage: a command (or a kernel) run in a container, with its inputs and outputs.');

/** The whole `pipelines/<name>.yaml` file. */
export const PipelineFileSchema = z
  .strictObject({
    params_file: nonEmpty().optional().describe('Params file for list-form params and { key } refs. Default: "params.yaml".'),
    defaults: DefaultsSchema.optional(),
    stages: z
      .record(
        z.string().regex(STAGE_NAME_RE, {
          error: 'stage names contain letters, digits, "_", "." and "-" and start with a letter, digit or "_"',
        }),
        StageSchema,
      )
      .describe('The stages, by name. The pipeline\'s name is the file\'s basename.'),
  })
  .meta({
    title: 'hpcflow pipeline',
    description: 'An hpcflow pipeline file: pipelines/<name>.yaml in a workspace.',
  });

/** A validated pipeline file, before defaults, matrix and interpolation are applied. */
export type PipelineFileInput = z.infer<typeof PipelineFileSchema>;
/** One stage as written. */
export type StageInput = z.infer<typeof StageSchema>;
/** `defaults:` as written. */
export type DefaultsInput = z.infer<typeof DefaultsSchema>;
/** `image:` as written. */
export type ImageInput = z.infer<typeof ImageSchema>;
/** `resources:` as written. */
export type ResourcesInput = z.infer<typeof ResourcesSchema>;
/** One `deps:` item as written. */
export type DepInput = z.infer<typeof DepSchema>;
/** One `outs:` item as written. */
export type OutInput = z.infer<typeof OutSchema>;
/** `kernel:` as written. */
export type KernelInput = z.infer<typeof KernelSchema>;
/** `params:` as written. */
export type ParamsInput = z.infer<typeof ParamsSchema>;
/** `tolerance:` as written. */
export type ToleranceInput = z.infer<typeof ToleranceSchema>;

/** The JSON Schema (draft 2020-12) of a pipeline file, generated from the zod schema. */
export function pipelineJsonSchema(): object {
  return z.toJSONSchema(PipelineFileSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });
}

/** The exact text of `schema/pipeline.schema.json` (what `npm run schema` writes). */
export function pipelineJsonSchemaText(): string {
  return `${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`;
}
