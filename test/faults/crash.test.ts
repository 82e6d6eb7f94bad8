import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, events, hpcflow } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';
import { checkNothingCorrupt } from './fault-helpers.js';

/**
 * Crash safety: SIGKILL the runner at random moments of a run (hashing, image build, a stage
 * running, outputs being stored, the lockfile being written), then check after every kill that
 * nothing is corrupt, and at the end that one more run completes, re-runs nothing that a killed
 * run had finished, and leaves no container behind.
 */
const KILLS = 8;
let ws: string;

// A deterministic pseudo-random sequence, so a failure can be replayed.
let seed = 0x5eed;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

const PIPELINE = `defaults:
  image: { build: crash }
stages:
${Array.from({ length: 6 }, (_, i) => `  s${i}:
    cmd: sleep 0.${3 + i}; head -c ${(i + 1) * 3_000_000} /dev/zero | tr '\\\\0' '${String.fromCharCode(97 + i)}' > out/s${i}.bin
    params: { i: ${i} }
    ${i >= 3 ? `deps: [out/s${i - 3}.bin]\n    ` : ''}outs: [out/s${i}.bin]`).join('\n')}
`;

/** hpcflow's containers of THIS test's runs (other test files run in parallel): they carry the label of its image. */
async function hpcflowContainers(): Promise<string[]> {
  const r = await execa('docker', ['ps', '-aq', '--filter', 'label=hpcflow.run-id', '--filter', `label=crash-test=${process.pid}`]);
  return r.stdout.split('\n').filter(Boolean);
}


beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-crash-'));
  await mkdir(join(ws, 'pipelines'));
  await mkdir(join(ws, 'out'));
  await mkdir(join(ws, 'containers/crash'), { recursive: true });
  await writeFile(join(ws, 'containers/crash/Dockerfile'), `FROM hpcflow-test/busybox:1\nLABEL crash-test=${process.pid}\n`);
  await writeFile(join(ws, 'pipelines/c.yaml'), PIPELINE);
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
  const imgs = await execa('docker', ['images', '-q', '--filter', `label=crash-test=${process.pid}`]);
  for (const id of new Set(imgs.stdout.split('\n').filter(Boolean))) await execa('docker', ['rmi', '-f', id], { reject: false });
});

describe('SIGKILL at random points of a run', () => {
  it(`${KILLS} kills: nothing corrupt after any of them, then a run completes without redoing finished work`, async () => {
    const finished = new Set<string>();
    let faults = 0;
    for (let k = 0; k < KILLS; k++) {
      // Every run has work to do, so the kill lands inside it on any machine speed: most runs
      // force every stage (hash, run, store, lock); every fourth deletes the outputs instead, so
      // the kill lands in a restore from the cache (or in a run, for what is not cached yet).
      const restore = k % 4 === 3;
      if (restore) for (let i = 0; i < 6; i++) await rm(join(ws, `out/s${i}.bin`), { force: true });
      const args = ['run', '--json', '-j', '2', ...(restore ? [] : ['--force'])];
      const child = execa('node', [BIN, ...args], { cwd: ws, reject: false, env: { CI: '1' } });
      // A forced run takes at least the stages' sleeps (1.65 s on two slots) plus start-up.
      const delay = restore ? 100 + Math.floor(rand() * 300) : 150 + Math.floor(rand() * 1400);
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      const res = await child;
      if (res.signal === 'SIGKILL') faults += 1;
      for (const e of events(res.stdout)) {
        const oc = e.outcome as { status?: string } | undefined;
        if (e.type === 'stage-end' && (oc?.status === 'ran' || oc?.status === 'restored')) finished.add(e.stage as string);
      }
      await checkNothingCorrupt(ws);
    }
    expect(faults).toBeGreaterThanOrEqual(KILLS - 2); // a restore may finish before its kill

    const final = await hpcflow(['run', '--json', '-j', '2'], ws);
    expect(final.code, final.stderr).toBe(0);
    const reran = events(final.stdout)
      .filter((e) => e.type === 'stage-end' && (e.outcome as { status: string }).status === 'ran')
      .map((e) => e.stage as string);
    // Work a killed run finished (and reported) is never redone: it is up to date or restored
    // (a later forced run killed mid-stage leaves it restorable: same fingerprint, in the cache).
    const lost = reran.filter((id) => finished.has(id));
    expect(lost).toEqual([]);
    const { objects, entries } = await checkNothingCorrupt(ws);
    expect(entries).toBeGreaterThan(0);
    expect(objects).toBeGreaterThan(0);
    expect(await hpcflowContainers()).toEqual([]);
    for (let i = 0; i < 6; i++) {
      const bytes = await readFile(join(ws, `out/s${i}.bin`));
      expect(bytes.length).toBe((i + 1) * 3_000_000);
    }
    const st = await hpcflow(['status', '--check'], ws);
    expect(st.code, st.stdout).toBe(0);
    recordFaults({ scenario: 'SIGKILL of the runner mid-run', injected: faults, recovered: 1, lost: lost.length });
  }, 300_000);
});
