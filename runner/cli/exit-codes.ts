import type { ErrorCode } from '../errors.js';

/** The one table of exit codes. Documented in README ("Exit codes"). */
export const EXIT = {
  ok: 0,
  /** A stage failed, was skipped because of a failure, or (status --check) work is pending. */
  stageFailed: 1,
  usage: 2,
  invalidInput: 3,
  environment: 4,
  locked: 5,
  interrupted: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'HPCFLOW_USAGE':
      return EXIT.usage;
    case 'HPCFLOW_SPEC_INVALID':
    case 'HPCFLOW_LOCKFILE_INVALID':
    case 'HPCFLOW_PATH_ESCAPE':
    case 'HPCFLOW_NOT_A_WORKSPACE':
      return EXIT.invalidInput;
    case 'HPCFLOW_ENGINE_UNAVAILABLE':
    case 'HPCFLOW_IMAGE_BUILD_FAILED':
    case 'HPCFLOW_IMAGE_NOT_FOUND':
    case 'HPCFLOW_CACHE_CORRUPT':
    case 'HPCFLOW_GIT':
    case 'HPCFLOW_SCHEDULER':
    case 'HPCFLOW_GITHUB':
      return EXIT.environment;
    case 'HPCFLOW_WORKSPACE_LOCKED':
      return EXIT.locked;
    case 'HPCFLOW_ABORTED':
      return EXIT.interrupted;
    case 'HPCFLOW_STAGE_FAILED':
      return EXIT.stageFailed;
    default: {
      const never: never = code;
      return never;
    }
  }
}
