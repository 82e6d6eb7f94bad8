/** Option values shared by the history commands. Pure. */
import { HpcflowError } from '../errors.js';

/** `-n N`: a positive integer, `fallback` when absent. */
export function parseCount(v: string | undefined, fallback: number, flag = '-n'): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new HpcflowError('HPCFLOW_USAGE', `${flag} must be a positive number (got '${v}')`, { hint: `e.g. ${flag} 50` });
  }
  return Number(v);
}
