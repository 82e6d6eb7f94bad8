/** Unwrapping a `LoadResult`; kept apart so the cache fast path needs neither yaml nor zod. */
import { HpcflowError } from '../errors.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import type { Pipeline } from '../model/pipeline.js';
import type { LoadResult } from './types.js';

/** The model of a successful load, or `HPCFLOW_SPEC_INVALID` carrying every diagnostic. */
export function pipelineOrThrow(result: LoadResult): Pipeline {
  if (result.ok) return result.pipeline;
  const n = result.diagnostics.length;
  const first = result.diagnostics[0];
  throw new HpcflowError(
    'HPCFLOW_SPEC_INVALID',
    `the pipeline spec has ${n} error${n === 1 ? '' : 's'}${first ? `; first:\n${formatDiagnostic(first)}` : ''}`,
    { diagnostics: result.diagnostics, hint: 'fix the errors listed (file:line:col) and run again' },
  );
}
