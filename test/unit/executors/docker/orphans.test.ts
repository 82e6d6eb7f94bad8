import { describe, expect, it } from 'vitest';
import { ownerPidFromName, selectOrphans } from '../../../../runner/executors/docker/orphans.js';

const c = (id: string, host: string, pid: string) => ({
  id,
  labels: { 'hpcflow.owner-host': host, 'hpcflow.owner-pid': pid },
});

describe('selectOrphans', () => {
  it('picks containers of this host whose owner is dead', () => {
    const alive = new Set([10]);
    const got = selectOrphans(
      [c('a', 'h1', '10'), c('b', 'h1', '11'), c('c', 'h2', '11'), c('d', 'h1', 'x'), { id: 'e', labels: {} }],
      'h1',
      (pid) => alive.has(pid),
    );
    expect(got.map((x) => x.id)).toEqual(['b']);
  });
});

describe('ownerPidFromName', () => {
  it('reads the pid from hpcflow-<pid>-…', () => {
    expect(ownerPidFromName('hpcflow-4242-a1b2c3-demo-step')).toBe(4242);
    expect(ownerPidFromName('something-else')).toBeNull();
  });
});
