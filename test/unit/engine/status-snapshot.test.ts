/**
 * The stat snapshot of the no-op `status` fast path, in-process (no engine: images are faked):
 * a snapshot holds while nothing it stamped changed; every kind of change to a stamped file —
 * including a same-size rewrite whose mtime is put back, and a metadata-only change — makes it
 * fall through to the planner (its ctime moved); spec existence checks that a stamp already covers
 * are not repeated; a fresh input prevents writing one.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readValidSnapshot, snapshotKey, STATUS_SNAPSHOT_PATH, writeSnapshot } from '../../../runner/engine/status-snapshot.js';
import type { ImageState } from '../../../runner/executors/executor.js';
import type { LoadTrace } from '../../../runner/spec/load.js';

let root: string;
const KEY = snapshotKey(false);
const IMAGE = { spec: { kind: 'ref' as const, ref: 'local/x:1' }, digest: 'sha256:aaa' };
const present = async (): Promise<ImageState> => ({ state: 'present', image: { ref: 'sha256:aaa', digest: 'sha256:aaa', tag: 'local/x:1' } });
const STAGES = [{ id: 'p/a', fingerprint: 'f'.repeat(64), upstream: [] }];

async function age(rel: string): Promise<void> {
  const t = new Date(Date.now() - 60_000);
  await utimes(join(root, rel), t, t);
}

async function record(checks: LoadTrace['checks'] = []): Promise<boolean> {
  const spec: LoadTrace = { files: [], checks, pipelineFiles: ['p.yaml'], startedNs: '0' };
  return writeSnapshot({
    root,
    key: KEY,
    spec,
    lockPath: 'hpcflow.lock',
    hashed: new Map([['in.txt', 'file']]),
    filesIn: async () => [],
    images: [IMAGE],
    stages: STAGES,
  });
}

const valid = async (): Promise<boolean> => (await readValidSnapshot(root, KEY, present)) !== null;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hpcflow-snapshot-'));
  await mkdir(join(root, 'pipelines'));
  await mkdir(join(root, '.hpcflow/tmp'), { recursive: true }); // the spec cache's directory, there before any snapshot
  await writeFile(join(root, 'pipelines/p.yaml'), 'stages: {}\n');
  await writeFile(join(root, 'in.txt'), 'input\n');
  await writeFile(join(root, 'hpcflow.lock'), '{}\n');
  for (const f of ['in.txt', 'hpcflow.lock']) await age(f);
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('status snapshot stamps', () => {
  it('holds while nothing changed, and answers with the recorded stages', async () => {
    expect(await record()).toBe(true);
    expect(await readValidSnapshot(root, KEY, present)).toEqual(STAGES);
    expect(await readValidSnapshot(root, snapshotKey(true), present)).toBeNull();
  });

  it('a same-size rewrite with its mtime put back is seen (the ctime moved)', async () => {
    expect(await record()).toBe(true);
    const before = await stat(join(root, 'in.txt'));
    await writeFile(join(root, 'in.txt'), 'INPUT\n');
    await utimes(join(root, 'in.txt'), before.atime, before.mtime);
    expect((await stat(join(root, 'in.txt'))).mtimeMs).toBe(before.mtimeMs);
    expect(await valid()).toBe(false);
  });

  it('a metadata-only change falls through to the planner too', async () => {
    expect(await record()).toBe(true);
    await chmod(join(root, 'in.txt'), 0o600);
    expect(await valid()).toBe(false);
  });

  it('a moved image, a deleted input or an edited lockfile is seen', async () => {
    expect(await record()).toBe(true);
    expect(await readValidSnapshot(root, KEY, async () => ({ state: 'present', image: { ref: 'sha256:bbb', digest: 'sha256:bbb', tag: 'local/x:1' } }))).toBeNull();
    await writeFile(join(root, 'hpcflow.lock'), '{ }\n');
    expect(await valid()).toBe(false);
    await rm(join(root, 'in.txt'));
    expect(await valid()).toBe(false);
  });

  it('keeps only the spec existence checks that no stamp covers', async () => {
    expect(await record([['in.txt', 'file'], ['gone.txt', null], ['pipelines', 'dir']])).toBe(true);
    const snap = JSON.parse(readFileSync(join(root, STATUS_SNAPSHOT_PATH), 'utf8')) as { spec: LoadTrace };
    expect(snap.spec.checks).toEqual([['gone.txt', null], ['pipelines', 'dir']]);
    expect(await valid()).toBe(true);
    await writeFile(join(root, 'gone.txt'), 'now here\n');
    expect(await valid()).toBe(false);
  });

  it('is not written while an input is younger than the racy window', async () => {
    await writeFile(join(root, 'in.txt'), 'input\n');
    expect(await record()).toBe(false);
    await expect(readFile(join(root, STATUS_SNAPSHOT_PATH))).rejects.toThrow();
  });
});
