/** Ordering and de-duplication of diagnostics, so output is stable and each problem is said once. */
import type { Diagnostic } from '../model/diagnostic.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { compareStrings } from './paths.js';

/** Every diagnostic code the spec layer emits. */
export const SPEC_CODES = [
  'HPCFLOW_SPEC_YAML',
  'HPCFLOW_SPEC_TYPE',
  'HPCFLOW_SPEC_UNKNOWN_KEY',
  'HPCFLOW_SPEC_UNKNOWN_DEP',
  'HPCFLOW_SPEC_DUPLICATE_OUTPUT',
  'HPCFLOW_SPEC_CYCLE',
  'HPCFLOW_SPEC_UNKNOWN_PARAM',
  'HPCFLOW_SPEC_PARAMS_FILE',
  'HPCFLOW_SPEC_INTERPOLATION',
  'HPCFLOW_SPEC_PATH_ESCAPE',
  'HPCFLOW_SPEC_IMAGE_CONTEXT',
  'HPCFLOW_SPEC_DUPLICATE_STAGE',
  'HPCFLOW_SPEC_BAD_VALUE',
] as const;

/** One of `SPEC_CODES`. */
export type SpecCode = (typeof SPEC_CODES)[number];

/** By file, line, column (position-less first), then code and message; identical ones once. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const unique = ds.filter((d) => {
    const key = formatDiagnostic(d);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort((a, b) => {
    if (a.pos === null || b.pos === null) return a.pos === b.pos ? 0 : a.pos === null ? -1 : 1;
    return (
      compareStrings(a.pos.file, b.pos.file) ||
      a.pos.line - b.pos.line ||
      a.pos.col - b.pos.col ||
      compareStrings(a.code, b.code) ||
      compareStrings(a.message, b.message)
    );
  });
}
