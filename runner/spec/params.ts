/**
 * Params files: YAML (or JSON) documents whose values stages read by dotted key. Each file is
 * parsed once per pipeline file and kept with its key list for did-you-mean suggestions.
 */
import type { Diagnostic } from '../model/diagnostic.js';
import type { SourcePos } from '../model/pipeline.js';
import { closest } from './did-you-mean.js';
import { parseYamlSource } from './yaml-source.js';

/** Reads a params file by workspace-relative path; null when it does not exist. */
export type ReadParamsFile = (path: string) => { readonly text: string } | null;

/** A loaded params file, or why it could not be loaded. */
export type ParamsFile =
  | { readonly ok: true; readonly path: string; readonly value: Readonly<Record<string, unknown>>; readonly keys: readonly string[] }
  | { readonly ok: false; readonly path: string; readonly missing: boolean; readonly diagnostics: readonly Diagnostic[] };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Every dotted key of a nested mapping, parents before children. */
function dottedKeys(v: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, child] of Object.entries(v)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    out.push(key);
    if (isRecord(child)) out.push(...dottedKeys(child, key));
  }
  return out;
}

/** Parse a params file's text; `path` is workspace-relative. */
export function parseParamsFile(path: string, text: string): ParamsFile {
  const src = parseYamlSource(text, path);
  if (src.diagnostics.length > 0) {
    return {
      ok: false,
      path,
      missing: false,
      diagnostics: src.diagnostics.map((d) => ({
        ...d,
        code: 'HPCFLOW_SPEC_PARAMS_FILE',
        message: `params file ${path} is not valid YAML: ${d.message}`,
      })),
    };
  }
  const value = src.value ?? {};
  if (!isRecord(value)) {
    return {
      ok: false,
      path,
      missing: false,
      diagnostics: [
        {
          code: 'HPCFLOW_SPEC_PARAMS_FILE',
          message: `params file ${path} must contain a mapping of keys to values`,
          pos: src.pos([]),
          hint: 'write it as key: value lines (nested mappings are addressed with dotted keys)',
        },
      ],
    };
  }
  return { ok: true, path, value, keys: dottedKeys(value) };
}

/** Look a dotted key up: `heat.alpha` → value.heat.alpha. A literal key with dots wins. */
export function lookupKey(file: Readonly<Record<string, unknown>>, key: string): { found: boolean; value: unknown } {
  if (Object.hasOwn(file, key)) return { found: true, value: file[key] };
  let cur: unknown = file;
  for (const part of key.split('.')) {
    if (!isRecord(cur) || !Object.hasOwn(cur, part)) return { found: false, value: undefined };
    cur = cur[part];
  }
  return { found: true, value: cur };
}

/** Loads params files on demand, once each. */
export class ParamsFiles {
  private readonly files = new Map<string, ParamsFile>();
  /** Files whose "missing/invalid" diagnostic was already emitted (one per file is enough). */
  private readonly reported = new Set<string>();

  constructor(private readonly read: ReadParamsFile) {}

  get(path: string): ParamsFile {
    let f = this.files.get(path);
    if (!f) {
      const r = this.read(path);
      f = r === null ? { ok: false, path, missing: true, diagnostics: [] } : parseParamsFile(path, r.text);
      this.files.set(path, f);
    }
    return f;
  }

  /** Paths of every params file asked for. */
  paths(): string[] {
    return [...this.files.keys()];
  }

  /**
   * Resolve `key` in `path`. On failure returns the diagnostics to emit: the file's own problem
   * (once per file; a missing file reported at `fileAt`), or an unknown-key diagnostic at `at`.
   */
  resolve(path: string, key: string, at: SourcePos, fileAt: SourcePos = at): { ok: true; value: unknown } | { ok: false; diagnostics: Diagnostic[] } {
    const f = this.get(path);
    if (!f.ok) {
      if (this.reported.has(path)) return { ok: false, diagnostics: [] };
      this.reported.add(path);
      if (!f.missing) return { ok: false, diagnostics: [...f.diagnostics] };
      return {
        ok: false,
        diagnostics: [
          {
            code: 'HPCFLOW_SPEC_PARAMS_FILE',
            message: `params file ${path} does not exist`,
            pos: fileAt,
            hint: `create ${path}, or point params_file: / from: at an existing file`,
          },
        ],
      };
    }
    const r = lookupKey(f.value, key);
    if (r.found) return { ok: true, value: r.value };
    const suggestion = closest(key, f.keys);
    return {
      ok: false,
      diagnostics: [
        {
          code: 'HPCFLOW_SPEC_UNKNOWN_PARAM',
          message: `param key '${key}' is not in ${path}`,
          pos: at,
          hint: `${suggestion ? `did you mean '${suggestion}'? ` : ''}add '${key}' to ${path}, or fix the key`,
        },
      ],
    };
  }
}
