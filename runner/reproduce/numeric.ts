/**
 * Numeric comparison of a recorded output with its re-run: JSON files (numeric leaves), text or
 * CSV files of numbers, and raw little-endian float64 `.bin` files. A value v' reproduces v when
 * |v' − v| ≤ abs + rel·|v| (the stage's `tolerance:`); NaN reproduces NaN, ±Infinity itself.
 *
 * Everything that is not a number must be equal (JSON structure, strings, the words of a text
 * file): otherwise the file is reported as structurally different, whatever the numbers say.
 */
import { open } from 'node:fs/promises';
import type { Tolerance } from '../model/pipeline.js';

export type { Tolerance };

/** Exact: what an output without `tolerance:` must meet. */
export const EXACT: Tolerance = { rel: 0, abs: 0 };

/** Does `value` reproduce `recorded` within `t`? */
export function withinTolerance(recorded: number, value: number, t: Tolerance): boolean {
  if (Number.isNaN(recorded) || Number.isNaN(value)) return Number.isNaN(recorded) && Number.isNaN(value);
  if (recorded === value) return true;
  if (!Number.isFinite(recorded) || !Number.isFinite(value)) return false;
  return Math.abs(value - recorded) <= t.abs + t.rel * Math.abs(recorded);
}

/** |v' − v|: 0 for equal values (and NaN vs NaN), Infinity when only one is NaN or infinite. */
export function absoluteError(recorded: number, value: number): number {
  if (Number.isNaN(recorded) || Number.isNaN(value)) return Number.isNaN(recorded) && Number.isNaN(value) ? 0 : Infinity;
  if (recorded === value) return 0;
  const d = Math.abs(value - recorded);
  return Number.isFinite(d) ? d : Infinity;
}

/** |v' − v| / |v|: Infinity for a zero (or non-finite) recorded value that changed. */
export function relativeError(recorded: number, value: number): number {
  const a = absoluteError(recorded, value);
  if (a === 0) return 0;
  if (!Number.isFinite(a) || recorded === 0 || !Number.isFinite(recorded)) return Infinity;
  return a / Math.abs(recorded);
}

/** The outcome of comparing two files number by number. */
export interface NumericComparison {
  readonly format: 'json' | 'text' | 'float64';
  /** Numbers compared. */
  readonly count: number;
  /** Of those, how many are outside the tolerance. */
  readonly outside: number;
  readonly maxAbsErr: number;
  readonly maxRelErr: number;
  /** Where the largest relative error is ("$.a[2]", "line 3, value 2", "element 17"); null when all are equal. */
  readonly worst: string | null;
  /** The first non-numeric difference (structure, words, sizes); null when there is none. */
  readonly mismatch: string | null;
}

/** Every number within the tolerance and nothing else different. */
export const numericWithin = (c: NumericComparison): boolean => c.mismatch === null && c.outside === 0;

/** Accumulates pairs of numbers. */
class Pairs {
  count = 0;
  outside = 0;
  maxAbsErr = 0;
  maxRelErr = 0;
  worst: string | null = null;
  mismatch: string | null = null;
  constructor(private readonly tol: Tolerance) {}

  add(recorded: number, value: number, where: () => string): void {
    this.count++;
    if (!withinTolerance(recorded, value, this.tol)) this.outside++;
    const a = absoluteError(recorded, value);
    const r = relativeError(recorded, value);
    if (a > this.maxAbsErr) this.maxAbsErr = a;
    if (r > this.maxRelErr || (this.worst === null && a > 0)) {
      this.maxRelErr = Math.max(this.maxRelErr, r);
      this.worst = where();
    }
  }

  differ(what: string): void {
    this.mismatch ??= what;
  }

  result(format: NumericComparison['format']): NumericComparison {
    return { format, count: this.count, outside: this.outside, maxAbsErr: this.maxAbsErr, maxRelErr: this.maxRelErr, worst: this.worst, mismatch: this.mismatch };
  }
}

const keyPath = (base: string, key: string): string => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`);
const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Two parsed JSON values: numeric leaves within the tolerance, everything else equal. */
export function compareJson(recorded: unknown, value: unknown, tol: Tolerance): NumericComparison {
  const p = new Pairs(tol);
  const walk = (a: unknown, b: unknown, at: string): void => {
    if (typeof a === 'number' && typeof b === 'number') {
      p.add(a, b, () => at);
      return;
    }
    if (kindOf(a) !== kindOf(b)) {
      p.differ(`${at}: ${kindOf(a)} recorded, ${kindOf(b)} now`);
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) p.differ(`${at}: ${a.length} items recorded, ${b.length} now`);
      for (let i = 0; i < Math.min(a.length, b.length); i++) walk(a[i], b[i], `${at}[${i}]`);
      return;
    }
    if (a !== null && typeof a === 'object' && b !== null && typeof b === 'object') {
      const ra = a as Record<string, unknown>;
      const rb = b as Record<string, unknown>;
      for (const k of Object.keys(ra)) {
        if (!Object.hasOwn(rb, k)) p.differ(`${keyPath(at, k)}: only in the recorded file`);
        else walk(ra[k], rb[k], keyPath(at, k));
      }
      for (const k of Object.keys(rb)) if (!Object.hasOwn(ra, k)) p.differ(`${keyPath(at, k)}: only in the new file`);
      return;
    }
    if (a !== b) p.differ(`${at}: ${JSON.stringify(a)} recorded, ${JSON.stringify(b)} now`);
  };
  walk(recorded, value, '$');
  return p.result('json');
}

/** The numeric leaves of a JSON value, by path ("$.a.b[0]" without the "$."), in document order. */
export function numericLeaves(v: unknown): [string, number][] {
  const out: [string, number][] = [];
  const walk = (x: unknown, at: string): void => {
    if (typeof x === 'number') out.push([at === '$' ? '' : at.replace(/^\$\.?/, ''), x]);
    else if (Array.isArray(x)) x.forEach((y, i) => walk(y, `${at}[${i}]`));
    else if (x !== null && typeof x === 'object') for (const [k, y] of Object.entries(x)) walk(y, keyPath(at, k));
  };
  walk(v, '$');
  return out;
}

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eEdD][+-]?\d+)?$/;
const SPECIAL_RE = /^[+-]?(?:nan|inf|infinity)$/i;

/** A token of a text file as a number (Fortran `1.5D-3`, `nan`, `-inf` included), or null. */
export function parseNumberToken(t: string): number | null {
  if (NUMBER_RE.test(t)) return Number(t.replace(/[dD]/, 'e'));
  if (SPECIAL_RE.test(t)) {
    const neg = t.startsWith('-');
    return /nan/i.test(t) ? NaN : neg ? -Infinity : Infinity;
  }
  return null;
}

interface Token {
  readonly text: string;
  readonly line: number;
  readonly index: number;
}

function tokens(text: string): Token[] {
  const out: Token[] = [];
  const lines = text.split(/\r?\n/);
  for (let l = 0; l < lines.length; l++) {
    let i = 0;
    for (const t of (lines[l] as string).split(/[\s,;=]+/)) {
      if (t === '') continue;
      out.push({ text: t, line: l + 1, index: ++i });
    }
  }
  return out;
}

/**
 * Two text files (CSV, whitespace-separated tables, "key value" lines): split into tokens at
 * whitespace, commas, semicolons and "="; tokens that are numbers on both sides are compared
 * within the tolerance, all others must be equal. Null when neither file holds a number.
 */
export function compareText(recorded: string, value: string, tol: Tolerance): NumericComparison | null {
  const a = tokens(recorded);
  const b = tokens(value);
  const p = new Pairs(tol);
  if (a.length !== b.length) p.differ(`${a.length} values and words recorded, ${b.length} now`);
  let numbers = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as Token;
    const y = b[i] as Token;
    const nx = parseNumberToken(x.text);
    const ny = parseNumberToken(y.text);
    if (nx !== null && ny !== null) {
      numbers++;
      p.add(nx, ny, () => `line ${y.line}, value ${y.index}`);
    } else if (x.text !== y.text) {
      p.differ(`line ${y.line}: "${x.text}" recorded, "${y.text}" now`);
    }
  }
  if (numbers === 0) return null;
  return p.result('text');
}

/** Where bytes come from: a file, or bytes in memory (a git blob). */
export type Content = { readonly file: string; readonly size: number } | { readonly bytes: Buffer };

export const contentSize = (c: Content): number => ('bytes' in c ? c.bytes.length : c.size);

/** Reads sequential chunks of a content, each a multiple of 8 bytes except the last. */
async function* chunks(c: Content, chunk = 8 << 20): AsyncGenerator<Buffer> {
  if ('bytes' in c) {
    for (let o = 0; o < c.bytes.length; o += chunk) yield c.bytes.subarray(o, o + chunk);
    return;
  }
  const fh = await open(c.file, 'r');
  try {
    const buf = Buffer.alloc(chunk);
    for (;;) {
      let n = 0;
      // Fill the buffer completely (short reads happen), so chunks stay 8-byte aligned.
      while (n < chunk) {
        const { bytesRead } = await fh.read(buf, n, chunk - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      if (n === 0) return;
      yield Buffer.from(buf.subarray(0, n));
      if (n < chunk) return;
    }
  } finally {
    await fh.close();
  }
}

/** Two raw little-endian float64 arrays, element by element (streamed: any size). */
export async function compareFloat64(recorded: Content, value: Content, tol: Tolerance): Promise<NumericComparison> {
  const p = new Pairs(tol);
  const sa = contentSize(recorded);
  const sb = contentSize(value);
  if (sa % 8 !== 0 || sb % 8 !== 0) {
    p.differ(`not a float64 array (${sa % 8 !== 0 ? sa : sb} bytes is not a multiple of 8)`);
    return p.result('float64');
  }
  if (sa !== sb) {
    p.differ(`${sa / 8} values recorded, ${sb / 8} now`);
    return p.result('float64');
  }
  const ia = chunks(recorded);
  const ib = chunks(value);
  let base = 0;
  for (;;) {
    const [x, y] = await Promise.all([ia.next(), ib.next()]);
    if (x.done === true || y.done === true) break;
    const n = Math.min(x.value.length, y.value.length) >> 3;
    for (let i = 0; i < n; i++) {
      const k = base + i;
      p.add(x.value.readDoubleLE(i * 8), y.value.readDoubleLE(i * 8), () => `element ${k}`);
    }
    base += n;
  }
  return p.result('float64');
}

/** Text when it is valid UTF-8 without NUL bytes. */
export function asText(b: Buffer): string | null {
  if (b.subarray(0, 1 << 16).includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return null;
  }
}

/** Files above this size are compared numerically only when they are float64 `.bin` (streamed). */
export const MAX_PARSED_BYTES = 256 << 20;

async function load(c: Content): Promise<Buffer> {
  if ('bytes' in c) return c.bytes;
  const { readFile } = await import('node:fs/promises');
  return readFile(c.file);
}

/**
 * Compares two versions of an output file numerically, choosing the format by name and content:
 * `.bin` → float64; `.json` (or text starting with `{` / `[`) → JSON; other text → tokens.
 * Returns null with a reason when the file is not numeric (binary, no numbers, too large).
 */
export async function compareNumeric(path: string, recorded: Content, value: Content, tol: Tolerance): Promise<{ comparison: NumericComparison } | { reason: string }> {
  const lower = path.toLowerCase();
  if (lower.endsWith('.bin')) return { comparison: await compareFloat64(recorded, value, tol) };
  if (contentSize(recorded) > MAX_PARSED_BYTES || contentSize(value) > MAX_PARSED_BYTES) return { reason: 'too large to compare number by number' };
  const [ba, bb] = await Promise.all([load(recorded), load(value)]);
  const ta = asText(ba);
  const tb = asText(bb);
  if (ta === null || tb === null) return { reason: 'binary file (only .bin float64 arrays, JSON and text are compared numerically)' };
  if (lower.endsWith('.json') || /^\s*[[{]/.test(ta)) {
    let ja: unknown;
    let jb: unknown;
    let parsed = true;
    try {
      ja = JSON.parse(ta);
      jb = JSON.parse(tb);
    } catch {
      parsed = false;
    }
    if (parsed) return { comparison: compareJson(ja, jb, tol) };
  }
  const c = compareText(ta, tb, tol);
  return c === null ? { reason: 'no numbers in the file' } : { comparison: c };
}
