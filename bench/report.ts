import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { xmlEscape } from '../runner/history/svg.js';
import type { DatasetAddResult } from './dataset-add.js';
import type { DatasetHashResult } from './dataset-hash.js';
import type { DatasetStatusResult } from './dataset-status.js';
import type { HashResult } from './hash.js';
import type { KernelsResult } from './kernels.js';
import { ROOT, fmt, linearFit } from './lib.js';
import type { MpiBenchResult } from './mpi.js';
import type { OverheadResult } from './overhead.js';
import type { ResultsCommitResult } from './results-commit.js';
import type { SlurmBenchResult } from './slurm.js';
import type { SnakemakeResult } from './snakemake.js';
import type { StatusResult } from './status.js';

/**
 * `npm run bench:report`: reads every bench/results/*.json and writes docs/performance.md (and
 * docs/img/perf-*.svg). Each section is taken from the newest file holding it. Nothing is measured
 * here; versions not recorded by a run are asked for at report time and marked so. Every number in
 * the text comes from the results (no hand-written measurements), so the report and the data agree.
 */
interface S {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  readonly n?: number;
}
interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memGiB: number;
  readonly node: string;
}
interface Timing {
  readonly prepS: number;
  readonly sections: Readonly<Record<string, number>>;
  readonly load?: Readonly<Record<string, readonly [number, number]>>;
  readonly totalS: number;
}
interface ResultFile {
  readonly file: string;
  readonly date: string;
  readonly machine: Machine;
  readonly timing?: Timing;
  readonly failed?: Readonly<Record<string, string>>;
  readonly retried?: readonly string[];
  readonly [section: string]: unknown;
}

const cell = (s: S | null | undefined): string => (s == null || s.n === 0 ? '—' : `${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)})`);
const gb = (s: S | null | undefined): string => (s == null ? '—' : `${s.median.toFixed(2)} (${s.p25.toFixed(2)}–${s.p75.toFixed(2)})`);
const r3 = (s: S | null | undefined): string => (s == null ? '—' : `${s.median.toFixed(3)} (${s.p25.toFixed(3)}–${s.p75.toFixed(3)})`);
const yes = (ok: boolean): string => (ok ? '**met**' : '**not met**');
/** Relative interquartile spread of a sample, in percent of its median. */
const spread = (s: S): number => ((s.p75 - s.p25) / s.median) * 100;
const n = (x: number): string => x.toLocaleString('en-US');

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly { readonly x: number; readonly y: number; readonly lo?: number; readonly hi?: number }[];
}

/**
 * A log-log line chart of several series (whiskers p25–p75 when given), as a standalone SVG, with
 * caption lines under the plot (machine, versions, repetitions, what the points and whiskers are).
 * Pure.
 */
export function renderLogLog(series: readonly Series[], o: { title: string; xLabel: string; yLabel: string; caption?: readonly string[]; width?: number; height?: number }): string {
  const W = o.width ?? 760;
  // Caption lines wrapped at word boundaries to the width (11 px sans-serif: ~6 px a character).
  const maxChars = Math.floor((W - 24) / 6.2);
  const caption: string[] = [];
  for (const text of o.caption ?? []) {
    let line = '';
    for (const word of text.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > maxChars) {
        caption.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    if (line !== '') caption.push(line);
  }
  const H = (o.height ?? 420) + caption.length * 16;
  const m = { left: 70, right: 220, top: 44, bottom: 52 + caption.length * 16 };
  const pts = series.flatMap((s) => s.points).filter((p) => p.y > 0 && Number.isFinite(p.y));
  const decade = (v: number, up: boolean): number => 10 ** (up ? Math.ceil(Math.log10(v)) : Math.floor(Math.log10(v)));
  const x0 = decade(Math.min(...pts.map((p) => p.x)), false);
  const x1 = Math.max(decade(Math.max(...pts.map((p) => p.x)), true), x0 * 10);
  const y0 = decade(Math.min(...pts.map((p) => p.lo ?? p.y)), false);
  const y1 = Math.max(decade(Math.max(...pts.map((p) => p.hi ?? p.y)), true), y0 * 10);
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const r = (v: number): string => String(Math.round(v * 100) / 100);
  const X = (v: number): number => m.left + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * pw;
  const Y = (v: number): number => m.top + ph - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph;
  const lab = (v: number): string => (v >= 1000 ? v.toLocaleString('en-US') : String(v));
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `  <title>${xmlEscape(o.title)}</title>`,
    `  <rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `  <text x="${r(m.left + pw / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${xmlEscape(o.title)}</text>`,
  ];
  for (let v = x0; v <= x1 * 1.0001; v *= 10) {
    out.push(`  <line x1="${r(X(v))}" y1="${m.top}" x2="${r(X(v))}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`  <text x="${r(X(v))}" y="${m.top + ph + 18}" text-anchor="middle">${lab(v)}</text>`);
  }
  for (let v = y0; v <= y1 * 1.0001; v *= 10) {
    out.push(`  <line x1="${m.left}" y1="${r(Y(v))}" x2="${m.left + pw}" y2="${r(Y(v))}" stroke="#e5e5e5"/>`);
    out.push(`  <text x="${m.left - 6}" y="${r(Y(v) + 4)}" text-anchor="end">${lab(v)}</text>`);
  }
  out.push(`  <rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`);
  out.push(`  <text x="${r(m.left + pw / 2)}" y="${m.top + ph + 40}" text-anchor="middle">${xmlEscape(o.xLabel)}</text>`);
  out.push(`  <text transform="translate(16 ${r(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}</text>`);
  series.forEach((s, k) => {
    const p = [...s.points].filter((q) => q.y > 0 && Number.isFinite(q.y)).sort((a, b) => a.x - b.x);
    out.push(`  <polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map((q) => `${r(X(q.x))},${r(Y(q.y))}`).join(' ')}"/>`);
    for (const q of p) {
      if (q.lo !== undefined && q.hi !== undefined && q.lo > 0) out.push(`  <line x1="${r(X(q.x))}" y1="${r(Y(q.lo))}" x2="${r(X(q.x))}" y2="${r(Y(q.hi))}" stroke="${s.color}"/>`);
      out.push(`  <circle cx="${r(X(q.x))}" cy="${r(Y(q.y))}" r="3.5" fill="${s.color}"><title>${xmlEscape(`${s.name}, ${lab(q.x)}: ${fmt(q.y)}`)}</title></circle>`);
    }
    const ly = m.top + 12 + k * 20;
    out.push(`  <line x1="${m.left + pw + 12}" y1="${ly}" x2="${m.left + pw + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`  <text x="${m.left + pw + 38}" y="${ly + 4}">${xmlEscape(s.name)}</text>`);
  });
  caption.forEach((line, k) => out.push(`  <text x="12" y="${m.top + ph + 62 + k * 16}" font-size="11" fill="#444444">${xmlEscape(line)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

async function loadResults(): Promise<ResultFile[]> {
  const dir = join(ROOT, 'bench/results');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const out: ResultFile[] = [];
  for (const f of files) {
    const j = JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<string, unknown>;
    out.push({ ...j, file: f } as ResultFile);
  }
  // Newest first, so a section is taken from the latest run holding it.
  return out.sort((a, b) => b.date.localeCompare(a.date));
}

async function versionNow(cmd: string, args: string[]): Promise<string | null> {
  const r = await execa(cmd, args, { reject: false, all: true, timeout: 10_000 });
  return r.exitCode === 0 ? ((r.all ?? '').trim().split('\n')[0] ?? null) : null;
}

/** One row of the scaling study: a least-squares line through (size, median) points. */
interface Slope {
  readonly what: string;
  readonly unit: string;
  readonly xs: readonly number[];
  readonly ys: readonly number[];
  /** Divide x by this before fitting (so that the slope is per 1,000 files, per GB…). */
  readonly per: number;
  readonly sizes: string;
  readonly source: string;
}

async function main(): Promise<void> {
  const all = await loadResults();
  const pick = <T>(name: string): { file: ResultFile; v: T } | null => {
    const f = all.find((x) => x[name] !== undefined && !(x.failed !== undefined && name in x.failed));
    return f === undefined ? null : { file: f, v: f[name] as T };
  };
  const dockerNow = await versionNow('docker', ['version', '--format', '{{.Server.Version}}']);
  const slurmNow = (await versionNow('sinfo', ['--version'])) ?? (await versionNow('sh', ['-c', 'docker exec $(docker ps --format "{{.Names}}" | grep -m1 -i slurm) sinfo --version']));
  const gitNow = await versionNow('git', ['--version']);
  const b3sumNow = await versionNow('b3sum', ['--version']);
  const slurmV = slurmNow === null ? null : slurmNow.replace(/^slurm(-wlm)?\s*/i, '');
  const md: string[] = [];
  const machineOf = (f: ResultFile): string => `${f.machine.cpus} × ${f.machine.cpuModel}, ${f.machine.memGiB} GiB`;
  const src = (p: { file: ResultFile }, name?: string): string => {
    const load = name === undefined ? undefined : p.file.timing?.load?.[name];
    const took = name === undefined ? undefined : p.file.timing?.sections[name];
    return (
      `_Source: \`bench/results/${p.file.file}\`, ${p.file.date.slice(0, 16).replace('T', ' ')} UTC; machine: ${machineOf(p.file)}; Node ${p.file.machine.node}` +
      (took === undefined ? '' : `; section took ${took.toFixed(0)} s`) +
      (load === undefined ? '' : `; load average (1 min) ${load[0].toFixed(1)} at its start, ${load[1].toFixed(1)} at its end`) +
      '._'
    );
  };
  /** Caption lines of a figure: where, with what, how often, what the marks are. */
  const captionOf = (p: { file: ResultFile }, versions: string, reps: string): string[] => [
    `Machine: ${machineOf(p.file)} (shared: others ran tests at the same time); Node ${p.file.machine.node}; ${versions}.`,
    `${reps}; points are medians, whiskers p25–p75. Run of ${p.file.date.slice(0, 16).replace('T', ' ')} UTC (bench/results/${p.file.file}).`,
  ];
  const verdicts: string[] = [];
  const slower: string[] = [];
  const slopes: Slope[] = [];

  md.push(
    '# Performance',
    '',
    '<!-- Generated by `npm run bench:report` from bench/results/*.json; do not edit by hand. Measure with `npm run bench [-- sections…]`. -->',
    '',
    'Every comparison below was measured side by side in one run, alternating the methods (A B A B …, the order rotated where there are three) ' +
      'on a shared machine, and is reported as the median with the interquartile range (p25–p75). Ratios are ratios of medians; "paired" ratios ' +
      'are the median of per-repetition ratios. Each section comes from the newest results file that holds it (the source, the load of the ' +
      'machine while it ran and its duration are named under each table).',
    '',
  );
  const headAt = md.length;

  // ------------------------------------------------------------------------------------------ Snakemake
  const snk = pick<SnakemakeResult>('snakemake');
  const status = pick<StatusResult[]>('status');
  if (snk !== null) {
    const r = snk.v;
    md.push(
      '## Change detection: hpcflow vs Snakemake',
      '',
      src(snk, 'snakemake'),
      '',
      `Snakemake ${r.versions.snakemake} (Debian, Python ${r.versions.python.replace(/^Python /, '')}), hpcflow ${r.versions.hpcflow}, Docker ${r.versions.docker ?? '—'}; ${r.reps} repetitions of each, alternated.`,
      '',
      'The same pipeline for both, in the same directory over the same files: a fan of N independent stages, stage *i* copies ' +
        '`src/in-i.txt` to `out/si.txt` (hpcflow: `pipelines/synth.yaml`, image `hpcflow-test/busybox:1`; Snakemake: a Snakefile of N ' +
        'explicit rules with `shell: "cp {input} {output}"`, plus `rule all`). Both were first brought up to date: at ≤ 100 stages `snakemake -c1` ran the ' +
        'copies bare, then `hpcflow run` ran them in containers; beyond, both adopted outputs written by plain copies (`snakemake --touch`, `hpcflow commit`: ' +
        'running 1,000 jobs takes Snakemake most of a minute and hpcflow\'s containers several; the state reached is the same, every stage recorded as up to date). ' +
        'Both were checked to find nothing to do, and exactly one stage to run after the change (Snakemake also schedules `rule all`).',
      '',
      '| stages | no-op `hpcflow status`, ms | no-op `snakemake -n -q -c1`, ms | **snakemake / hpcflow** | one change: `hpcflow status`, ms | one change: `snakemake -n -q -c1`, ms | **snakemake / hpcflow** | stages to run (hpcflow / snakemake) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r.sizes) {
      md.push(
        `| ${n(x.stages)} | ${cell(x.noop.hpcflow)} | ${cell(x.noop.snakemake)} | **${x.noop.ratio.toFixed(1)}** | ${cell(x.oneChange.hpcflow)} | ${cell(x.oneChange.snakemake)} | **${x.oneChange.ratio.toFixed(1)}** | ${x.decidedToRun.hpcflow} / ${x.decidedToRun.snakemake} |`,
      );
    }
    const F = r.floors;
    md.push('');
    if (F !== undefined) {
      md.push(
        `Start-up floors, ${F.reps} repetitions alternated (no change detection at all): \`node -e 0\` ${cell(F.node)} ms, \`hpcflow --version\` ${cell(F.hpcflowVersion)} ms; ` +
          `\`python3 -c pass\` ${cell(F.python)} ms, \`python3 -c 'import snakemake'\` ${cell(F.snakemakeImport)} ms.`,
        '',
      );
      const k = r.sizes.find((x) => x.stages === 1000);
      if (k !== undefined) {
        const ceiling = k.noop.snakemake.median / F.node.median;
        md.push(
          `At 1,000 stages Snakemake's no-op takes ${fmt(k.noop.snakemake.median)} ms; a 10× answer has ${fmt(k.noop.snakemake.median / 10)} ms, of which starting Node takes ` +
            `${fmt(F.node.median)} ms and loading the CLI's entry ${fmt(F.hpcflowVersion.median - F.node.median)} ms more; the ratio can never exceed ${ceiling.toFixed(0)}× here (Snakemake's time over Node's start). ` +
            `hpcflow's own work at 1,000 stages — reading the snapshot, one stat per dependency and output, asking the Docker engine for the image, printing 1,000 lines — is the remaining ` +
            `${fmt(k.noop.hpcflow.median - F.hpcflowVersion.median)} ms.`,
          '',
        );
      }
    }
    md.push(
      'Both commands only decide; neither runs anything. They do comparable but not identical work. Snakemake parses the Snakefile (N rules of Python), ' +
        'builds the job DAG, stats every input and output and compares modification times, and reads its per-output metadata in `.snakemake/` ' +
        '(its default rerun triggers: mtime, params, input, code, software environment). It never reads file contents. hpcflow parses the YAML, ' +
        'fingerprints every stage (command, image, parameters, dependency hashes) and compares with `hpcflow.lock`; dependency hashes come from a ' +
        'stat cache (a file whose stat is unchanged is not re-read), and a no-op answer is served from a stat snapshot of ' +
        'every dependency and output when none changed (one `stat` per file, the image digest from the engine, no YAML, lockfile or graph). ' +
        'A changed file is hashed (BLAKE3) — content, not mtime, decides, so restoring the content restores "up to date", which Snakemake ' +
        'would only see if the mtime were restored too (the benchmark restores both).',
      '',
    );
    const k = r.sizes.find((x) => x.stages === 1000);
    if (k !== undefined) verdicts.push(`| no-op status ≥ 10× faster than Snakemake at 1,000 stages | ${fmt(k.noop.hpcflow.median)} ms vs ${fmt(k.noop.snakemake.median)} ms: ×${k.noop.ratio.toFixed(1)} | ${yes(k.noop.ratio >= 10)} |`);
    for (const s of r.skipped) md.push(`Not measured: ${s}.`, '');
    if (r.skipped.length === 0 && r.sizes.some((x) => x.stages >= 10_000)) {
      md.push('The 10,000-stage point is not part of the default `npm run bench` (it adds about four minutes, most of them Snakemake\'s): `HPCFLOW_BENCH_SNAKEMAKE_10K=1 npm run bench -- snakemake` measures it, as here.', '');
    }
    const xs = r.sizes.map((x) => x.stages);
    slopes.push(
      { what: 'no-op `hpcflow status` (fan of `cp` stages, stat snapshot)', unit: 'ms per stage', xs, ys: r.sizes.map((x) => x.noop.hpcflow.median), per: 1, sizes: xs.map(n).join(', '), source: 'snakemake' },
      { what: 'no-op `snakemake -n` (the same fan)', unit: 'ms per stage', xs, ys: r.sizes.map((x) => x.noop.snakemake.median), per: 1, sizes: xs.map(n).join(', '), source: 'snakemake' },
      { what: 'one change: `hpcflow status` (full planner)', unit: 'ms per stage', xs, ys: r.sizes.map((x) => x.oneChange.hpcflow.median), per: 1, sizes: xs.map(n).join(', '), source: 'snakemake' },
      { what: 'one change: `snakemake -n`', unit: 'ms per stage', xs, ys: r.sizes.map((x) => x.oneChange.snakemake.median), per: 1, sizes: xs.map(n).join(', '), source: 'snakemake' },
    );
    const series: Series[] = [
      { name: 'hpcflow status (fan)', color: '#1f77b4', points: r.sizes.map((x) => ({ x: x.stages, y: x.noop.hpcflow.median, lo: x.noop.hpcflow.p25, hi: x.noop.hpcflow.p75 })) },
      { name: 'snakemake -n (fan)', color: '#d62728', points: r.sizes.map((x) => ({ x: x.stages, y: x.noop.snakemake.median, lo: x.noop.snakemake.p25, hi: x.noop.snakemake.p75 })) },
    ];
    if (status !== null) series.push({ name: 'hpcflow status (tree)', color: '#7fb2dc', points: status.v.map((x) => ({ x: x.stages, y: x.noop.median, lo: x.noop.p25, hi: x.noop.p75 })) });
    if (F !== undefined) series.push({ name: 'node -e 0 (floor)', color: '#999999', points: r.sizes.map((x) => ({ x: x.stages, y: F.node.median })) });
    const caption = captionOf(snk, `Snakemake ${r.versions.snakemake}, Python ${r.versions.python.replace(/^Python /, '')}, Docker ${r.versions.docker ?? '—'}`, `${r.reps} repetitions per point, the two tools alternated`);
    if (status !== null && status.file.file !== snk.file.file) caption.push(`The "tree" series: bench status, run of ${status.file.date.slice(0, 16).replace('T', ' ')} UTC, ${status.v[0]?.noop.n ?? '?'} repetitions.`);
    await mkdir(join(ROOT, 'docs/img'), { recursive: true });
    await writeFile(
      join(ROOT, 'docs/img/perf-noop-status.svg'),
      renderLogLog(series, { title: 'No-op change detection vs pipeline size', xLabel: 'stages', yLabel: 'ms, end to end (median, p25–p75)', caption }),
    );
    md.push('![No-op change detection time vs number of stages, log-log: hpcflow status and snakemake -n](img/perf-noop-status.svg)', '');
    const one = r.sizes.find((x) => x.stages === 1000);
    if (one !== undefined && one.oneChange.ratio < 10) {
      slower.push(
        `**One change at 1,000 stages** is ×${one.oneChange.ratio.toFixed(1)} faster than Snakemake, not 10×: with anything changed the stat snapshot cannot answer, so hpcflow ` +
          `loads the cached pipeline model, parses \`hpcflow.lock\` (all 1,000 entries with their components), builds the graph and fingerprints every stage ` +
          '(the planner path of the table above). It is still faster than Snakemake, and content-exact where Snakemake compares mtimes.',
      );
    }
  }

  // ------------------------------------------------------------------------------------------ status alone
  if (status !== null) {
    md.push(
      '## No-op `hpcflow status` alone, up to 10,000 stages',
      '',
      src(status, 'status'),
      '',
      `A binary tree of stages over shared inputs (bench/status.ts), end to end including process start; ${status.v[0]?.noop.n ?? '?'} runs each, the snapshot and the planner alternated.`,
      '',
      '| stages | stat snapshot, ms | full planner (snapshot deleted), ms | first run, caches cold, ms |',
      '|---:|---:|---:|---:|',
    );
    for (const x of status.v) md.push(`| ${n(x.stages)} | ${cell(x.noop)} | ${cell(x.planner)} | ${fmt(x.cold)} |`);
    const t = status.v.find((x) => x.stages === 1000);
    if (t !== undefined) verdicts.push(`| 1,000-stage no-op status under 150 ms | ${fmt(t.noop.median)} ms | ${yes(t.noop.median < 150)} |`);
    md.push('');
    const xs = status.v.map((x) => x.stages);
    slopes.push(
      { what: 'no-op `hpcflow status` (tree, stat snapshot)', unit: 'ms per stage', xs, ys: status.v.map((x) => x.noop.median), per: 1, sizes: xs.map(n).join(', '), source: 'status' },
      { what: '`hpcflow status`, full planner (snapshot deleted)', unit: 'ms per stage', xs, ys: status.v.map((x) => x.planner.median), per: 1, sizes: xs.map(n).join(', '), source: 'status' },
      { what: '`hpcflow status`, first run (every cache cold, every file hashed)', unit: 'ms per stage', xs, ys: status.v.map((x) => x.cold), per: 1, sizes: xs.map(n).join(', '), source: 'status' },
    );
  }

  // ------------------------------------------------------------------------------------------ Docker overhead
  const ov = pick<OverheadResult>('overhead');
  if (ov !== null) {
    const r = ov.v;
    md.push(
      '## Per-stage overhead on Docker',
      '',
      src(ov, 'overhead'),
      '',
      `${r.stagesPerRun} trivial stages, one at a time (\`-j1\`), against the same containers driven directly through dockerode (create, start, wait, remove).`,
      '',
      '| | median ms (p25–p75) |',
      '|---|---:|',
      `| bare dockerode, per container | ${cell(r.bareDockerodeMs)} |`,
      `| hpcflow, marginal per stage | ${cell(r.hpcflowPerStageMs)} |`,
      `| **overhead beyond the container start** | **${fmt(r.overheadMs)}** (ratio ${r.ratio.toFixed(2)}) |`,
      '',
    );
    verdicts.push(`| hpcflow per-stage overhead < 20 ms beyond the container start (Docker) | ${fmt(r.overheadMs)} ms | ${yes(r.overheadMs < 20)} |`);
  }

  // ------------------------------------------------------------------------------------------ kernels, local
  const kn = pick<KernelsResult>('kernels');
  if (kn !== null) {
    const r = kn.v;
    md.push(
      '## Kernels on local Docker: bare vs container vs hpcflow stage',
      '',
      src(kn, 'kernels'),
      '',
      `Each kernel is compiled once, statically (\`gcc -O3 -march=x86-64-v2 -ffp-contract=off -fopenmp -static\`), inside ${r.image}; the same binary then runs ` +
        `as a bare process on the host, by \`docker run --rm --network host\` in that image, and as a one-stage \`hpcflow run -f\` pipeline using that image ` +
        `(${r.threads} OpenMP threads, ${r.reps} repetitions after a warm-up, the three ways alternated with the order rotated). Kernel time is what the program ` +
        'measures around its own work (heat: its sweeps; stream: its timed loop of copy/scale/add/triad); wall time is spawn to exit.',
      '',
      '| kernel | way | kernel ms (p25–p75) | wall ms (p25–p75) | kernel / bare | kernel / bare, paired (p25–p75) | wall / bare |',
      '|---|---|---:|---:|---:|---:|---:|',
    );
    for (const k of r.kernels) {
      md.push(
        `| ${k.name} \`${k.args}\` | bare process | ${cell(k.bare.kernelMs)} | ${cell(k.bare.wallMs)} | 1 | 1 | 1 |`,
        `| | \`docker run --rm\` | ${cell(k.container.kernelMs)} | ${cell(k.container.wallMs)} | **${k.containerKernelRatio.toFixed(3)}** | ${r3(k.containerKernelRatioPaired)} | ${k.containerWallRatio.toFixed(2)} |`,
        `| | hpcflow stage | ${cell(k.hpcflow.kernelMs)} | ${cell(k.hpcflow.wallMs)} | **${k.hpcflowKernelRatio.toFixed(3)}** | ${r3(k.hpcflowKernelRatioPaired)} | ${k.hpcflowWallRatio.toFixed(2)} |`,
      );
      const within = (x: number): boolean => Math.abs(x - 1) <= 0.02;
      verdicts.push(
        `| kernel in a container within 2% of bare (local Docker, ${k.name}) | container ×${k.containerKernelRatio.toFixed(3)}; hpcflow stage ×${k.hpcflowKernelRatio.toFixed(3)} | ` +
          `container: ${yes(within(k.containerKernelRatio))}; hpcflow stage: ${yes(within(k.hpcflowKernelRatio))} |`,
      );
    }
    const st = r.kernels.find((k) => k.gbs !== undefined)?.gbs;
    if (st !== undefined) {
      const g = (x: S | undefined): string => (x === undefined ? '—' : `${x.median.toFixed(2)} (${x.p25.toFixed(2)}–${x.p75.toFixed(2)})`);
      md.push('', '| stream, best-of GB/s, median (p25–p75) | copy | scale | add | triad |', '|---|---:|---:|---:|---:|');
      for (const [name, w] of [['bare', st.bare], ['`docker run`', st.container], ['hpcflow stage', st.hpcflow]] as const) md.push(`| ${name} | ${g(w.copy)} | ${g(w.scale)} | ${g(w.add)} | ${g(w.triad)} |`);
    }
    const T = r.trivial;
    md.push(
      '',
      `Trivial command (\`true\`), ${T.reps} repetitions alternated — the floor of each way of starting a stage:`,
      '',
      '| | median ms (p25–p75) |',
      '|---|---:|',
      `| bare process (\`/bin/true\` spawned from Node) | ${cell(T.spawnTrueMs)} |`,
      `| bare dockerode create/start/wait/remove (\`${T.busybox}\`) | ${cell(T.dockerodeTrueMs)} |`,
      `| \`docker run --rm --network host ${T.busybox} true\` | ${cell(T.dockerRunTrueMs)} |`,
      ...(ov === null ? [] : [`| hpcflow, marginal per stage (from the per-stage overhead section above${ov.file.file === kn.file.file ? '' : ', another run'}) | ${cell(ov.v.hpcflowPerStageMs)} |`]),
      '',
      `The kernel ratios are for a 2-CPU shared machine with ${r.reps} repetitions: a 2% difference is at the edge of what it can resolve — compare the paired p25–p75 with ±0.02.`,
      '',
    );
  }

  // ------------------------------------------------------------------------------------------ Slurm
  const sl = pick<SlurmBenchResult>('slurm');
  if (sl !== null) {
    const r = sl.v;
    const K = r.kernel;
    md.push(
      '## Slurm: per-stage overhead, nodes, and the kernel in a container',
      '',
      src(sl, 'slurm'),
      '',
      `Test cluster (scripts/slurm-cluster.sh: every node a container on this machine): ${r.cluster}${slurmV === null ? '' : `; Slurm ${slurmV} (at report time)`}; ${r.latencyReps} repetitions, alternated.`,
      '',
      '| | median ms (p25–p75) |',
      '|---|---:|',
      `| bare \`srun -N1 hostname\` | ${cell(r.srunN1Ms)} |`,
      `| bare \`sbatch --wrap\`: submit → COMPLETED seen | ${cell(r.sbatchEndSeenMs)} |`,
      `| \`hpcflow status\` in the one-stage workspace (the CLI's floor) | ${cell(r.hpcflowStatusMs)} |`,
      `| \`hpcflow run -f --executor slurm\`, 1 trivial stage, end to end | ${cell(r.hpcflow1Ms)} |`,
      `| **per-stage overhead: hpcflow 1 stage − bare sbatch (paired)** | **${cell(r.perStageOverheadMs)}** |`,
      `| marginal cost per stage, ${r.stages} independent stages | ${cell(r.hpcflowMarginalMs)} |`,
      `| bare \`srun … true\` | ${cell(r.srunTrueMs)} |`,
      `| \`srun\` + hpcflow's docker task wrapper \`true\` | ${cell(r.srunContainerTrueMs)} |`,
      `| container on the node (paired difference) | ${cell(r.containerCostMs)} |`,
      '',
    );
    slower.push(
      `**Slurm, trivial stage:** one trivial stage through hpcflow takes ${(r.hpcflow1Ms.median / r.sbatchEndSeenMs.median).toFixed(1)}× a bare \`sbatch\` ` +
        `(+${fmt(r.perStageOverheadMs.median)} ms, paired). The parts: starting the CLI and planning (${fmt(r.hpcflowStatusMs.median)} ms for \`hpcflow status\` alone), ` +
        `the container on the node (${fmt(r.containerCostMs.median)} ms), squeue polling that backs off (250 ms ×1.5 while nothing changes) instead of the bare loop's ${r.pollMs} ms, and the final ` +
        '`scontrol`/`sacct` queries and storing outputs in the cache. On stages that compute for minutes this is noise; on trivial stages it dominates.',
    );
    if (r.nodes !== undefined) {
      const N = r.nodes;
      const last = N.counts.length - 1;
      const h1 = N.hpcflowMs[0];
      const hn = N.hpcflowMs[last];
      const bn = N.sbatchMs?.[last];
      if (h1 !== undefined && hn !== undefined && bn !== undefined && hn.median > h1.median * 1.5) {
        slower.push(
          `**Slurm, multi-node trivial stage:** over ${N.counts[last]} nodes an hpcflow stage took ${fmt(hn.median)} ms against ${fmt(h1.median)} ms on one node, while a bare ` +
            `\`sbatch --nodes=${N.counts[last]}\` took ${fmt(bn.median)} ms (p25–p75 of the stage: ${fmt(hn.p25)}–${fmt(hn.p75)} ms). Candidates, not isolated here: a multi-node job ` +
            'waits until every node of the previous job is released and then for the scheduler\'s pass, a container starts on each node, and hpcflow\'s backed-off ' +
            'polling sees a job that ends a little later up to a back-off step later. It is a fixed cost per stage, not per unit of work.',
        );
      }
      md.push(
        `### A trivial step or stage over 1..${N.counts.length} nodes (${N.reps} repetitions, alternated)`,
        '',
        '| nodes | bare `srun -N<n> --ntasks-per-node=1 true`, ms | + hpcflow\'s docker task wrapper (a container per node), ms | bare `sbatch --nodes=<n>` of `srun hostname`: submit → end seen, ms | `hpcflow run -f` of a `nodes: <n>` stage, ms |',
        '|---:|---:|---:|---:|---:|',
        ...N.counts.map((c, i) => `| ${c} | ${cell(N.srunMs[i])} | ${cell(N.srunContainerMs[i])} | ${cell(N.sbatchMs?.[i])} | ${cell(N.hpcflowMs[i])} |`),
        '',
        'The containers of a step start in parallel, one per node, so a node costs little beyond the first; all nodes share this one 2-CPU machine, ' +
          'which a real cluster does not (there, the per-node cost is the slowest node\'s container start). A batch job of *n* nodes also waits until ' +
          '*n* nodes are free at a scheduling pass (about once a second): the bare `sbatch` column shows what that alone costs, and hpcflow\'s ' +
          'squeue polling, which backs off while nothing changes, turns a job that ends a little later into one seen a back-off step later.',
        '',
      );
      const xs = N.counts;
      const label = `${xs.join(', ')} nodes`;
      slopes.push(
        { what: 'bare `srun -N<n> true`', unit: 'ms per node', xs, ys: N.srunMs.map((x) => x.median), per: 1, sizes: label, source: 'slurm' },
        { what: '`srun -N<n>` + a container per node', unit: 'ms per node', xs, ys: N.srunContainerMs.map((x) => x.median), per: 1, sizes: label, source: 'slurm' },
        { what: '`hpcflow run -f` of a `nodes: <n>` trivial stage', unit: 'ms per node', xs, ys: N.hpcflowMs.map((x) => x.median), per: 1, sizes: label, source: 'slurm' },
      );
      if (N.sbatchMs !== undefined) slopes.push({ what: 'bare `sbatch --nodes=<n>` of `srun hostname`', unit: 'ms per node', xs, ys: N.sbatchMs.map((x) => x.median), per: 1, sizes: label, source: 'slurm' });
    }
    md.push(
      `### The heat kernel (\`heat ${K.args}\`), bare vs container vs hpcflow stage (${K.reps} repetitions)`,
      '',
      '| | kernel ms (p25–p75) | wall ms (p25–p75) | kernel / bare | wall / bare |',
      '|---|---:|---:|---:|---:|',
      `| bare \`srun\` | ${cell(K.bare.kernelMs)} | ${cell(K.bare.wallMs)} | 1 | 1 |`,
      `| container (\`srun\` + docker task wrapper) | ${cell(K.container.kernelMs)} | ${cell(K.container.wallMs)} | **${K.containerKernelRatio.toFixed(3)}** | ${K.containerWallRatio.toFixed(2)} |`,
      `| hpcflow stage (\`run -f --executor slurm\`) | ${cell(K.hpcflow.kernelMs)} | ${cell(K.hpcflow.wallMs)} | **${K.hpcflowKernelRatio.toFixed(3)}** | ${K.hpcflowWallRatio.toFixed(2)} |`,
      '',
      `Kernel time is what the program measures around its own sweeps: the same binary in the same container. The interquartile spread of the kernel time is ` +
        `${spread(K.bare.kernelMs).toFixed(1)}% of the median bare, ${spread(K.container.kernelMs).toFixed(1)}% in a container and ${spread(K.hpcflow.kernelMs).toFixed(1)}% as an hpcflow stage: ` +
        'a ratio that differs from 1 by less than that spread is not a measured difference. Wall time adds the batch-job, container, CLI and caching costs of the table above.',
      '',
    );
    verdicts.push(
      `| kernel in a container within 2% of bare (Slurm, heat) | container ×${K.containerKernelRatio.toFixed(3)}; hpcflow stage ×${K.hpcflowKernelRatio.toFixed(3)} | container: ${yes(Math.abs(K.containerKernelRatio - 1) <= 0.02)}; hpcflow stage: ${yes(Math.abs(K.hpcflowKernelRatio - 1) <= 0.02)} |`,
    );
  }

  // ------------------------------------------------------------------------------------------ MPI
  const mp = pick<MpiBenchResult>('mpi');
  if (mp !== null) {
    const r = mp.v;
    const B = r.bare;
    const ways: [string, MpiBenchResult['container'] | null, number | null, S | null, number | null][] = [
      ['bare `srun --mpi=pmix`, in the node\'s own environment', B, 1, null, 1],
      ['a container per rank (`srun` + hpcflow\'s docker task wrapper)', r.container, r.containerKernelRatio, r.containerKernelRatioPaired, r.containerWallRatio],
      ['hpcflow stage (`hpcflow run -f --executor slurm`)', r.hpcflow, r.hpcflowKernelRatio, r.hpcflowKernelRatioPaired, r.hpcflowWallRatio],
    ];
    const x3 = (v: number | null): string => (v === null ? '—' : v.toFixed(3));
    md.push(
      `## MPI across ${r.nodes} nodes: bare vs container vs hpcflow stage`,
      '',
      src(mp, 'mpi'),
      '',
      `Kernel: kernels/mpibench \`${r.args}\` (ping-pong between rank 0 and a rank on the other node, message sizes 1 B to ${n(r.container.pingpong[r.container.pingpong.length - 1]?.bytes ?? 0)} B, then MPI_Allreduce on every rank; ` +
        `its own time is rank 0's MPI_Wtime around all measurements). ${r.hosts}; step \`srun ${r.srun}\` (from the planned stage: the same for the three ways). ` +
        `Compiled once by hpcflow (\`mpicc\`, openmp adapter flags, \`-Wl,--as-needed\`) in ${r.image}; the binary needs ${r.needed.join(' and ')}; Open MPI (Debian libopenmpi3) ` +
        `${r.openmpi.node} on the nodes and ${r.openmpi.image} in the image, PMIx through Slurm's mpi/pmix plugin. ${r.reps} repetitions, the three ways alternated with the order rotated, after one untimed run of each.`,
      '',
      'What "bare" is here: the test cluster\'s nodes are containers on this one machine (scripts/slurm-cluster.sh), so bare means the ranks run directly in the ' +
        'node\'s own environment (its Debian 12 with Open MPI and PMIx), with no container per task — the closest thing to bare metal this cluster has. Between the ' +
        'nodes, Open MPI uses TCP over the cluster\'s Docker network; the per-rank containers join their node\'s network, IPC and PID namespaces (the site configuration of docs/slurm-cluster.md), ' +
        'so the three ways use the same transport.',
      ...(r.bareError === null ? [] : ['', `**Bare could not run on the nodes**, so the ratios below are to the container way: ${r.bareError}`]),
      '',
      '| way | kernel ms (p25–p75) | kernel / bare | kernel / bare, paired (p25–p75) | wall ms (p25–p75) | wall / bare | 1 B one-way latency µs | largest ping-pong MB/s | largest Allreduce µs/call |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [name, w, kr, kp, wr] of ways) {
      if (w === null) {
        md.push(`| ${name} | could not run | | | | | | | |`);
        continue;
      }
      md.push(`| ${name} | ${cell(w.kernelMs)} | **${x3(kr)}** | ${kp === null ? (kr === 1 ? '1' : '—') : r3(kp)} | ${cell(w.wallMs)} | ${x3(wr)} | ${cell(w.latencyUs)} | ${cell(w.bandwidthMBs)} | ${cell(w.allreduceUs)} |`);
    }
    const kr = [r.containerKernelRatio, r.hpcflowKernelRatio];
    const within = (v: number | null): boolean => v !== null && Math.abs(v - 1) <= 0.02;
    md.push(
      '',
      `Spread of the kernel's own time (p25–p75 over the median): bare ${B === null ? '—' : `${spread(B.kernelMs).toFixed(1)}%`}, container ${spread(r.container.kernelMs).toFixed(1)}%, hpcflow ${spread(r.hpcflow.kernelMs).toFixed(1)}%. ` +
        'The two ranks busy-poll for messages; on this 2-CPU machine, shared with other jobs, a rank that is descheduled stalls its peer, so single repetitions ' +
        'can be far off: read the ratios against the spread and the paired p25–p75, not against 2% alone. ' +
        'One difference between the ways is not the container\'s: while an hpcflow stage runs, the CLI waits for its job by polling squeue (from 250 ms, backing off), ' +
        'and on this machine that runs on the same two CPUs as the ranks — on a real cluster it runs on the login node. A kernel time of the hpcflow stage a few percent ' +
        'above the container row is consistent with that. ' +
        `Other jobs seen on the cluster during the runs: ${r.foreignActiveJobsMax === 0 ? 'none' : `up to ${r.foreignActiveJobsMax}`}. Left behind after clean-up: ${r.leftovers.jobs} jobs, ${r.leftovers.containers} containers.`,
      '',
    );
    if (B !== null && r.hpcflowWallRatio !== null) {
      slower.push(
        `**MPI stage, wall time:** the hpcflow stage takes ${r.hpcflowWallRatio.toFixed(2)}× the bare \`srun\` from start to finish (${fmt(B.wallMs.median)} → ${fmt(r.hpcflow.wallMs.median)} ms) while the kernel's own time ` +
          `is ×${x3(r.hpcflowKernelRatio)} (paired p25–p75 ${r.hpcflowKernelRatioPaired === null ? '—' : `${r.hpcflowKernelRatioPaired.p25.toFixed(2)}–${r.hpcflowKernelRatioPaired.p75.toFixed(2)}`}): ` +
          'what the wall time adds is a batch job instead of an interactive step (it waits for the scheduler\'s pass), a container per rank, the CLI, and storing the output.',
      );
    }
    verdicts.push(
      `| MPI kernel across 2 nodes within 2% of bare (Slurm, mpibench) | container ×${x3(kr[0] ?? null)}; hpcflow stage ×${x3(kr[1] ?? null)} | container: ${yes(within(kr[0] ?? null))}; hpcflow stage: ${yes(within(kr[1] ?? null))} |`,
    );
    const pp = (w: MpiBenchResult['container'] | null, pick2: 'latencyUs' | 'mbPerS'): Series['points'] => (w === null ? [] : w.pingpong.map((p) => ({ x: p.bytes, y: p[pick2].median, lo: p[pick2].p25, hi: p[pick2].p75 })));
    const colors = ['#2ca02c', '#1f77b4', '#d62728'];
    const names = ['bare srun', 'container per rank', 'hpcflow stage'];
    const wlist = [B, r.container, r.hpcflow];
    const caption = captionOf(mp, `Slurm ${slurmV ?? '?'} test cluster (nodes are containers on this machine), Open MPI ${r.openmpi.node}, PMIx via srun --mpi=pmix`, `${r.reps} repetitions per way, alternated`);
    await mkdir(join(ROOT, 'docs/img'), { recursive: true });
    await writeFile(
      join(ROOT, 'docs/img/perf-mpi-latency.svg'),
      renderLogLog(
        wlist.map((w, i) => ({ name: names[i] as string, color: colors[i] as string, points: pp(w, 'latencyUs') })).filter((s) => s.points.length > 0),
        { title: `MPI ping-pong across 2 nodes: one-way latency`, xLabel: 'message size, bytes', yLabel: 'µs (median, p25–p75)', caption },
      ),
    );
    await writeFile(
      join(ROOT, 'docs/img/perf-mpi-bandwidth.svg'),
      renderLogLog(
        wlist.map((w, i) => ({ name: names[i] as string, color: colors[i] as string, points: pp(w, 'mbPerS') })).filter((s) => s.points.length > 0),
        { title: `MPI ping-pong across 2 nodes: bandwidth`, xLabel: 'message size, bytes', yLabel: 'MB/s (median, p25–p75)', caption },
      ),
    );
    md.push('![MPI ping-pong one-way latency by message size: bare, container per rank, hpcflow stage](img/perf-mpi-latency.svg)', '');
    md.push('![MPI ping-pong bandwidth by message size: bare, container per rank, hpcflow stage](img/perf-mpi-bandwidth.svg)', '');
  }

  // ------------------------------------------------------------------------------------------ hashing
  const hs = pick<HashResult>('hash');
  if (hs !== null) {
    const r = hs.v;
    md.push(
      '## Hashing one page-cached 1 GiB file',
      '',
      src(hs, 'hash'),
      '',
      `${b3sumNow ?? 'b3sum'} (Debian).`,
      '',
      '| GB/s | median (p25–p75) |',
      '|---|---:|',
      `| \`cat > /dev/null\` | ${gb(r.catGBs)} |`,
      `| hpcflow \`hashFile\` | ${gb(r.hashFileGBs)} |`,
      `| hpcflow \`hashFileSync\` | ${gb(r.hashFileSyncGBs)} |`,
      `| \`b3sum --num-threads 1\` | ${gb(r.b3sum1GBs)} |`,
      `| BLAKE3 over a hot buffer, no I/O | ${gb(r.blake3MemGBs)} |`,
      '',
    );
    if (r.ratioToB3sum !== null) {
      md.push(`hashFile / single-threaded b3sum = ${r.ratioToB3sum.toFixed(2)}.`, '');
      if (r.ratioToB3sum < 1) {
        slower.push(
          `**Hashing one file:** \`hashFile\` reaches ${r.ratioToB3sum.toFixed(2)}× single-threaded \`b3sum\`: it reads 1 MiB chunks through libuv's thread pool and hashes them ` +
            'with the napi BLAKE3 binding, which on this machine is slower than b3sum\'s own SIMD code and its memory-mapped read; data sets hash on every core with the worker pool instead (below).',
        );
      }
      verdicts.push(`| single-file hashFile ≥ 0.8 × b3sum (1 thread) | ×${r.ratioToB3sum.toFixed(2)} | ${yes(r.ratioToB3sum >= 0.8)} |`);
    }
    if (r.sizes !== undefined && r.sizes.length >= 2) {
      md.push(`Time against size (${r.sizes.map((x) => `${x.bytes / 2 ** 20} MiB`).join(', ')}; page-cached, alternated):`, '', '| size | `hashFile`, ms | `b3sum --num-threads 1`, ms | `cat`, ms |', '|---:|---:|---:|---:|');
      for (const x of r.sizes) md.push(`| ${x.bytes / 2 ** 20} MiB | ${cell(x.hashFileMs)} | ${cell(x.b3sum1Ms)} | ${cell(x.catMs)} |`);
      md.push('');
      const xs = r.sizes.map((x) => x.bytes);
      const label = r.sizes.map((x) => `${x.bytes / 2 ** 20} MiB`).join(', ');
      slopes.push({ what: 'hpcflow `hashFile` of one file', unit: 'ms per GB', xs, ys: r.sizes.map((x) => x.hashFileMs.median), per: 1e9, sizes: label, source: 'hash' });
      const b3 = r.sizes.map((x) => x.b3sum1Ms);
      if (b3.every((x) => x !== null)) slopes.push({ what: '`b3sum --num-threads 1` of one file', unit: 'ms per GB', xs, ys: b3.map((x) => (x as S).median), per: 1e9, sizes: label, source: 'hash' });
      slopes.push({ what: '`cat file > /dev/null`', unit: 'ms per GB', xs, ys: r.sizes.map((x) => x.catMs.median), per: 1e9, sizes: label, source: 'hash' });
    }
  }

  const dh = pick<DatasetHashResult>('dataset-hash');
  if (dh !== null) {
    const { large: L, small: Sm, threads } = dh.v;
    const r2 = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
    md.push(
      `## Hashing a 1 GiB data set on every core (${threads} threads)`,
      '',
      src(dh, 'dataset-hash'),
      '',
      `| GB/s, median (p25–p75) | ${L.files} × ${L.fileBytes / 2 ** 20} MiB | ${Sm.files} × ${Sm.fileBytes / 2 ** 10} KiB |`,
      '|---|---:|---:|',
      `| \`HashPool\`, ${threads} threads | ${gb(L.gbs.poolAll)} | ${gb(Sm.gbs.poolAll)} |`,
      `| \`b3sum --num-threads 1\` | ${gb(L.gbs.b3sum1)} | ${gb(Sm.gbs.b3sum1)} |`,
      `| \`b3sum\`, default threads | ${gb(L.gbs.b3sumAll)} | ${gb(Sm.gbs.b3sumAll)} |`,
      `| pool / b3sum 1 thread | ${r2(L.poolAllVsB3sum1)} | ${r2(Sm.poolAllVsB3sum1)} |`,
      `| pool / b3sum all threads | ${r2(L.poolAllVsB3sumAll)} | ${r2(Sm.poolAllVsB3sumAll)} |`,
      '',
    );
    if (L.poolAllVsB3sumAll !== null && L.poolAllVsB3sumAll < 1) {
      slower.push(
        `**Hashing large files on every core:** the hash pool reaches ${L.poolAllVsB3sumAll.toFixed(2)}× multi-threaded \`b3sum\` on ${L.fileBytes / 2 ** 20} MiB files: b3sum splits ` +
          'one file across its threads (BLAKE3\'s tree), the pool hashes whole files, one per worker. On many small files the pool is the faster one.',
      );
    }
  }

  const da = pick<DatasetAddResult>('dataset-add');
  if (da !== null) {
    const r = da.v;
    md.push(
      `## \`dataset add\` of ${r.totalBytes / 2 ** 30} GiB (${r.files} files)`,
      '',
      src(da, 'dataset-add'),
      '',
      '| GB/s added, median (p25–p75) | |',
      '|---|---:|',
      `| \`addDataset\`, hash pool (${r.threads} threads) | ${gb(r.addPool)} |`,
      `| \`addDataset\`, main thread only | ${gb(r.addMainThread)} |`,
      `| shell floor: \`b3sum\`, \`cp -r\`, \`b3sum\` | ${gb(r.cpB3sum)} |`,
      `| pool / shell floor | ${r.poolVsCpB3sum === null ? '—' : r.poolVsCpB3sum.toFixed(2)} |`,
      '',
    );
    if (r.poolVsCpB3sum !== null && r.poolVsCpB3sum < 1) {
      slower.push(`**\`dataset add\`:** ${r.poolVsCpB3sum.toFixed(2)}× the shell floor (\`b3sum\`, \`cp -r\`, \`b3sum\`): hpcflow writes each stored file to a temporary name and renames it, and hashes through its worker pool.`);
    }
  }

  const ds = pick<DatasetStatusResult[]>('dataset-status');
  if (ds !== null) {
    md.push(
      '## `dataset status` of many small files',
      '',
      src(ds, 'dataset-status'),
      '',
      '| files | unchanged, in-process ms | floor: walk + stat, ms | ratio | 1% changed, ms | CLI end to end, ms |',
      '|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of ds.v) md.push(`| ${n(x.files)} | ${cell(x.unchanged)} | ${cell(x.walkStat)} | ${x.ratioToWalk.toFixed(2)} | ${cell(x.changed1pct)} | ${cell(x.cli)} |`);
    const t = ds.v.find((x) => x.files === 10_000);
    if (t !== undefined) verdicts.push(`| unchanged 10,000-file dataset status < 100 ms in-process | ${fmt(t.unchanged.median)} ms | ${yes(t.unchanged.median < 100)} |`);
    md.push('');
    const xs = ds.v.map((x) => x.files);
    const label = `${xs.map(n).join(', ')} files`;
    slopes.push(
      { what: '`dataset status`, unchanged, in-process', unit: 'ms per 1,000 files', xs, ys: ds.v.map((x) => x.unchanged.median), per: 1000, sizes: label, source: 'dataset-status' },
      { what: 'floor: walk the tree and stat every file', unit: 'ms per 1,000 files', xs, ys: ds.v.map((x) => x.walkStat.median), per: 1000, sizes: label, source: 'dataset-status' },
      { what: '`hpcflow dataset status`, end to end', unit: 'ms per 1,000 files', xs, ys: ds.v.map((x) => x.cli.median), per: 1000, sizes: label, source: 'dataset-status' },
    );
  }

  const rc = pick<ResultsCommitResult[]>('results');
  if (rc !== null) {
    const r = rc.v;
    const head = `| | ${r.map((x) => `${n(x.files)} files`).join(' | ')} |`;
    const sep = `|---|${r.map(() => '---:').join('|')}|`;
    const row = (label: string, f: (x: (typeof r)[number]) => string): string => `| ${label} | ${r.map(f).join(' | ')} |`;
    const ratio = (a: S | null | undefined, b: S | null | undefined): string => (a == null || b == null ? '—' : (a.median / b.median).toFixed(2));
    md.push(
      `## Results commits and pushes (${r[0]?.resultFiles ?? '?'} result files into a checkout of many small files)`,
      '',
      src(rc, 'results'),
      '',
      `${gitNow ?? 'git'} (at report time).`,
      '',
      head.replace('| |', '| commit, median ms (p25–p75) |'),
      sep,
      row('hpcflow `commitResults`, branch mode', (x) => cell(x.commit.hpcflowBranch)),
      row('hpcflow `commitResults`, results-ref mode', (x) => cell(x.commit.hpcflowRef)),
      row('`git add && git commit`', (x) => cell(x.commit.gitAddCommit)),
      row('branch mode / git', (x) => ratio(x.commit.hpcflowBranch, x.commit.gitAddCommit)),
      row('results-ref mode / git', (x) => ratio(x.commit.hpcflowRef, x.commit.gitAddCommit)),
      '',
      head.replace('| |', '| push to a smart-HTTP server, median ms (p25–p75) |'),
      sep,
      row('hpcflow `pushResults`, branch', (x) => cell(x.push.hpcflowBranch)),
      row('`git push origin main`', (x) => cell(x.push.gitBranch)),
      row('**ratio**', (x) => `**${ratio(x.push.hpcflowBranch, x.push.gitBranch)}**`),
      row('hpcflow `pushResults`, results ref', (x) => cell(x.push.hpcflowRef)),
      row('`git push origin <ref>:<ref>`', (x) => cell(x.push.gitRef)),
      row('**ratio**', (x) => `**${ratio(x.push.hpcflowRef, x.push.gitRef)}**`),
      '',
      'See bench/results/*.md for the full table of the run (isomorphic-git alternatives, races between two runners).',
      '',
    );
    const big = r[r.length - 1];
    if (big !== undefined) {
      slower.push(
        `**Pushing results:** \`pushResults\` takes ${ratio(big.push.hpcflowBranch, big.push.gitBranch)}× \`git push\` at ${n(big.files)} files. It goes through isomorphic-git (no git binary needed on a runner), ` +
          'whose push walks every tree of the new commit, of the merge base and of the remote-tracking ref to find what to send: its cost grows with the checkout, where native `git push` stays near-constant.',
      );
      if (big.commit.hpcflowBranch.median > big.commit.gitAddCommit.median) {
        slower.push(
          `**Branch-mode results commits:** ${ratio(big.commit.hpcflowBranch, big.commit.gitAddCommit)}× \`git add && git commit\` at ${n(big.files)} files: isomorphic-git reads and rewrites the whole ` +
            'index file to refresh the few entries hpcflow wrote. Results-ref mode, which never touches the index, is on par or faster.',
        );
      }
    }
    const xs = r.map((x) => x.files);
    const label = `${xs.map(n).join(', ')} files`;
    slopes.push(
      { what: '`commitResults`, branch mode', unit: 'ms per 1,000 files', xs, ys: r.map((x) => x.commit.hpcflowBranch.median), per: 1000, sizes: label, source: 'results' },
      { what: '`commitResults`, results-ref mode', unit: 'ms per 1,000 files', xs, ys: r.map((x) => x.commit.hpcflowRef.median), per: 1000, sizes: label, source: 'results' },
      { what: '`git add && git commit`', unit: 'ms per 1,000 files', xs, ys: r.map((x) => x.commit.gitAddCommit.median), per: 1000, sizes: label, source: 'results' },
      { what: '`pushResults`, branch', unit: 'ms per 1,000 files', xs, ys: r.map((x) => x.push.hpcflowBranch.median), per: 1000, sizes: label, source: 'results' },
      { what: '`git push`', unit: 'ms per 1,000 files', xs, ys: r.map((x) => x.push.gitBranch.median), per: 1000, sizes: label, source: 'results' },
    );
  }

  // ------------------------------------------------------------------------------------------ scaling study
  if (slopes.length > 0) {
    md.push(
      '## Scaling study: how each cost grows with stages, files, bytes and nodes',
      '',
      'Ordinary least squares of the median time on the size, *t* = *a* + *b*·*size*, over the sizes each section measured (from the tables above: ' +
        'no new measurement). *b* is the cost of one more unit; *a*, the intercept, is the fixed cost (process start, set-up) that a slope alone hides; ' +
        'R² says how well a straight line describes the points. A fit through two sizes is exact (R² = 1) and says nothing about linearity.',
      '',
      '| dimension | what | slope *b* | intercept *a*, ms | R² | sizes |',
      '|---|---|---:|---:|---:|---|',
    );
    const dim = (u: string): string => (u.includes('stage') ? 'stages' : u.includes('files') ? 'files' : u.includes('GB') ? 'bytes' : 'nodes');
    const order = ['stages', 'files', 'bytes', 'nodes'];
    const sorted = [...slopes].sort((a, b) => order.indexOf(dim(a.unit)) - order.indexOf(dim(b.unit)));
    const fits = new Map<string, number>();
    const r2s = new Map<string, number>();
    for (const s of sorted) {
      const f = linearFit(s.xs.map((x) => x / s.per), s.ys);
      fits.set(s.what, f.slope);
      r2s.set(s.what, f.r2);
      const b = Math.abs(f.slope) >= 10 ? f.slope.toFixed(1) : Math.abs(f.slope) >= 0.1 ? f.slope.toFixed(2) : f.slope.toFixed(4);
      md.push(`| ${dim(s.unit)} | ${s.what} | **${b}** ${s.unit} | ${fmt(f.intercept)} | ${s.xs.length > 2 ? f.r2.toFixed(3) : '— (2 sizes)'} | ${s.sizes} |`);
    }
    const per = (what: string): number | undefined => fits.get(what);
    const noop = per('no-op `hpcflow status` (tree, stat snapshot)');
    const noopFan = per('no-op `hpcflow status` (fan of `cp` stages, stat snapshot)');
    const planner = per('`hpcflow status`, full planner (snapshot deleted)');
    const smk = per('no-op `snakemake -n` (the same fan)');
    const f2 = (x: number): string => (Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2));
    const reading: string[] = [];
    if (noop !== undefined || noopFan !== undefined) {
      const parts = [
        ...(noop === undefined ? [] : [`${f2(noop)} ms per stage on the tree`]),
        ...(noopFan === undefined ? [] : [`${f2(noopFan)} ms per stage on the fan (a file in and a file out per stage)`]),
      ];
      reading.push(
        `A no-op \`hpcflow status\` is almost all intercept (process start, the engine query) plus ${parts.join(', ')}: one \`stat\` of each dependency and output` +
          (planner === undefined || noop === undefined ? '' : `; when it must plan, ${f2(planner)} ms per stage on the tree (×${(planner / noop).toFixed(0)}: the lockfile entry, the fingerprint and the graph of every stage)`) +
          (smk === undefined || noopFan === undefined ? '.' : `; on the same fan Snakemake's no-op costs ${f2(smk)} ms per stage, ×${(smk / noopFan).toFixed(0)} hpcflow's.`),
      );
    }
    const walk = per('floor: walk the tree and stat every file');
    const dsu = per('`dataset status`, unchanged, in-process');
    if (walk !== undefined && dsu !== undefined) reading.push(`An unchanged data set costs ${f2(dsu)} ms per 1,000 files against ${f2(walk)} ms for walking and stat-ing them alone.`);
    const hf = per('hpcflow `hashFile` of one file');
    const b3 = per('`b3sum --num-threads 1` of one file');
    if (hf !== undefined) reading.push(`Bytes cost what BLAKE3 and the page cache deliver: ${fmt(hf)} ms per GB through \`hashFile\`${b3 === undefined ? '' : ` against ${fmt(b3)} ms for single-threaded b3sum`}.`);
    const hn = per('`hpcflow run -f` of a `nodes: <n>` trivial stage');
    const cn = per('`srun -N<n>` + a container per node');
    const sn = per('bare `srun -N<n> true`');
    const bn = per('bare `sbatch --nodes=<n>` of `srun hostname`');
    const withR2 = (what: string, v: number): string => `${fmt(v)} ms (R² ${(r2s.get(what) ?? NaN).toFixed(2)})`;
    if (hn !== undefined && cn !== undefined) {
      reading.push(
        `Per node: a step with a container per node ${withR2('`srun -N<n>` + a container per node', cn)}${sn === undefined ? '' : `, a bare step ${withR2('bare `srun -N<n> true`', sn)}`}` +
          `${bn === undefined ? '' : `, a bare batch job ${withR2('bare `sbatch --nodes=<n>` of `srun hostname`', bn)}`}, a trivial hpcflow stage ${withR2('`hpcflow run -f` of a `nodes: <n>` trivial stage', hn)}. ` +
          'Steps scale smoothly (the containers of a step start in parallel). Whole batch jobs vary by hundreds of milliseconds with the scheduler\'s pass and the polling, ' +
          'and a straight line describes them poorly (R²): the hpcflow stage\'s step from one node to several is the multi-node cost named under "Where hpcflow is slower", not a cost per node.',
      );
    }
    md.push('', `Reading it: ${reading.join(' ')}`, '');
  }

  // ------------------------------------------------------------------------------------------ head: timing, versions, targets, slower
  const latest = all.find((f) => f.timing !== undefined && f.file === 'latest.json') ?? all.find((f) => f.timing !== undefined);
  const mpiV = mp === null ? null : `Open MPI ${mp.v.openmpi.node} (Debian)`;
  const head: string[] = [
    `Versions: Node ${latest?.machine.node ?? all[0]?.machine.node ?? '?'} (recorded by the runs), Docker ${dockerNow ?? 'not found'}${slurmV === null ? '' : `, Slurm ${slurmV}`}` +
      `${snk === null ? '' : `, Snakemake ${snk.v.versions.snakemake} with Python ${snk.v.versions.python.replace(/^Python /, '')}`}${mpiV === null ? '' : `, ${mpiV}`}` +
      `${gitNow === null ? '' : `, ${gitNow}`}${b3sumNow === null ? '' : `, ${b3sumNow}`} (Docker, Slurm, git and b3sum asked at report time).`,
    '',
  ];
  if (latest?.timing !== undefined) {
    const T = latest.timing;
    const loads = Object.values(T.load ?? {}).flat();
    head.push(
      '## How long the benchmark takes',
      '',
      `The last whole run (\`npm run bench\`, every section; \`bench/results/${latest.file}\`, ${latest.date.slice(0, 16).replace('T', ' ')} UTC) took **${(T.totalS / 60).toFixed(1)} minutes** ` +
        `on ${machineOf(latest)}: preparation ${T.prepS.toFixed(0)} s, then ${Object.entries(T.sections)
          .map(([k, v]) => `${k} ${v.toFixed(0)} s`)
          .join(', ')}.` +
        (loads.length === 0 ? '' : ` The machine was shared while it ran: its 1-minute load average ranged ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${latest.machine.cpus} CPUs.`) +
        (latest.retried !== undefined && latest.retried.length > 0 ? ` Measured twice (the shared Slurm test cluster was taken down during the first attempt, and brought up again): ${latest.retried.join(', ')}; the time includes both attempts.` : '') +
        (latest.failed !== undefined && Object.keys(latest.failed).length > 0 ? ` Failed sections: ${Object.keys(latest.failed).join(', ')} (their tables come from older runs).` : ''),
      '',
      'From a clean clone, `npm ci && npm run bench` is the one command: the bench prepares what it needs itself, each step a no-op when already done — a Docker engine ' +
        'and the test images (scripts/build-test-images.sh), the Debian base image of containers/ (scripts/build-base-images.sh; the openmp image is built from it on first use), ' +
        'b3sum and Snakemake from Debian, the CLI built into a directory of its own (so that a concurrent `npm run build` cannot change it mid-run), and the Slurm test cluster ' +
        '(scripts/slurm-cluster.sh). On a machine where none of that exists yet, the image builds and the cluster add their one-time set-up (several minutes) to the first run.',
      '',
    );
  }
  head.push('## Targets', '', '| target | measured | verdict |', '|---|---|---|', ...verdicts, '');
  if (slower.length > 0) head.push('## Where hpcflow is slower than its peer, and why', '', ...slower.map((x) => `- ${x}`), '');
  md.splice(headAt, 0, ...head);

  await mkdir(join(ROOT, 'docs'), { recursive: true });
  await writeFile(join(ROOT, 'docs/performance.md'), `${md.join('\n')}\n`);
  process.stdout.write(`wrote docs/performance.md (${verdicts.length} targets, ${slopes.length} fitted slopes) and docs/img/perf-*.svg\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
