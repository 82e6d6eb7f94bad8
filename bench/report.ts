import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { xmlEscape } from '../runner/history/svg.js';
import { ROOT, fmt } from './lib.js';

/**
 * `npm run bench:report`: reads every bench/results/*.json and writes docs/performance.md (and
 * docs/img/perf-*.svg). Each section is taken from the newest file holding it. Nothing is measured
 * here; versions not recorded by a run are asked for at report time and marked so.
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
interface ResultFile {
  readonly file: string;
  readonly date: string;
  readonly machine: Machine;
  readonly [section: string]: unknown;
}

const cell = (s: S | null | undefined): string => (s == null || s.n === 0 ? '—' : `${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)})`);
const gb = (s: S | null | undefined): string => (s == null ? '—' : `${s.median.toFixed(2)} (${s.p25.toFixed(2)}–${s.p75.toFixed(2)})`);
const yes = (ok: boolean): string => (ok ? '**met**' : '**not met**');

/** Least-squares slope and intercept of log10(y) on log10(x). */
export function logLogFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number } {
  const lx = xs.map(Math.log10);
  const ly = ys.map(Math.log10);
  const n = lx.length;
  const mx = lx.reduce((a, b) => a + b, 0) / n;
  const my = ly.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += ((lx[i] as number) - mx) * ((ly[i] as number) - my);
    sxx += ((lx[i] as number) - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly { readonly x: number; readonly y: number; readonly lo?: number; readonly hi?: number }[];
}

/** A log-log line chart of several series (whiskers p25–p75 when given), as a standalone SVG. Pure. */
export function renderLogLog(series: readonly Series[], o: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const m = { left: 70, right: 200, top: 44, bottom: 52 };
  const pts = series.flatMap((s) => s.points);
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
  out.push(`  <text x="${r(m.left + pw / 2)}" y="${H - 12}" text-anchor="middle">${xmlEscape(o.xLabel)}</text>`);
  out.push(`  <text transform="translate(16 ${r(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}</text>`);
  series.forEach((s, k) => {
    const p = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`  <polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map((q) => `${r(X(q.x))},${r(Y(q.y))}`).join(' ')}"/>`);
    for (const q of p) {
      if (q.lo !== undefined && q.hi !== undefined) out.push(`  <line x1="${r(X(q.x))}" y1="${r(Y(q.lo))}" x2="${r(X(q.x))}" y2="${r(Y(q.hi))}" stroke="${s.color}"/>`);
      out.push(`  <circle cx="${r(X(q.x))}" cy="${r(Y(q.y))}" r="3.5" fill="${s.color}"><title>${xmlEscape(`${s.name}, ${lab(q.x)}: ${fmt(q.y)}`)}</title></circle>`);
    }
    const ly = m.top + 12 + k * 20;
    out.push(`  <line x1="${m.left + pw + 12}" y1="${ly}" x2="${m.left + pw + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`  <text x="${m.left + pw + 38}" y="${ly + 4}">${xmlEscape(s.name)}</text>`);
  });
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

async function main(): Promise<void> {
  const all = await loadResults();
  const pick = <T>(name: string): { file: ResultFile; v: T } | null => {
    const f = all.find((x) => x[name] !== undefined);
    return f === undefined ? null : { file: f, v: f[name] as T };
  };
  const dockerNow = await versionNow('docker', ['version', '--format', '{{.Server.Version}}']);
  const slurmNow = (await versionNow('sinfo', ['--version'])) ?? (await versionNow('sh', ['-c', 'docker exec $(docker ps --format "{{.Names}}" | grep -m1 -i slurm) sinfo --version']));
  const md: string[] = [];
  const src = (p: { file: ResultFile }): string => {
    const m = p.file.machine;
    return `_Source: \`bench/results/${p.file.file}\`, ${p.file.date.slice(0, 16).replace('T', ' ')} UTC; machine: ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB; Node ${m.node}._`;
  };
  const verdicts: string[] = [];

  md.push(
    '# Performance',
    '',
    '<!-- Generated by `npm run bench:report` from bench/results/*.json; do not edit by hand. Measure with `npm run bench [-- sections…]`. -->',
    '',
    'Every comparison below was measured side by side in one run, alternating the methods (A B A B …) on a shared machine, ' +
      'and is reported as the median with the interquartile range (p25–p75). Ratios are ratios of medians. Each section comes from the newest ' +
      'results file that holds it, so sections may come from different runs (the source is named under each table).',
    '',
    `Versions: Docker ${dockerNow ?? 'not found'}${slurmNow === null ? '' : `, Slurm ${slurmNow.replace(/^slurm\s*/i, '')}`} (asked at report time; the runs record Node themselves` +
      ', and the Snakemake run records its own versions).',
    '',
  );

  // ---- Targets first, filled in as the sections are read.
  const targetsAt = md.length;

  const snk = pick<{
    versions: { snakemake: string; python: string; docker: string | null; hpcflow: string };
    reps: number;
    sizes: {
      stages: number;
      hpcflowSetup: string;
      noop: { hpcflow: S; snakemake: S; ratio: number };
      oneChange: { hpcflow: S; snakemake: S; ratio: number };
      decidedToRun: { hpcflow: number; snakemake: number };
    }[];
    skipped: string[];
  }>('snakemake');
  const status = pick<{ stages: number; cold: number; noop: S; planner: S }[]>('status');
  if (snk !== null) {
    const r = snk.v;
    md.push(
      '## Change detection: hpcflow vs Snakemake',
      '',
      src(snk),
      '',
      `Snakemake ${r.versions.snakemake} (Debian, Python ${r.versions.python.replace(/^Python /, '')}), hpcflow ${r.versions.hpcflow}, Docker ${r.versions.docker ?? '—'}; ${r.reps} repetitions of each, alternated.`,
      '',
      'The same pipeline for both, in the same directory over the same files: a fan of N independent stages, stage *i* copies ' +
        '`src/in-i.txt` to `out/si.txt` (hpcflow: `pipelines/synth.yaml`, image `hpcflow-test/busybox:1`; Snakemake: a Snakefile of N ' +
        'explicit rules with `shell: "cp {input} {output}"`, plus `rule all`). Both were first brought up to date: `snakemake -c1` ran the ' +
        'copies bare, then `hpcflow run` ran them in containers (at ≤ 100 stages; beyond, `hpcflow commit` adopted the outputs Snakemake had ' +
        'written — a container per stage would take minutes, and the state reached is the same: every stage recorded as up to date). ' +
        'Both were checked to find nothing to do, and exactly one stage to run after the change (Snakemake also schedules `rule all`). ' +
        '(Runs recorded before 2026-11-25 counted Snakemake\'s job-stats rows twice — a dry run prints that table before and after the job list — so a 2 there is one stage.)',
      '',
      '| stages | no-op `hpcflow status`, ms | no-op `snakemake -n -q -c1`, ms | **snakemake / hpcflow** | one change: `hpcflow status`, ms | one change: `snakemake -n -q -c1`, ms | **snakemake / hpcflow** | stages to run (hpcflow / snakemake) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r.sizes) {
      md.push(
        `| ${x.stages.toLocaleString('en-US')} | ${cell(x.noop.hpcflow)} | ${cell(x.noop.snakemake)} | **${x.noop.ratio.toFixed(1)}** | ${cell(x.oneChange.hpcflow)} | ${cell(x.oneChange.snakemake)} | **${x.oneChange.ratio.toFixed(1)}** | ${x.decidedToRun.hpcflow} / ${x.decidedToRun.snakemake} |`,
      );
    }
    md.push(
      '',
      'Both commands only decide; neither runs anything. They do comparable but not identical work. Snakemake parses the Snakefile (N rules of Python), ' +
        'builds the job DAG, stats every input and output and compares modification times, and reads its per-output metadata in `.snakemake/` ' +
        '(its default rerun triggers: mtime, params, input, code, software environment). It never reads file contents. hpcflow parses the YAML, ' +
        'fingerprints every stage (command, image, parameters, dependency hashes) and compares with `hpcflow.lock`; dependency hashes come from a ' +
        'stat cache (a file whose stat is unchanged is not re-read), and a no-op answer is served from a stat snapshot of ' +
        'every dependency and output when none changed. A changed file is hashed (BLAKE3) — content, not mtime, decides, so restoring ' +
        'the content restores "up to date", which Snakemake would only see if the mtime were restored too (the benchmark restores both). ' +
        'Both timings include process start: Node ~55 ms, CPython plus Snakemake imports several hundred ms — a fixed cost that dominates at 10 stages.',
      '',
    );
    const k = r.sizes.find((x) => x.stages === 1000);
    if (k !== undefined) verdicts.push(`| no-op status ≥ 10× faster than Snakemake at 1,000 stages | ${fmt(k.noop.hpcflow.median)} ms vs ${fmt(k.noop.snakemake.median)} ms: ×${k.noop.ratio.toFixed(1)} | ${yes(k.noop.ratio >= 10)} |`);
    for (const s of r.skipped) md.push(`Not measured: ${s}.`, '');

    // Scaling.
    const xs = r.sizes.map((x) => x.stages);
    const fh = logLogFit(xs, r.sizes.map((x) => x.noop.hpcflow.median));
    const fs = logLogFit(xs, r.sizes.map((x) => x.noop.snakemake.median));
    const big = r.sizes.filter((x) => x.stages >= 100);
    const tail = big.length >= 2 ? { h: logLogFit(big.map((x) => x.stages), big.map((x) => x.noop.hpcflow.median)), s: logLogFit(big.map((x) => x.stages), big.map((x) => x.noop.snakemake.median)) } : null;
    md.push(
      '### Scaling',
      '',
      `Least-squares fit of log(no-op time) on log(stages), ${xs.join(', ')} stages: hpcflow slope **${fh.slope.toFixed(2)}**, Snakemake slope **${fs.slope.toFixed(2)}** ` +
        '(1 = linear; near 0 = fixed cost dominates). ' +
        (tail === null ? '' : `Over ${big.map((x) => x.stages).join(' and ')} stages only, where the fixed start-up cost matters less: hpcflow ${tail.h.slope.toFixed(2)}, Snakemake ${tail.s.slope.toFixed(2)}. `) +
        'A fitted slope over so few sizes is a summary, not a law: both curves are a constant (process start) plus a per-stage part, so the slope rises with N.' +
        (status === null ? '' : ` The \`status\` section below measures hpcflow alone up to ${Math.max(...status.v.map((x) => x.stages)).toLocaleString('en-US')} stages.`),
      '',
    );
    const series: Series[] = [
      { name: 'hpcflow status', color: '#1f77b4', points: r.sizes.map((x) => ({ x: x.stages, y: x.noop.hpcflow.median, lo: x.noop.hpcflow.p25, hi: x.noop.hpcflow.p75 })) },
      { name: 'snakemake -n', color: '#d62728', points: r.sizes.map((x) => ({ x: x.stages, y: x.noop.snakemake.median, lo: x.noop.snakemake.p25, hi: x.noop.snakemake.p75 })) },
    ];
    if (status !== null) series.push({ name: 'hpcflow (tree, bench status)', color: '#7fb2dc', points: status.v.map((x) => ({ x: x.stages, y: x.noop.median, lo: x.noop.p25, hi: x.noop.p75 })) });
    await mkdir(join(ROOT, 'docs/img'), { recursive: true });
    await writeFile(join(ROOT, 'docs/img/perf-noop-status.svg'), renderLogLog(series, { title: 'No-op change detection vs pipeline size', xLabel: 'stages', yLabel: 'ms, end to end (median, p25–p75)' }));
    md.push('![No-op change detection time vs number of stages, log-log: hpcflow status and snakemake -n](img/perf-noop-status.svg)', '');
  }

  if (status !== null) {
    md.push('## No-op `hpcflow status` alone, up to 10,000 stages', '', src(status), '', 'A binary tree of stages over shared inputs (bench/status.ts), end to end including process start; 7 runs each.', '');
    md.push('| stages | stat snapshot, ms | full planner (snapshot deleted), ms | first run, caches cold, ms |', '|---:|---:|---:|---:|');
    for (const x of status.v) md.push(`| ${x.stages.toLocaleString('en-US')} | ${cell(x.noop)} | ${cell(x.planner)} | ${fmt(x.cold)} |`);
    const t = status.v.find((x) => x.stages === 1000);
    if (t !== undefined) verdicts.push(`| 1,000-stage no-op status under 150 ms | ${fmt(t.noop.median)} ms | ${yes(t.noop.median < 150)} |`);
    md.push('');
  }

  const ov = pick<{ stagesPerRun: number; bareDockerodeMs: S; hpcflowPerStageMs: S; overheadMs: number; ratio: number }>('overhead');
  if (ov !== null) {
    const r = ov.v;
    md.push(
      '## Per-stage overhead on Docker',
      '',
      src(ov),
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

  type Way = { kernelMs: S; wallMs: S };
  const kn = pick<{
    image: string;
    reps: number;
    threads: number;
    kernels: { name: string; args: string; bare: Way; container: Way; hpcflow: Way; containerKernelRatio: number; hpcflowKernelRatio: number; containerWallRatio: number; hpcflowWallRatio: number; containerKernelRatioPaired: S; hpcflowKernelRatioPaired: S; gbs?: Record<'bare' | 'container' | 'hpcflow', Record<string, S>> }[];
    trivial: { reps: number; spawnTrueMs: S; dockerRunTrueMs: S; dockerodeTrueMs: S; busybox: string };
  }>('kernels');
  if (kn !== null) {
    const r = kn.v;
    const rc = (x: S): string => `${x.median.toFixed(3)} (${x.p25.toFixed(3)}–${x.p75.toFixed(3)})`;
    md.push(
      '## Kernels on local Docker: bare vs container vs hpcflow stage',
      '',
      src(kn),
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
        `| | \`docker run --rm\` | ${cell(k.container.kernelMs)} | ${cell(k.container.wallMs)} | **${k.containerKernelRatio.toFixed(3)}** | ${rc(k.containerKernelRatioPaired)} | ${k.containerWallRatio.toFixed(2)} |`,
        `| | hpcflow stage | ${cell(k.hpcflow.kernelMs)} | ${cell(k.hpcflow.wallMs)} | **${k.hpcflowKernelRatio.toFixed(3)}** | ${rc(k.hpcflowKernelRatioPaired)} | ${k.hpcflowWallRatio.toFixed(2)} |`,
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
      for (const [n, w] of [['bare', st.bare], ['`docker run`', st.container], ['hpcflow stage', st.hpcflow]] as const) md.push(`| ${n} | ${g(w.copy)} | ${g(w.scale)} | ${g(w.add)} | ${g(w.triad)} |`);
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
      ...(ov === null ? [] : [`| hpcflow, marginal per stage (from the per-stage overhead section above, another run) | ${cell(ov.v.hpcflowPerStageMs)} |`]),
      '',
      'The kernel ratios are for a 2-CPU shared machine with 5 repetitions: a 2% difference is at the edge of what it can resolve — compare the paired p25–p75 with ±0.02.',
      '',
    );
  }

  const sl = pick<Record<string, unknown> & {
    cluster: string;
    latencyReps: number;
    stages: number;
    srunN1Ms: S;
    sbatchEndSeenMs: S;
    hpcflow1Ms: S;
    perStageOverheadMs: S;
    hpcflowMarginalMs: S;
    srunTrueMs: S;
    srunContainerTrueMs: S;
    containerCostMs: S;
    kernel: { reps: number; args: string; bare: { kernelMs: S; wallMs: S }; container: { kernelMs: S; wallMs: S }; hpcflow: { kernelMs: S; wallMs: S }; containerKernelRatio: number; hpcflowKernelRatio: number; containerWallRatio: number; hpcflowWallRatio: number };
  }>('slurm');
  if (sl !== null) {
    const r = sl.v;
    const K = r.kernel;
    md.push(
      '## Slurm: per-stage overhead and the kernel in a container',
      '',
      src(sl),
      '',
      `Test cluster: ${r.cluster}${slurmNow === null ? '' : ` (Slurm ${slurmNow.replace(/^slurm\s*/i, '')} at report time)`}; ${r.latencyReps} repetitions, alternated.`,
      '',
      '| | median ms (p25–p75) |',
      '|---|---:|',
      `| bare \`srun -N1 hostname\` | ${cell(r.srunN1Ms)} |`,
      `| bare \`sbatch --wrap\`: submit → COMPLETED seen | ${cell(r.sbatchEndSeenMs)} |`,
      `| \`hpcflow run -f --executor slurm\`, 1 trivial stage, end to end | ${cell(r.hpcflow1Ms)} |`,
      `| **per-stage overhead: hpcflow 1 stage − bare sbatch (paired)** | **${cell(r.perStageOverheadMs)}** |`,
      `| marginal cost per stage, ${r.stages} independent stages | ${cell(r.hpcflowMarginalMs)} |`,
      `| bare \`srun … true\` | ${cell(r.srunTrueMs)} |`,
      `| \`srun\` + hpcflow's docker task wrapper \`true\` | ${cell(r.srunContainerTrueMs)} |`,
      `| container on the node (paired difference) | ${cell(r.containerCostMs)} |`,
      '',
      `**Where hpcflow is slower:** one trivial stage through hpcflow on Slurm takes ${(r.hpcflow1Ms.median / r.sbatchEndSeenMs.median).toFixed(1)}× a bare \`sbatch\` ` +
        `(+${fmt(r.perStageOverheadMs.median)} ms). The parts (bench/results/slurm.md): starting the CLI and planning (~${fmt((r.hpcflowStatusMs as S | undefined)?.median ?? NaN)} ms for \`hpcflow status\` alone), ` +
        `the container on the node (${fmt(r.containerCostMs.median)} ms), squeue polling that backs off (250 ms ×1.5 while nothing changes) instead of a tight loop, and the final ` +
        '`scontrol`/`sacct` queries and storing outputs in the cache. On stages that compute for minutes this is noise; on trivial stages it dominates. ' +
        'The Docker per-stage target (< 20 ms) is not the target here: a Slurm batch job itself waits up to a second for the scheduler pass.',
      '',
      `### The heat kernel (\`heat ${K.args}\`), bare vs container vs hpcflow stage (${K.reps} reps)`,
      '',
      '| | kernel ms (p25–p75) | wall ms (p25–p75) | kernel / bare | wall / bare |',
      '|---|---:|---:|---:|---:|',
      `| bare \`srun\` | ${cell(K.bare.kernelMs)} | ${cell(K.bare.wallMs)} | 1 | 1 |`,
      `| container (\`srun\` + docker task wrapper) | ${cell(K.container.kernelMs)} | ${cell(K.container.wallMs)} | **${K.containerKernelRatio.toFixed(3)}** | ${K.containerWallRatio.toFixed(2)} |`,
      `| hpcflow stage (\`run -f --executor slurm\`) | ${cell(K.hpcflow.kernelMs)} | ${cell(K.hpcflow.wallMs)} | ${K.hpcflowKernelRatio.toFixed(3)} | ${K.hpcflowWallRatio.toFixed(2)} |`,
      '',
      `Kernel time is what the program measures around its own sweeps. The kernel in a container is ${((K.containerKernelRatio - 1) * 100).toFixed(1)}% off bare; ` +
        `inside an hpcflow stage it measured ${((K.hpcflowKernelRatio - 1) * 100).toFixed(1)}% off bare — the same binary in the same container. Its p25–p75 spread is ` +
        'wide, and over four runs of this section on the shared 2-CPU machine the ratio ranged 0.96–1.11: with 5 repetitions this cannot be told apart from noise, ' +
        'and it is reported as not meeting the 2% target until a quiet machine or more repetitions show otherwise. ' +
        'Wall time adds the batch-job, container, CLI and caching costs of the table above.',
      '',
    );
    verdicts.push(`| kernel in a container within 2% of bare (Slurm, heat) | container ×${K.containerKernelRatio.toFixed(3)}; hpcflow stage ×${K.hpcflowKernelRatio.toFixed(3)} | container: ${yes(Math.abs(K.containerKernelRatio - 1) <= 0.02)}; hpcflow stage: ${yes(Math.abs(K.hpcflowKernelRatio - 1) <= 0.02)} |`);
  }

  const hs = pick<{ catGBs: S; hashFileGBs: S; hashFileSyncGBs: S; blake3MemGBs: S; b3sum1GBs: S | null; ratioToB3sum: number | null }>('hash');
  if (hs !== null) {
    const r = hs.v;
    md.push(
      '## Hashing one page-cached 1 GiB file',
      '',
      src(hs),
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
      md.push(
        `hashFile / single-threaded b3sum = ${r.ratioToB3sum.toFixed(2)}. **Where hpcflow is slower:** the single-file async path reads 1 MiB chunks through libuv and ` +
          'hashes them with the napi BLAKE3 binding, which on this machine is slower than b3sum\'s own SIMD code; data sets use the worker pool instead (next table).',
        '',
      );
      verdicts.push(`| single-file hashFile ≥ 0.8 × b3sum (1 thread) | ×${r.ratioToB3sum.toFixed(2)} | ${yes(r.ratioToB3sum >= 0.8)} |`);
    }
  }

  type G = { hashFileSeq: S | null; hashFileSyncSeq: S | null; pool1: S | null; poolAll: S | null; b3sum1: S | null; b3sumAll: S | null };
  type Part = { files: number; fileBytes: number; gbs: G; poolAllVsB3sum1: number | null; poolAllVsB3sumAll: number | null };
  const dh = pick<{ threads: number; large: Part; small: Part }>('dataset-hash');
  if (dh !== null) {
    const { large: L, small: Sm, threads } = dh.v;
    const r2 = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
    md.push(
      `## Hashing a 1 GiB data set on every core (${threads} threads)`,
      '',
      src(dh),
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
  }

  const da = pick<{ files: number; totalBytes: number; threads: number; addPool: S; addMainThread: S; cpB3sum: S; poolVsCpB3sum: number | null }>('dataset-add');
  if (da !== null) {
    const r = da.v;
    md.push(
      `## \`dataset add\` of ${r.totalBytes / 2 ** 30} GiB (${r.files} files)`,
      '',
      src(da),
      '',
      '| GB/s added, median (p25–p75) | |',
      '|---|---:|',
      `| \`addDataset\`, hash pool (${r.threads} threads) | ${gb(r.addPool)} |`,
      `| \`addDataset\`, main thread only | ${gb(r.addMainThread)} |`,
      `| shell floor: \`b3sum\`, \`cp -r\`, \`b3sum\` | ${gb(r.cpB3sum)} |`,
      `| pool / shell floor | ${r.poolVsCpB3sum === null ? '—' : r.poolVsCpB3sum.toFixed(2)} |`,
      '',
    );
  }

  const ds = pick<{ files: number; unchanged: S; walkStat: S; ratioToWalk: number; changed1pct: S; cli: S }[]>('dataset-status');
  if (ds !== null) {
    md.push('## `dataset status` of many small files', '', src(ds), '', '| files | unchanged, in-process ms | floor: walk + stat, ms | ratio | 1% changed, ms | CLI end to end, ms |', '|---:|---:|---:|---:|---:|---:|');
    for (const x of ds.v) md.push(`| ${x.files.toLocaleString('en-US')} | ${cell(x.unchanged)} | ${cell(x.walkStat)} | ${x.ratioToWalk.toFixed(2)} | ${cell(x.changed1pct)} | ${cell(x.cli)} |`);
    const t = ds.v.find((x) => x.files === 10_000);
    if (t !== undefined) verdicts.push(`| unchanged 10,000-file dataset status < 100 ms in-process | ${fmt(t.unchanged.median)} ms | ${yes(t.unchanged.median < 100)} |`);
    md.push('');
  }

  const rc = pick<{ files: number; resultFiles: number; commit: Record<string, S | null>; push: { hpcflowBranch: S; gitBranch: S; hpcflowRef: S; gitRef: S } }[]>('results');
  if (rc !== null) {
    const r = rc.v;
    const head = `| | ${r.map((x) => `${x.files.toLocaleString('en-US')} files`).join(' | ')} |`;
    const sep = `|---|${r.map(() => '---:').join('|')}|`;
    const row = (label: string, f: (x: (typeof r)[number]) => string): string => `| ${label} | ${r.map(f).join(' | ')} |`;
    const ratio = (a: S | null | undefined, b: S | null | undefined): string => (a == null || b == null ? '—' : (a.median / b.median).toFixed(2));
    md.push(
      `## Results commits and pushes (${r[0]?.resultFiles ?? '?'} result files into a checkout of many small files)`,
      '',
      src(rc),
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
      '**Where hpcflow is slower:** `pushResults` goes through isomorphic-git (no git binary needed on a runner), whose push walks every ' +
        'tree of the new commit, of the merge base and of the remote-tracking ref to find what to send: its cost grows with the checkout, ' +
        'where native `git push` stays near-constant. Branch-mode commits are slower than `git add && git commit` because isomorphic-git ' +
        'reads and rewrites the whole index file to refresh the few entries hpcflow wrote (measured: that refresh alone is most of the commit); ' +
        'results-ref mode, which never touches the index, is on par or faster. See bench/results/results.md for the full table.',
      '',
    );
  }

  md.splice(
    targetsAt,
    0,
    '## Targets',
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    ...verdicts,
    '',
  );
  await mkdir(join(ROOT, 'docs'), { recursive: true });
  await writeFile(join(ROOT, 'docs/performance.md'), `${md.join('\n')}\n`);
  process.stdout.write(`wrote docs/performance.md (${verdicts.length} targets) and docs/img/perf-noop-status.svg\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
