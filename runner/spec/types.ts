/** Shared types of the spec layer: its view of the file system and the per-file parse result. */
import type { Diagnostic } from '../model/diagnostic.js';
import type { Pipeline, SourcePos, Stage } from '../model/pipeline.js';

/**
 * Everything the spec needs from the outside world, so that parsing stays pure and testable
 * with an in-memory workspace. All paths are workspace-relative POSIX paths.
 */
export interface SpecContext {
  /** The text of a params file, or null when it does not exist. */
  readParamsFile(path: string): { readonly text: string } | null;
  /** What is at a path (following symlinks), or null when nothing is. */
  exists(path: string): 'file' | 'dir' | null;
  /** Entry names of a directory, for did-you-mean suggestions; null when it is not a directory. */
  listDir?(path: string): readonly string[] | null;
}

/** Where a resolved stage's parts were written, for diagnostics of the workspace-level checks. */
export interface StageSource {
  /** Parallel to `Stage.deps`. */
  readonly deps: readonly SourcePos[];
  /** Parallel to `Stage.outs`. */
  readonly outs: readonly SourcePos[];
  readonly metrics: SourcePos | null;
}

/** A stage as declared in YAML (before matrix expansion), valid or not. */
export interface DeclaredStage {
  readonly pipeline: string;
  readonly name: string;
  /** `<pipeline>/<name>`. */
  readonly baseId: string;
  readonly pos: SourcePos;
  /** True when the stage has errors that leave its cells unknown (it contributes no stages). */
  readonly broken: boolean;
  /** For broken stages: the output paths that could still be read, so deps on them are not flagged. */
  readonly outputs: readonly string[];
  /** False when some output path of a broken stage could not be determined. */
  readonly outputsComplete: boolean;
}

/** The result of parsing one pipeline file on its own. */
export interface ParseResult {
  /** Pipeline name: the file's basename without extension. */
  readonly pipeline: string;
  /** Workspace-relative path of the file. */
  readonly file: string;
  /**
   * Resolved stages (matrix expanded, interpolated) of every stage without errors. `{stage}`
   * deps are not expanded yet: they hold `<pipeline>/<name>` (or a cell id) as written; the
   * workspace link step turns a matrix stage's base id into its cell ids.
   */
  readonly stages: readonly Stage[];
  /** Per stage id. */
  readonly sources: ReadonlyMap<string, StageSource>;
  readonly declared: readonly DeclaredStage[];
  /** False when the file's stages could not even be listed (YAML errors): references into it are not checked. */
  readonly complete: boolean;
  readonly diagnostics: readonly Diagnostic[];
  /** Params files this pipeline file read (workspace-relative). */
  readonly paramsFiles: readonly string[];
}

/** The outcome of loading a workspace: the validated model, or everything wrong with it. */
export type LoadResult =
  | { readonly ok: true; readonly pipeline: Pipeline }
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };
