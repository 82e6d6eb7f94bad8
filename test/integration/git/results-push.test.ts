/**
 * Results commits pushed to a real git server (git http-backend behind node:http, see
 * test/helpers/git-server.ts): a plain push, runners racing for the same branch or results ref,
 * a push whose answer was lost, token authentication, and giving up.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { commitResults, pushResults } from '../../../runner/git/results.js';
import { parseLockfile, serializeLockfile } from '../../../runner/lockfile/lockfile.js';
import type { LockEntry, Lockfile } from '../../../runner/lockfile/lockfile.js';
import { startGitServer } from '../../helpers/git-server.js';
import type { GitServer } from '../../helpers/git-server.js';

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
const temps: string[] = [];
let server: GitServer;

beforeAll(async () => {
  server = await startGitServer();
});
afterAll(async () => {
  await server.close();
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

async function sh(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout;
}

function write(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

const entry = (fp: string): LockEntry => ({ fingerprint: fp, cmd: `run ${fp}`, deps: {}, outRecords: [] }) as unknown as LockEntry;
const lock = (stages: Record<string, string>): string =>
  serializeLockfile({ schema: 1, stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, entry(v)])) } as Lockfile);
const fingerprints = (text: string): Record<string, string> => Object.fromEntries(Object.entries(parseLockfile(text).stages).map(([k, v]) => [k, v.fingerprint]));

async function clone(url: string, extra: string[] = []): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'hpcflow-push-')), 'clone');
  temps.push(dirname(dir));
  await execa('git', [...extra, 'clone', '--quiet', url, dir], { env: GIT_ENV });
  await sh(dir, 'config', 'user.name', 'Runner');
  await sh(dir, 'config', 'user.email', 'runner@example.org');
  return dir;
}

/** One runner's results: its stages' lockfile entries, a run record, metrics; committed. */
async function runAndCommit(dir: string, runId: string, stages: Record<string, string>, target: { kind: 'branch' } | { kind: 'ref'; ref: string } = { kind: 'branch' }): Promise<{ oid: string; ref: string; files: string[] }> {
  const current = fingerprints(readFileSync(join(dir, 'hpcflow.lock'), 'utf8'));
  const files: Record<string, string> = { 'hpcflow.lock': lock({ ...current, ...stages }), [`runs/${runId}.json`]: `{"run":"${runId}"}\n` };
  for (const s of Object.keys(stages)) files[`metrics/${s}.json`] = `{"stage":"${s}","run":"${runId}"}\n`;
  write(dir, files);
  const abs = Object.keys(files).map((f) => join(dir, f));
  const input = await sh(dir, 'rev-parse', 'HEAD');
  const made = await commitResults({ dir, files: abs, runId, inputCommit: input, summary: `hpcflow: ${Object.keys(stages).length} ran (run ${runId})`, target });
  if (made === null) throw new Error('nothing committed');
  if (target.kind === 'ref') for (const f of Object.keys(files)) if (f !== 'hpcflow.lock') rmSync(join(dir, f)); // ref mode: the checkout stays as it was
  if (target.kind === 'ref') await sh(dir, 'checkout', '--quiet', '--', 'hpcflow.lock');
  return { ...made, files: abs };
}

const trailerCount = async (bare: string, ref: string, runId: string): Promise<number> =>
  (await sh(bare, 'log', '--format=%B', ref)).split('\n').filter((l) => l === `Hpcflow-Run: ${runId}`).length;

const SEED = { 'README.md': 'pipeline\n', 'hpcflow.lock': lock({ a: '0', b: '0', c: '0' }), 'src/kernel.c': 'int k;\n' };

describe('git test server', () => {
  it('serves the git CLI (clone, push) and gzip-encoded request bodies', async () => {
    const bare = await server.createBare('cli.git', { initialFiles: { 'a.txt': 'a\n' } });
    const dir = await clone(server.url('cli.git'));
    write(dir, { 'b.txt': 'b\n' });
    await sh(dir, 'add', 'b.txt');
    await sh(dir, 'commit', '--quiet', '-m', 'b');
    await sh(dir, 'push', '--quiet', 'origin', 'main');
    const tip = await sh(bare, 'rev-parse', 'main');
    expect(tip).toBe(await sh(dir, 'rev-parse', 'HEAD'));
    // An upload-pack negotiation sent gzip'ed, as the git CLI does for large ones.
    const body = gzipSync(Buffer.from(`0032want ${tip}\n00000009done\n`));
    const answer = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request(`${server.url('cli.git')}/git-upload-pack`, { method: 'POST', headers: { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Encoding': 'gzip', 'Content-Length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status).toBe(200);
    expect(answer.body.includes(Buffer.from('PACK'))).toBe(true);
  });
});

describe('pushResults', () => {
  it('pushes a results commit on the branch, and one on a results ref, to a fresh repository', async () => {
    const bare = await server.createBare('fresh.git', { initialFiles: SEED });
    const dir = await clone(server.url('fresh.git'));
    const made = await runAndCommit(dir, 'run-1', { a: '1' });
    const t0 = performance.now();
    const pushed = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-1' });
    const ms = performance.now() - t0;
    expect(pushed).toEqual({ oid: made.oid, attempts: 1 });
    expect(await sh(bare, 'rev-parse', 'main')).toBe(made.oid);
    expect(await sh(bare, 'log', '-1', '--format=%s', 'main')).toBe('hpcflow: 1 ran (run run-1)');
    expect(await trailerCount(bare, 'main', 'run-1')).toBe(1);
    expect(await sh(dir, 'rev-parse', 'refs/remotes/origin/main')).toBe(made.oid);
    expect(await sh(dir, 'status', '--porcelain')).toBe('');

    const onRef = await runAndCommit(dir, 'run-2', { b: '2' }, { kind: 'ref', ref: 'refs/hpcflow/results/main' });
    const t1 = performance.now();
    const pushedRef = await pushResults({ dir, remote: 'origin', ref: onRef.ref, files: onRef.files, runId: 'run-2' });
    console.log(`push of one results commit: branch ${ms.toFixed(0)} ms, results ref ${(performance.now() - t1).toFixed(0)} ms`);
    expect(pushedRef.oid).toBe(onRef.oid);
    expect(await sh(bare, 'rev-parse', 'refs/hpcflow/results/main')).toBe(onRef.oid);
    expect(await sh(bare, 'rev-parse', 'refs/hpcflow/results/main^')).toBe(made.oid);
    expect(await sh(bare, 'rev-parse', 'main')).toBe(made.oid); // the branch did not move
    expect(await sh(dir, 'for-each-ref', '--format=%(refname)', 'refs/remotes/origin/refs')).toBe(''); // no odd tracking refs
  });

  it('two runners racing for the branch: both land, the lockfile keeps both, each trailer once', async () => {
    const bare = await server.createBare('race.git', { initialFiles: SEED });
    const a = await clone(server.url('race.git'));
    const b = await clone(server.url('race.git'));
    write(b, { 'README.md': 'a local edit nobody pushes\n' }); // must survive the re-apply
    const ca = await runAndCommit(a, 'run-A', { a: 'A' });
    const cb = await runAndCommit(b, 'run-B', { b: 'B' });
    const retries: string[] = [];
    const t0 = performance.now();
    const [pa, pb] = await Promise.all([
      pushResults({ dir: a, remote: 'origin', ref: ca.ref, files: ca.files, runId: 'run-A', onRetry: (n, why) => retries.push(`A${n}: ${why}`) }),
      pushResults({ dir: b, remote: 'origin', ref: cb.ref, files: cb.files, runId: 'run-B', onRetry: (n, why) => retries.push(`B${n}: ${why}`) }),
    ]);
    console.log(`racing pair pushed in ${(performance.now() - t0).toFixed(0)} ms; attempts A=${pa.attempts} B=${pb.attempts}; ${retries.join('; ')}`);
    expect(pa.attempts + pb.attempts).toBeGreaterThanOrEqual(3); // one of them had to re-apply
    expect(await trailerCount(bare, 'main', 'run-A')).toBe(1);
    expect(await trailerCount(bare, 'main', 'run-B')).toBe(1);
    const tip = await sh(bare, 'rev-parse', 'main');
    expect([pa.oid, pb.oid]).toContain(tip);
    expect(fingerprints(await sh(bare, 'show', 'main:hpcflow.lock'))).toEqual({ a: 'A', b: 'B', c: '0' });
    expect((await sh(bare, 'ls-tree', '-r', '--name-only', 'main')).split('\n')).toEqual(['README.md', 'hpcflow.lock', 'metrics/a.json', 'metrics/b.json', 'runs/run-A.json', 'runs/run-B.json', 'src/kernel.c']);
    // The loser re-applied on top of the winner; its checkout follows the re-applied commit.
    const [loser, won] = pa.attempts > 1 ? [a, pb] : [b, pa];
    const lost = loser === a ? pa : pb;
    expect(tip).toBe(lost.oid);
    expect(await sh(bare, 'rev-parse', 'main^')).toBe(won.oid);
    expect(await sh(loser, 'rev-parse', 'HEAD')).toBe(lost.oid);
    expect(fingerprints(readFileSync(join(loser, 'hpcflow.lock'), 'utf8'))).toEqual({ a: 'A', b: 'B', c: '0' });
    expect(readFileSync(join(loser, 'runs', loser === a ? 'run-B.json' : 'run-A.json'), 'utf8')).toContain('run');
    expect(await sh(a, 'status', '--porcelain')).toBe('');
    expect(await sh(b, 'status', '--porcelain')).toBe(' M README.md');
    expect(readFileSync(join(b, 'README.md'), 'utf8')).toBe('a local edit nobody pushes\n');
  });

  it('four runners racing for a results ref: all land, HEAD, index and working tree untouched', async () => {
    const bare = await server.createBare('race-ref.git', { initialFiles: SEED });
    const ids = ['w', 'x', 'y', 'z'];
    const clones = await Promise.all(ids.map(() => clone(server.url('race-ref.git'))));
    const made: { oid: string; ref: string; files: string[] }[] = [];
    for (const [i, dir] of clones.entries()) made.push(await runAndCommit(dir, `run-${ids[i]}`, { [`s${ids[i]}`]: ids[i] as string }, { kind: 'ref', ref: 'refs/hpcflow/results/main' }));
    const heads = await Promise.all(clones.map((d) => sh(d, 'rev-parse', 'HEAD')));
    const t0 = performance.now();
    const pushed = await Promise.all(clones.map((dir, i) => pushResults({ dir, remote: 'origin', ref: 'refs/hpcflow/results/main', files: made[i]?.files ?? [], runId: `run-${ids[i]}`, maxAttempts: 8 })));
    console.log(`four racing runners (results ref) pushed in ${(performance.now() - t0).toFixed(0)} ms; attempts ${pushed.map((p) => p.attempts).join(', ')}`);
    for (const id of ids) expect(await trailerCount(bare, 'refs/hpcflow/results/main', `run-${id}`)).toBe(1);
    expect(fingerprints(await sh(bare, 'show', 'refs/hpcflow/results/main:hpcflow.lock'))).toEqual({ a: '0', b: '0', c: '0', sw: 'w', sx: 'x', sy: 'y', sz: 'z' });
    expect(await sh(bare, 'rev-parse', 'main')).toBe(heads[0]);
    for (const [i, dir] of clones.entries()) {
      expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(heads[i]);
      expect(await sh(dir, 'status', '--porcelain')).toBe('');
    }
  });

  it('re-applies every unpushed results commit, brings the remote changes into the checkout, and keeps local edits', async () => {
    const bare = await server.createBare('chain.git', { initialFiles: SEED });
    const a = await clone(server.url('chain.git'));
    const dev = await clone(server.url('chain.git'));
    // Runner A: run-1 could not be pushed (remote down), run-2 was committed on top of it.
    const c1 = await runAndCommit(a, 'run-1', { a: '1' });
    await sh(a, 'remote', 'add', 'down', 'http://127.0.0.1:9/nothing.git');
    await expect(pushResults({ dir: a, remote: 'down', ref: c1.ref, files: c1.files, runId: 'run-1', maxAttempts: 1 })).rejects.toThrow(/kept locally/);
    const c2 = await runAndCommit(a, 'run-2', { b: '2' });
    // Meanwhile a developer pushed source changes, one to a file A has modified locally.
    write(dev, { 'src/kernel.c': 'int k = 2;\n', 'docs/new.md': 'new\n' });
    await sh(dev, 'add', '--all');
    await sh(dev, 'commit', '--quiet', '-m', 'kernel v2');
    await sh(dev, 'push', '--quiet', 'origin', 'main');
    write(a, { 'src/kernel.c': 'int k = 1; /* local experiment */\n' });
    const pushed = await pushResults({ dir: a, remote: 'origin', ref: c2.ref, files: c2.files, runId: 'run-2' });
    expect(pushed.attempts).toBe(2);
    expect(await sh(bare, 'log', '--format=%s', 'main')).toBe(['hpcflow: 1 ran (run run-2)', 'hpcflow: 1 ran (run run-1)', 'kernel v2', 'initial commit'].join('\n'));
    expect(await trailerCount(bare, 'main', 'run-1')).toBe(1);
    expect(fingerprints(await sh(bare, 'show', 'main:hpcflow.lock'))).toEqual({ a: '1', b: '2', c: '0' });
    expect(await sh(bare, 'show', 'main:src/kernel.c')).toBe('int k = 2;');
    // A's checkout: at the pushed commit, the developer's new file present, A's local edit kept (unstaged).
    expect(await sh(a, 'rev-parse', 'HEAD')).toBe(pushed.oid);
    expect(readFileSync(join(a, 'docs/new.md'), 'utf8')).toBe('new\n');
    expect(readFileSync(join(a, 'src/kernel.c'), 'utf8')).toBe('int k = 1; /* local experiment */\n');
    expect(await sh(a, 'status', '--porcelain')).toBe(' M src/kernel.c');
    expect(await sh(a, 'diff', '--cached', '--name-only')).toBe('');
  });

  it('a branch with an unpushed commit of the user is not rewritten: clear error, results kept', async () => {
    await server.createBare('own.git', { initialFiles: SEED });
    const a = await clone(server.url('own.git'));
    const b = await clone(server.url('own.git'));
    write(a, { 'notes.txt': 'mine\n' });
    await sh(a, 'add', 'notes.txt');
    await sh(a, 'commit', '--quiet', '-m', 'my own work');
    const ca = await runAndCommit(a, 'run-own', { a: 'own' });
    const cb = await runAndCommit(b, 'run-b', { b: 'b' });
    await pushResults({ dir: b, remote: 'origin', ref: cb.ref, files: cb.files, runId: 'run-b' });
    const e = await pushResults({ dir: a, remote: 'origin', ref: ca.ref, files: ca.files, runId: 'run-own' }).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/a commit of its own .*"my own work".*git pull --rebase.*kept locally on refs\/heads\/main/s);
    expect(await sh(a, 'rev-parse', 'HEAD')).toBe(ca.oid);
  });

  it('a push whose answer was lost is not duplicated', async () => {
    const bare = await server.createBare('lost.git', { initialFiles: SEED });
    const a = await clone(server.url('lost.git'));
    const b = await clone(server.url('lost.git'));
    const ca = await runAndCommit(a, 'run-lost', { a: 'L' });
    await pushResults({ dir: a, remote: 'origin', ref: ca.ref, files: ca.files, runId: 'run-lost' });
    // Someone else pushes on top; then runner A, not knowing its push landed, pushes again.
    const cb = await runAndCommit(b, 'run-other', { b: 'O' });
    const pb = await pushResults({ dir: b, remote: 'origin', ref: cb.ref, files: cb.files, runId: 'run-other' });
    expect(pb.attempts).toBe(2); // b re-applied onto run-lost
    const again = await pushResults({ dir: a, remote: 'origin', ref: ca.ref, files: ca.files, runId: 'run-lost' });
    expect(again.oid).toBe(ca.oid);
    expect(await trailerCount(bare, 'main', 'run-lost')).toBe(1);
    expect(await sh(bare, 'rev-parse', 'main')).toBe(pb.oid);
    expect(await sh(a, 'rev-parse', 'HEAD')).toBe(ca.oid); // nothing re-applied locally either
  });

  it('a push that landed while its connection broke is retried without a duplicate', async () => {
    let drops = 1;
    const flaky = await startGitServer({ dropResponse: (r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack') && drops-- > 0 });
    try {
      const bare = await flaky.createBare('flaky.git', { initialFiles: SEED });
      const dir = await clone(flaky.url('flaky.git'));
      const made = await runAndCommit(dir, 'run-flaky', { c: 'F' });
      const retries: string[] = [];
      const pushed = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-flaky', onRetry: (_n, why) => retries.push(why) });
      expect(retries).toHaveLength(1);
      expect(retries[0]).toMatch(/network error/);
      expect(pushed).toEqual({ oid: made.oid, attempts: 2 });
      expect(await trailerCount(bare, 'main', 'run-flaky')).toBe(1);
      expect(await sh(bare, 'rev-list', '--count', 'main')).toBe('2');
    } finally {
      await flaky.close();
    }
  });

  it('with a token required: refused without it (clear error, token never shown), accepted with it', async () => {
    const token = 'tok-S3cr3t-9f8e7d';
    const guarded = await startGitServer({ token });
    try {
      const bare = await guarded.createBare('private.git', { initialFiles: SEED });
      const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
      const dir = await clone(guarded.url('private.git'), ['-c', `http.extraHeader=Authorization: Basic ${basic}`]);
      expect(await sh(dir, 'remote', 'get-url', 'origin')).not.toContain(token);
      const made = await runAndCommit(dir, 'run-auth', { a: 'T' });
      const without = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-auth' }).catch((e: unknown) => e);
      expect(isHpcflowError(without, 'HPCFLOW_GIT')).toBe(true);
      const msg = (without as Error).message;
      expect(msg).toMatch(/authentication failed \(HTTP 401\).*HPCFLOW_GIT_TOKEN/);
      expect(msg).toMatch(/kept locally on refs\/heads\/main; push it with: git push origin refs\/heads\/main:refs\/heads\/main/);
      const wrong = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-auth', token: 'wrong-token-123' }).catch((e: unknown) => e);
      expect(String((wrong as Error).message)).toMatch(/authentication failed/);
      for (const e of [without, wrong]) {
        const all = `${(e as Error).message} ${(e as { hint?: string }).hint ?? ''} ${String((e as Error).cause)} ${(e as Error).stack ?? ''}`;
        expect(all).not.toContain(token);
        expect(all).not.toContain('wrong-token-123');
      }
      expect(await sh(bare, 'rev-parse', 'main')).not.toBe(made.oid);
      const pushed = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-auth', token });
      expect(pushed.oid).toBe(made.oid);
      expect(await sh(bare, 'rev-parse', 'main')).toBe(made.oid);
    } finally {
      await guarded.close();
    }
  });

  it('gives up after maxAttempts with the commit kept locally, and stops at once on a refusal', async () => {
    const bare = await server.createBare('refuse.git', { initialFiles: SEED });
    const dir = await clone(server.url('refuse.git'));
    const made = await runAndCommit(dir, 'run-x', { a: 'X' });
    await sh(dir, 'remote', 'add', 'down', 'http://127.0.0.1:9/nothing.git');
    const retries: number[] = [];
    const down = await pushResults({ dir, remote: 'down', ref: made.ref, files: made.files, runId: 'run-x', maxAttempts: 2, onRetry: (n) => retries.push(n) }).catch((e: unknown) => e);
    expect(retries).toEqual([1]);
    expect((down as Error).message).toMatch(/gave up after 2 attempts .*kept locally on refs\/heads\/main; push it with: git push down/);
    // A server-side hook that declines: not retried.
    writeFileSync(join(bare, 'hooks', 'pre-receive'), '#!/bin/sh\necho "results are frozen" >&2\nexit 1\n', { mode: 0o755 });
    const refused = await pushResults({ dir, remote: 'origin', ref: made.ref, files: made.files, runId: 'run-x', onRetry: (n) => retries.push(n) }).catch((e: unknown) => e);
    expect(retries).toEqual([1]);
    expect((refused as Error).message).toMatch(/refused the update.*kept locally/s);
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(made.oid);
  });
});
