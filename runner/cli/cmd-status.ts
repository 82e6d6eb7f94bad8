import type { Action } from '../dag/decide.js';
import { formatReason } from '../dag/reasons.js';
import { selectStages } from '../dag/graph.js';
import type { StagePlan } from '../engine/planner.js';
import { planStages } from '../engine/planner.js';
import { parse, COMMON_OPTIONS } from './args.js';
import { dockerExecutor, memoImageState, openFromArgs } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

const LABEL: Record<Action, string> = { 'up-to-date': 'up to date', restore: 'restore from cache', run: 'will run' };

/** `status` and `plan`: decide every stage without running, building or writing anything. */
export async function cmdStatus(cmd: 'status' | 'plan', args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON_OPTIONS, check: { type: 'boolean', default: false }, downstream: { type: 'boolean', default: false } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const ws = await openFromArgs(values, io);
  const executor = await dockerExecutor(io);
  try {
    const ids = positionals.length === 0 ? ws.graph.ids : orderedSelection(ws.graph, positionals, values.downstream);
    const plans = await planStages(
      { graph: ws.graph, lock: ws.lock, imageState: memoImageState(executor, ws.root), hashPath: ws.hashPath, runs: ws.runs, store: ws.store },
      ids,
      new Set(),
    );
    const counts = { 'up-to-date': 0, restore: 0, run: 0 };
    for (const p of plans.values()) counts[p.decision.action] += 1;
    if (values.json) io.out(`${JSON.stringify(planJson(plans, ws.graph.upstream, counts), null, 2)}\n`);
    else io.out(renderPlan(cmd, ids, plans, counts));
    const pending = counts.run + counts.restore;
    return values.check && pending > 0 ? EXIT.stageFailed : EXIT.ok;
  } finally {
    await ws.close();
    await executor.close();
  }
}

export function orderedSelection(graph: { ids: readonly string[] } & Parameters<typeof selectStages>[0], names: readonly string[], downstream: boolean): string[] {
  const sel = selectStages(graph, [...names], { downstream });
  return graph.ids.filter((id) => sel.has(id));
}

function planJson(plans: Map<string, StagePlan>, upstream: ReadonlyMap<string, readonly string[]>, counts: Record<Action, number>) {
  return {
    counts,
    stages: [...plans.values()].map((p) => ({
      id: p.stage.id,
      action: p.decision.action,
      fingerprint: p.decision.fingerprint,
      upstream: upstream.get(p.stage.id) ?? [],
      reasons: p.decision.reasons.map((r) => ({ ...r, text: formatReason(r) })),
    })),
  };
}

/** Text rendering: one line per stage, its reasons indented below. Pure. */
export function renderPlan(cmd: 'status' | 'plan', ids: readonly string[], plans: Map<string, StagePlan>, counts: Record<Action, number>): string {
  const width = Math.min(60, Math.max(10, ...ids.map((id) => id.length)));
  const lines: string[] = [];
  let n = 0;
  for (const id of ids) {
    const p = plans.get(id);
    if (p === undefined) continue;
    n += 1;
    const prefix = cmd === 'plan' ? `${String(n).padStart(String(ids.length).length)}. ` : '';
    lines.push(`${prefix}${id.padEnd(width)}  ${LABEL[p.decision.action]}`);
    for (const r of p.decision.reasons) lines.push(`${' '.repeat(prefix.length)}    ${formatReason(r)}`);
  }
  lines.push(`${ids.length} stage${ids.length === 1 ? '' : 's'}: ${counts['up-to-date']} up to date, ${counts.run} will run, ${counts.restore} restorable from cache`);
  return `${lines.join('\n')}\n`;
}
