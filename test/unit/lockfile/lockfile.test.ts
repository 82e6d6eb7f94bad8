import { describe, expect, it } from 'vitest';
import { parseLockfile, serializeLockfile } from '../../../runner/lockfile/lockfile.js';
import type { Lockfile } from '../../../runner/lockfile/lockfile.js';

const lock = {
  schema: 1,
  stages: {
    'p/z': { fingerprint: 'f1', cmd: 'b', wdir: '', image: { tag: 't', digest: 'd' }, deps: { 'z.txt': { kind: 'file', hash: 'h', size: 1 }, 'a.txt': { kind: 'file', hash: 'h', size: 1 } }, params: {}, env: {}, shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 }, upstream: {}, outs: [], outRecords: [] },
    'p/a': { fingerprint: 'f2', cmd: 'a', wdir: '', image: { tag: 't', digest: 'd' }, deps: {}, params: {}, env: {}, shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1 }, upstream: {}, outs: [], outRecords: [] },
  },
} as unknown as Lockfile;

describe('lockfile', () => {
  it('serialises with sorted keys at every level and a trailing newline (stable diffs)', () => {
    const text = serializeLockfile(lock);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.indexOf('"p/a"')).toBeLessThan(text.indexOf('"p/z"'));
    expect(text.indexOf('"a.txt"')).toBeLessThan(text.indexOf('"z.txt"'));
    expect(serializeLockfile(parseLockfile(text))).toBe(text);
  });
  it('rejects broken text with a clear error and a hint', () => {
    expect(() => parseLockfile('{"schema": 1, "stages": {')).toThrowError(/hpcflow.lock is not valid JSON/);
    expect(() => parseLockfile('{"schema": 9, "stages": {}}')).toThrowError(/unknown layout/);
    expect(() => parseLockfile('{"schema": 1, "stages": {"x": {"fingerprint": 3}}}')).toThrowError(/entry for stage x is malformed/);
  });
});

describe('fingerprint recipe version', () => {
  it('a lockfile made with another recipe keeps its components but no fingerprints', () => {
    const old = serializeLockfile(lock).replace(/"fingerprintVersion": \d+/, '"fingerprintVersion": 0');
    const parsed = parseLockfile(old);
    expect(parsed.stages['p/a']?.fingerprint).toBe('');
    expect(parsed.stages['p/a']?.cmd).toBe('a');
  });
});
