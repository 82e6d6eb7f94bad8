import { describe, expect, it } from 'vitest';
import { buildGraph, findCycle, findCycles, OutputIndex, selectStages, stageEdges, topoLayers } from '../../../runner/dag/graph.js';
import { isHpcflowError } from '../../../runner/errors.js';
import type { DepSpec, Stage } from '../../../runner/model/pipeline.js';

/** A minimal stage: only id, deps and outputs matter to the graph. */
function stage(id: string, opts: { deps?: (string | { stage: string })[]; outs?: string[]; metrics?: string } = {}): Stage {
  const [pipeline = 'p', rest = id] = id.split('/');
  const deps: DepSpec[] = (opts.deps ?? []).map((d) => (typeof d === 'string' ? { kind: 'path', path: d } : { kind: 'stage', stage: d.stage }));
  return {
    id,
    pipeline,
    name: rest.split('@')[0] ?? rest,
    matrix: {},
    image: { kind: 'ref', ref: 'debian:bookworm' },
    cmd: 'true',
    wdir: '',
    deps,
    params: [],
    outs: (opts.outs ?? []).map((path) => ({ path, cache: true })),
    metrics: opts.metrics ?? null,
    resources: { nodes: 1, tasksPerNode: 1, cpusPerTask: 1, memoryBytes: null, timeLimitSec: null },
    env: {},
    pos: { file: `pipelines/${pipeline}.yaml`, line: 1, col: 1 },
  };
}

const graphOf = (...stages: Stage[]) => buildGraph({ stages });

describe('buildGraph edges', () => {
  it('links a dep to the stage whose output it is', () => {
    const g = graphOf(stage('p/gen', { outs: ['data/ic.bin'] }), stage('p/solve', { deps: ['data/ic.bin', 'src/solve.c'] }));
    expect(g.upstream.get('p/solve')).toEqual(['p/gen']);
    expect(g.downstream.get('p/gen')).toEqual(['p/solve']);
    expect(g.producedBy.get('p/solve')).toEqual(new Map([['data/ic.bin', 'p/gen']]));
  });

  it('links a dep inside an output directory', () => {
    const g = graphOf(stage('p/gen', { outs: ['data/out'] }), stage('p/use', { deps: ['data/out/x.bin'] }));
    expect(g.upstream.get('p/use')).toEqual(['p/gen']);
    expect(g.producedBy.get('p/use')?.get('data/out/x.bin')).toBe('p/gen');
  });

  it('links a dep directory to every stage writing inside it, without a single producer', () => {
    const g = graphOf(
      stage('p/a', { outs: ['data/a.bin'] }),
      stage('p/b', { outs: ['data/sub/b.bin'] }),
      stage('p/c', { outs: ['database.bin'] }),
      stage('p/use', { deps: ['data'] }),
    );
    expect(g.upstream.get('p/use')).toEqual(['p/a', 'p/b']);
    expect(g.producedBy.get('p/use')?.size).toBe(0);
  });

  it('treats the metrics file as an output', () => {
    const g = graphOf(stage('p/train', { metrics: 'metrics/train.json' }), stage('p/report', { deps: ['metrics/train.json'] }));
    expect(g.upstream.get('p/report')).toEqual(['p/train']);
  });

  it('links { stage } deps, also across pipelines', () => {
    const g = graphOf(stage('prep/fetch', { outs: ['raw'] }), stage('train/fit', { deps: [{ stage: 'prep/fetch' }] }));
    expect(g.upstream.get('train/fit')).toEqual(['prep/fetch']);
  });

  it('sorts and de-duplicates upstream and downstream lists', () => {
    const g = graphOf(
      stage('p/z', { outs: ['z1', 'z2'] }),
      stage('p/a', { outs: ['a'] }),
      stage('p/use', { deps: ['z1', 'z2', 'a', { stage: 'p/z' }] }),
    );
    expect(g.upstream.get('p/use')).toEqual(['p/a', 'p/z']);
    expect(g.downstream.get('p/z')).toEqual(['p/use']);
  });

  it('ignores self-edges (the spec reports them)', () => {
    const g = graphOf(stage('p/a', { deps: ['x'], outs: ['x'] }));
    expect(g.upstream.get('p/a')).toEqual([]);
    expect(g.ids).toEqual(['p/a']);
  });
});

describe('order', () => {
  it('is topological, with declaration order breaking ties', () => {
    const g = graphOf(
      stage('p/report', { deps: ['b.out', 'a.out'] }),
      stage('p/b', { deps: ['src.out'], outs: ['b.out'] }),
      stage('p/a', { outs: ['a.out'] }),
      stage('p/src', { outs: ['src.out'] }),
      stage('p/lonely'),
    );
    // Whenever several stages are ready, the earliest declared goes first (report before lonely).
    expect(g.ids).toEqual(['p/a', 'p/src', 'p/b', 'p/report', 'p/lonely']);
    expect(topoLayers(g)).toEqual([['p/a', 'p/src', 'p/lonely'], ['p/b'], ['p/report']]);
  });
});

describe('cycles', () => {
  const next = (edges: [string, string][]) => {
    const m = new Map<string, string[]>();
    for (const [a, b] of edges) m.set(a, [...(m.get(a) ?? []), b]);
    return m;
  };

  it('returns the whole trail, starting at the first node', () => {
    expect(findCycle(['a', 'b', 'c', 'd'], next([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']]))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(['x', 'b', 'c'], next([['b', 'c'], ['c', 'b']]))).toEqual(['b', 'c', 'b']);
  });

  it('returns null for a DAG and finds self-loops', () => {
    expect(findCycle(['a', 'b'], next([['a', 'b']]))).toBeNull();
    expect(findCycle(['a'], next([['a', 'a']]))).toEqual(['a', 'a']);
  });

  it('reports one trail per cyclic component', () => {
    const edges = next([['a', 'b'], ['b', 'a'], ['c', 'd'], ['d', 'e'], ['e', 'c'], ['e', 'a']]);
    expect(findCycles(['a', 'b', 'c', 'd', 'e'], edges)).toEqual([
      ['a', 'b', 'a'],
      ['c', 'd', 'e', 'c'],
    ]);
  });

  it('handles a 10,000-long cycle without recursion', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `s${i}`);
    const trail = findCycle(ids, next(ids.map((id, i) => [id, ids[(i + 1) % ids.length] ?? ''])));
    expect(trail?.length).toBe(10_001);
  });

  it('stageEdges tells which dep makes each edge', () => {
    const stages = [
      stage('p/a', { deps: ['c.out'], outs: ['a.out'] }),
      stage('p/c', { deps: ['x', { stage: 'p/a' }], outs: ['c.out'] }),
      stage('p/d', { deps: ['sub'] }),
      stage('p/e', { outs: ['sub/e.out'] }),
    ];
    expect(stageEdges(stages)).toEqual([
      { from: 'p/c', to: 'p/a', dep: 0, output: 'c.out', via: 'output' },
      { from: 'p/a', to: 'p/c', dep: 1, output: null, via: 'stage' },
      { from: 'p/e', to: 'p/d', dep: 0, output: 'sub/e.out', via: 'contains' },
    ]);
  });
});

describe('OutputIndex', () => {
  const idx = new OutputIndex([
    { path: 'data/out', producer: 'p/a' },
    { path: 'data/out2/x', producer: 'p/b' },
    { path: 'data.bin', producer: 'p/c' },
  ]);
  it('finds the covering output', () => {
    expect(idx.covering('data/out/deep/file')).toEqual({ path: 'data/out', producer: 'p/a' });
    expect(idx.covering('data/out2')).toBeNull();
  });
  it('finds outputs inside a directory, not siblings sharing a prefix', () => {
    expect(idx.inside('data').map((o) => o.path)).toEqual(['data/out', 'data/out2/x']);
    expect(idx.inside('data/out').map((o) => o.path)).toEqual([]);
  });
});

describe('selectStages', () => {
  const g = graphOf(
    stage('p/gen@n=1', { outs: ['a1'] }),
    stage('p/gen@n=2', { outs: ['a2'] }),
    stage('p/solve', { deps: ['a1'], outs: ['s'] }),
    stage('p/report', { deps: ['s'] }),
    stage('q/other'),
  );

  it('selects exactly, by base id (all cells) or by pipeline', () => {
    expect(selectStages(g, ['p/solve'], { downstream: false })).toEqual(new Set(['p/solve']));
    expect(selectStages(g, ['p/gen'], { downstream: false })).toEqual(new Set(['p/gen@n=1', 'p/gen@n=2']));
    expect(selectStages(g, ['q'], { downstream: false })).toEqual(new Set(['q/other']));
  });

  it('adds everything downstream when asked', () => {
    expect(selectStages(g, ['p/gen@n=1'], { downstream: true })).toEqual(new Set(['p/gen@n=1', 'p/solve', 'p/report']));
  });

  it('rejects unknown stages with a suggestion', () => {
    try {
      selectStages(g, ['p/slove'], { downstream: false });
      expect.fail('should throw');
    } catch (e) {
      expect(isHpcflowError(e, 'HPCFLOW_USAGE')).toBe(true);
      expect((e as Error).message).toBe("unknown stage 'p/slove'");
      expect(isHpcflowError(e) && e.hint).toMatch(/did you mean 'p\/solve'/);
    }
  });
});

describe('scale', () => {
  it('builds a 10,000-stage graph quickly', () => {
    const stages: Stage[] = [];
    for (let i = 0; i < 10_000; i++) {
      const deps: (string | { stage: string })[] = ['src/common.h'];
      if (i > 0) deps.push(`data/s${i - 1}/out.bin`);
      if (i >= 10) deps.push({ stage: `p/s${i - 10}` });
      if (i % 100 === 99) deps.push(`data/s${i - 50}`);
      stages.push(stage(`p/s${i}`, { deps, outs: [`data/s${i}/out.bin`], metrics: `metrics/s${i}.json` }));
    }
    buildGraph({ stages }); // warm-up: the bound is about the algorithm, not the JIT
    const t0 = performance.now();
    const g = buildGraph({ stages });
    const ms = performance.now() - t0;
    console.log(`buildGraph: 10,000 stages in ${ms.toFixed(1)} ms`);
    expect(g.ids.length).toBe(10_000);
    expect(g.ids[0]).toBe('p/s0');
    expect(g.upstream.get('p/s5000')).toEqual(['p/s4990', 'p/s4999']);
    // Not a benchmark: a generous bound that only an all-pairs scan would exceed.
    expect(ms).toBeLessThan(2_000);
  });
});
