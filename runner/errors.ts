import type { Diagnostic } from './model/diagnostic.js';

/**
 * Stable error codes. A code never changes meaning; the CLI maps codes to exit codes in one
 * table (cli/exit-codes.ts). Expected failures of a *stage* are values (engine outcomes), not
 * errors: these are for the runner's own inputs and environment.
 */
export type ErrorCode =
  | 'HPCFLOW_SPEC_INVALID'
  | 'HPCFLOW_NOT_A_WORKSPACE'
  | 'HPCFLOW_USAGE'
  | 'HPCFLOW_LOCKFILE_INVALID'
  | 'HPCFLOW_CACHE_CORRUPT'
  | 'HPCFLOW_PATH_ESCAPE'
  | 'HPCFLOW_ENGINE_UNAVAILABLE'
  | 'HPCFLOW_IMAGE_BUILD_FAILED'
  | 'HPCFLOW_IMAGE_NOT_FOUND'
  | 'HPCFLOW_WORKSPACE_LOCKED'
  | 'HPCFLOW_ABORTED'
  | 'HPCFLOW_STAGE_FAILED'
  | 'HPCFLOW_GIT'
  /** The batch scheduler (Slurm) cannot be reached or refused a request. */
  | 'HPCFLOW_SCHEDULER'
  /** The GitHub API refused a request (token, permissions, not found). */
  | 'HPCFLOW_GITHUB';

export class HpcflowError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly diagnostics: readonly Diagnostic[];

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; cause?: unknown; diagnostics?: readonly Diagnostic[] } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HpcflowError';
    this.code = code;
    this.hint = opts.hint;
    this.diagnostics = opts.diagnostics ?? [];
  }
}

export function isHpcflowError(e: unknown, code?: ErrorCode): e is HpcflowError {
  return e instanceof HpcflowError && (code === undefined || e.code === code);
}
