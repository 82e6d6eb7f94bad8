import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, utimes, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memoImageState } from '../../../runner/cli/context.js';
import { readValidSnapshot, snapshotKey, STATUS_SNAPSHOT_PATH } from '../../../runner/engine/status-snapshot.js';
import { DockerExecutor } from '../../../runner/executors/docker/docker-executor.js';
import { hpcflow } from '../../helpers/cli.js';

/**
 * The stat snapshot answers a no-op status only while every input is untouched: each kind of
 * change must fall through to the planner and be reported.
 */
let ws: string;
const tag = `hpcflow-test/snap:${process.pid}`;
const executor = new DockerExecutor({});

/** Age every file so that the racy-window rule lets the snapshot be written. */
async function ageAll(dir: string, seconds = 60): Promise<void> {
  const t = new Date(Date.now() - seconds * 1000);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    if (!p.includes('/.hpcflow/') && !p.includes('/.git/')) await utimes(p, t, t);
  }
  await utimes(dir, t, t);
}

async function snapshotValid(): Promise<boolean> {
  return (await readValidSnapshot(ws, snapshotKey(false), memoImageState(executor, ws))) !== null;
}

/** Bring everything up to date and record a fresh snapshot. */
async function settle(): Promise<void> {
  const r = await hpcflow(['run'], ws);
  expect(r.code, r.stderr).toBe(0);
  await ageAll(ws);
  const st = await hpcflow(['status', '--check'], ws);
  expect(st.code, st.stdout).toBe(0);
  expect(existsSync(join(ws, STATUS_SNAPSHOT_PATH))).toBe(true);
  expect(await snapshotValid()).toBe(true);
}

beforeAll(async () => {
  await execa('docker', ['tag', 'hpcflow-test/busybox:1', tag]);
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-snap-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'data/sub'), { recursive: true });
  await writeFile(join(ws, 'data/a.txt'), 'a\n');
  await writeFile(join(ws, 'data/sub/b.txt'), 'b\n');
  await writeFile(join(ws, 'in.txt'), 'input\n');
  await writeFile(join(ws, 'params.yaml'), 'k: 1\n');
  await writeFile(
    join(ws, 'pipelines/s.yaml'),
    `stages:
  files:
    image: ${tag}
    cmd: find data -type f | sort > files.txt && cat in.txt >> files.txt
    deps: [data, in.txt]
    params: [k]
    outs: [files.txt]
  copy:
    image: ${tag}
    cmd: cp files.txt copy.txt
    deps: [files.txt]
    outs: [copy.txt]
`,
  );
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
  await execa('docker', ['rmi', '-f', tag], { reject: false });
  await executor.close();
});

describe('status snapshot', () => {
  beforeEach(settle);

  it('is used while nothing changed, and agrees with the planner', async () => {
    const fast = await hpcflow(['status', '--json'], ws);
    await rm(join(ws, STATUS_SNAPSHOT_PATH));
    const full = await hpcflow(['status', '--json'], ws);
    expect(fast.stdout).toBe(full.stdout);
  });

  it('a same-size content edit is seen (mtime changes)', async () => {
    await writeFile(join(ws, 'in.txt'), 'INPUT\n');
    expect(await snapshotValid()).toBe(false);
    expect((await hpcflow(['status'], ws)).stdout).toMatch(/s\/files\s+will run\n\s+dep in.txt changed/);
  });

  it('a file added deep in a dependency directory is seen', async () => {
    await mkdir(join(ws, 'data/sub/new'), { recursive: true });
    await writeFile(join(ws, 'data/sub/new/c.txt'), 'c\n');
    expect(await snapshotValid()).toBe(false);
    expect((await hpcflow(['status'], ws)).stdout).toMatch(/s\/files\s+will run\n\s+dep data changed/);
  });

  it('a file appended to inside a dependency directory is seen', async () => {
    await appendFile(join(ws, 'data/sub/b.txt'), 'more\n');
    expect(await snapshotValid()).toBe(false);
  });

  it('a params edit is seen', async () => {
    await writeFile(join(ws, 'params.yaml'), 'k: 2\n');
    expect(await snapshotValid()).toBe(false);
    expect((await hpcflow(['status'], ws)).stdout).toContain('param k 1→2');
  });

  it('a deleted output is seen', async () => {
    await rm(join(ws, 'copy.txt'));
    expect(await snapshotValid()).toBe(false);
    expect((await hpcflow(['status'], ws)).stdout).toContain('output copy.txt is missing');
  });

  it('a lockfile edit is seen', async () => {
    await appendFile(join(ws, 'hpcflow.lock'), '\n');
    expect(await snapshotValid()).toBe(false);
  });

  it('a moved image tag is seen', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'hpcflow-snapctx-'));
    await writeFile(join(ctx, 'Dockerfile'), `FROM hpcflow-test/busybox:1\nLABEL moved=${process.pid}\n`);
    await execa('docker', ['build', '--network', 'host', '-q', '-t', tag, ctx]);
    await rm(ctx, { recursive: true, force: true });
    expect(await snapshotValid()).toBe(false);
    expect((await hpcflow(['status'], ws)).stdout).toContain('image digest changed although tag did not');
  });

  it('a fresh (racy) input prevents writing a snapshot', async () => {
    await rm(join(ws, STATUS_SNAPSHOT_PATH));
    await writeFile(join(ws, 'in.txt'), 'input\n'); // same content, just written
    await hpcflow(['status'], ws);
    expect(existsSync(join(ws, STATUS_SNAPSHOT_PATH))).toBe(false);
  });
});
