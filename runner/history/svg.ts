/**
 * A line chart of one metric over commits, as a standalone SVG document. Pure and deterministic
 * (coordinates rounded to 0.01), so the output can be snapshot-tested and diffed: no fonts are
 * measured, no dates or random ids are embedded.
 */
import { formatNumber } from './table.js';

export interface PlotPoint {
  /** The x-axis label: a short commit id. */
  readonly label: string;
  readonly value: number;
  /** Tooltip text (default `label: value`). */
  readonly note?: string;
}

export interface ChartOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly width?: number;
  readonly height?: number;
  /** At most this many x labels are drawn (every k-th point otherwise; the last always). */
  readonly maxLabels?: number;
}

/** Escapes text for XML character data and attribute values. */
export const xmlEscape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);

const r2 = (v: number): string => String(Math.round(v * 100) / 100);

/**
 * Round-number ticks covering [min, max]: steps of 1, 2, 2.5 or 5 × 10^k, about `target` of
 * them. A flat range is widened around its value first.
 */
export function niceTicks(min: number, max: number, target = 5): number[] {
  let lo = Math.min(min, max);
  let hi = Math.max(min, max);
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag) as number;
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  const start = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const t = Number((start + i * step).toFixed(decimals));
    ticks.push(Object.is(t, -0) ? 0 : t);
    if (t >= hi - step * 1e-9 || i > 1000) break;
  }
  return ticks;
}

/** The chart as an SVG document (UTF-8 text, ending in a newline). Points oldest → newest. */
export function renderLineChart(points: readonly PlotPoint[], opts: ChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 400;
  const n = points.length;
  const rotate = n > 8;
  const m = { left: 72, right: 24, top: opts.subtitle === undefined ? 44 : 60, bottom: rotate ? 86 : 48 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const values = points.map((p) => p.value);
  const ticks = n === 0 ? niceTicks(0, 1) : niceTicks(Math.min(...values), Math.max(...values));
  const yMin = ticks[0] as number;
  const yMax = ticks[ticks.length - 1] as number;
  const y = (v: number): number => m.top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;
  const pad = Math.min(24, plotW / 8);
  const x = (i: number): number => (n <= 1 ? m.left + plotW / 2 : m.left + pad + (i * (plotW - 2 * pad)) / (n - 1));
  const bottom = m.top + plotH;

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`  <title>${xmlEscape(opts.title)}</title>`);
  out.push(`  <rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`  <text class="title" x="${r2(width / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${xmlEscape(opts.title)}</text>`);
  if (opts.subtitle !== undefined) out.push(`  <text class="subtitle" x="${r2(width / 2)}" y="42" text-anchor="middle" fill="#555555">${xmlEscape(opts.subtitle)}</text>`);

  out.push('  <g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const t of ticks) out.push(`    <line x1="${m.left}" y1="${r2(y(t))}" x2="${m.left + plotW}" y2="${r2(y(t))}"/>`);
  out.push('  </g>');

  out.push('  <g class="y-axis" text-anchor="end">');
  out.push(`    <line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${bottom}" stroke="#333333"/>`);
  for (const t of ticks) {
    out.push(`    <line x1="${m.left - 5}" y1="${r2(y(t))}" x2="${m.left}" y2="${r2(y(t))}" stroke="#333333"/>`);
    out.push(`    <text x="${m.left - 8}" y="${r2(y(t) + 4)}">${xmlEscape(formatNumber(t))}</text>`);
  }
  out.push('  </g>');

  const every = Math.max(1, Math.ceil(n / Math.max(1, opts.maxLabels ?? 24)));
  out.push(`  <g class="x-axis" text-anchor="${rotate ? 'end' : 'middle'}" font-family="monospace" font-size="11">`);
  out.push(`    <line x1="${m.left}" y1="${bottom}" x2="${m.left + plotW}" y2="${bottom}" stroke="#333333"/>`);
  points.forEach((p, i) => {
    out.push(`    <line x1="${r2(x(i))}" y1="${bottom}" x2="${r2(x(i))}" y2="${bottom + 5}" stroke="#333333"/>`);
    if (i % every !== 0 && i !== n - 1) return;
    const lx = r2(x(i));
    const ly = bottom + 18;
    const t = rotate ? ` transform="rotate(-40 ${lx} ${ly})"` : '';
    out.push(`    <text x="${lx}" y="${ly}"${t}>${xmlEscape(p.label)}</text>`);
  });
  out.push('  </g>');

  if (n === 0) {
    out.push(`  <text class="empty" x="${r2(m.left + plotW / 2)}" y="${r2(m.top + plotH / 2)}" text-anchor="middle" fill="#888888">no data</text>`);
  } else {
    const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${r2(x(i))} ${r2(y(p.value))}`).join(' ');
    out.push(`  <path class="series" d="${d}" fill="none" stroke="#1f77b4" stroke-width="2" stroke-linejoin="round"/>`);
    out.push('  <g class="points" fill="#1f77b4">');
    points.forEach((p, i) => {
      out.push(`    <circle cx="${r2(x(i))}" cy="${r2(y(p.value))}" r="3.5"><title>${xmlEscape(p.note ?? `${p.label}: ${formatNumber(p.value)}`)}</title></circle>`);
    });
    out.push('  </g>');
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
