/** Plain-text tables and number formatting for the history commands. Pure. */

export type Align = 'left' | 'right';

/**
 * Columns padded to their widest cell, two spaces apart, trailing blanks trimmed. `align` per
 * column (default left); the header follows its column's alignment.
 */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: readonly string[]): string =>
    header
      .map((_, i) => {
        const cell = r[i] ?? '';
        const pad = ' '.repeat((widths[i] ?? 0) - [...cell].length);
        return align[i] === 'right' ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return `${all.map(line).join('\n')}\n`;
}

/**
 * A number for people: integers as they are, others to 6 significant digits without trailing
 * zeros (0.1 + 0.2 prints as 0.3), very large or small ones in exponent form.
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const p = Number(v.toPrecision(6));
  const abs = Math.abs(p);
  if (abs !== 0 && (abs >= 1e15 || abs < 1e-4)) return p.toExponential().replace(/\.?0+e/, 'e');
  return String(p);
}

/** `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const total = Math.round(s);
  if (total < 3600) return `${Math.floor(total / 60)}m ${String(total % 60).padStart(2, '0')}s`;
  const min = Math.round(total / 60);
  return `${Math.floor(min / 60)}h ${String(min % 60).padStart(2, '0')}m`;
}

/** Seconds since the epoch as `2026-11-24 23:00` (UTC, as `git log --date=iso` shows it in UTC). */
export const formatDate = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 16);
