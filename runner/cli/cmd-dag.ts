import { topoLayers } from '../dag/graph.js';
import type { StageGraph } from '../dag/graph.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { openFromArgs } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

export async function cmdDag(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parse(args, { ...COMMON_OPTIONS, dot: { type: 'boolean', default: false }, mermaid: { type: 'boolean', default: false } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const ws = await openFromArgs(values, io);
  if (values.json) io.out(`${JSON.stringify({ layers: topoLayers(ws.graph), edges: edges(ws.graph) }, null, 2)}\n`);
  else io.out(values.dot ? renderDot(ws.graph) : values.mermaid ? renderMermaid(ws.graph) : renderText(ws.graph));
  return EXIT.ok;
}

function edges(g: StageGraph): [string, string][] {
  const out: [string, string][] = [];
  for (const id of g.ids) for (const u of g.upstream.get(id) ?? []) out.push([u, id]);
  return out;
}

/** Layers of independent stages, each stage with what it needs. Pure. */
export function renderText(g: StageGraph): string {
  const lines: string[] = [];
  topoLayers(g).forEach((layer, i) => {
    lines.push(`layer ${i}:`);
    for (const id of layer) {
      const ups = g.upstream.get(id) ?? [];
      lines.push(`  ${id}${ups.length ? `  ← ${ups.join(', ')}` : ''}`);
    }
  });
  return `${lines.join('\n')}\n`;
}

/** Graphviz dot, one cluster per pipeline. Pure. */
export function renderDot(g: StageGraph): string {
  const q = (s: string): string => JSON.stringify(s);
  const byPipeline = new Map<string, string[]>();
  for (const id of g.ids) {
    const p = g.stages.get(id)?.pipeline ?? '';
    byPipeline.set(p, [...(byPipeline.get(p) ?? []), id]);
  }
  const lines = ['digraph hpcflow {', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];'];
  let n = 0;
  for (const [p, ids] of byPipeline) {
    lines.push(`  subgraph cluster_${n++} {`, `    label=${q(p)};`);
    for (const id of ids) lines.push(`    ${q(id)} [label=${q(id.slice(p.length + 1))}];`);
    lines.push('  }');
  }
  for (const [a, b] of edges(g)) lines.push(`  ${q(a)} -> ${q(b)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** A Mermaid flowchart (renders in GitHub markdown), left to right. Pure. */
export function renderMermaid(g: StageGraph): string {
  const node = new Map(g.ids.map((id, i) => [id, `s${i}`]));
  const lines = ['flowchart LR'];
  for (const id of g.ids) lines.push(`  ${node.get(id)}["${id.replace(/"/g, '#quot;')}"]`);
  for (const [a, b] of edges(g)) lines.push(`  ${node.get(a)} --> ${node.get(b)}`);
  return `${lines.join('\n')}\n`;
}
