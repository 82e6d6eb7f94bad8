/**
 * The resolved pipeline model: what every module after `spec/` consumes.
 *
 * `spec/` turns YAML text into this (matrix expanded, `${…}` interpolated, params resolved to
 * values, paths normalised to workspace-relative POSIX form). Nothing here is YAML-shaped and
 * nothing here needs the YAML or zod libraries, so the fast paths (a cached, already validated
 * model) can load it with `JSON.parse` alone.
 */
import type { BuildPlan, KernelSpec, LaunchMode } from '../frameworks/types.js';

/** A position in a source file, 1-based line and column. */
export interface SourcePos {
  readonly file: string; // workspace-relative path, e.g. "pipelines/heat.yaml"
  readonly line: number;
  readonly col: number;
}

/** How a stage's image is obtained. */
export type ImageSpec =
  /** An image by name (`debian:bookworm`, `local/openmp:1`); must exist in the engine or be pullable. */
  | { readonly kind: 'ref'; readonly ref: string }
  /** Built from `containers/<context>/` (a Dockerfile inside); tagged by the context's content hash. */
  | { readonly kind: 'build'; readonly context: string; readonly dockerfile: string };

/** Launch shape: everything about how many processes/threads/nodes a stage runs with. */
export interface Resources {
  readonly nodes: number;
  readonly tasksPerNode: number;
  readonly cpusPerTask: number;
  /** Memory per node in bytes, or null for the site default. */
  readonly memoryBytes: number | null;
  /** Time limit in seconds, or null for none. */
  readonly timeLimitSec: number | null;
  /** Scheduler placement (Slurm); absent = the site's default. Never part of the fingerprint. */
  readonly partition?: string;
  readonly account?: string;
  readonly qos?: string;
  readonly constraint?: string;
}

export interface OutSpec {
  /** Workspace-relative POSIX path; directories have no trailing slash. */
  readonly path: string;
  /** false: not stored in the content cache (still checked for existence). */
  readonly cache: boolean;
  /** Record this output directory as a new version of this dataset after each run. */
  readonly dataset?: string;
}

export type DepSpec =
  /** A file or directory in the workspace (possibly another stage's output). */
  | { readonly kind: 'path'; readonly path: string }
  /** Every output of another stage (by stage id). */
  | { readonly kind: 'stage'; readonly stage: string }
  /**
   * A versioned dataset (datasets/<name>.yaml). Its version id enters the fingerprint; the
   * working copy must be exactly the committed version, and with `version` (a dataset tag,
   * version id prefix or git revision) exactly that one.
   */
  | { readonly kind: 'dataset'; readonly dataset: string; readonly version: string | null };

/** A kernel stage's framework, as the engine needs it (the commands are in cmd and env). */
export interface StageKernel {
  /** The kernel as written (interpolated, paths normalised), for re-planning with site settings. */
  readonly spec: KernelSpec;
  readonly mode: LaunchMode;
  /** The directory compiled as one unit (its hash is in the compile key); a dependency of the stage. */
  readonly unit: string;
  /** The compile step, or null (Julia). Paths under `$HPCFLOW_KERNEL_DIR`. */
  readonly build: BuildPlan | null;
  /** The stage's own environment (defaults.env and env, interpolated); it wins over the adapter's. */
  readonly env: Readonly<Record<string, string>>;
}

/** One resolved parameter the stage uses. */
export interface ParamValue {
  /** The name the stage sees (`${name}` in cmd) and the explanation reports. */
  readonly name: string;
  /** JSON value. */
  readonly value: unknown;
  /** Where it came from: "inline", "matrix", or a params file path. */
  readonly source: string;
}

/** A fully expanded stage (one matrix cell is one stage). */
export interface Stage {
  /** Globally unique id: `<pipeline>/<stage>` or `<pipeline>/<stage>@k=v,k=v` for matrix cells. */
  readonly id: string;
  readonly pipeline: string;
  /** The stage's name in YAML (without matrix suffix). */
  readonly name: string;
  /** Matrix coordinates of this cell, in declaration order; empty when not a matrix stage. */
  readonly matrix: Readonly<Record<string, string | number | boolean>>;
  readonly image: ImageSpec;
  /** The interpolated command, run by `/bin/sh -c` in the container. */
  readonly cmd: string;
  /** Working directory relative to the workspace ('' = workspace root). */
  readonly wdir: string;
  readonly deps: readonly DepSpec[];
  /** Sorted by name. */
  readonly params: readonly ParamValue[];
  readonly outs: readonly OutSpec[];
  /** Workspace-relative path of the metrics JSON the stage writes, or null. Also an output. */
  readonly metrics: string | null;
  readonly resources: Resources;
  /** Environment variables set in the container (sorted by key when serialised). */
  readonly env: Readonly<Record<string, string>>;
  /** Where the stage is declared (for diagnostics downstream of spec/). */
  readonly pos: SourcePos;
  /** Set for `kernel:` stages: cmd and env were generated by the framework adapter. */
  readonly kernel?: StageKernel;
  /**
   * How exactly a re-run must reproduce the outputs and metrics (`hpcflow reproduce`): v' reproduces
   * v when |v' − v| ≤ abs + rel·|v|. Absent: bitwise. Not part of the fingerprint.
   */
  readonly tolerance?: Tolerance;
}

/** A stage's declared reproduction tolerance (both default to 0). */
export interface Tolerance {
  readonly rel: number;
  readonly abs: number;
}

export interface Pipeline {
  /** Stages of all pipelines in the workspace, in declaration order. */
  readonly stages: readonly Stage[];
  /** Workspace-relative pipeline files that were read. */
  readonly files: readonly string[];
}
