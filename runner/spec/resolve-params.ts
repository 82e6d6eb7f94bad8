/**
 * A stage's params (list or map form) and matrix, resolved before its cells are built: values
 * do not depend on the cell, matrix coordinates do.
 */
import type { Diagnostic } from '../model/diagnostic.js';
import type { ParamValue, SourcePos } from '../model/pipeline.js';
import { normaliseWorkspacePath, pathProblemText } from './paths.js';
import type { ParamsFiles } from './params.js';
import type { StageInput } from './schema.js';
import type { ValuePath, YamlSource } from './yaml-source.js';

/** Cells beyond this are almost certainly a mistake and would exhaust memory. */
export const MAX_MATRIX_CELLS = 100_000;

export type MatrixValue = string | number | boolean;

export interface ResolvedParams {
  readonly params: readonly ParamValue[];
  /** Names declared but not resolvable (reported already): `${name}` of them is not flagged again. */
  readonly failed: ReadonlySet<string>;
  /** Cells, each the coordinates in declaration order; `[{}]` without a matrix. */
  readonly cells: readonly (readonly [string, MatrixValue][])[];
  readonly diagnostics: readonly Diagnostic[];
}

export interface ParamsEnv {
  readonly src: YamlSource;
  readonly baseId: string;
  readonly stagePath: ValuePath;
  /** The pipeline's params file (normalised), or null when `params_file` itself is invalid. */
  readonly paramsFile: string | null;
  /** Where `params_file:` is written, when it is. */
  readonly paramsFilePos: SourcePos | null;
  readonly files: ParamsFiles;
}

function escapeDiagnostic(raw: string, reason: 'absolute' | 'escape' | 'nul', env: ParamsEnv, path: ValuePath): Diagnostic {
  return {
    code: 'HPCFLOW_SPEC_PATH_ESCAPE',
    message: `params file path '${raw}' ${pathProblemText(reason)}`,
    pos: env.src.pos(path),
    hint: 'params files are workspace-relative, e.g. params.yaml or config/params.yaml',
  };
}

/** Resolve `params:` and expand `matrix:` of one stage. */
export function resolveParams(input: StageInput, env: ParamsEnv): ResolvedParams {
  const diagnostics: Diagnostic[] = [];
  const params: ParamValue[] = [];
  const failed = new Set<string>();
  const base = [...env.stagePath, 'params'];
  const fromFile = (name: string, file: string | null, key: string, keyPath: ValuePath, filePos: SourcePos | null): void => {
    if (file === null) {
      failed.add(name);
      return;
    }
    const at = env.src.pos(keyPath);
    const r = env.files.resolve(file, key, at, filePos ?? at);
    if (r.ok) params.push({ name, value: r.value, source: file });
    else {
      // Also when the file's problem was reported for an earlier stage: this one is unusable too.
      failed.add(name);
      diagnostics.push(...r.diagnostics);
    }
  };
  if (Array.isArray(input.params)) {
    input.params.forEach((key, i) => fromFile(key, env.paramsFile, key, [...base, i], env.paramsFilePos));
  } else if (input.params) {
    for (const [name, v] of Object.entries(input.params)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        let file = env.paramsFile;
        let filePos = env.paramsFilePos;
        if (v.from !== undefined) {
          filePos = env.src.pos([...base, name, 'from']);
          const n = normaliseWorkspacePath(v.from);
          if (n.ok) file = n.path;
          else {
            diagnostics.push(escapeDiagnostic(v.from, n.reason, env, [...base, name, 'from']));
            file = null;
          }
        }
        fromFile(name, file, v.key, [...base, name, 'key'], filePos);
      } else {
        params.push({ name, value: v, source: 'inline' });
      }
    }
  }

  const axes = Object.entries(input.matrix ?? {});
  const names = new Set([...params.map((p) => p.name), ...failed]);
  for (const [key, values] of axes) {
    const keyPath = [...env.stagePath, 'matrix', key];
    if (names.has(key)) {
      diagnostics.push({
        code: 'HPCFLOW_SPEC_BAD_VALUE',
        message: `matrix key '${key}' of stage ${env.baseId} is also a param name`,
        pos: env.src.keyPos(keyPath),
        hint: `rename the matrix key or the param: \${${key}} must mean one thing`,
      });
    }
    const seen = new Set<string>();
    values.forEach((v, j) => {
      const text = String(v);
      if (seen.has(text)) {
        diagnostics.push({
          code: 'HPCFLOW_SPEC_BAD_VALUE',
          message: `matrix value '${text}' of '${key}' appears twice in stage ${env.baseId}`,
          pos: env.src.pos([...keyPath, j]),
          hint: 'remove the repeated value: each cell must be distinct',
        });
      }
      seen.add(text);
    });
  }
  const count = axes.reduce((n, [, vs]) => n * vs.length, 1);
  if (count > MAX_MATRIX_CELLS) {
    diagnostics.push({
      code: 'HPCFLOW_SPEC_BAD_VALUE',
      message: `matrix of stage ${env.baseId} has ${count} cells (at most ${MAX_MATRIX_CELLS})`,
      pos: env.src.keyPos([...env.stagePath, 'matrix']),
      hint: 'split the stage, or use fewer matrix values',
    });
    return { params, failed, cells: [], diagnostics };
  }
  let cells: [string, MatrixValue][][] = [[]];
  for (const [key, values] of axes) {
    // First key varies slowest, like nested loops in declaration order.
    cells = cells.flatMap((c) => values.map((v) => [...c, [key, v] as [string, MatrixValue]]));
  }
  return { params, failed, cells, diagnostics };
}
