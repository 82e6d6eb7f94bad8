/** YAML configuration files (hpcflow.yaml, the site file): parsed with positions, errors at file:line:col. */
import { HpcflowError } from '../errors.js';
import type { Diagnostic } from '../model/diagnostic.js';
import type { YamlSource } from '../spec/yaml-source.js';
import { parseYamlSource } from '../spec/yaml-source.js';

export interface ConfigSource {
  readonly src: YamlSource;
  /** Throws HPCFLOW_SPEC_INVALID pointing at `path` (its key with `key`). */
  fail(path: readonly PropertyKey[], message: string, hint?: string, key?: boolean): never;
}

/** Parses `text`; a YAML syntax error throws at once, pointing at its position. */
export function parseConfigSource(text: string, file: string): ConfigSource {
  const src = parseYamlSource(text, file);
  if (src.diagnostics.length > 0) {
    const d = src.diagnostics[0] as Diagnostic;
    throw new HpcflowError('HPCFLOW_SPEC_INVALID', `${file}: ${d.message}`, { diagnostics: src.diagnostics });
  }
  return {
    src,
    fail(path, message, hint, key = false) {
      const pos = key ? src.keyPos(path) : src.pos(path);
      const d: Diagnostic = { code: 'HPCFLOW_CONFIG_INVALID', message, pos, ...(hint ? { hint } : {}) };
      // The hint is the diagnostic's (printed with it), not the error's: it would be printed twice.
      throw new HpcflowError('HPCFLOW_SPEC_INVALID', `${pos.file}:${pos.line}:${pos.col}: ${message}`, { diagnostics: [d] });
    },
  };
}
