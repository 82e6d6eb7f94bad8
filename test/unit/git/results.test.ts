import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { commitResults, isResultsCommit, mergeLockfiles, parseTrailers, resultsMessage, resultsRunId } from '../../../runner/git/results.js';
import { isHpcflowError } from '../../../runner/errors.js';
import { parseLockfile, serializeLockfile } from '../../../runner/lockfile/lockfile.js';
import type { LockEntry, Lockfile } from '../../../runner/lockfile/lockfile.js';

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', GIT_CONFIG_NOSYSTEM: '1' };
const temps: string[] = [];
afterAll(() => {
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

/** A repository on `main` with one commit of `files`. */
async function repo(files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hpcflow-results-'));
  temps.push(dir);
  await sh(dir, 'init', '--quiet', '--initial-branch=main');
  await sh(dir, 'config', 'user.name', 'Repo User');
  await sh(dir, 'config', 'user.email', 'user@example.org');
  write(dir, files);
  await sh(dir, 'add', '--all');
  await sh(dir, 'commit', '--quiet', '-m', 'initial');
  return dir;
}

const entry = (fp: string): LockEntry => ({ fingerprint: fp, cmd: `run ${fp}`, deps: {}, outRecords: [] }) as unknown as LockEntry;
const lock = (stages: Record<string, string>): string =>
  serializeLockfile({ schema: 1, stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, entry(v)])) } as Lockfile);

describe('results commit message', () => {
  it('has the summary, a blank line, and the run and input trailers', () => {
    const m = resultsMessage('hpcflow: 3 ran, 2 up to date (run r1)', 'r1', 'abc123');
    expect(m).toBe('hpcflow: 3 ran, 2 up to date (run r1)\n\nHpcflow-Run: r1\nHpcflow-Input: abc123\n');
    expect(parseTrailers(m).get('hpcflow-input')).toEqual(['abc123']);
    expect(resultsRunId(m)).toBe('r1');
    expect(isResultsCommit(m)).toBe(true);
  });
  it('a summary with line breaks stays one line', () => {
    expect(resultsMessage('a\nb\r\n c', 'r', 'i').split('\n')[0]).toBe('a b c');
  });
  it('isResultsCommit is true only for the trailer in the last paragraph (loop guard)', () => {
    expect(isResultsCommit('fix: typo')).toBe(false);
    expect(isResultsCommit('Hpcflow-Run: r1')).toBe(false); // a subject line, not a trailer
    expect(isResultsCommit('revert results\n\nHpcflow-Run: r1 was wrong, see below\n\nSigned-off-by: x <x@y>')).toBe(false);
    expect(isResultsCommit('notes\n\nHpcflow-Run: is how hpcflow marks its commits')).toBe(false);
    expect(isResultsCommit('results\n\nhpcflow-run: r9\n')).toBe(true);
    expect(isResultsCommit('results\r\n\r\nSigned-off-by: x <x@y>\r\nHpcflow-Run: r9\r\n')).toBe(true);
  });
});

describe('commitResults on the branch', () => {
  it('commits only the given paths, keeps their index entries clean and leaves other changes alone', async () => {
    const dir = await repo({ 'README.md': 'hi\n', 'hpcflow.lock': lock({ a: '1' }), 'src/main.c': 'int main;\n', 'metrics/old.json': '{}\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'hpcflow.lock': lock({ a: '2' }), 'runs/r1.json': '{"run":"r1"}\n', 'metrics/a.json': '{"x":1}\n' });
    write(dir, { 'README.md': 'edited, not staged\n', 'staged.txt': 'staged\n', 'untracked.txt': 'u\n' });
    await sh(dir, 'add', 'staged.txt');
    rmSync(join(dir, 'metrics/old.json')); // a results file that is gone: removed
    const files = ['hpcflow.lock', 'runs/r1.json', 'metrics/a.json', 'metrics/old.json'].map((f) => join(dir, f));
    const made = await commitResults({ dir, files, runId: 'r1', inputCommit: input, summary: 'hpcflow: 1 ran (run r1)', target: { kind: 'branch' }, env: {} });
    expect(made).not.toBeNull();
    expect(made?.ref).toBe('refs/heads/main');
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(made?.oid);
    expect(await sh(dir, 'rev-parse', 'HEAD^')).toBe(input);
    expect((await sh(dir, 'show', '--name-status', '--format=', 'HEAD')).split('\n').sort()).toEqual(['A\tmetrics/a.json', 'A\truns/r1.json', 'D\tmetrics/old.json', 'M\thpcflow.lock']);
    const status = (await sh(dir, 'status', '--porcelain')).split('\n').sort();
    expect(status).toEqual(['?? untracked.txt', ' M README.md', 'A  staged.txt'].sort());
    const body = (await sh(dir, 'log', '-1', '--format=%B')).trimEnd();
    expect(body).toBe('hpcflow: 1 ran (run r1)\n\nHpcflow-Run: r1\nHpcflow-Input: ' + input);
    expect(await sh(dir, 'log', '-1', '--format=%an <%ae>')).toBe('Repo User <user@example.org>'); // git config
    expect(await sh(dir, 'reflog', '-1', '--format=%gs', 'main')).toBe('commit: hpcflow: 1 ran (run r1)');
    expect(await sh(dir, 'reflog', '-1', '--format=%gs', 'HEAD')).toBe('commit: hpcflow: 1 ran (run r1)');
  });

  it('works when the branch is a packed ref', async () => {
    const dir = await repo({ 'a.txt': '1\n' });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    await sh(dir, 'pack-refs', '--all');
    write(dir, { 'a.txt': '2\n' });
    const made = await commitResults({ dir, files: [join(dir, 'a.txt')], runId: 'r', inputCommit: head, summary: 's', target: { kind: 'branch' } });
    expect(await sh(dir, 'rev-parse', 'main')).toBe(made?.oid);
    expect(await sh(dir, 'rev-parse', 'main^')).toBe(head);
    expect(await sh(dir, 'status', '--porcelain')).toBe('');
  });

  it('takes the author from HPCFLOW_GIT_AUTHOR_NAME/EMAIL, else defaults to hpcflow', async () => {
    const dir = await repo({ 'x.txt': '1\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'x.txt': '2\n' });
    await commitResults({ dir, files: [join(dir, 'x.txt')], runId: 'r', inputCommit: input, summary: 's', target: { kind: 'branch' }, env: { HPCFLOW_GIT_AUTHOR_NAME: 'CI bot', HPCFLOW_GIT_AUTHOR_EMAIL: 'ci@example.org' } });
    expect(await sh(dir, 'log', '-1', '--format=%an <%ae> / %cn <%ce>')).toBe('CI bot <ci@example.org> / CI bot <ci@example.org>');
    await sh(dir, 'config', '--unset', 'user.name');
    await sh(dir, 'config', '--unset', 'user.email');
    write(dir, { 'x.txt': '3\n' });
    await commitResults({ dir, files: [join(dir, 'x.txt')], runId: 'r2', inputCommit: input, summary: 's', target: { kind: 'branch' }, env: {} });
    expect(await sh(dir, 'log', '-1', '--format=%an <%ae>')).toBe('hpcflow <hpcflow@localhost>');
  });

  it('returns null when nothing changed, and moves nothing', async () => {
    const dir = await repo({ 'hpcflow.lock': lock({ a: '1' }), 'runs/r0.json': '{}\n' });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    const files = [join(dir, 'hpcflow.lock'), join(dir, 'runs/r0.json')];
    expect(await commitResults({ dir, files, runId: 'r1', inputCommit: head, summary: 's', target: { kind: 'branch' } })).toBeNull();
    expect(await commitResults({ dir, files, runId: 'r1', inputCommit: head, summary: 's', target: { kind: 'ref', ref: 'refs/hpcflow/results/main' } })).toBeNull();
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(await sh(dir, 'for-each-ref', '--format=%(refname)', 'refs/hpcflow')).toBe('');
  });

  it('is atomic: a failure part-way, or a ref locked by another git, moves no ref', async () => {
    const dir = await repo({ 'a.txt': '1\n' });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'a.txt': '2\n' });
    mkdirSync(join(dir, 'adir'));
    const bad = commitResults({ dir, files: [join(dir, 'a.txt'), join(dir, 'adir')], runId: 'r', inputCommit: head, summary: 's', target: { kind: 'branch' } });
    await expect(bad).rejects.toThrow(/not a regular file/);
    const outside = commitResults({ dir, files: [join(tmpdir(), 'elsewhere.txt')], runId: 'r', inputCommit: head, summary: 's', target: { kind: 'branch' } });
    await expect(outside).rejects.toThrow(/outside the git repository/);
    writeFileSync(join(dir, '.git/refs/heads/main.lock'), '');
    const locked = commitResults({ dir, files: [join(dir, 'a.txt')], runId: 'r', inputCommit: head, summary: 's', target: { kind: 'branch' } });
    await expect(locked).rejects.toSatisfy((e) => isHpcflowError(e, 'HPCFLOW_GIT') && /locked by another git process/.test(e.message));
    expect(existsSync(join(dir, '.git/refs/heads/main.lock'))).toBe(true); // not ours to remove
    rmSync(join(dir, '.git/refs/heads/main.lock'));
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(await sh(dir, 'status', '--porcelain')).toBe(' M a.txt'); // the empty adir is not listed
  });

  it('refuses a detached HEAD with a hint', async () => {
    const dir = await repo({ 'a.txt': '1\n' });
    const head = await sh(dir, 'rev-parse', 'HEAD');
    await sh(dir, 'checkout', '--quiet', '--detach');
    await expect(commitResults({ dir, files: [join(dir, 'a.txt')], runId: 'r', inputCommit: head, summary: 's', target: { kind: 'branch' } })).rejects.toThrow(/detached/);
  });

  it('is fast on a 5,000-file checkout (no whole-tree walk)', async () => {
    const files: Record<string, string> = { 'hpcflow.lock': lock({ a: '1' }) };
    for (let d = 0; d < 50; d++) for (let f = 0; f < 100; f++) files[`data/d${d}/f${f}.txt`] = `${d}/${f}\n`;
    const dir = await repo(files);
    const input = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'hpcflow.lock': lock({ a: '2' }), 'runs/big.json': '{}\n', 'data/d7/f3.txt': 'changed\n', 'metrics/m.json': '{"t":1}\n' });
    const changed = ['hpcflow.lock', 'runs/big.json', 'data/d7/f3.txt', 'metrics/m.json'].map((f) => join(dir, f));
    const t0 = performance.now();
    const made = await commitResults({ dir, files: changed, runId: 'big', inputCommit: input, summary: 's', target: { kind: 'branch' } });
    const ms = performance.now() - t0;
    const t1 = performance.now();
    const onRef = await commitResults({ dir, files: changed, runId: 'big', inputCommit: input, summary: 's', target: { kind: 'ref', ref: 'refs/hpcflow/results/main' } });
    const msRef = performance.now() - t1;
    console.log(`commitResults on a 5,000-file checkout: branch ${ms.toFixed(0)} ms, ref ${msRef.toFixed(0)} ms`);
    expect(made).not.toBeNull();
    expect(onRef).not.toBeNull();
    expect(ms).toBeLessThan(1000);
    expect(msRef).toBeLessThan(1000);
    expect(await sh(dir, 'status', '--porcelain')).toBe('');
    expect((await sh(dir, 'show', '--name-only', '--format=', 'HEAD')).split('\n').sort()).toEqual(['data/d7/f3.txt', 'hpcflow.lock', 'metrics/m.json', 'runs/big.json']);
  });
});

describe('commitResults onto a ref', () => {
  it('never touches the working tree, the index or HEAD; parents chain from the input commit', async () => {
    const dir = await repo({ 'README.md': 'hi\n', 'hpcflow.lock': lock({ a: '1' }) });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'hpcflow.lock': lock({ a: '2' }), 'runs/r1.json': '{"r":1}\n', 'README.md': 'local edit\n' });
    const status = await sh(dir, 'status', '--porcelain'); // (git status may refresh the index: before the snapshot)
    const index = readFileSync(join(dir, '.git/index'));
    const indexMtime = statSync(join(dir, '.git/index')).mtimeMs;
    const files = [join(dir, 'hpcflow.lock'), join(dir, 'runs/r1.json')];
    const first = await commitResults({ dir, files, runId: 'r1', inputCommit: input, summary: 'first', target: { kind: 'ref', ref: 'refs/hpcflow/results/main' } });
    expect(first?.ref).toBe('refs/hpcflow/results/main');
    expect(await sh(dir, 'rev-parse', 'refs/hpcflow/results/main^')).toBe(input);
    write(dir, { 'runs/r2.json': '{"r":2}\n' });
    const second = await commitResults({ dir, files: [join(dir, 'runs/r2.json')], runId: 'r2', inputCommit: input, summary: 'second', target: { kind: 'ref', ref: 'refs/hpcflow/results/main' } });
    expect(await sh(dir, 'rev-parse', 'refs/hpcflow/results/main')).toBe(second?.oid);
    expect(await sh(dir, 'rev-parse', 'refs/hpcflow/results/main^')).toBe(first?.oid);
    expect((await sh(dir, 'ls-tree', '-r', '--name-only', 'refs/hpcflow/results/main')).split('\n')).toEqual(['README.md', 'hpcflow.lock', 'runs/r1.json', 'runs/r2.json']);
    expect(await sh(dir, 'show', 'refs/hpcflow/results/main:README.md')).toBe('hi'); // the committed README, not the local edit
    // Untouched: HEAD, index (bytes and mtime), working tree status.
    expect(await sh(dir, 'rev-parse', 'HEAD')).toBe(input);
    expect(await sh(dir, 'symbolic-ref', 'HEAD')).toBe('refs/heads/main');
    expect(readFileSync(join(dir, '.git/index')).equals(index)).toBe(true);
    expect(statSync(join(dir, '.git/index')).mtimeMs).toBe(indexMtime);
    expect(await sh(dir, 'status', '--porcelain')).toBe(status);
  });

  it('a branch name is a ref under refs/heads; the checked-out branch is refused', async () => {
    const dir = await repo({ 'a.txt': '1\n' });
    const input = await sh(dir, 'rev-parse', 'HEAD');
    write(dir, { 'runs/r.json': '{}\n' });
    const made = await commitResults({ dir, files: [join(dir, 'runs/r.json')], runId: 'r', inputCommit: input, summary: 's', target: { kind: 'ref', ref: 'results/main' } });
    expect(made?.ref).toBe('refs/heads/results/main');
    expect(await sh(dir, 'rev-parse', 'results/main^')).toBe(input);
    await expect(commitResults({ dir, files: [join(dir, 'runs/r.json')], runId: 'r', inputCommit: input, summary: 's', target: { kind: 'ref', ref: 'main' } })).rejects.toThrow(/checked-out branch/);
  });
});

describe('mergeLockfiles', () => {
  const stagesOf = (text: string): Record<string, string> => Object.fromEntries(Object.entries(parseLockfile(text).stages).map(([k, v]) => [k, v.fingerprint]));

  it('keeps the remote entries and overlays the stages we changed (two runners, different stages)', () => {
    const base = lock({ a: '1', b: '1', c: '1' });
    const ours = lock({ a: '2', b: '1', c: '1' }); // we ran a
    const theirs = lock({ a: '1', b: '3', c: '1', d: '3' }); // they ran b and added d
    const merged = mergeLockfiles(base, ours, theirs);
    expect(stagesOf(merged)).toEqual({ a: '2', b: '3', c: '1', d: '3' });
    expect(merged).toBe(serializeLockfile(parseLockfile(merged))); // canonical text
  });
  it('our additions and removals are applied; for a stage both ran, ours wins', () => {
    const base = lock({ a: '1', gone: '1' });
    const ours = lock({ a: '2', fresh: '2' });
    const theirs = lock({ a: '3', gone: '1', other: '3' });
    expect(stagesOf(mergeLockfiles(base, ours, theirs))).toEqual({ a: '2', fresh: '2', other: '3' });
  });
  it('without a remote lockfile the result is ours; without a base every entry of ours counts as changed', () => {
    expect(stagesOf(mergeLockfiles(lock({ a: '1' }), lock({ a: '2' }), null))).toEqual({ a: '2' });
    expect(stagesOf(mergeLockfiles(null, lock({ a: '2' }), lock({ a: '1', b: '1' })))).toEqual({ a: '2', b: '1' });
  });
  it('an unchanged entry keeps the remote version even if the remote changed it', () => {
    expect(stagesOf(mergeLockfiles(lock({ a: '1', b: '1' }), lock({ a: '1', b: '2' }), lock({ a: '5', b: '1' })))).toEqual({ a: '5', b: '2' });
  });
  it('a broken lockfile is a lockfile error', () => {
    expect(() => mergeLockfiles(null, '{', lock({}))).toThrow(/not valid JSON/);
  });
});
