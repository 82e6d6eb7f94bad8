/**
 * Workspace-level checks over every parsed pipeline file: `{stage}` deps expanded to cell ids,
 * unknown deps, duplicate or nested outputs, dependency cycles. Pure: existence of source
 * files is asked of the `SpecContext`.
 */
import { findCycles, stageEdges } from '../dag/graph.js';
import type { Diagnostic } from '../model/diagnostic.js';
import type { DepSpec, SourcePos, Stage } from '../model/pipeline.js';
import { closest } from './did-you-mean.js';
import { sortDiagnostics } from './diagnostics.js';
import { OutputIndex } from './output-index.js';
import { parentDir, selfAndAncestors } from './paths.js';
import type { LoadResult, ParseResult, SpecContext, StageSource } from './types.js';

interface OutputDecl {
  readonly path: string;
  readonly stage: string;
  readonly pos: SourcePos;
}

const fileStart = (file: string): SourcePos => ({ file, line: 1, col: 1 });

/**
 * Unknown references that get a "did you mean" (each compares against every candidate): a file
 * with thousands of broken references is answered in seconds, the first ones with suggestions.
 */
const MAX_SUGGESTIONS = 50;

/** Run the workspace-level checks and assemble the model, or return every diagnostic. */
export function linkWorkspace(results: readonly ParseResult[], ctx: SpecContext): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const kept: ParseResult[] = [];
  const byName = new Map<string, ParseResult>();
  for (const r of [...results].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    diagnostics.push(...r.diagnostics);
    const first = byName.get(r.pipeline);
    if (first) {
      diagnostics.push({
        code: 'HPCFLOW_SPEC_DUPLICATE_STAGE',
        message: `pipeline '${r.pipeline}' is defined by both ${first.file} and ${r.file}`,
        pos: fileStart(r.file),
        related: [{ pos: fileStart(first.file), message: 'first defined here' }],
        hint: 'a pipeline is named by its file: remove or rename one of the files',
      });
      continue;
    }
    byName.set(r.pipeline, r);
    kept.push(r);
  }

  const sources = new Map<string, StageSource>();
  for (const r of kept) for (const [id, s] of r.sources) sources.set(id, s);
  const expanded = expandStageRefs(kept, sources, diagnostics);
  const stages = expanded.map((e) => e.stage);
  for (const e of expanded) sources.set(e.stage.id, e.source);

  const outputs = checkOutputs(stages, sources, diagnostics);
  const partial = kept.flatMap((r) => r.declared.filter((d) => d.broken).flatMap((d) => d.outputs.map((path) => ({ path, producer: d.baseId }))));
  const knownIndex = new OutputIndex([...outputs.map((o) => ({ path: o.path, producer: o.stage })), ...partial]);
  // An unreadable file or an invalid stage may declare outputs we cannot see: do not guess.
  const outputsUnknown = kept.some((r) => !r.complete || r.declared.some((d) => d.broken && !d.outputsComplete));
  if (!outputsUnknown) checkPathDeps(stages, sources, knownIndex, outputs, ctx, diagnostics);
  checkCycles(stages, sources, outputs, diagnostics);

  const all = sortDiagnostics(diagnostics);
  if (all.length > 0) return { ok: false, diagnostics: all };
  return { ok: true, pipeline: { stages, files: kept.map((r) => r.file) } };
}

/** Replace `{stage: <base id>}` with one dep per cell; report unknown and self references. */
function expandStageRefs(
  results: readonly ParseResult[],
  sources: ReadonlyMap<string, StageSource>,
  out: Diagnostic[],
): { stage: Stage; source: StageSource }[] {
  const cellsByBase = new Map<string, string[]>();
  const ids = new Set<string>();
  for (const r of results) {
    for (const s of r.stages) {
      ids.add(s.id);
      const base = `${s.pipeline}/${s.name}`;
      const cells = cellsByBase.get(base) ?? [];
      cells.push(s.id);
      cellsByBase.set(base, cells);
    }
  }
  const unchecked = new Set<string>();
  const incomplete = new Set<string>();
  for (const r of results) {
    if (!r.complete) incomplete.add(r.pipeline);
    for (const d of r.declared) if (d.broken) unchecked.add(d.baseId);
  }
  // Datasets written by a stage output: a `{ dataset }` dependency on one is a dependency on
  // that output directory (whose content hash is the dataset's version id).
  const datasetOut = new Map<string, { stage: string; path: string }>();
  for (const r of results) {
    for (const s of r.stages) {
      s.outs.forEach((o, i) => {
        if (o.dataset === undefined) return;
        const prev = datasetOut.get(o.dataset);
        if (prev !== undefined && prev.stage !== s.id) {
          out.push({
            code: 'HPCFLOW_SPEC_DUPLICATE_OUTPUT',
            message: `dataset '${o.dataset}' is written by two stages: ${prev.stage} and ${s.id}`,
            pos: sources.get(s.id)?.outs[i] ?? s.pos,
            hint: 'a dataset has one producer; give one of the outputs another dataset name',
          });
          return;
        }
        datasetOut.set(o.dataset, { stage: s.id, path: o.path });
      });
    }
  }
  const candidates = [...cellsByBase.keys(), ...ids];
  let suggestions = MAX_SUGGESTIONS;
  const result: { stage: Stage; source: StageSource }[] = [];
  for (const r of results) {
    for (const s of r.stages) {
      const src = sources.get(s.id) ?? { deps: [], outs: [], metrics: null };
      const deps: DepSpec[] = [];
      const depPos: SourcePos[] = [];
      const base = `${s.pipeline}/${s.name}`;
      s.deps.forEach((d, i) => {
        const pos = src.deps[i] ?? s.pos;
        if (d.kind === 'path') {
          deps.push(d);
          depPos.push(pos);
          return;
        }
        if (d.kind === 'dataset') {
          const produced = datasetOut.get(d.dataset);
          if (produced === undefined) {
            deps.push(d);
            depPos.push(pos);
          } else if (d.version !== null) {
            out.push({
              code: 'HPCFLOW_SPEC_BAD_VALUE',
              message: `stage ${s.id} pins version '${d.version}' of dataset '${d.dataset}', which stage ${produced.stage} produces`,
              pos,
              hint: 'depend on the produced dataset without a version (it is whatever the producer last wrote)',
            });
          } else {
            deps.push({ kind: 'path', path: produced.path });
            depPos.push(pos);
          }
          return;
        }
        const targets = ids.has(d.stage) ? [d.stage] : (cellsByBase.get(d.stage) ?? null);
        const written = d.stage.startsWith(`${s.pipeline}/`) ? d.stage.slice(s.pipeline.length + 1) : d.stage;
        if (targets === null) {
          const refBase = d.stage.split('@')[0] ?? d.stage;
          if (unchecked.has(refBase) || incomplete.has(refBase.split('/')[0] ?? '')) return;
          const guess = suggestions-- > 0 ? closest(d.stage, candidates) : null;
          const shown = guess?.startsWith(`${s.pipeline}/`) ? guess.slice(s.pipeline.length + 1) : guess;
          out.push({
            code: 'HPCFLOW_SPEC_UNKNOWN_DEP',
            message: `stage ${s.id} depends on unknown stage '${written}'`,
            pos,
            hint: `${shown ? `did you mean '${shown}'? ` : ''}name a stage of this pipeline, or '<pipeline>/<stage>' for another pipeline's`,
          });
          return;
        }
        for (const t of targets) {
          if (t === s.id) {
            out.push({
              code: 'HPCFLOW_SPEC_CYCLE',
              message: `stage ${d.stage === base ? base : s.id} depends on itself ({ stage: ${written} })`,
              pos,
              hint: 'remove this dependency: a stage cannot consume its own outputs',
            });
            continue;
          }
          deps.push({ kind: 'stage', stage: t });
          depPos.push(pos);
        }
      });
      result.push({ stage: { ...s, deps }, source: { ...src, deps: depPos } });
    }
  }
  return result;
}

/** Exact duplicates and outputs nested in another stage's output directory. */
function checkOutputs(stages: readonly Stage[], sources: ReadonlyMap<string, StageSource>, out: Diagnostic[]): OutputDecl[] {
  const decls: OutputDecl[] = [];
  for (const s of stages) {
    const src = sources.get(s.id);
    s.outs.forEach((o, i) => decls.push({ path: o.path, stage: s.id, pos: src?.outs[i] ?? s.pos }));
    if (s.metrics !== null) decls.push({ path: s.metrics, stage: s.id, pos: src?.metrics ?? s.pos });
  }
  const first = new Map<string, OutputDecl>();
  for (const d of decls) {
    const prev = first.get(d.path);
    if (!prev) {
      first.set(d.path, d);
      continue;
    }
    const same = prev.stage === d.stage;
    out.push({
      code: 'HPCFLOW_SPEC_DUPLICATE_OUTPUT',
      message: same
        ? `stage ${d.stage} declares output '${d.path}' twice`
        : `output '${d.path}' of stage ${d.stage} is also an output of stage ${prev.stage}`,
      pos: d.pos,
      related: [{ pos: prev.pos, message: `declared by ${prev.stage} here` }],
      hint: same
        ? 'remove the repeated output (metrics: is an output already, do not list it in outs:)'
        : 'each path is produced by one stage: rename one of them (in a matrix stage, put a matrix key such as ${n} in the path)',
    });
  }
  for (const d of decls) {
    for (const a of selfAndAncestors(d.path).slice(1)) {
      const outer = first.get(a);
      if (!outer || outer.stage === d.stage) continue;
      out.push({
        code: 'HPCFLOW_SPEC_DUPLICATE_OUTPUT',
        message: `output '${d.path}' of stage ${d.stage} is inside output directory '${a}' of stage ${outer.stage}`,
        pos: d.pos,
        related: [{ pos: outer.pos, message: `${outer.stage} declares '${a}' here` }],
        hint: `an output directory belongs to one stage: write '${d.path}' outside '${a}'`,
      });
      break;
    }
  }
  return [...first.values()];
}

/** Path deps must exist in the workspace or be (inside, or around) some stage's output. */
function checkPathDeps(
  stages: readonly Stage[],
  sources: ReadonlyMap<string, StageSource>,
  index: OutputIndex,
  outputs: readonly OutputDecl[],
  ctx: SpecContext,
  out: Diagnostic[],
): void {
  const producer = new Map(outputs.map((o) => [o.path, o.stage]));
  const existence = new Map<string, boolean>();
  let suggestions = MAX_SUGGESTIONS;
  for (const s of stages) {
    const src = sources.get(s.id);
    s.deps.forEach((d, i) => {
      if (d.kind !== 'path') return;
      if (index.covering(d.path) || index.inside(d.path).length > 0) return;
      let exists = existence.get(d.path);
      if (exists === undefined) {
        exists = ctx.exists(d.path) !== null;
        existence.set(d.path, exists);
      }
      if (exists) return;
      let guess: string | null = null;
      if (suggestions-- > 0) {
        const dir = parentDir(d.path);
        const siblings = (ctx.listDir?.(dir) ?? []).map((n) => (dir === '' ? n : `${dir}/${n}`));
        guess = closest(d.path, [...index.paths(), ...siblings]);
      }
      const by = guess === null ? undefined : producer.get(guess);
      out.push({
        code: 'HPCFLOW_SPEC_UNKNOWN_DEP',
        message: `dep '${d.path}' of stage ${s.id} does not exist and is not an output of any stage`,
        pos: src?.deps[i] ?? s.pos,
        hint: `${guess === null ? '' : `did you mean '${guess}'${by ? ` (output of stage ${by})` : ''}? `}create it, fix the path, or add the stage that writes it`,
      });
    });
  }
}

/** Self-dependencies and cycles, each cycle with its whole trail and the dep behind every edge. */
function checkCycles(
  stages: readonly Stage[],
  sources: ReadonlyMap<string, StageSource>,
  outputs: readonly OutputDecl[],
  out: Diagnostic[],
): void {
  const outPos = new Map(outputs.map((o) => [`${o.stage}\0${o.path}`, o.pos]));
  const byId = new Map(stages.map((s) => [s.id, s]));
  const depPos = (id: string, dep: number): SourcePos => sources.get(id)?.deps[dep] ?? byId.get(id)?.pos ?? fileStart('?');
  const next = new Map<string, string[]>();
  const firstEdge = new Map<string, { dep: number; output: string | null }>();
  for (const e of stageEdges(stages)) {
    if (e.from === e.to) {
      const dep = byId.get(e.to)?.deps[e.dep];
      const depPath = dep?.kind === 'path' ? dep.path : '';
      const output = e.output ?? '';
      const what =
        depPath === output
          ? `depends on its own output '${output}'`
          : output.startsWith(`${depPath}/`)
            ? `depends on '${depPath}', which contains its own output '${output}'`
            : `depends on '${depPath}', inside its own output '${output}'`;
      const related = outPos.get(`${e.to}\0${output}`);
      out.push({
        code: 'HPCFLOW_SPEC_CYCLE',
        message: `stage ${e.to} ${what}`,
        pos: depPos(e.to, e.dep),
        ...(related ? { related: [{ pos: related, message: `'${output}' is declared as an output here` }] } : {}),
        hint: 'a stage cannot read what it writes: write the output elsewhere, or narrow the dep',
      });
      continue;
    }
    const key = `${e.from}\0${e.to}`;
    if (firstEdge.has(key)) continue;
    firstEdge.set(key, { dep: e.dep, output: e.output });
    const list = next.get(e.from) ?? [];
    list.push(e.to);
    next.set(e.from, list);
  }
  const order = new Map(stages.map((s, i) => [s.id, i]));
  for (const l of next.values()) l.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  for (const trail of findCycles(stages.map((s) => s.id), next)) {
    const related = trail.slice(1).map((to, i) => {
      const from = trail[i] ?? '';
      const e = firstEdge.get(`${from}\0${to}`);
      const via = e?.output ? ` via '${e.output}'` : '';
      return { pos: depPos(to, e?.dep ?? 0), message: `${to} depends on ${from}${via}` };
    });
    const head = byId.get(trail[0] ?? '');
    out.push({
      code: 'HPCFLOW_SPEC_CYCLE',
      message: `dependency cycle: ${trail.join(' → ')}`,
      pos: head?.pos ?? null,
      related,
      hint: 'remove one of these dependencies (or move an output) so that data flows one way',
    });
  }
}
