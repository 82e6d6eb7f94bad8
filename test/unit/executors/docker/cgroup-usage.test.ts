import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cgroupParentPath,
  detectCgroupLayout,
  listCgroupParents,
  parseCpuStatUsageUsec,
  readCgroupUsage,
  removeCgroup,
} from '../../../../runner/executors/docker/cgroup-usage.js';

// A fake /sys/fs/cgroup in a temp dir (plain directories: rmdir of an empty dir works the same).
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-cg-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const parent = cgroupParentPath('hpcflow-99999999-abc-demo');

describe('cgroup v1', () => {
  beforeEach(async () => {
    await mkdir(path.join(root, 'memory', parent), { recursive: true });
    await mkdir(path.join(root, 'cpuacct', parent), { recursive: true });
    await mkdir(path.join(root, 'pids', parent), { recursive: true });
    await writeFile(path.join(root, 'memory', 'memory.max_usage_in_bytes'), '0\n');
    await writeFile(path.join(root, 'cpuacct', 'cpuacct.usage'), '0\n');
  });

  it('is detected, read, listed and removed', async () => {
    const layout = await detectCgroupLayout(root);
    expect(layout).toEqual({ version: 1, root });
    if (layout === null) return;
    await writeFile(path.join(root, 'cpuacct', parent, 'cpuacct.usage'), '1234567890\n');
    await writeFile(path.join(root, 'memory', parent, 'memory.max_usage_in_bytes'), '68390912\n');
    expect(await readCgroupUsage(layout, parent)).toEqual({ cpuMs: 1234.56789, peakMemBytes: 68390912 });
    expect(await listCgroupParents(layout)).toEqual(['hpcflow-99999999-abc-demo']);
    // Real cgroup dirs are removable while their files "exist"; emulate by removing the files.
    await rm(path.join(root, 'cpuacct', parent, 'cpuacct.usage'));
    await rm(path.join(root, 'memory', parent, 'memory.max_usage_in_bytes'));
    expect(await removeCgroup(layout, parent)).toBe(true);
    for (const h of ['memory', 'cpuacct', 'pids']) expect(await readdir(path.join(root, h, 'hpcflow'))).toEqual([]);
  });

  it('reports null for a parent that never existed', async () => {
    const layout = await detectCgroupLayout(root);
    if (layout === null) throw new Error('layout');
    expect(await readCgroupUsage(layout, '/hpcflow/none')).toEqual({ cpuMs: null, peakMemBytes: null });
  });
});

describe('cgroup v2', () => {
  it('reads cpu.stat usage_usec and memory.peak', async () => {
    await writeFile(path.join(root, 'cgroup.controllers'), 'cpu memory\n');
    await mkdir(path.join(root, parent), { recursive: true });
    await writeFile(path.join(root, parent, 'cpu.stat'), 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
    await writeFile(path.join(root, parent, 'memory.peak'), '4096\n');
    const layout = await detectCgroupLayout(root);
    expect(layout).toEqual({ version: 2, root });
    if (layout === null) return;
    expect(await readCgroupUsage(layout, parent)).toEqual({ cpuMs: 2.5, peakMemBytes: 4096 });
  });

  it('parses usage_usec only on its own line', () => {
    expect(parseCpuStatUsageUsec('user_usec 5\nusage_usec 7\n')).toBe(7);
    expect(parseCpuStatUsageUsec('nothing')).toBeNull();
  });
});

describe('detectCgroupLayout', () => {
  it('returns null when neither layout is mounted', async () => {
    expect(await detectCgroupLayout(root)).toBeNull();
  });
});
