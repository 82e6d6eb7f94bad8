/**
 * `${name}` substitution. Only the braced form is ours: `$VAR` and `$(…)` belong to the shell
 * that runs the command and pass through untouched; `$${` is the escape for a literal `${`.
 */

/** A `${…}` reference that could not be substituted. */
export interface InterpolationProblem {
  /** The name inside the braces ('' for `${}`), or null for an unterminated `${`. */
  readonly name: string | null;
  /** The exact source text of the reference (`${x}`, or `${x` when unterminated). */
  readonly token: string;
}

export interface Interpolated {
  readonly text: string;
  readonly problems: readonly InterpolationProblem[];
}

/** Text form of a parameter value: strings as-is, everything else as JSON. */
export function paramText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
}

/** Replace every `${name}` with `lookup(name)`; unknown names are reported and left in place. */
export function interpolate(text: string, lookup: (name: string) => unknown): Interpolated {
  if (!text.includes('${')) return { text, problems: [] };
  const problems: InterpolationProblem[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (text.startsWith('${', i)) {
      const end = text.indexOf('}', i + 2);
      if (end < 0) {
        problems.push({ name: null, token: text.slice(i) });
        out += text.slice(i);
        break;
      }
      const token = text.slice(i, end + 1);
      const name = text.slice(i + 2, end).trim();
      const value = name === '' ? undefined : lookup(name);
      if (value === undefined) {
        problems.push({ name, token });
        out += token;
      } else {
        out += paramText(value);
      }
      i = end + 1;
      continue;
    }
    out += text[i];
    i += 1;
  }
  return { text: out, problems };
}
