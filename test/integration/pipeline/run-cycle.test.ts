import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hpcflow, outcomes, withStatus } from '../../helpers/cli.js';

/**
 * The core promise, end to end with the real CLI and real containers:
 * first run runs all; second none; touch runs none; a param re-runs exactly its stage and
 * downstream; reverting restores from the run-cache without running.
 */
const PIPELINE = `
defaults:
  image: hpcflow-test/busybox:1
stages:
  prep:
    cmd: mkdir -p data && tr a-z A-Z < inputs/raw.txt > data/clean.txt
    deps: [inputs/raw.txt]
    outs: [data/clean.txt]
  solve:
    matrix:
      n: [2, 3]
    cmd: >-
      mkdir -p results metrics &&
      awk -v n=\${n} -v s=\${scale} '{ print n * s ": " $0 }' data/clean.txt > results/solve-\${n}.txt &&
      echo '{"n": \${n}, "cells_per_s": 1000}' > metrics/solve-\${n}.json
    deps: [data/clean.txt]
    params: [scale]
    outs: ["results/solve-\${n}.txt"]
    metrics: metrics/solve-\${n}.json
  report:
    cmd: cat results/solve-2.txt results/solve-3.txt | head -n \${lines} > results/report.txt
    deps: [results/solve-2.txt, results/solve-3.txt]
    params:
      lines: { from: params.yaml, key: report.lines }
    outs: [results/report.txt]
  other:
    image: { build: tools }
    cmd: cat /tool-version > results-other.txt && echo "\${msg}" >> results-other.txt
    params: { msg: independent }
    outs: [results-other.txt]
`;

let ws: string;
// A build context no earlier test run has built, so the image really needs building.
const NONCE = `${process.pid}-${Date.now()}`;

async function git(...args: string[]): Promise<void> {
  await execa('git', args, { cwd: ws });
}

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-cycle-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'inputs'));
  await mkdir(join(ws, 'containers/tools'), { recursive: true });
  await writeFile(join(ws, 'pipelines/demo.yaml'), PIPELINE);
  await writeFile(join(ws, 'params.yaml'), 'scale: 10\nreport:\n  lines: 3\n');
  await writeFile(join(ws, 'inputs/raw.txt'), 'alpha\nbeta\ngamma\n');
  await writeFile(join(ws, 'containers/tools/Dockerfile'), `FROM hpcflow-test/busybox:1\nLABEL nonce=${NONCE}\nRUN echo tools-1 > /tool-version\n`);
  await git('init', '-q');
});

afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
  const imgs = await execa('docker', ['images', '-q', '--filter', `label=nonce=${NONCE}`]);
  for (const id of new Set(imgs.stdout.split('\n').filter(Boolean))) await execa('docker', ['rmi', '-f', id], { reject: false });
});

const ALL = ['demo/other', 'demo/prep', 'demo/report', 'demo/solve@n=2', 'demo/solve@n=3'];

describe('run cycle on real containers', () => {
  let firstReport = '';

  it('status before any run says every stage will run, and why', async () => {
    const r = await hpcflow(['status', '--json'], ws);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { stages: { id: string; action: string; reasons: { text: string }[] }[] };
    expect(plan.stages.map((s) => s.action)).toEqual(['run', 'run', 'run', 'run', 'run']);
    const other = plan.stages.find((s) => s.id === 'demo/other');
    expect(other?.reasons.map((x) => x.text).join('\n')).toMatch(/image hpcflow\/tools:[0-9a-f]+ must be built/);
  });

  it('a first run executes every stage', async () => {
    const r = await hpcflow(['run', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(withStatus(r.stdout, 'ran')).toEqual(ALL);
    firstReport = await readFile(join(ws, 'results/report.txt'), 'utf8');
    expect(firstReport).toBe('20: ALPHA\n20: BETA\n20: GAMMA\n');
    expect(await readFile(join(ws, 'results-other.txt'), 'utf8')).toBe('tools-1\nindependent\n');
    const lock = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as { stages: Record<string, { image: { digest: string } }> };
    expect(Object.keys(lock.stages).sort()).toEqual(ALL);
    expect(lock.stages['demo/prep']?.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('a second run executes none', async () => {
    const r = await hpcflow(['run', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(withStatus(r.stdout, 'up-to-date')).toEqual(ALL);
  });

  it('touching a dependency without changing its content executes none', async () => {
    const future = new Date(Date.now() + 60_000);
    await utimes(join(ws, 'inputs/raw.txt'), future, future);
    const r = await hpcflow(['run', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(withStatus(r.stdout, 'up-to-date')).toEqual(ALL);
  });

  it('changing one parameter re-runs exactly that stage and its downstream, and status says why', async () => {
    await writeFile(join(ws, 'params.yaml'), 'scale: 100\nreport:\n  lines: 3\n');
    const st = await hpcflow(['status'], ws);
    expect(st.stdout).toContain('param scale 10→100');
    expect(st.stdout).toMatch(/demo\/report\s+will run\n\s+upstream demo\/solve@n=2 will run/);
    const r = await hpcflow(['run', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(withStatus(r.stdout, 'ran')).toEqual(['demo/report', 'demo/solve@n=2', 'demo/solve@n=3']);
    expect(withStatus(r.stdout, 'up-to-date')).toEqual(['demo/other', 'demo/prep']);
    expect(await readFile(join(ws, 'results/report.txt'), 'utf8')).toBe('200: ALPHA\n200: BETA\n200: GAMMA\n');
  });

  it('reverting the change restores the outputs from the run-cache without running', async () => {
    await writeFile(join(ws, 'params.yaml'), 'scale: 10\nreport:\n  lines: 3\n');
    const st = await hpcflow(['status', '--json'], ws);
    const plan = JSON.parse(st.stdout) as { stages: { id: string; action: string }[] };
    // report too: its inputs will be the restored outputs, so its old fingerprint is known.
    expect(plan.stages.filter((s) => s.action === 'restore').map((s) => s.id).sort()).toEqual(['demo/report', 'demo/solve@n=2', 'demo/solve@n=3']);
    const r = await hpcflow(['run', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(withStatus(r.stdout, 'ran')).toEqual([]);
    expect(withStatus(r.stdout, 'restored')).toEqual(['demo/report', 'demo/solve@n=2', 'demo/solve@n=3']);
    expect(await readFile(join(ws, 'results/report.txt'), 'utf8')).toBe(firstReport);
  });

  it('a deleted output is restored from the cache; a modified one too', async () => {
    await rm(join(ws, 'results/solve-3.txt'));
    await writeFile(join(ws, 'results/report.txt'), 'tampered\n');
    const st = await hpcflow(['status'], ws);
    expect(st.stdout).toContain('output results/solve-3.txt is missing');
    expect(st.stdout).toContain('output results/report.txt was modified');
    const r = await hpcflow(['run', '--json'], ws);
    expect(outcomes(r.stdout)['demo/solve@n=3']).toBe('restored');
    expect(outcomes(r.stdout)['demo/report']).toBe('restored');
    expect(await readFile(join(ws, 'results/report.txt'), 'utf8')).toBe(firstReport);
  });

  it('a changed build context rebuilds the image and re-runs only its stage', async () => {
    await writeFile(join(ws, 'containers/tools/Dockerfile'), `FROM hpcflow-test/busybox:1\nLABEL nonce=${NONCE}\nRUN echo tools-2 > /tool-version\n`);
    const st = await hpcflow(['status'], ws);
    expect(st.stdout).toMatch(/demo\/other\s+will run\n\s+image hpcflow\/tools:[0-9a-f]+ must be built/);
    const r = await hpcflow(['run', '--json'], ws);
    expect(withStatus(r.stdout, 'ran')).toEqual(['demo/other']);
    expect(await readFile(join(ws, 'results-other.txt'), 'utf8')).toBe('tools-2\nindependent\n');
  });

  it('every run left a run record', async () => {
    const runs = await readdir(join(ws, '.hpcflow/runs'));
    expect(runs.length).toBeGreaterThanOrEqual(7);
  });
});
