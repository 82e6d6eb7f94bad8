import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../../runner/fingerprint/hash-file.js';
import { events, hpcflow } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';

/**
 * The disk filling up during a cache write: the cache directory is a 4 MiB tmpfs and a stage
 * produces 6 MB. The stage must fail with a clear message, leave no object (whole or partial)
 * and no temp file behind, and a re-run with space available must recover.
 * (Mounting needs root, as CI and these machines run.)
 */
let ws: string;
let cache: string;
let mounted = false;

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-full-'));
  cache = join(ws, 'small-cache');
  await mkdir(join(ws, 'pipelines'));
  await mkdir(cache);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', cache]);
  mounted = true;
  await writeFile(
    join(ws, 'pipelines/f.yaml'),
    `stages:\n  small:\n    image: hpcflow-test/busybox:1\n    cmd: echo small > small.txt\n    outs: [small.txt]\n  big:\n    image: hpcflow-test/busybox:1\n    cmd: head -c 6000000 /dev/zero > big.bin\n    outs: [big.bin]\n`,
  );
});
afterAll(async () => {
  if (mounted) await execa('umount', [cache], { reject: false });
  await rm(ws, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

describe('disk full during a cache write', () => {
  it('fails the stage clearly, leaves nothing half-written, and a re-run recovers', async () => {
    const r = await hpcflow(['run', '--json', '--on-failure', 'continue', '--cache-dir', cache], ws);
    expect(r.code).toBe(1);
    const end = events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'f/big') as { outcome: { status: string; error: string } };
    expect(end.outcome.status).toBe('failed');
    expect(end.outcome.error).toMatch(/^could not store the outputs in the cache: no space left \(ENOSPC\); free space or use --cache-dir/);
    expect(events(r.stdout).some((e) => e.type === 'stage-end' && e.stage === 'f/small' && (e.outcome as { status: string }).status === 'ran')).toBe(true);
    // Nothing partial: every object hashes to its name, and no temp file is left.
    for (const f of await filesUnder(join(cache, 'objects'))) {
      const name = f.split('/').slice(-2).join('');
      expect((await hashFile(f)).hash).toBe(name);
    }
    expect(await filesUnder(join(cache, 'tmp'))).toEqual([]);
    const lock = await hpcflow(['status', '--cache-dir', cache], ws);
    expect(lock.stdout).toMatch(/f\/big\s+will run/);
    expect(lock.stdout).toMatch(/f\/small\s+up to date/);

    // Space again: unmount the tmpfs (the cache directory is then the plain disk below it).
    await execa('umount', [cache]);
    mounted = false;
    const again = await hpcflow(['run', '--json', '--cache-dir', cache], ws);
    expect(again.code, again.stderr).toBe(0);
    const ran = events(again.stdout).filter((e) => e.type === 'stage-end' && (e.outcome as { status: string }).status === 'ran').map((e) => e.stage);
    expect(ran).toEqual(['f/big']);
    recordFaults({ scenario: 'disk full during a cache write', injected: 1, recovered: 1, lost: 0 });
  });
});
