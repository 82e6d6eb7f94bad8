/**
 * PURE: the subset of `.dockerignore` that hpcflow honours, with Docker's semantics:
 * - one pattern a line; blank lines and lines starting with `#` are skipped;
 * - `*` any run of characters except `/`, `?` one such character, `**` any number of directories,
 *   `[abc]` / `[!abc]` / `[a-z]` character classes, `\` escapes the next character;
 * - a leading `/` is dropped (patterns are relative to the context root); a trailing `/` too;
 * - a pattern excludes a path when it matches the path or one of its parent directories;
 * - `!pattern` re-includes; the LAST matching line decides.
 * Not supported (treated literally): Go's `filepath.Clean` of `..` segments inside patterns.
 *
 * The Dockerfile and `.dockerignore` are always sent (Docker sends them even when excluded), so
 * they are never ignored here either.
 */

export interface IgnoreRule {
  readonly pattern: string;
  readonly negate: boolean;
  readonly regex: RegExp;
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1).trim();
    line = line.replace(/^\/+/, '').replace(/\/+$/, '');
    if (line.startsWith('./')) line = line.slice(2);
    if (line === '') continue;
    rules.push({ pattern: line, negate, regex: patternToRegex(line) });
  }
  return rules;
}

/** Glob → anchored regex over a POSIX relative path. */
export function patternToRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more whole directories; a bare `**` anything at all.
        if (pattern[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRegex(pattern[i + 1] as string);
      i += 1;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
      } else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!') || body.startsWith('^')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\').replace(/\//g, '') + ']';
        i = end;
      }
    } else {
      re += escapeRegex(c);
    }
  }
  return new RegExp('^' + re + '$');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Is `relPath` (POSIX, relative to the context root) excluded from the build context? */
export function isIgnored(relPath: string, rules: readonly IgnoreRule[], dockerfile = 'Dockerfile'): boolean {
  if (rules.length === 0 || relPath === dockerfile || relPath === '.dockerignore') return false;
  const prefixes: string[] = [];
  let from = 0;
  for (;;) {
    const slash = relPath.indexOf('/', from);
    if (slash === -1) break;
    prefixes.push(relPath.slice(0, slash));
    from = slash + 1;
  }
  prefixes.push(relPath);
  let ignored = false;
  for (const rule of rules) {
    if (prefixes.some((p) => rule.regex.test(p))) ignored = !rule.negate;
  }
  return ignored;
}

/** Whether a directory's subtree can be skipped outright (no `!` rule could re-include a child). */
export function canPruneDirectory(relDir: string, rules: readonly IgnoreRule[]): boolean {
  return !rules.some((r) => r.negate) && isIgnored(relDir, rules);
}
