/**
 * The stage graph: which stage feeds which, in what order they can run. Pure and linear-ish in
 * size: outputs are indexed once (a map for "is this path, or one of its ancestors, an output"
 * and a sorted list for "which outputs lie inside this directory"), so no all-pairs scan.
 */
import { HpcflowError } from '../errors.js';
import type { Stage } from '../model/pipeline.js';
import { closest } from '../spec/did-you-mean.js';
import { OutputIndex } from '../spec/output-index.js';

export { OutputIndex, stageOutputs } from '../spec/output-index.js';

/** The dependency structure of a validated pipeline. */
export interface StageGraph {
  /** Topological order; among stages whose dependencies are satisfied, declaration order wins. */
  readonly ids: readonly string[];
  /** Direct dependencies of each stage, sorted. */
  readonly upstream: ReadonlyMap<string, readonly string[]>;
  /** Direct dependants of each stage, sorted. */
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  readonly stages: ReadonlyMap<string, Stage>;
  /**
   * For each stage, its path deps that are produced by another stage (equal to an output, or
   * inside an output directory): dep path → producer id. A dep directory that merely contains
   * outputs is not listed (it mixes several producers and source files) but still gets edges.
   */
  readonly producedBy: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** One reason for an edge: `to`'s dep number `dep` reads something `from` writes. */
export interface StageEdge {
  readonly from: string;
  readonly to: string;
  /** Index into `to`'s `deps`. */
  readonly dep: number;
  /** The output of `from` involved: null for a `{stage}` dep. */
  readonly output: string | null;
  /**
   * `stage`: a `{stage}` dep; `output`: the dep is the output or inside it (so `from` alone
   * produces it); `contains`: the dep is a directory the output lies in.
   */
  readonly via: 'stage' | 'output' | 'contains';
}

/**
 * Every producer → consumer edge with the dep that causes it, self-edges included (the spec
 * reports those). `{stage}` deps naming an unknown id are skipped: the spec reports them.
 */
export function stageEdges(stages: readonly Stage[], index: OutputIndex = OutputIndex.ofStages(stages)): StageEdge[] {
  const known = new Set(stages.map((s) => s.id));
  const edges: StageEdge[] = [];
  for (const s of stages) {
    s.deps.forEach((d, i) => {
      if (d.kind === 'stage') {
        if (known.has(d.stage)) edges.push({ from: d.stage, to: s.id, dep: i, output: null, via: 'stage' });
        return;
      }
      if (d.kind === 'dataset') return; // produced datasets were turned into path deps by the linker
      const cover = index.covering(d.path);
      if (cover) edges.push({ from: cover.producer, to: s.id, dep: i, output: cover.path, via: 'output' });
      const inner = index.inside(d.path);
      if (inner.length === 0) return;
      const seen = new Set<string>(cover ? [cover.producer] : []);
      for (const o of inner) {
        if (seen.has(o.producer)) continue;
        seen.add(o.producer);
        edges.push({ from: o.producer, to: s.id, dep: i, output: o.path, via: 'contains' });
      }
    });
  }
  return edges;
}

/** A tiny binary min-heap of numbers (declaration indexes) for the stable topological sort. */
class MinHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] ?? 0) <= v) break;
      a[i] = a[p] ?? 0;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0] ?? 0;
    const last = a.pop() ?? 0;
    if (a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && (a[r] ?? 0) < (a[l] ?? 0) ? r : l;
      if ((a[c] ?? 0) >= last) break;
      a[i] = a[c] ?? 0;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

const NO_IDS: readonly string[] = Object.freeze([]);
const NO_INDEXES: readonly number[] = Object.freeze([]);
const NO_PRODUCERS: ReadonlyMap<string, string> = new Map();

/** The ids at `list`'s indexes, in string order, without repeats. */
function sortedIds(list: readonly number[], ids: readonly string[]): readonly string[] {
  if (list.length === 0) return NO_IDS;
  // Lists are short (a stage's direct neighbours): insertion sort beats sort() and its callback.
  const out: string[] = [];
  for (const i of list) {
    const id = ids[i] ?? '';
    let j = out.length;
    while (j > 0 && (out[j - 1] ?? '') > id) j--;
    if (j > 0 && out[j - 1] === id) continue;
    out.splice(j, 0, id);
  }
  return out;
}

/**
 * Build the graph of a pipeline the spec has validated (no cycles, no unknown stage refs).
 * Self-edges are ignored; a cycle left in anyway drops the stages on it from `ids`.
 * Works on stage indexes and allocates per edge only what the result keeps: 10,000 stages
 * take a few milliseconds.
 */
export function buildGraph(pipeline: { readonly stages: readonly Stage[] }): StageGraph {
  const stages = pipeline.stages;
  const n = stages.length;
  const ids = stages.map((s) => s.id);
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => indexOf.set(id, i));
  const index = OutputIndex.ofStages(stages);
  // Most stages have few edges: lists are created on first use.
  const up: (number[] | undefined)[] = new Array<number[] | undefined>(n);
  const down: (number[] | undefined)[] = new Array<number[] | undefined>(n);
  const produced: (Map<string, string> | undefined)[] = new Array<Map<string, string> | undefined>(n);
  const link = (from: number | undefined, to: number): void => {
    if (from === undefined || from === to) return;
    (up[to] ??= []).push(from);
    (down[from] ??= []).push(to);
  };
  for (let i = 0; i < n; i++) {
    const s = stages[i];
    if (!s) continue;
    for (const d of s.deps) {
      if (d.kind === 'stage') {
        link(indexOf.get(d.stage), i);
        continue;
      }
      if (d.kind === 'dataset') continue;
      const producer = index.producerOf(d.path);
      if (producer !== undefined) {
        const p = indexOf.get(producer);
        link(p, i);
        if (p !== i) (produced[i] ??= new Map()).set(d.path, producer);
      }
      for (const o of index.inside(d.path)) link(indexOf.get(o.producer), i);
    }
  }
  const upstream = new Map<string, readonly string[]>();
  const downstream = new Map<string, readonly string[]>();
  const producedBy = new Map<string, ReadonlyMap<string, string>>();
  const stageMap = new Map<string, Stage>();
  stages.forEach((s, i) => {
    upstream.set(s.id, sortedIds(up[i] ?? NO_INDEXES, ids));
    downstream.set(s.id, sortedIds(down[i] ?? NO_INDEXES, ids));
    producedBy.set(s.id, produced[i] ?? NO_PRODUCERS);
    stageMap.set(s.id, s);
  });
  return { ids: topoOrder(stages, upstream, downstream), upstream, downstream, stages: stageMap, producedBy };
}

function topoOrder(
  stages: readonly Stage[],
  upstream: ReadonlyMap<string, readonly string[]>,
  downstream: ReadonlyMap<string, readonly string[]>,
): string[] {
  const order = new Map<string, number>();
  stages.forEach((s, i) => order.set(s.id, i));
  const pending = stages.map((s) => upstream.get(s.id)?.length ?? 0);
  const heap = new MinHeap();
  pending.forEach((n, i) => n === 0 && heap.push(i));
  const ids: string[] = [];
  while (heap.size > 0) {
    const s = stages[heap.pop()];
    if (!s) continue;
    ids.push(s.id);
    for (const d of downstream.get(s.id) ?? []) {
      const j = order.get(d);
      if (j === undefined) continue;
      pending[j] = (pending[j] ?? 0) - 1;
      if (pending[j] === 0) heap.push(j);
    }
  }
  return ids;
}

/**
 * Every cycle, one trail per strongly connected component (Tarjan, iterative so deep graphs do
 * not overflow the stack). A trail starts at the component's first node in `nodes` order, and
 * repeats it at the end: `[a, b, c, a]` means a → b → c → a. Self-loops are trails `[a, a]`.
 */
export function findCycles(nodes: readonly string[], next: ReadonlyMap<string, readonly string[]>): string[][] {
  const rank = new Map<string, number>();
  nodes.forEach((n, i) => rank.set(n, i));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: string; i: number }[] = [{ node: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      if (!top) break;
      const succ = next.get(top.node) ?? [];
      if (top.i < succ.length) {
        const w = succ[top.i++] ?? '';
        if (!rank.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.node, Math.min(low.get(top.node) ?? 0, index.get(w) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(top.node) ?? 0));
      if (low.get(top.node) === index.get(top.node)) {
        const comp: string[] = [];
        let w: string | undefined;
        do {
          w = stack.pop();
          if (w === undefined) break;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.node);
        const selfLoop = comp.length === 1 && (next.get(top.node) ?? []).includes(top.node);
        if (comp.length > 1 || selfLoop) components.push(comp);
      }
    }
  }
  const trails = components.map((comp) => trailIn(new Set(comp), comp, rank, next));
  return trails.sort((a, b) => (rank.get(a[0] ?? '') ?? 0) - (rank.get(b[0] ?? '') ?? 0));
}

/** A closed walk through a strongly connected component, found by DFS from its first node. */
function trailIn(
  members: ReadonlySet<string>,
  comp: readonly string[],
  rank: ReadonlyMap<string, number>,
  next: ReadonlyMap<string, readonly string[]>,
): string[] {
  const start = [...comp].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0))[0] ?? '';
  const path: string[] = [start];
  const iters: number[] = [0];
  const visited = new Set<string>([start]);
  while (path.length > 0) {
    const node = path[path.length - 1] ?? '';
    const succ = next.get(node) ?? [];
    const i = iters[iters.length - 1] ?? 0;
    if (i >= succ.length) {
      path.pop();
      iters.pop();
      continue;
    }
    iters[iters.length - 1] = i + 1;
    const w = succ[i] ?? '';
    if (w === start) return [...path, start];
    if (members.has(w) && !visited.has(w)) {
      visited.add(w);
      path.push(w);
      iters.push(0);
    }
  }
  return [start, start];
}

/** The first cycle (trail with its first id repeated at the end), or null when acyclic. */
export function findCycle(nodes: readonly string[], next: ReadonlyMap<string, readonly string[]>): string[] | null {
  return findCycles(nodes, next)[0] ?? null;
}

/** Stages grouped by depth: layer 0 has no upstream, layer n depends on layer n-1 at most. */
export function topoLayers(g: StageGraph): string[][] {
  const depth = new Map<string, number>();
  const layers: string[][] = [];
  for (const id of g.ids) {
    let d = 0;
    for (const u of g.upstream.get(id) ?? []) d = Math.max(d, (depth.get(u) ?? 0) + 1);
    depth.set(id, d);
    (layers[d] ??= []).push(id);
  }
  return layers;
}

/**
 * The stages a user selection means, plus everything downstream of them when asked. A
 * selector is a stage id, a stage's base id (`heat/gen`: every matrix cell), or a pipeline name.
 */
export function selectStages(g: StageGraph, selectors: readonly string[], opts: { downstream: boolean }): Set<string> {
  const selected = new Set<string>();
  for (const sel of selectors) {
    const matches = g.ids.filter((id) => id === sel || id.startsWith(`${sel}@`) || id.startsWith(`${sel}/`));
    if (matches.length === 0) {
      const suggestion = closest(sel, [...g.ids, ...new Set(g.ids.map((id) => id.split('@')[0] ?? id))]);
      throw new HpcflowError('HPCFLOW_USAGE', `unknown stage '${sel}'`, {
        hint: `${suggestion ? `did you mean '${suggestion}'? ` : ''}stages are named <pipeline>/<stage>; see 'hpcflow status' for the list`,
      });
    }
    for (const m of matches) selected.add(m);
  }
  if (opts.downstream) {
    const queue = [...selected];
    while (queue.length > 0) {
      const id = queue.pop() ?? '';
      for (const d of g.downstream.get(id) ?? []) {
        if (!selected.has(d)) {
          selected.add(d);
          queue.push(d);
        }
      }
    }
  }
  return selected;
}
