import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canManageCgroups, detectCgroupLayout } from '../../../runner/executors/docker/cgroup-usage.js';
import { createEngineApi } from '../../../runner/executors/docker/engine-api.js';
import { DockerExecutor } from '../../../runner/executors/docker/docker-executor.js';
import type { ResolvedImage, StageRunResult } from '../../../runner/executors/executor.js';
import { TEST_IMAGE, ensureDockerForTests, makeStage, makeTask } from '../../helpers/docker.js';

let ws: string;
let ex: DockerExecutor;
let image: ResolvedImage;
/** Whether this engine + process can measure usage (see cgroup-usage.ts); else numbers are null. */
let measurable = false;
const never = new AbortController().signal;

beforeAll(async () => {
  await ensureDockerForTests();
  ws = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-usage-'));
  ex = new DockerExecutor();
  image = await ex.prepareImage({ kind: 'ref', ref: TEST_IMAGE }, ws, { onLog: () => {} }, never);
  const info = await createEngineApi({ socketPath: '/var/run/docker.sock' }).info();
  const layout = await detectCgroupLayout();
  measurable = info.cgroupDriver === 'cgroupfs' && layout !== null && (await canManageCgroups(layout));
});
afterAll(async () => {
  await ex?.close();
  if (ws !== undefined) await rm(ws, { recursive: true, force: true });
});

function run(cmd: string): Promise<StageRunResult> {
  return ex.run(makeTask({ stage: makeStage({ cmd }), image, workspace: ws }), { onLog: () => {} }, never);
}

describe('CPU time, peak memory and timings', () => {
  it('reports peak memory ≥ 64 MiB for a stage that holds 64 MiB', async () => {
    // busybox tail keeps the whole (newline-free) input as one line in anonymous memory.
    const r = await run('head -c 67108864 /dev/zero | tail -n1 >/dev/null');
    expect(r.exitCode).toBe(0);
    if (!measurable) return expect(r.peakMemBytes).toBeNull();
    expect(r.peakMemBytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
  });

  it('reports cpuMs > 500 for ~1 s of CPU work, at most what one core could do in that time', async () => {
    const r = await run('i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done');
    expect(r.exitCode).toBe(0);
    if (!measurable) return expect(r.cpuMs).toBeNull();
    expect(r.cpuMs).toBeGreaterThan(500);
    // Single-threaded: CPU time ≤ wall time (+ runc's setup, which runs before StartedAt).
    expect(r.cpuMs as number).toBeLessThan(r.commandMs + 200);
  });

  it('measures `true`: start overhead, command time and usage (printed for the record)', async () => {
    const results: StageRunResult[] = [];
    for (let i = 0; i < 5; i++) results.push(await run('true'));
    for (const r of results) {
      expect(r.exitCode).toBe(0);
      expect(r.startOverheadMs).toBeGreaterThan(0);
      expect(r.commandMs).toBeGreaterThanOrEqual(0);
      expect(r.commandMs).toBeLessThan(1000);
      expect(r.wallMs).toBeGreaterThanOrEqual(r.startOverheadMs);
      if (measurable) expect(r.cpuMs).toBeGreaterThan(0);
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    console.log(
      `[usage] true ×5 medians: startOverheadMs=${med(results.map((r) => r.startOverheadMs))} ` +
        `commandMs=${med(results.map((r) => r.commandMs))} wallMs=${med(results.map((r) => r.wallMs))} ` +
        `cpuMs=${med(results.map((r) => r.cpuMs ?? NaN))} peakMemBytes=${med(results.map((r) => r.peakMemBytes ?? NaN))}`,
    );
  });

  it('leaves no per-container cgroup parents behind', async () => {
    const layout = await detectCgroupLayout();
    if (!measurable || layout === null) return;
    const { listCgroupParents } = await import('../../../runner/executors/docker/cgroup-usage.js');
    const mine = (await listCgroupParents(layout)).filter((n) => n.startsWith(`hpcflow-${process.pid}-`));
    expect(mine).toEqual([]);
  });
});
