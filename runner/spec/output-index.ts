/**
 * Output paths of stages indexed for containment queries: "is this path, or one of its
 * ancestors, an output" (a map) and "which outputs lie inside this directory" (a sorted list
 * and a binary search). Shared by the spec checks and the stage graph.
 */
import type { Stage } from '../model/pipeline.js';

/** Every output path of a stage: `outs` plus the metrics file. */
export function stageOutputs(stage: Stage): string[] {
  const paths = stage.outs.map((o) => o.path);
  if (stage.metrics !== null) paths.push(stage.metrics);
  return paths;
}

const NONE_INSIDE: readonly { readonly path: string; readonly producer: string }[] = Object.freeze([]);

/** Output paths of a set of stages, indexed for containment queries. */
export class OutputIndex {
  private readonly byPath: ReadonlyMap<string, string>;
  private readonly sorted: readonly string[];

  /** Index `entries`; the first producer of a path wins (duplicates are the spec's to report). */
  constructor(entries: Iterable<{ readonly path: string; readonly producer: string }>) {
    const byPath = new Map<string, string>();
    for (const e of entries) if (!byPath.has(e.path)) byPath.set(e.path, e.producer);
    this.byPath = byPath;
    // Default sort is code-unit order, the same as compareStrings, and faster without a callback.
    this.sorted = [...byPath.keys()].sort();
  }

  static ofStages(stages: readonly Stage[]): OutputIndex {
    function* entries(): Generator<{ path: string; producer: string }> {
      for (const s of stages) {
        for (const o of s.outs) yield { path: o.path, producer: s.id };
        if (s.metrics !== null) yield { path: s.metrics, producer: s.id };
      }
    }
    return new OutputIndex(entries());
  }

  /** All indexed output paths, sorted. */
  paths(): readonly string[] {
    return this.sorted;
  }

  /** The producer of `p` or of the nearest output directory containing it. */
  producerOf(p: string): string | undefined {
    let cur = p;
    for (;;) {
      const producer = this.byPath.get(cur);
      if (producer !== undefined) return producer;
      const i = cur.lastIndexOf('/');
      if (i < 0) return undefined;
      cur = cur.slice(0, i);
    }
  }

  /** The output equal to `p` or the nearest output directory containing it. */
  covering(p: string): { readonly path: string; readonly producer: string } | null {
    let cur = p;
    for (;;) {
      const producer = this.byPath.get(cur);
      if (producer !== undefined) return { path: cur, producer };
      const i = cur.lastIndexOf('/');
      if (i < 0) return null;
      cur = cur.slice(0, i);
    }
  }

  /** Outputs strictly inside directory `p`, in path order. */
  inside(p: string): readonly { readonly path: string; readonly producer: string }[] {
    const prefix = `${p}/`;
    // Strings sharing a prefix are contiguous in sorted order: binary search to the first one.
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.sorted[mid] ?? '') < prefix) lo = mid + 1;
      else hi = mid;
    }
    // The common case (a file dep) finds nothing: answer without allocating.
    if (!(this.sorted[lo] ?? '').startsWith(prefix)) return NONE_INSIDE;
    const out: { path: string; producer: string }[] = [];
    for (let i = lo; i < this.sorted.length; i++) {
      const path = this.sorted[i] ?? '';
      if (!path.startsWith(prefix)) break;
      out.push({ path, producer: this.byPath.get(path) ?? '' });
    }
    return out;
  }
}
