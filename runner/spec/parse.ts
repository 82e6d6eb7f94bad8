/**
 * One pipeline file's text → its resolved stages, or diagnostics at file:line:col. Pure: the
 * file system is reached only through the `SpecContext` (params files, existence checks).
 */
import type { Diagnostic } from '../model/diagnostic.js';
import type { Stage } from '../model/pipeline.js';
import { normaliseWorkspacePath, pathProblemText } from './paths.js';
import { ParamsFiles } from './params.js';
import { resolveParams } from './resolve-params.js';
import { resolveStage } from './resolve-stage.js';
import type { DefaultsInput } from './schema.js';
import { DefaultsSchema, PipelineFileSchema, STAGE_NAME_RE, StageSchema } from './schema.js';
import type { DeclaredStage, ParseResult, SpecContext, StageSource } from './types.js';
import { parseYamlSource } from './yaml-source.js';
import { brokenStages, issuesToDiagnostics } from './zod-issues.js';

/** Default params file of a pipeline without `params_file:`. */
export const DEFAULT_PARAMS_FILE = 'params.yaml';

/** `pipelines/heat.yaml` → `heat`. */
export function pipelineNameOf(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  return base.replace(/\.ya?ml$/i, '');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Output paths readable from an invalid stage, so deps on them are not reported as unknown too. */
function rawOutputs(raw: unknown): { outputs: string[]; complete: boolean } {
  if (!isRecord(raw)) return { outputs: [], complete: false };
  const items: unknown[] = Array.isArray(raw.outs) ? raw.outs.map((o) => (isRecord(o) ? o.path : o)) : [];
  if (raw.metrics !== undefined) items.push(raw.metrics);
  let complete = raw.outs === undefined || Array.isArray(raw.outs);
  const outputs: string[] = [];
  for (const item of items) {
    const n = typeof item === 'string' && !item.includes('${') ? normaliseWorkspacePath(item) : null;
    if (n?.ok) outputs.push(n.path);
    else complete = false;
  }
  return { outputs, complete };
}

/**
 * Parse and resolve one pipeline file. `file` is its workspace-relative path (the pipeline's
 * name is its basename). Workspace-level checks (unknown deps, duplicate outputs, cycles,
 * `{stage}` expansion) are the link step's job: see `linkWorkspace`.
 */
export function parsePipelineFile(text: string, file: string, ctx: SpecContext): ParseResult {
  const pipeline = pipelineNameOf(file);
  const diagnostics: Diagnostic[] = [];
  const empty = (complete: boolean): ParseResult => ({
    pipeline,
    file,
    stages: [],
    sources: new Map(),
    declared: [],
    complete,
    diagnostics,
    paramsFiles: [],
  });
  if (!STAGE_NAME_RE.test(pipeline)) {
    diagnostics.push({
      code: 'HPCFLOW_SPEC_BAD_VALUE',
      message: `pipeline name '${pipeline}' (the file's basename) is not a valid name`,
      pos: { file, line: 1, col: 1 },
      hint: 'rename the file: letters, digits, "_", "." and "-", not starting with "." or "-"',
    });
    return empty(false);
  }
  const src = parseYamlSource(text, file);
  diagnostics.push(...src.diagnostics);
  if (src.value === undefined) return empty(false);

  const parsed = PipelineFileSchema.safeParse(src.value);
  const issues = parsed.success ? [] : parsed.error.issues;
  diagnostics.push(...issuesToDiagnostics(issues, src, PipelineFileSchema));
  const broken = brokenStages(issues);
  const raw = isRecord(src.value) ? src.value : {};
  const rawStages = isRecord(raw.stages) ? raw.stages : {};

  let defaults: DefaultsInput | undefined;
  let paramsFile: string | null = DEFAULT_PARAMS_FILE;
  if (!broken.has(null)) {
    defaults = raw.defaults === undefined ? undefined : DefaultsSchema.parse(raw.defaults);
    if (typeof raw.params_file === 'string') {
      const n = normaliseWorkspacePath(raw.params_file);
      paramsFile = n.ok ? n.path : null;
      if (!n.ok) {
        diagnostics.push({
          code: 'HPCFLOW_SPEC_PATH_ESCAPE',
          message: `params_file '${raw.params_file}' ${pathProblemText(n.reason)}`,
          pos: src.pos(['params_file']),
          hint: 'params files are workspace-relative, e.g. params.yaml or config/params.yaml',
        });
      }
    }
  }

  const files = new ParamsFiles((p) => ctx.readParamsFile(p));
  const imageChecks = new Map<string, Diagnostic | null>();
  const stages: Stage[] = [];
  const sources = new Map<string, StageSource>();
  const declared: DeclaredStage[] = [];
  for (const name of src.keys(['stages'])) {
    const baseId = `${pipeline}/${name}`;
    const pos = src.keyPos(['stages', name]);
    const declare = (ok: boolean): void => {
      const r = ok ? { outputs: [], complete: true } : rawOutputs(rawStages[name]);
      declared.push({ pipeline, name, baseId, pos, broken: !ok, outputs: r.outputs, outputsComplete: r.complete });
    };
    // (A key the YAML value spells differently is never validated: treat it as broken, not parse it.)
    if (broken.has(null) || broken.has(name) || !STAGE_NAME_RE.test(name) || !Object.hasOwn(rawStages, name)) {
      declare(false);
      continue;
    }
    // zod validates a record without its `__proto__` entry: such a stage is checked here.
    const checked = StageSchema.safeParse(rawStages[name]);
    if (!checked.success) {
      const issues = checked.error.issues.map((i) => ({ ...i, path: ['stages', name, ...i.path] }));
      diagnostics.push(...issuesToDiagnostics(issues, src, PipelineFileSchema));
      declare(false);
      continue;
    }
    const input = checked.data;
    const paramsFilePos = typeof raw.params_file === 'string' ? src.pos(['params_file']) : null;
    const rp = resolveParams(input, { src, baseId, stagePath: ['stages', name], paramsFile, paramsFilePos, files });
    const rs = resolveStage(name, input, rp, { pipeline, src, defaults, ctx, imageChecks });
    diagnostics.push(...rs.diagnostics);
    declare(!rs.broken);
    for (const c of rs.cells) {
      stages.push(c.stage);
      sources.set(c.stage.id, c.source);
    }
  }
  return { pipeline, file, stages, sources, declared, complete: true, diagnostics, paramsFiles: files.paths() };
}
