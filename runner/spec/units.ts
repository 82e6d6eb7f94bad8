/**
 * Memory and time-limit notations of `resources:`. The regular expressions are shared with the
 * schema so the JSON Schema shows editors the same rule the parser enforces.
 */

/** `2G`, `512M`, `1.5T`, `100K` (binary units) or a plain byte count as a string. */
export const MEMORY_RE = /^(\d+(?:\.\d+)?)([KMGTkmgt])?$/;

/** Slurm's forms: `MM:SS`, `HH:MM:SS`, `D-HH:MM:SS`. */
export const TIME_RE = /^(?:(\d+)-([01]?\d|2[0-3]):([0-5]\d):([0-5]\d)|(\d+):([0-5]\d):([0-5]\d)|(\d+):([0-5]\d))$/;

const UNIT_POWER: Record<string, number> = { k: 1, m: 2, g: 3, t: 4 };

/** Bytes for a memory value, or null when the notation is not understood. */
export function parseMemory(v: number | string): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  const m = MEMORY_RE.exec(v.trim());
  if (!m) return null;
  const power = m[2] ? (UNIT_POWER[m[2].toLowerCase()] ?? 0) : 0;
  const bytes = Math.round(Number(m[1]) * 1024 ** power);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Seconds for a time limit, or null when the notation is not understood. */
export function parseTimeLimit(v: number | string): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : null;
  const m = TIME_RE.exec(v.trim());
  if (!m) return null;
  const n = (i: number): number => Number(m[i] ?? 0);
  let sec: number;
  if (m[1] !== undefined) {
    sec = n(1) * 86400 + n(2) * 3600 + n(3) * 60 + n(4);
  } else if (m[5] !== undefined) {
    sec = n(5) * 3600 + n(6) * 60 + n(7);
  } else {
    sec = n(8) * 60 + n(9);
  }
  return sec > 0 ? sec : null;
}
