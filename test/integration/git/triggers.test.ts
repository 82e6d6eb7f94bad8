/**
 * Push triggers against a real git server over HTTP on 127.0.0.1 (git http-backend): a push runs
 * the pushed commit — through the post-receive hook and through `hpcflow watch` — and the results
 * commit lands on the remote; a results commit never triggers a run; a killed run leaves the
 * clone usable and the next run completes.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, hpcflow } from '../../helpers/cli.js';
import { startGitServer } from '../../helpers/git-server.js';
import type { GitServer } from '../../helpers/git-server.js';
import { signBody } from '../../../runner/triggers/webhook.js';

const PIPELINE = (scale: number, sleep = 0): string => `stages:
  gen:
    image: hpcflow-test/busybox:1
    cmd: >-
      sleep ${sleep}; echo "value \${scale}" > out.txt; echo '{"value": \${scale}}' > metrics.json
    params: { scale: ${scale} }
    outs: [out.txt]
    metrics: metrics.json
`;

const GIT_ENV = { GIT_AUTHOR_NAME: 'dev', GIT_AUTHOR_EMAIL: 'dev@example.org', GIT_COMMITTER_NAME: 'dev', GIT_COMMITTER_EMAIL: 'dev@example.org' };

let server: GitServer;
let tmp: string;

beforeAll(async () => {
  server = await startGitServer();
  tmp = await mkdtemp(join(tmpdir(), 'hpcflow-triggers-'));
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

async function newRepo(name: string): Promise<{ bare: string; url: string; dev: string }> {
  const bare = await server.createBare(`${name}.git`, { initialFiles: { 'pipelines/p.yaml': PIPELINE(1), '.gitignore': '.hpcflow/\n' } });
  const url = server.url(`${name}.git`);
  const dev = join(tmp, `${name}-dev`);
  await execa('git', ['clone', '-q', url, dev]);
  return { bare, url, dev };
}

async function pushChange(dev: string, text: string, message: string): Promise<string> {
  await writeFile(join(dev, 'pipelines/p.yaml'), text);
  await execa('git', ['commit', '-qam', message], { cwd: dev, env: GIT_ENV });
  await execa('git', ['push', '-q', 'origin', 'HEAD:main'], { cwd: dev });
  return (await execa('git', ['rev-parse', 'HEAD'], { cwd: dev })).stdout.trim();
}

const remoteLog = async (bare: string): Promise<{ oid: string; parent: string; message: string }[]> => {
  const r = await execa('git', ['--git-dir', bare, 'log', '--format=%H%x1f%P%x1f%B%x1e', 'main']);
  return r.stdout
    .split('\x1e')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [oid = '', parent = '', message = ''] = s.split('\x1f');
      return { oid, parent, message };
    });
};

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('push triggers', () => {
  it('a push runs the commit through the post-receive hook; the results commit lands and triggers nothing', async () => {
    const { bare, url, dev } = await newRepo('hooked');
    const workdir = join(tmp, 'hook-runner');
    const inst = await hpcflow(['hook', 'install', '--repo', bare, '--url', url, '--workdir', workdir], tmp);
    expect(inst.code, inst.stderr).toBe(0);
    const pushed = await pushChange(dev, PIPELINE(7), 'scale 7');
    const results = await waitFor('the results commit on the remote', async () => {
      const log = await remoteLog(bare);
      return log[0]?.message.includes('Hpcflow-Run:') ? log[0] : undefined;
    });
    expect(results.parent).toBe(pushed);
    expect(results.message).toContain(`Hpcflow-Input: ${pushed}`);
    const files = (await execa('git', ['--git-dir', bare, 'ls-tree', '-r', '--name-only', results.oid])).stdout.split('\n');
    expect(files).toEqual(expect.arrayContaining(['hpcflow.lock', 'out.txt', 'metrics.json']));
    expect(files.some((f) => /^runs\/.+\.json$/.test(f))).toBe(true);
    expect((await execa('git', ['--git-dir', bare, 'show', `${results.oid}:out.txt`])).stdout).toBe('value 7');
    // The results push ran the hook again: the watcher must see a results commit and run nothing.
    const log = await waitFor('the watchers to settle', async () => {
      const text = await readFile(`${workdir}.log`, 'utf8').catch(() => '');
      return /results commit: not run \(loop guard\)|another watcher is running/.test(text) && !existsSync(`${workdir}.watch.lock`) ? text : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await remoteLog(bare)).filter((c) => c.message.includes('Hpcflow-Run:'))).toHaveLength(1);
    expect(log.match(/: running$/gm)).toHaveLength(1);
  }, 180_000);

  it('hpcflow watch runs the newest commit, pushes its results, and skips its own results commit', async () => {
    const { bare, url, dev } = await newRepo('watched');
    await pushChange(dev, PIPELINE(2), 'scale 2');
    const newest = await pushChange(dev, PIPELINE(3), 'scale 3');
    const workdir = join(tmp, 'watch-runner');
    const r = await hpcflow(['watch', '--url', url, '--workdir', workdir, '--once'], tmp);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.match(/: running$/gm)).toHaveLength(1); // newest wins: scale 2 was never run alone
    expect(r.stdout).toMatch(/results commit: not run \(loop guard\)/);
    const log = await remoteLog(bare);
    expect(log[0]?.message).toContain(`Hpcflow-Input: ${newest}`);
    expect((await execa('git', ['--git-dir', bare, 'show', 'main:out.txt'])).stdout).toBe('value 3');
    const again = await hpcflow(['watch', '--url', url, '--workdir', workdir, '--once'], tmp);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/: running$/m);
    expect(await remoteLog(bare)).toHaveLength(log.length);
  }, 180_000);

  it('watch --queue all runs every commit that piled up, oldest first', async () => {
    const { bare, url, dev } = await newRepo('queued');
    const first = await pushChange(dev, PIPELINE(2), 'scale 2');
    const second = await pushChange(dev, PIPELINE(3), 'scale 3');
    const workdir = join(tmp, 'queue-runner');
    // A first start runs the tip only; what arrives later is run commit by commit.
    const start = await hpcflow(['watch', '--url', url, '--workdir', workdir, '--once', '--queue', 'all'], tmp);
    expect(start.code, start.stdout + start.stderr).toBe(0);
    expect((await remoteLog(bare))[0]?.message).toContain(`Hpcflow-Input: ${second}`);
    await execa('git', ['pull', '-q', '--rebase', 'origin', 'main'], { cwd: dev, env: GIT_ENV });
    const a = await pushChange(dev, PIPELINE(4), 'scale 4');
    const b = await pushChange(dev, PIPELINE(5), 'scale 5');
    const r = await hpcflow(['watch', '--url', url, '--workdir', workdir, '--once', '--queue', 'all'], tmp);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const inputs = (await remoteLog(bare)).map((c) => /Hpcflow-Input: (\w+)/.exec(c.message)?.[1]).filter(Boolean);
    expect(inputs.slice(0, 3)).toEqual([b, a, second]);
    expect(inputs).not.toContain(first);
    expect((await execa('git', ['--git-dir', bare, 'show', 'main:out.txt'])).stdout).toBe('value 5');
  }, 180_000);

  it('a watcher killed in the middle of a run leaves a usable clone, and the next one completes the run', async () => {
    const { bare, url, dev } = await newRepo('killed');
    const pushed = await pushChange(dev, PIPELINE(5, 20), 'scale 5, slow');
    const workdir = join(tmp, 'killed-runner');
    const child = execa('node', [BIN, 'watch', '--url', url, '--workdir', workdir, '--once'], { cwd: tmp, reject: false, env: { CI: '1' } });
    await waitFor('the run to start', async () => ((await readFile(join(workdir, '.hpcflow/tmp/run.lock'), 'utf8').catch(() => '')) !== '' ? true : undefined), 60_000);
    child.kill('SIGKILL');
    await child;
    // The killed run's own process (a child of the watcher) is gone with it or finishes alone; either way
    // nothing it half-did may block the next run.
    const r = await hpcflow(['watch', '--url', url, '--workdir', workdir, '--once'], tmp);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const log = await remoteLog(bare);
    expect(log.filter((c) => c.message.includes(`Hpcflow-Input: ${pushed}`)).length).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(workdir, '.git/index.lock'))).toBe(false);
    const status = (await execa('git', ['status', '--porcelain'], { cwd: workdir })).stdout;
    expect(status).toBe('');
  }, 180_000);

  it('hpcflow serve: a signed GitHub push webhook runs the branch; an unsigned one is refused', async () => {
    const { bare, url, dev } = await newRepo('served');
    const pushed = await pushChange(dev, PIPELINE(4), 'scale 4');
    const secret = 'test-webhook-secret';
    const child = execa('node', [BIN, 'serve', '--url', url, '--port', '0', '--workdir', join(tmp, 'serve-runner')], {
      cwd: tmp,
      reject: false,
      env: { CI: '1', HPCFLOW_WEBHOOK_SECRET: secret },
    });
    try {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      const port = await waitFor('the server to listen', async () => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1], 30_000);
      const body = JSON.stringify({
        ref: 'refs/heads/main',
        before: '0'.repeat(39) + '1',
        after: pushed,
        deleted: false,
        repository: { full_name: 'lab/served', clone_url: 'https://github.com/lab/served.git' },
        head_commit: { id: pushed, message: 'scale 4' },
        pusher: { name: 'dev' },
      });
      const post = (headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${port}/hooks/github`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers } });
      const unsigned = await post({ 'x-github-delivery': '11111111-1111-1111-1111-111111111111' });
      expect(unsigned.status).toBe(401);
      const ok = await post({ 'x-github-delivery': '22222222-2222-2222-2222-222222222222', 'x-hub-signature-256': signBody(secret, body) });
      expect(ok.status).toBe(202);
      const results = await waitFor('the results commit on the remote', async () => {
        const log = await remoteLog(bare);
        return log[0]?.message.includes('Hpcflow-Run:') ? log[0] : undefined;
      });
      expect(results.message).toContain(`Hpcflow-Input: ${pushed}`);
      const replay = await post({ 'x-github-delivery': '22222222-2222-2222-2222-222222222222', 'x-hub-signature-256': signBody(secret, body) });
      expect(replay.status).toBe(200);
      expect(await replay.text()).toBe('duplicate delivery ignored');
      expect(out).not.toContain(secret);
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  }, 180_000);
});
