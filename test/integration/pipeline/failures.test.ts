import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, events, hpcflow, outcomes, withStatus } from '../../helpers/cli.js';

async function hpcflowContainers(): Promise<string[]> {
  const r = await execa('docker', ['ps', '-aq', '--filter', 'label=hpcflow.run-id']);
  return r.stdout.split('\n').filter(Boolean);
}

async function countFiles(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += 1;
  return n;
}

let ws: string;
const write = (rel: string, text: string): Promise<void> => writeFile(join(ws, rel), text);

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-fail-'));
  await mkdir(join(ws, 'pipelines'));
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
});

describe('failures, interrupts and image identity', () => {
  it('a failing stage leaves no container and no cache entry; its downstream is skipped; independents go on with --on-failure continue', async () => {
    await write(
      'pipelines/f.yaml',
      `defaults: { image: hpcflow-test/busybox:1 }
stages:
  bad:
    cmd: echo partial > bad.txt; echo "about to fail" >&2; exit 3
    outs: [bad.txt]
  after:
    cmd: cp bad.txt after.txt
    deps: [bad.txt]
    outs: [after.txt]
  fine:
    cmd: echo ok > fine.txt
    outs: [fine.txt]
`,
    );
    const runsBefore = await countFiles(join(ws, '.hpcflow/cache/runs'));
    const r = await hpcflow(['run', '--json', '--on-failure', 'continue'], ws);
    expect(r.code).toBe(1);
    const oc = outcomes(r.stdout);
    expect(oc).toEqual({ 'f/bad': 'failed', 'f/after': 'skipped', 'f/fine': 'ran' });
    const end = events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'f/bad') as { outcome: { error: string } };
    expect(end.outcome.error).toBe('exit code 3');
    expect(events(r.stdout).some((e) => e.type === 'stage-log' && e.line === 'about to fail' && e.stream === 'stderr')).toBe(true);
    expect(await hpcflowContainers()).toEqual([]);
    // Only `fine` was cached.
    expect(await countFiles(join(ws, '.hpcflow/cache/runs'))).toBe(runsBefore + 1);
    const status = await hpcflow(['status'], ws);
    expect(status.stdout).toMatch(/f\/bad\s+will run\n\s+never ran/);
  });

  it('plain output prefixes every log line with its stage', async () => {
    const r = await hpcflow(['run', 'f/bad'], ws);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[f\/bad\] about to fail$/m);
    expect(r.stdout).toMatch(/\[f\/bad\] FAILED: exit code 3/);
  });

  it('Ctrl-C (SIGINT) during a stage removes its container and exits 130 with a clear message', async () => {
    await write('pipelines/f.yaml', `stages:\n  slow:\n    image: hpcflow-test/busybox:1\n    cmd: echo started; sleep 60; echo done > slow.txt\n    outs: [slow.txt]\n`);
    const child = execa('node', [BIN, 'run', '--json'], { cwd: ws, reject: false, env: { CI: '1' } });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stage never started; output: ${seen}`)), 60_000);
      child.stdout?.on('data', (b: Buffer) => {
        seen += b.toString();
        if (seen.includes('"line":"started"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(await hpcflowContainers()).toHaveLength(1);
    const t0 = Date.now();
    child.kill('SIGINT');
    const res = await child;
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(res.exitCode).toBe(130);
    expect(res.stderr).toContain('interrupted');
    expect(withStatus(res.stdout, 'canceled')).toEqual(['f/slow']);
    expect(await hpcflowContainers()).toEqual([]);
    expect(existsSync(join(ws, 'slow.txt'))).toBe(false);
    // The workspace lock was released: a new command works at once.
    const st = await hpcflow(['status'], ws);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/f\/slow\s+will run/);
  });

  it('--on-failure cancel stops running independent stages at once; stop starts nothing new', async () => {
    await write(
      'pipelines/f.yaml',
      `defaults: { image: hpcflow-test/busybox:1 }
stages:
  bad:
    cmd: sleep 1; exit 1
    outs: [bad.txt]
  slow:
    cmd: sleep 30; echo x > slow.txt
    outs: [slow.txt]
  later:
    cmd: echo x > later.txt
    outs: [later.txt]
`,
    );
    const t0 = Date.now();
    const r = await hpcflow(['run', '--json', '-j', '2', '--on-failure', 'cancel'], ws);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.code).toBe(1);
    expect(outcomes(r.stdout)).toEqual({ 'f/bad': 'failed', 'f/slow': 'canceled', 'f/later': 'not-started' });
    expect(await hpcflowContainers()).toEqual([]);
    const s = await hpcflow(['run', '--json', '-j', '1', '--on-failure', 'stop', 'f/bad', 'f/later'], ws);
    expect(outcomes(s.stdout)).toEqual({ 'f/bad': 'failed', 'f/later': 'not-started' });
  });

  it('on a terminal, run shows a spinner and ✔/✖ lines (ora)', async () => {
    await write('pipelines/f.yaml', `stages:\n  t:\n    image: hpcflow-test/busybox:1\n    cmd: echo tty > t.txt\n    outs: [t.txt]\n`);
    // script(1) gives the CLI a pseudo-terminal; CI must be unset or hpcflow prints plain lines.
    const env = { ...process.env };
    delete env.CI;
    const r = await execa('script', ['-qfec', `stty cols 120 rows 40; node ${BIN} run`, '/dev/null'], { cwd: ws, env, extendEnv: false, reject: false, timeout: 60_000, maxBuffer: 1e6 });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain('✔ f/t: ran');
    expect(r.stdout).toContain('▶ f/t: running');
  });

  it('explains "image digest changed although tag did not" when a tag is moved', async () => {
    const tag = `hpcflow-test/moving:${process.pid}`;
    await execa('docker', ['tag', 'hpcflow-test/busybox:1', tag]);
    try {
      await write('pipelines/f.yaml', `stages:\n  s:\n    image: ${tag}\n    cmd: echo hi > s.txt\n    outs: [s.txt]\n`);
      expect((await hpcflow(['run'], ws)).code).toBe(0);
      // Move the tag to a different image (same tag, new content).
      const ctx = await mkdtemp(join(tmpdir(), 'hpcflow-ctx-'));
      await writeFile(join(ctx, 'Dockerfile'), 'FROM hpcflow-test/busybox:1\nRUN echo v2 > /v\n');
      await execa('docker', ['build', '--network', 'host', '-q', '-t', tag, ctx]);
      await rm(ctx, { recursive: true, force: true });
      const st = await hpcflow(['status'], ws);
      expect(st.stdout).toMatch(new RegExp(`image digest changed although tag did not: ${tag.replace(/[/:]/g, '.')} [0-9a-f]{12} → [0-9a-f]{12}`));
    } finally {
      await execa('docker', ['rmi', '-f', tag], { reject: false });
    }
  });

  it('a second run on the same workspace is refused while one holds the lock', async () => {
    await write('pipelines/f.yaml', `stages:\n  s:\n    image: hpcflow-test/busybox:1\n    cmd: echo hi > s.txt\n    outs: [s.txt]\n`);
    await mkdir(join(ws, '.hpcflow/tmp'), { recursive: true });
    // A live process (this test runner) "holds" the lock.
    await writeFile(join(ws, '.hpcflow/tmp/run.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), since: 'now' }));
    const r = await hpcflow(['run'], ws);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('another hpcflow run');
    // A stale lock (dead pid) is taken over.
    await writeFile(join(ws, '.hpcflow/tmp/run.lock'), JSON.stringify({ pid: 999_999, host: (await import('node:os')).hostname(), since: 'then' }));
    const r2 = await hpcflow(['run'], ws);
    expect(r2.code, r2.stderr).toBe(0);
  });
});
