import type { SourcePos } from './pipeline.js';

/**
 * A user-facing problem in an input file. `code` is stable (documented in docs/errors.md);
 * `message` says what is wrong, `hint` what to do about it.
 */
export interface Diagnostic {
  readonly code: string;
  readonly message: string;
  readonly pos: SourcePos | null;
  readonly hint?: string;
  /** Further positions that belong to the problem (the other duplicate, the rest of a cycle). */
  readonly related?: readonly { readonly pos: SourcePos; readonly message: string }[];
}

/** `file:line:col: error CODE: message` plus hint and related lines, as compilers print them. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.pos ? `${d.pos.file}:${d.pos.line}:${d.pos.col}: ` : '';
  const lines = [`${where}error ${d.code}: ${d.message}`];
  for (const r of d.related ?? []) lines.push(`  ${r.pos.file}:${r.pos.line}:${r.pos.col}: note: ${r.message}`);
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join('\n');
}
