/**
 * SIGKILL during `hpcflow run --commit-results`: most kills land in the results commit itself
 * (after the run's last event: run record, blobs, trees, commit, ref, index), some anywhere in
 * the run. After every kill: `git fsck` is clean, the branch (or the results ref) points at the
 * old commit or at a complete new one, the checkout's lockfile and run records parse, and the
 * cache is intact. Then one more run commits its results exactly once, on top of every results
 * commit a killed run completed.
 */
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitResults } from '../../runner/git/results.js';
import { parseLockfile } from '../../runner/lockfile/lockfile.js';
import { BIN, events } from '../helpers/cli.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { STACK_TRACE, checkNothingCorrupt, waitForEvent } from './fault-helpers.js';

const GIT_ENV = { GIT_AUTHOR_NAME: 'dev', GIT_AUTHOR_EMAIL: 'dev@example.org', GIT_COMMITTER_NAME: 'dev', GIT_COMMITTER_EMAIL: 'dev@example.org', GIT_CONFIG_NOSYSTEM: '1' };

// Every forced run writes a new value, so every run has a lockfile, an output and metrics to commit.
const PIPELINE = `stages:
  gen:
    image: ${TEST_IMAGE}
    cmd: >-
      mkdir -p out metrics &&
      od -An -N8 -tx1 /dev/urandom | tr -d ' \\n' > out/v.txt &&
      echo "{\\"v\\": \\"$(cat out/v.txt)\\"}" > metrics/gen.json
    outs: [out/v.txt]
    metrics: metrics/gen.json
`;

// A deterministic pseudo-random sequence, so a failure can be replayed.
let seed = 0xc0ffee;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let root: string;

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}

async function tipOf(ws: string, ref: string): Promise<string | null> {
  const r = await execa('git', ['rev-parse', '--verify', '-q', `${ref}^{commit}`], { cwd: ws, env: GIT_ENV, reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

async function repo(name: string, files: Record<string, string>): Promise<string> {
  const ws = join(root, name);
  await mkdir(join(ws, 'pipelines'), { recursive: true });
  await git(ws, 'init', '-q', '--initial-branch=main');
  await git(ws, 'config', 'user.name', 'dev');
  await git(ws, 'config', 'user.email', 'dev@example.org');
  await writeFile(join(ws, '.gitignore'), '.hpcflow/\n');
  await writeFile(join(ws, 'pipelines/c.yaml'), PIPELINE);
  for (const [rel, text] of Object.entries(files)) await writeFile(join(ws, rel), text);
  await git(ws, 'add', '-A');
  await git(ws, 'commit', '-q', '-m', 'pipeline');
  return ws;
}

const runArgs = ['run', '--json', '--force', '--commit-results'];
const spawnRun = (ws: string) => execa('node', [BIN, ...runArgs], { cwd: ws, reject: false, env: { CI: '1' } });

/** The `Hpcflow-Run:` trailers of the history of `ref`, newest first. */
async function runIds(ws: string, ref: string): Promise<string[]> {
  const log = await git(ws, 'log', '--format=%B', ref);
  return [...log.matchAll(/^Hpcflow-Run: (\S+)$/gm)].map((m) => m[1] as string);
}

/**
 * What must hold after any kill; returns the tip (the old one, or the new complete commit).
 * `base`: what a new results commit's parent must be (the previous tip, or for a results ref
 * that does not exist yet, the checked-out commit).
 */
async function checkRepo(ws: string, ref: string, prev: string | null, base: string): Promise<string | null> {
  const fsck = await execa('git', ['fsck', '--no-dangling', '--no-progress', '--strict'], { cwd: ws, env: GIT_ENV, reject: false, all: true });
  expect(fsck.exitCode, fsck.all).toBe(0);
  expect(fsck.all).not.toMatch(/error|missing|broken|corrupt|bad sha1|invalid/i);
  const status = await execa('git', ['status', '--porcelain'], { cwd: ws, env: GIT_ENV, reject: false, all: true });
  expect(status.exitCode, status.all).toBe(0); // the index is readable
  const tip = await tipOf(ws, ref);
  if (tip !== prev) {
    expect(tip).not.toBeNull();
    expect(await git(ws, 'rev-parse', `${tip}^`)).toBe(prev ?? base);
    const runId = /^Hpcflow-Run: (\S+)$/m.exec(await git(ws, 'log', '-1', '--format=%B', tip as string))?.[1];
    expect(runId).toBeDefined();
    parseLockfile(await git(ws, 'show', `${tip}:hpcflow.lock`));
    JSON.parse(await git(ws, 'show', `${tip}:runs/${runId}.json`));
    JSON.parse(await git(ws, 'show', `${tip}:metrics/gen.json`));
  }
  // The checkout: lockfile, run records and the cache are whole.
  await checkNothingCorrupt(ws);
  if (existsSync(join(ws, 'runs'))) {
    for (const f of await readdir(join(ws, 'runs'))) if (f.endsWith('.json')) JSON.parse(await readFile(join(ws, 'runs', f), 'utf8'));
  }
  return tip;
}

/** Ref locks a killed run left (the next run takes them over). */
function refLocks(ws: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.lock')) out.push(join(dir, e.name));
    }
  };
  walk(join(ws, '.git/refs'));
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-commit-crash-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('SIGKILL during a results commit', () => {
  const modes: { name: string; ref: string; config: Record<string, string>; kills: number }[] = [
    { name: 'on the branch', ref: 'refs/heads/main', config: {}, kills: 8 },
    { name: 'on a results ref', ref: 'refs/hpcflow/results/main', config: { 'hpcflow.yaml': 'results:\n  ref: refs/hpcflow/results/main\n' }, kills: 5 },
  ];
  for (const mode of modes) {
    it(`${mode.name}: ${mode.kills} kills leave git, the lockfile and the cache whole; the next run commits exactly once`, async () => {
      const ws = await repo(mode.ref.replace(/\W+/g, '-'), mode.config);
      const input = await git(ws, 'rev-parse', 'HEAD');

      // A run that is not killed: when its events end and when it exits (the commit is in between).
      const t0 = Date.now();
      const first = spawnRun(ws);
      await waitForEvent(first, (e) => e.type === 'run-end', 'run-end');
      const tRunEnd = Date.now() - t0;
      const r0 = await first;
      const total = Date.now() - t0;
      expect(r0.exitCode, String(r0.stdout) + String(r0.stderr)).toBe(0);
      expect(String(r0.stdout)).toMatch(/^results: committed \d+ files? as [0-9a-f]{12} on /m);
      let prev = await checkRepo(ws, mode.ref, null, input);
      const completed = [prev as string];

      let injected = 0;
      let stale = 0;
      let window = Math.max(20, total - tRunEnd);
      // Until `kills` runs were killed (a run that finishes before its kill shortens the window).
      for (let k = 0; injected < mode.kills && k < mode.kills * 3; k++) {
        const child = spawnRun(ws);
        const t1 = Date.now();
        let tEnd = t1;
        if (k % 4 === 3) {
          // Anywhere in the run: hashing, the stage, storing, the lockfile, or the commit.
          await sleep(Math.floor(rand() * total));
        } else {
          await waitForEvent(child, (e) => e.type === 'run-end', 'run-end').catch(() => undefined);
          tEnd = Date.now();
          await sleep(Math.floor(rand() * window));
        }
        child.kill('SIGKILL');
        const r = await child;
        if (r.signal === 'SIGKILL') injected += 1;
        else {
          expect(r.exitCode, `run ${k} (${Date.now() - t1} ms): ${String(r.stdout)}${String(r.stderr)}`).toBe(0);
          if (tEnd > t1) window = Math.max(10, Math.min(window, Date.now() - tEnd - 5));
        }
        stale += refLocks(ws).length;
        const tip = await checkRepo(ws, mode.ref, prev, input);
        if (tip !== prev) completed.push(tip as string);
        prev = tip;
      }
      expect(injected).toBe(mode.kills);

      const fin = await execa('node', [BIN, ...runArgs], { cwd: ws, reject: false, env: { CI: '1' } });
      const out = `${fin.stdout}${fin.stderr}`;
      expect(fin.exitCode, out).toBe(0);
      expect(out).not.toMatch(STACK_TRACE);
      const finalRun = (events(fin.stdout).find((e) => e.type === 'run-start') as { runId: string }).runId;
      const tip = await checkRepo(ws, mode.ref, prev, input);
      expect(tip).not.toBe(prev);
      // Exactly once: the final run's commit is the one new commit, and no run is committed twice.
      const ids = await runIds(ws, mode.ref);
      expect(ids[0]).toBe(finalRun);
      expect(ids.filter((id) => id === finalRun)).toHaveLength(1);
      expect(new Set(ids).size).toBe(ids.length);
      expect(refLocks(ws)).toEqual([]);
      // Every results commit a killed run completed is still in the history.
      let lost = 0;
      for (const c of completed) {
        const anc = await execa('git', ['merge-base', '--is-ancestor', c, tip as string], { cwd: ws, env: GIT_ENV, reject: false });
        if (anc.exitCode !== 0) lost += 1;
      }
      expect(lost).toBe(0);
      expect(await git(ws, 'show', `${tip}:hpcflow.lock`)).toBe((await readFile(join(ws, 'hpcflow.lock'), 'utf8')).trimEnd());
      if (mode.ref === 'refs/heads/main') {
        expect(await git(ws, 'status', '--porcelain', '--', 'hpcflow.lock', 'metrics', 'out', `runs/${finalRun}.json`)).toBe('');
      } else {
        expect(await git(ws, 'rev-parse', 'HEAD')).toBe(input); // the branch is never touched
      }
      recordFaults({ scenario: `SIGKILL during a results commit (${mode.name})`, injected, recovered: 1, lost });
      if (stale > 0) process.stderr.write(`commit-crash: ${stale} ref lock(s) left by killed runs were taken over\n`);
    }, 120_000);
  }

  it('a ref lock left by a killed hpcflow is taken over; a lock git holds is not', async () => {
    const ws = await repo('stale-lock', {});
    const head = await git(ws, 'rev-parse', 'HEAD');
    const dead = (await execa('node', ['-e', 'process.stdout.write(String(process.pid))'])).stdout;
    // What a kill between taking the lock and moving the ref leaves: the lock, and its temp name.
    const refs = join(ws, '.git/refs/heads');
    const tmp = join(refs, `.main.tmp-${dead}-0123456789ab`);
    await writeFile(tmp, `${'0'.repeat(40)}\n`);
    await link(tmp, join(refs, 'main.lock'));
    await writeFile(join(ws, 'a.txt'), 'a\n');
    const made = await commitResults({ dir: ws, files: [join(ws, 'a.txt')], runId: 'r1', inputCommit: head, summary: 's', target: { kind: 'branch' }, env: {} });
    expect(made?.ref).toBe('refs/heads/main');
    expect(await git(ws, 'rev-parse', 'HEAD')).toBe(made?.oid);
    expect(readdirSync(refs).sort()).toEqual(['main']);
    // git's own lock (one name, no hpcflow temp beside it) is respected.
    await writeFile(join(refs, 'main.lock'), '');
    await writeFile(join(ws, 'a.txt'), 'b\n');
    await expect(commitResults({ dir: ws, files: [join(ws, 'a.txt')], runId: 'r2', inputCommit: head, summary: 's', target: { kind: 'branch' }, env: {} })).rejects.toThrow(/locked by another git process/);
    expect(existsSync(join(refs, 'main.lock'))).toBe(true);
    expect(await git(ws, 'rev-parse', 'HEAD')).toBe(made?.oid);
  });
});
