import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../../../runner/fingerprint/hash-file.js';
import { events, hpcflow } from '../../helpers/cli.js';

/**
 * The whole life of a dataset through the CLI, on real git repositories and a filesystem
 * remote: add → commit → modify → status → commit → checkout of the old version (byte-identical)
 * → push → clone elsewhere → pull → verify; and a stage that re-runs only when the dataset's
 * version changes.
 */
let base: string;
let ws: string;
let remote: string;

const git = (args: string[], cwd: string) => execa('git', args, { cwd, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });

/** path → [hash, mode&0o111] of every file below dir. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out[abs.slice(dir.length + 1)] = `${(await hashFile(abs)).hash} ${((await stat(abs)).mode & 0o111) !== 0 ? 'x' : '-'}`;
  }
  return out;
}

const ok = async (args: string[], cwd = ws): Promise<string> => {
  const r = await hpcflow(args, cwd);
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'hpcflow-ds-'));
  ws = join(base, 'ws');
  remote = join(base, 'remote-store');
  await mkdir(join(ws, 'pipelines'), { recursive: true });
  await mkdir(join(ws, 'data/climate/nested/deeper'), { recursive: true });
  await writeFile(join(ws, 'data/climate/a.txt'), 'alpha\n');
  await writeFile(join(ws, 'data/climate/b.bin'), Buffer.alloc(3 * 2 ** 20, 7));
  await writeFile(join(ws, 'data/climate/nested/c.txt'), 'gamma\n');
  await writeFile(join(ws, 'data/climate/nested/deeper/d.txt'), 'delta\n');
  await writeFile(join(ws, 'data/climate/run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(ws, 'data/climate/run.sh'), 0o755);
  await writeFile(join(ws, 'hpcflow.yaml'), `remotes:\n  shared: { url: ${JSON.stringify(remote)} }\n`);
  await writeFile(
    join(ws, 'pipelines/p.yaml'),
    'stages:\n  count:\n    image: hpcflow-test/busybox:1\n    cmd: mkdir -p out && find data/climate -type f | sort | xargs cat | wc -c > out/count.txt\n    deps: [{ dataset: climate }]\n    outs: [out/count.txt]\n',
  );
  await writeFile(join(ws, '.gitignore'), '/.hpcflow\n');
  await git(['init', '-q', '-b', 'main'], ws);
  await git(['add', '-A', 'pipelines', 'hpcflow.yaml', '.gitignore'], ws);
  await git(['commit', '-q', '-m', 'start'], ws);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('dataset life cycle', () => {
  let v1: Record<string, string>;
  let v1id: string;

  it('add records version 1 in datasets/climate.yaml, ignores the data in git, and commits only the version file', async () => {
    v1 = await tree(join(ws, 'data/climate'));
    await writeFile(join(ws, 'unrelated.txt'), 'staged but not to be committed by hpcflow\n');
    await git(['add', 'unrelated.txt'], ws);
    const out = JSON.parse(await ok(['dataset', 'add', 'data/climate', '--json'])) as { version: string; files: number; bytes: number; gitCommit: string };
    v1id = out.version;
    expect(out.files).toBe(5);
    expect(out.bytes).toBe(3 * 2 ** 20 + 6 + 6 + 6 + 18);
    const text = await readFile(join(ws, 'datasets/climate.yaml'), 'utf8');
    expect(text).toContain(`version: ${v1id}`);
    expect(text).toMatch(/^ {2}run\.sh\t18\t[0-9a-f]{64}\tx$/m);
    expect(await readFile(join(ws, '.gitignore'), 'utf8')).toContain('/data/climate\n');
    const show = await git(['show', '--name-only', '--format=%s', 'HEAD'], ws);
    expect(show.stdout).toContain('datasets/climate.yaml');
    expect(show.stdout).not.toContain('unrelated.txt');
    // The user's staged file is still staged, and git sees no dataset bytes.
    const st = await git(['status', '--porcelain'], ws);
    expect(st.stdout).toContain('A  unrelated.txt');
    expect(st.stdout).not.toContain('data/');
    await git(['reset', '-q', 'unrelated.txt'], ws);
    await rm(join(ws, 'unrelated.txt'));
  });

  it('a stage on the dataset runs once, then is up to date', async () => {
    const r1 = await hpcflow(['run', '--json'], ws);
    expect(r1.code, r1.stderr).toBe(0);
    expect(events(r1.stdout).filter((e) => e.type === 'stage-end').map((e) => (e.outcome as { status: string }).status)).toEqual(['ran']);
    const lock = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as { stages: Record<string, { deps: Record<string, { hash: string }> }> };
    expect(lock.stages['p/count']?.deps['dataset:climate']?.hash).toBe(v1id);
    const st = await hpcflow(['status', '--check'], ws);
    expect(st.code, st.stdout).toBe(0);
  });

  it('status shows what changed (counts and bytes); the stage refuses uncommitted dataset changes', async () => {
    await writeFile(join(ws, 'data/climate/a.txt'), 'ALPHA!\n');
    await writeFile(join(ws, 'data/climate/new.txt'), 'new file\n');
    await rm(join(ws, 'data/climate/nested/deeper/d.txt'));
    const r = await hpcflow(['dataset', 'status', '--json'], ws);
    expect(r.code).toBe(1);
    const [s] = JSON.parse(r.stdout) as [{ state: string; diff: { added: { files: number; bytes: number }; removed: { files: number; bytes: number }; modified: { files: number } } }];
    expect(s.state).toBe('modified');
    expect(s.diff.added).toEqual({ files: 1, bytes: 9 });
    expect(s.diff.removed).toEqual({ files: 1, bytes: 6 });
    expect(s.diff.modified.files).toBe(1);
    const text = await hpcflow(['dataset', 'status'], ws);
    expect(text.stdout).toMatch(/climate {2}[0-9a-f]{12} {2}modified: 1 added \(9 B\), 1 removed \(6 B\), 1 modified \(\+1 B\)/);
    expect(text.stdout).toContain('+ new.txt');
    const plan = await hpcflow(['status'], ws);
    expect(plan.stdout).toMatch(/dataset climate: the working copy data\/climate differs from version [0-9a-f]{12}; record it with `hpcflow dataset commit climate`/);
  });

  it('commit makes version 2; the stage then re-runs, explaining the version change', async () => {
    const out = JSON.parse(await ok(['dataset', 'commit', 'climate', '-m', 'fix alpha', '--json'])) as [{ version: string; previous: string }];
    expect(out[0].previous).toBe(v1id);
    expect(out[0].version).not.toBe(v1id);
    const st = await hpcflow(['status'], ws);
    expect(st.stdout).toContain(`dataset climate version ${v1id.slice(0, 12)} → ${out[0].version.slice(0, 12)}`);
    const r = await hpcflow(['run', '--json'], ws);
    expect(events(r.stdout).filter((e) => e.type === 'stage-end').map((e) => (e.outcome as { status: string }).status)).toEqual(['ran']);
    const log = JSON.parse(await ok(['dataset', 'log', 'climate', '--json'])) as { version: string; message: string }[];
    expect(log.map((e) => e.version)).toEqual([out[0].version, v1id]);
    expect(log[0]?.message).toBe('fix alpha');
  });

  it('checkout of the old version (by tag) is byte-identical, refuses to lose uncommitted work, and the stage is restored, not re-run', async () => {
    await ok(['dataset', 'tag', 'climate', 'v1', 'HEAD~1']);
    await writeFile(join(ws, 'data/climate/scratch.txt'), 'uncommitted\n');
    const refused = await hpcflow(['dataset', 'checkout', 'climate@v1'], ws);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('uncommitted changes (1 added, 0 removed, 0 modified)');
    expect(await readFile(join(ws, 'data/climate/scratch.txt'), 'utf8')).toBe('uncommitted\n');
    await rm(join(ws, 'data/climate/scratch.txt'));
    const co = JSON.parse(await ok(['dataset', 'checkout', 'climate@v1', '--json'])) as [{ version: string; written: number; removed: number }];
    expect(co[0].version).toBe(v1id);
    expect(co[0].removed).toBe(1);
    expect(await tree(join(ws, 'data/climate'))).toEqual(v1);
    const r = await hpcflow(['run', '--json'], ws);
    expect(events(r.stdout).filter((e) => e.type === 'stage-end').map((e) => (e.outcome as { status: string }).status)).toEqual(['restored']);
    // Back to the newest version by version-id prefix.
    const log = JSON.parse(await ok(['dataset', 'log', 'climate', '--json'])) as { version: string }[];
    await ok(['dataset', 'checkout', `climate@${(log[0] as { version: string }).version.slice(0, 10)}`]);
    expect((await ok(['dataset', 'status'])).trim()).toMatch(/clean/);
    await git(['checkout', '-q', '--', 'datasets/climate.yaml'], ws);
  });

  it('diff between versions lists the files', async () => {
    const d = JSON.parse(await ok(['dataset', 'diff', 'climate@v1', 'climate', '--json'])) as { summary: { added: { files: number } }; added: { path: string }[]; removed: { path: string }[]; modified: { path: string }[] };
    expect(d.added.map((e) => e.path)).toEqual(['new.txt']);
    expect(d.removed.map((e) => e.path)).toEqual(['nested/deeper/d.txt']);
    expect(d.modified.map((e) => e.path)).toEqual(['a.txt']);
  });

  it('push to a filesystem remote, clone elsewhere, pull, verify: identical files', async () => {
    const v2 = await tree(join(ws, 'data/climate'));
    const p = JSON.parse(await ok(['dataset', 'push', '--json'])) as [{ objects: number; transferred: number }];
    expect(p[0].transferred).toBe(p[0].objects);
    const again = JSON.parse(await ok(['dataset', 'push', '--json'])) as [{ transferred: number }];
    expect(again[0].transferred).toBe(0);
    // v1's objects too, so the clone can check out the tag.
    await ok(['dataset', 'push', 'climate@v1']);

    const clone = join(base, 'clone');
    await git(['clone', '-q', ws, clone], base);
    const st = await hpcflow(['dataset', 'status'], clone);
    expect(st.stdout).toContain('not checked out');
    const pulled = JSON.parse(await ok(['dataset', 'pull', '--json'], clone)) as [{ transferred: number; checkedOut: boolean }];
    expect(pulled[0].checkedOut).toBe(true);
    expect(await tree(join(clone, 'data/climate'))).toEqual(v2);
    const ver = JSON.parse(await ok(['dataset', 'verify', '--store', '--json'], clone)) as [{ ok: boolean }];
    expect(ver[0].ok).toBe(true);
    await ok(['dataset', 'pull', 'climate@v1', '--force'], clone);
    expect(await tree(join(clone, 'data/climate'))).toEqual(v1);
  });

  it('a stage output declared as a dataset becomes its new version, and a consumer runs after it', async () => {
    await writeFile(
      join(ws, 'pipelines/q.yaml'),
      'stages:\n  summarize:\n    image: hpcflow-test/busybox:1\n    cmd: mkdir -p out/summary && cp data/climate/a.txt out/summary/first.txt\n    deps: [{ dataset: climate }]\n    outs: [{ path: out/summary, dataset: summary }]\n  use:\n    image: hpcflow-test/busybox:1\n    cmd: cat out/summary/first.txt > out/used.txt\n    deps: [{ dataset: summary }]\n    outs: [out/used.txt]\n',
    );
    const r = await hpcflow(['run', '--json', 'q/use'], ws);
    expect(r.code, r.stderr).toBe(0);
    const ends = events(r.stdout).filter((e) => e.type === 'stage-end').map((e) => `${e.stage as string}:${(e.outcome as { status: string }).status}`);
    expect(ends).toEqual(['q/summarize:ran', 'q/use:ran']);
    const lock = JSON.parse(await readFile(join(ws, 'hpcflow.lock'), 'utf8')) as { stages: Record<string, { outRecords: { path: string; hash: string }[] }> };
    const rec = lock.stages['q/summarize']?.outRecords.find((o) => o.path === 'out/summary');
    const ver = JSON.parse(await ok(['dataset', 'list', '--json'])) as { name: string; version: string; path: string }[];
    expect(ver.find((d) => d.name === 'summary')).toMatchObject({ path: 'out/summary', version: rec?.hash });
    expect(await ok(['dataset', 'status', 'summary'])).toMatch(/summary {2}[0-9a-f]{12} {2}clean/);
  });

  it('a stage pinned to a version runs only when that version is checked out', async () => {
    await writeFile(
      join(ws, 'pipelines/r.yaml'),
      'stages:\n  pinned:\n    image: hpcflow-test/busybox:1\n    cmd: cat data/climate/a.txt > out/pinned.txt\n    deps: [{ dataset: climate, version: v1 }]\n    outs: [out/pinned.txt]\n  unknown:\n    image: hpcflow-test/busybox:1\n    cmd: "true"\n    deps: [{ dataset: climate, version: nope }]\n',
    );
    const st = await hpcflow(['status', 'r/pinned', 'r/unknown'], ws);
    expect(st.stdout).toMatch(new RegExp(`dataset climate: is at version [0-9a-f]{12}, the stage requires v1 \\(${v1id.slice(0, 12)}\\); run \`hpcflow dataset checkout climate@v1\``));
    expect(st.stdout).toContain("dataset climate: no version, dataset tag or git revision 'nope'");
    await ok(['dataset', 'checkout', 'climate@v1']);
    const r = await hpcflow(['run', '--json', 'r/pinned'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(ws, 'out/pinned.txt'), 'utf8')).toBe('alpha\n');
    await rm(join(ws, 'pipelines/r.yaml'));
    await ok(['dataset', 'checkout', 'climate@HEAD']);
  });

  it('gc keeps every object of every dataset version in the history', async () => {
    await ok(['gc']);
    // (climate@v1 differs from the working copy, so verify exits 1; the store part is what counts.)
    const r = await hpcflow(['dataset', 'verify', '--store', '--json', 'climate@v1', 'climate'], ws);
    const v = JSON.parse(r.stdout) as { ok: boolean; badObjects: unknown[] }[];
    expect(v.map((x) => x.badObjects)).toEqual([[], []]);
    expect(v.map((x) => x.ok)).toEqual([false, true]);
  });
});
