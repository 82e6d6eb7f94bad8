/** The git side of reproduce: writing a commit's tree out, and finding the recorded run of a revision. */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { resultsMessage } from '../../../runner/git/results.js';
import { resolveTarget } from '../../../runner/reproduce/resolve.js';
import { materialiseTree } from '../../../runner/reproduce/tree.js';
const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', GIT_CONFIG_NOSYSTEM: '1' };

async function sh(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: { ...GIT_ENV, ...dateEnv() } })).stdout;
}

/** Commits get distinct, increasing timestamps (newest results commit wins by committer time). */
let clock = 1_700_000_000;
function dateEnv(): Record<string, string> {
  clock += 60;
  return { GIT_AUTHOR_DATE: `@${clock} +0000`, GIT_COMMITTER_DATE: `@${clock} +0000` };
}

function write(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

const temps: string[] = [];
function cleanup(): void {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** A repository on `main` with one commit of `files`. */
async function repo(files: Record<string, string>): Promise<string> {
  const dir = tempDir('hpcflow-repro-git-');
  await sh(dir, 'init', '--quiet', '--initial-branch=main');
  write(dir, files);
  await sh(dir, 'add', '--all');
  await sh(dir, 'commit', '--quiet', '-m', 'initial');
  return dir;
}

/** Writes `files`, commits them with `message`, returns the commit id. */
async function commit(dir: string, files: Record<string, string>, message: string): Promise<string> {
  write(dir, files);
  await sh(dir, 'add', '--all');
  await sh(dir, 'commit', '--quiet', '--allow-empty', '-m', message);
  return sh(dir, 'rev-parse', 'HEAD');
}

afterAll(cleanup);


describe('materialiseTree', () => {
  it('writes a commit\'s tree as plain files: modes, symlinks, nested directories, no .git', async () => {
    const dir = await repo({ 'ws/pipelines/p.yaml': 'stages: {}\n', 'ws/kernels/run.sh': '#!/bin/sh\necho hi\n', 'ws/a/b/c.txt': 'deep\n', 'ws/.hpcflow/tmp/x': 'ignored\n', 'other/x.txt': 'x\n' });
    chmodSync(join(dir, 'ws/kernels/run.sh'), 0o755);
    symlinkSync('a/b/c.txt', join(dir, 'ws/link'));
    const oid = await commit(dir, {}, 'exec bit and a link');
    // Later changes in the checkout and index must not matter.
    write(dir, { 'ws/a/b/c.txt': 'changed in the checkout\n' });
    await sh(dir, 'add', 'ws/a/b/c.txt');
    const statusBefore = await sh(dir, 'status', '--porcelain');
    const headBefore = await sh(dir, 'rev-parse', 'HEAD');

    const dest = join(tempDir('hpcflow-repro-tree-'), 'ws');
    const r = await materialiseTree({ gitRoot: dir, commit: oid, subdir: 'ws', dest, skip: ['.hpcflow'] });
    expect(r).toMatchObject({ files: 3, links: 1, submodules: [] });
    expect(readFileSync(join(dest, 'a/b/c.txt'), 'utf8')).toBe('deep\n');
    expect(statSync(join(dest, 'kernels/run.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dest, 'pipelines/p.yaml')).mode & 0o777).toBe(0o644);
    expect(lstatSync(join(dest, 'link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dest, 'link'))).toBe('a/b/c.txt');
    expect(existsSync(join(dest, '.hpcflow'))).toBe(false);
    expect(existsSync(join(dest, 'other'))).toBe(false);
    expect(existsSync(join(dest, '.git'))).toBe(false);
    // The repository is untouched.
    expect(await sh(dir, 'status', '--porcelain')).toBe(statusBefore);
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(headBefore);
  });

  it('the whole tree when subdir is empty; an old commit gives the old content', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'v1\n' });
    const v1 = await sh(dir, 'rev-parse', 'HEAD');
    await commit(dir, { 'pipelines/p.yaml': 'v2\n' }, 'v2');
    const dest = join(tempDir('hpcflow-repro-tree-'), 'ws');
    await materialiseTree({ gitRoot: dir, commit: v1, subdir: '', dest });
    expect(readFileSync(join(dest, 'pipelines/p.yaml'), 'utf8')).toBe('v1\n');
  });

  it('a missing directory is a git error', async () => {
    const dir = await repo({ 'a.txt': 'a\n' });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    await expect(materialiseTree({ gitRoot: dir, commit: head, subdir: 'nope', dest: join(tempDir('hpcflow-repro-tree-'), 'ws') })).rejects.toMatchObject({ code: 'HPCFLOW_GIT' });
  });
});


const LOCK = (fp: string): string => `${JSON.stringify({ fingerprintVersion: 1, schema: 1, stages: { 'p/a': { fingerprint: fp } } })}\n`;

describe('resolveTarget', () => {
  it('a results commit: its lockfile, and its input commit\'s tree', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'stages: {}\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    const results = await commit(dir, { 'hpcflow.lock': LOCK('one') }, resultsMessage('hpcflow: 1 ran (run r1)', 'r1', input));
    const t = await resolveTarget({ gitRoot: dir, wsRel: '', rev: 'HEAD' });
    expect(t).toMatchObject({ commit: results, source: 'results-commit', resultsCommit: results, inputCommit: input, runId: 'r1', warnings: [] });
    expect(t.lockText).toBe(LOCK('one'));
  });

  it('an input commit: the newest later results commit naming it', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'stages: {}\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    await commit(dir, { 'hpcflow.lock': LOCK('first') }, resultsMessage('hpcflow: run r1', 'r1', input));
    const second = await commit(dir, { 'hpcflow.lock': LOCK('second') }, resultsMessage('hpcflow: run r2', 'r2', input));
    const next = await commit(dir, { 'pipelines/p.yaml': 'stages: { }\n' }, 'change the pipeline');
    await commit(dir, { 'hpcflow.lock': LOCK('third') }, resultsMessage('hpcflow: run r3', 'r3', next));
    const t = await resolveTarget({ gitRoot: dir, wsRel: '', rev: input.slice(0, 8) });
    expect(t).toMatchObject({ commit: input, source: 'results-of-input', resultsCommit: second, inputCommit: input, runId: 'r2' });
    expect(t.lockText).toBe(LOCK('second'));
  });

  it('results on a separate results ref are found through it', async () => {
    const dir = await repo({ 'ws/pipelines/p.yaml': 'stages: {}\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    await sh(dir, 'checkout', '--quiet', '-b', 'results');
    const results = await commit(dir, { 'ws/hpcflow.lock': LOCK('r') }, resultsMessage('hpcflow: run r9', 'r9', input));
    await sh(dir, 'checkout', '--quiet', 'main');
    await expect(resolveTarget({ gitRoot: dir, wsRel: 'ws', rev: 'main' })).rejects.toMatchObject({ code: 'HPCFLOW_USAGE' });
    const t = await resolveTarget({ gitRoot: dir, wsRel: 'ws', rev: 'main', resultsRef: 'results' });
    expect(t).toMatchObject({ source: 'results-of-input', resultsCommit: results, inputCommit: input, lockText: LOCK('r') });
  });

  it('a plain commit holding a lockfile', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'stages: {}\n', 'hpcflow.lock': LOCK('own') });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    const t = await resolveTarget({ gitRoot: dir, wsRel: '', rev: 'main' });
    expect(t).toMatchObject({ commit: head, source: 'lockfile-in-commit', resultsCommit: head, inputCommit: head, runId: null, lockText: LOCK('own') });
  });

  it('a results commit whose input commit is not in the repository: its own tree, with a warning', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'stages: {}\n' });
    const results = await commit(dir, { 'hpcflow.lock': LOCK('x') }, resultsMessage('hpcflow: run r1', 'r1', 'f'.repeat(40)));
    const t = await resolveTarget({ gitRoot: dir, wsRel: '', rev: 'HEAD' });
    expect(t.inputCommit).toBe(results);
    expect(t.warnings).toEqual([expect.stringContaining('is not in this repository')]);
  });

  it('nothing recorded, or an unknown revision: usage errors that say what to do', async () => {
    const dir = await repo({ 'pipelines/p.yaml': 'stages: {}\n' });
    const e = await resolveTarget({ gitRoot: dir, wsRel: '', rev: 'HEAD' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'HPCFLOW_USAGE', message: expect.stringMatching(/^nothing recorded to reproduce for 'HEAD'/) });
    expect((e as { hint: string }).hint).toMatch(/hpcflow run --commit-results/);
    await expect(resolveTarget({ gitRoot: dir, wsRel: '', rev: 'no-such-branch' })).rejects.toMatchObject({ code: 'HPCFLOW_USAGE', message: "unknown revision 'no-such-branch'" });
  });
});
