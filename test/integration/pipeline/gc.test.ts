import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hpcflow, withStatus } from '../../helpers/cli.js';

/**
 * gc keeps what any hpcflow.lock in the git history (any branch) refers to and removes the rest;
 * switching back to an old commit then restores from the cache without running.
 */
let ws: string;
const git = (...args: string[]) => execa('git', args, { cwd: ws });
const setN = (n: number) => writeFile(join(ws, 'params.yaml'), `n: ${n}\n`);

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-gc-'));
  await mkdir(join(ws, 'pipelines'));
  await writeFile(
    join(ws, 'pipelines/g.yaml'),
    `stages:\n  s:\n    image: hpcflow-test/busybox:1\n    cmd: echo "value \${n}" > out.txt\n    params: [n]\n    outs: [out.txt]\n`,
  );
  await writeFile(join(ws, '.gitignore'), '.hpcflow/\nout.txt\n');
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.email', 't@example.org');
  await git('config', 'user.name', 'test');
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
});

describe('gc over the git history', () => {
  it('keeps fingerprints committed on any branch, removes uncommitted ones', async () => {
    await setN(1);
    expect((await hpcflow(['run'], ws)).code).toBe(0);
    await git('add', '-A');
    await git('commit', '-qm', 'n=1');
    // n=2 on a side branch, committed.
    await git('checkout', '-qb', 'side');
    await setN(2);
    expect((await hpcflow(['run'], ws)).code).toBe(0);
    await git('add', '-A');
    await git('commit', '-qm', 'n=2');
    await git('checkout', '-q', 'main');
    // n=3 run but never committed: garbage.
    await setN(3);
    expect((await hpcflow(['run'], ws)).code).toBe(0);
    await git('checkout', '-q', '--', '.');

    const dry = await hpcflow(['gc', '--dry-run', '--json'], ws);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, entriesToRemove: 1 });
    const r = await hpcflow(['gc', '--json'], ws);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ entriesRemoved: 1, objectsRemoved: 1 });
    expect((await hpcflow(['gc', '--json'], ws)).stdout).toContain('"entriesRemoved":0');
  });

  it('the side branch result is restored without running after gc; the collected one runs again', async () => {
    await git('checkout', '-q', 'side');
    const r = await hpcflow(['run', '--json'], ws);
    expect(withStatus(r.stdout, 'restored')).toEqual(['g/s']);
    expect(await readFile(join(ws, 'out.txt'), 'utf8')).toBe('value 2\n');
    await git('checkout', '-q', 'main');
    await setN(3);
    const r3 = await hpcflow(['run', '--json'], ws);
    expect(withStatus(r3.stdout, 'ran')).toEqual(['g/s']);
  });
});
