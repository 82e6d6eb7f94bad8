import { resolve } from 'node:path';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

/** `hpcflow schema [--write FILE]`: the JSON Schema of pipeline files, for editors. */
export async function cmdSchema(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parse(args, { ...COMMON_OPTIONS, write: { type: 'string' } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const { pipelineJsonSchemaText } = await import('../spec/schema.js');
  const text = pipelineJsonSchemaText();
  if (values.write !== undefined) {
    await writeFileAtomic(resolve(io.cwd, values.write), text);
    io.out(`wrote ${values.write}\n`);
  } else io.out(text);
  return EXIT.ok;
}
