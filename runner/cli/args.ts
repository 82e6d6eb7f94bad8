import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { HpcflowError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  workspace: { type: 'string', short: 'C' },
  json: { type: 'boolean', default: false },
  'cache-dir': { type: 'string' },
  site: { type: 'string' },
  executor: { type: 'string' },
  matrix: { type: 'string', multiple: true },
  lenient: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies Options;

/** node:util parseArgs (no dependency, no start-up cost) with usage errors as HpcflowError. */
export function parse<O extends Options>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new HpcflowError('HPCFLOW_USAGE', (e as Error).message, { hint: "run 'hpcflow --help'" });
  }
}
