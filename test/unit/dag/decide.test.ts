import { describe, expect, it } from 'vitest';
import { decide, diffComponents, diffOutputs, fingerprintWithLock } from '../../../runner/dag/decide.js';
import { formatReason } from '../../../runner/dag/reasons.js';
import type { StageComponents } from '../../../runner/fingerprint/stage.js';
import { componentsJson, fingerprintOf } from '../../../runner/fingerprint/stage.js';
import { canonicalJson } from '../../../runner/util/canonical-json.js';
import type { LockEntry } from '../../../runner/lockfile/lockfile.js';

const base: StageComponents = {
  cmd: './heat --n 4000',
  wdir: '',
  image: { tag: 'local/openmp:1', digest: 'sha256:' + 'a'.repeat(64) },
  deps: { 'kernels/heat.c': { kind: 'file', hash: '1'.repeat(64), size: 10 } },
  params: { 'heat.n': 4000, alpha: 0.1 },
  env: { OMP_NUM_THREADS: '2' },
  shape: { nodes: 1, tasksPerNode: 1, cpusPerTask: 2 },
  upstream: { 'heat/gen': 'f'.repeat(64) },
  outs: ['results/T.bin'],
};
const entry = (c: StageComponents): LockEntry => ({ ...c, fingerprint: fingerprintOf(c), outRecords: [] });
const texts = (c: Partial<StageComponents>): string[] => diffComponents(entry(base), c).map(formatReason);

describe('diffComponents names the component that changed', () => {
  it('nothing changed → no reasons', () => {
    expect(texts(base)).toEqual([]);
  });
  it('a parameter', () => {
    expect(texts({ ...base, params: { ...base.params, 'heat.n': 8000 } })).toEqual(['param heat.n 4000→8000']);
  });
  it('a dependency', () => {
    expect(texts({ ...base, deps: { 'kernels/heat.c': { kind: 'file', hash: '2'.repeat(64), size: 10 } } })).toEqual(['dep kernels/heat.c changed']);
  });
  it('the image digest although the tag did not', () => {
    expect(texts({ ...base, image: { tag: 'local/openmp:1', digest: 'sha256:' + 'b'.repeat(64) } })).toEqual([
      'image digest changed although tag did not: local/openmp:1 aaaaaaaaaaaa → bbbbbbbbbbbb',
    ]);
  });
  it('the tag', () => {
    expect(texts({ ...base, image: { tag: 'local/openmp:2', digest: 'sha256:' + 'b'.repeat(64) } })).toEqual(['image changed: local/openmp:1 → local/openmp:2']);
  });
  it('env, shape, upstream, outs, cmd, params added/removed, deps added/removed', () => {
    expect(
      texts({
        ...base,
        cmd: './heat --n 8000',
        env: { OMP_NUM_THREADS: '4', X: '1' },
        shape: { nodes: 2, tasksPerNode: 1, cpusPerTask: 2 },
        upstream: { 'heat/gen': 'e'.repeat(64) },
        outs: ['results/T.bin', 'results/U.bin'],
        params: { 'heat.n': 4000, beta: 2 },
        deps: { 'kernels/new.c': { kind: 'file', hash: '3'.repeat(64), size: 1 } },
      }),
    ).toEqual([
      'cmd changed: ./heat --n 4000 → ./heat --n 8000',
      'dep kernels/new.c added',
      'dep kernels/heat.c removed',
      'param beta added (2)',
      'param alpha removed (was 0.1)',
      'env OMP_NUM_THREADS 2→4',
      'env X (unset)→1',
      'launch shape 1×1×2 (nodes×tasks×cpus) → 2×1×2 (nodes×tasks×cpus)',
      'upstream heat/gen changed',
      'declared outputs changed: [results/T.bin] → [results/T.bin, results/U.bin]',
    ]);
  });
  it('params compare by value, not key order', () => {
    const a = { ...base, params: { p: { x: 1, y: 2 } } };
    expect(diffComponents(entry(a), { ...a, params: { p: { y: 2, x: 1 } } })).toEqual([]);
  });
  it('no lock entry → new', () => {
    expect(diffComponents(undefined, base).map(formatReason)).toEqual(['never ran (no entry in hpcflow.lock)']);
  });
});

describe('decide', () => {
  const fp = fingerprintOf(base);
  it('same fingerprint, outputs intact → up to date', () => {
    expect(decide({ fingerprint: fp, components: base, lockEntry: entry(base), outputReasons: [], cached: false, forced: false }).action).toBe('up-to-date');
  });
  it('same fingerprint, output missing, cached → restore; not cached → run', () => {
    const r = [{ kind: 'out-missing', path: 'results/T.bin' } as const];
    expect(decide({ fingerprint: fp, components: base, lockEntry: entry(base), outputReasons: r, cached: true, forced: false }).action).toBe('restore');
    expect(decide({ fingerprint: fp, components: base, lockEntry: entry(base), outputReasons: r, cached: false, forced: false }).action).toBe('run');
  });
  it('a changed fingerprint found in the run-cache → restore with the reasons', () => {
    const now = { ...base, params: { ...base.params, 'heat.n': 8000 } };
    const d = decide({ fingerprint: fingerprintOf(now), components: now, lockEntry: entry(base), outputReasons: [], cached: true, forced: false });
    expect(d.action).toBe('restore');
    expect(d.reasons.map(formatReason)).toEqual(['param heat.n 4000→8000', 'outputs for this fingerprint are in the run-cache']);
  });
  it('forced always runs', () => {
    expect(decide({ fingerprint: fp, components: base, lockEntry: entry(base), outputReasons: [], cached: true, forced: true }).action).toBe('run');
  });
});

describe('diffOutputs', () => {
  it('missing and modified outputs', () => {
    const recs = [
      { path: 'a', kind: 'file', hash: 'x', size: 1, exec: false },
      { path: 'b', kind: 'dir', hash: 'y', size: 1, files: 1 },
      { path: 'c', kind: 'file', hash: 'z', size: 1, exec: false },
    ] as const;
    const disk = new Map([
      ['a', { kind: 'missing' as const }],
      ['b', { kind: 'dir' as const, hash: 'other', size: 1, files: 1 }],
      ['c', { kind: 'file' as const, hash: 'z', size: 1, exec: false }],
    ]);
    expect(diffOutputs(recs, disk).map(formatReason)).toEqual(['output a is missing', 'output b was modified']);
  });
});

describe('fingerprint', () => {
  it('componentsJson is exactly the canonical JSON of the components', () => {
    const variants: StageComponents[] = [
      base,
      { ...base, params: { z: { b: [1, { d: 1, c: 2 }], a: null }, a: 'x', m: 1.5 }, env: { Z: '1', A: '2' } },
      { ...base, deps: {}, upstream: { b: '2', a: '1' }, outs: [] },
    ];
    for (const v of variants) expect(componentsJson(v)).toBe(canonicalJson(v));
  });

  it('is stable under key order and changes with any component', () => {
    const { outs, ...rest } = base;
    const reordered = JSON.parse(JSON.stringify({ outs, ...rest })) as StageComponents;
    expect(fingerprintOf(reordered)).toBe(fingerprintOf(base));
    expect(fingerprintOf({ ...base, env: {} })).not.toBe(fingerprintOf(base));
    expect(fingerprintOf(base)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('fingerprintWithLock reuses the lock entry only when nothing changed', () => {
  const variants: [string, StageComponents][] = [
    ['cmd', { ...base, cmd: 'x' }],
    ['wdir', { ...base, wdir: 'sub' }],
    ['image tag', { ...base, image: { ...base.image, tag: 'other' } }],
    ['image digest', { ...base, image: { ...base.image, digest: 'sha256:' + 'c'.repeat(64) } }],
    ['dep hash', { ...base, deps: { 'kernels/heat.c': { kind: 'file', hash: '9'.repeat(64), size: 10 } } }],
    ['dep kind', { ...base, deps: { 'kernels/heat.c': { kind: 'dir', hash: '1'.repeat(64), size: 10 } } }],
    ['dep added', { ...base, deps: { ...base.deps, b: { kind: 'file', hash: '1'.repeat(64), size: 1 } } }],
    ['dep removed', { ...base, deps: {} }],
    ['param value', { ...base, params: { ...base.params, alpha: 0.2 } }],
    ['param added', { ...base, params: { ...base.params, beta: 1 } }],
    ['param removed', { ...base, params: { alpha: 0.1 } }],
    ['env', { ...base, env: { OMP_NUM_THREADS: '3' } }],
    ['env removed', { ...base, env: {} }],
    ['shape', { ...base, shape: { ...base.shape, tasksPerNode: 4 } }],
    ['upstream fp', { ...base, upstream: { 'heat/gen': 'e'.repeat(64) } }],
    ['upstream removed', { ...base, upstream: {} }],
    ['upstream added', { ...base, upstream: { ...base.upstream, 'heat/x': 'a'.repeat(64) } }],
    ['outs', { ...base, outs: ['other'] }],
  ];
  it.each(variants)('%s: a change is both a reason and a new fingerprint', (_name, v) => {
    const lock = entry(base);
    expect(diffComponents(lock, v).length).toBeGreaterThan(0);
    expect(fingerprintWithLock(v, lock)).toBe(fingerprintOf(v));
    expect(fingerprintOf(v)).not.toBe(lock.fingerprint);
  });
  it('unchanged: the lock fingerprint is reused (and equals a fresh one)', () => {
    const lock = entry(base);
    expect(fingerprintWithLock({ ...base }, lock)).toBe(lock.fingerprint);
    expect(fingerprintOf({ ...base })).toBe(lock.fingerprint);
  });
});
