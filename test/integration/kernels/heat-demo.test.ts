import { execa } from 'execa';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, hpcflow, outcomes, REPO_ROOT } from '../../helpers/cli.js';
import { listContainersByLabel } from '../../helpers/docker.js';

/**
 * The demo pipeline (pipelines/heat.yaml) end to end on the real Docker engine, with the
 * implementations whose images build here (C/OpenMP for the solvers, Python for the analysis):
 * compiled kernels cached by compile key (a second run compiles nothing), results checked by the
 * analysis against the exact solution, the report written; the frameworks whose images cannot be
 * obtained named before anything starts; a site configuration substituting a locally built image
 * for a framework, with the digest recorded.
 */
const OFFLINE = ['--matrix', 'impl=openmp', '--matrix', 'lang=python'];
let ws: string;

async function git(...args: string[]): Promise<void> {
  await execa('git', args, { cwd: ws });
}

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-heat-demo-'));
  for (const d of ['pipelines', 'kernels', 'containers']) await cp(join(REPO_ROOT, d), join(ws, d), { recursive: true });
  // A smaller problem than the repository's (same code paths, seconds not tens of seconds).
  await writeFile(join(ws, 'params.yaml'), 'heat:\n  steps: 200\n  alpha: 0.25\n  tolerance: 1e-9\n');
  await git('init', '-q');
  await git('-c', 'user.email=t@example.org', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'init');
}, 60_000);

afterAll(async () => {
  if (ws) await rm(ws, { recursive: true, force: true });
});

const built = (stdout: string): Record<string, string> =>
  Object.fromEntries(events(stdout).filter((e) => e.type === 'kernel-build').map((e) => [e.stage as string, e.action as string]));

describe('pipelines/heat.yaml, the demo', () => {
  it('without Chapel and Julia images the run says so before starting, naming the images and the way out', async () => {
    const r = await hpcflow(['run'], ws);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot start: \d+ images? cannot be obtained here \(nothing was run\)/);
    expect(r.stderr).toMatch(/chapel\/chapel:2\.\d+\.\d+ \(FROM in containers\/chapel\/Dockerfile\)/);
    expect(r.stderr).toMatch(/julia:1\.\d+\.\d+\S* \(FROM in containers\/julia\/Dockerfile\)/);
    expect(r.stderr).toMatch(/needed by heat\/solve@impl=chapel,n=256/);
    expect(r.stderr).toMatch(/frameworks\.chapel\.image/);
    expect(r.stderr).toMatch(/--matrix impl=openmp/);
    expect(events(r.stdout).filter((e) => e.type === 'stage-start')).toEqual([]);
  }, 120_000);

  it('runs with the implementations available offline: compiles once, analyses, reports', async () => {
    const r = await hpcflow(['run', '--json', ...OFFLINE], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(outcomes(r.stdout)).toEqual({
      'heat/ic@n=256': 'ran',
      'heat/ic@n=512': 'ran',
      'heat/solve@impl=openmp,n=256': 'ran',
      'heat/solve@impl=openmp,n=512': 'ran',
      'heat/analyse@lang=python': 'ran',
      'heat/report@lang=python': 'ran',
    });
    // One compile key for the C kernel (same source, image, flags): compiled once, shared by four stages.
    const b = built(r.stdout);
    expect(Object.values(b).filter((a) => a === 'compiled')).toHaveLength(1);
    expect(Object.keys(b).sort()).toEqual(['heat/ic@n=256', 'heat/ic@n=512', 'heat/solve@impl=openmp,n=256', 'heat/solve@impl=openmp,n=512']);

    const summary = JSON.parse(await readFile(join(ws, 'reports/heat/python/summary.json'), 'utf8')) as { pass: boolean; cases: { impl: string; nx: number; steps: number; rel_err_analytic: number }[] };
    expect(summary.pass).toBe(true);
    expect(summary.cases.map((c) => [c.impl, c.nx, c.steps])).toEqual([['openmp', 256, 200], ['openmp', 512, 200]]);
    for (const c of summary.cases) expect(c.rel_err_analytic).toBeLessThan(1e-12);
    const report = await readFile(join(ws, 'reports/heat/python/report.md'), 'utf8');
    expect(report).toMatch(/openmp/);
    expect(report).toMatch(/throughput\.svg/);
    // The initial conditions are dataset versions.
    expect(await readFile(join(ws, 'datasets/heat-ic-256.yaml'), 'utf8')).toMatch(/^name: heat-ic-256$/m);
    expect(await listContainersByLabel('hpcflow.run-id')).toEqual([]);
  }, 300_000);

  it('a changed parameter reruns the solvers and compiles nothing', async () => {
    await writeFile(join(ws, 'params.yaml'), 'heat:\n  steps: 150\n  alpha: 0.25\n  tolerance: 1e-9\n');
    const r = await hpcflow(['run', '--json', ...OFFLINE], ws);
    expect(r.code, r.stderr).toBe(0);
    const o = outcomes(r.stdout);
    expect(o['heat/solve@impl=openmp,n=256']).toBe('ran');
    expect(o['heat/ic@n=256']).toBe('up-to-date');
    expect(Object.values(built(r.stdout))).toEqual(['cached', 'cached']);
    // And the binary is restored from the store when the workspace copy is gone.
    await rm(join(ws, '.hpcflow/bin'), { recursive: true, force: true });
    const again = await hpcflow(['run', '--json', '--force', ...OFFLINE, 'heat/solve@impl=openmp,n=256'], ws);
    expect(again.code, again.stderr).toBe(0);
    expect(Object.values(built(again.stdout))).toEqual(['restored']);
  }, 300_000);

  it('a site configuration substitutes a locally built image for a framework; the digest is recorded', async () => {
    const lock = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as { stages: Record<string, { image: { tag: string; digest: string } }> };
    const base = lock.stages['heat/solve@impl=openmp,n=256']?.image;
    expect(base?.tag).toMatch(/^hpcflow\/openmp:/);
    // The site's own image: the same toolchain, as a site would mirror it, under its own name.
    const ctx = join(ws, 'site-image');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${base?.tag}\nLABEL org.example.site=test\n`);
    const tag = `hpcflow-test/site-openmp:${process.pid}`;
    await execa('docker', ['build', '-q', '-t', tag, ctx]);
    const digest = (await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', tag])).stdout.trim();
    try {
      await writeFile(join(ws, 'site.yaml'), `frameworks:\n  openmp:\n    image: ${tag}\n`);
      const status = await hpcflow(['status', '--site', 'site.yaml', ...OFFLINE], ws);
      expect(status.stdout).toMatch(new RegExp(`image changed: .*${tag.replace(/[/:.]/g, '\\$&')}`));
      const r = await hpcflow(['run', '--json', '--site', 'site.yaml', ...OFFLINE], ws);
      expect(r.code, r.stderr).toBe(0);
      const after = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as typeof lock;
      for (const id of ['heat/ic@n=256', 'heat/solve@impl=openmp,n=512']) expect(after.stages[id]?.image).toEqual({ tag, digest });
      // The image digest is part of the compile key: a new image, one new compile.
      expect(Object.values(built(r.stdout)).filter((a) => a === 'compiled')).toHaveLength(1);
      // The python stages were not mapped: they keep the built python image.
      expect(after.stages['heat/analyse@lang=python']?.image.tag).toMatch(/^hpcflow\/python:/);
    } finally {
      await execa('docker', ['rmi', '-f', tag], { reject: false });
    }
  }, 300_000);
});
