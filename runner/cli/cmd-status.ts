import { siteDigest } from '../config/site-digest.js';
import type { Action } from '../dag/decide.js';
import type { Reason } from '../dag/reasons.js';
import { formatReason } from '../dag/reasons.js';
import { selectStages } from '../dag/graph.js';
import type { StagePlan } from '../engine/planner.js';
import { readValidSnapshot, snapshotKey, writeSnapshot } from '../engine/status-snapshot.js';
import type { Workspace } from '../engine/workspace.js';
import type { ImageState } from '../executors/executor.js';
import type { PathHash } from '../fingerprint/path-hasher.js';
import type { ImageSpec } from '../model/pipeline.js';
import { readSpecTrace } from '../spec/cached-load.js';
import { parse, COMMON_OPTIONS } from './args.js';
import { executorFlag, openFromArgs, statusImages, workspaceRoot } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

const LABEL: Record<Action, string> = { 'up-to-date': 'up to date', restore: 'restore from cache', run: 'will run' };

/** One stage's line of a plan, however it was decided. */
export interface PlanRow {
  readonly id: string;
  readonly action: Action;
  readonly fingerprint: string | null;
  readonly upstream: readonly string[];
  readonly reasons: readonly Reason[];
}

type Counts = Record<Action, number>;

/** `status` and `plan`: decide every stage without running, building or writing anything. */
export async function cmdStatus(cmd: 'status' | 'plan', args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON_OPTIONS, check: { type: 'boolean', default: false }, downstream: { type: 'boolean', default: false } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const root = workspaceRoot(values, io);
  const images = statusImages(io, root);
  try {
    const imageState = images.imageState;
    // A --matrix selection is a different pipeline: only the whole one records or reads a snapshot.
    const key = snapshotKey(values.lenient, siteDigest(values.site, io.env, io.cwd), executorFlag(values, io));
    const whole = positionals.length === 0 && (values.matrix ?? []).length === 0;
    const snap = whole ? await readValidSnapshot(root, key, imageState) : null;
    const rows: PlanRow[] =
      snap !== null
        ? snap.map((s) => ({ id: s.id, action: 'up-to-date', fingerprint: s.fingerprint, upstream: s.upstream, reasons: [] }))
        : await fullPlan(await openFromArgs(values, io), positionals, values.downstream, imageState, whole ? key : null);
    const counts: Counts = { 'up-to-date': 0, restore: 0, run: 0 };
    for (const r of rows) counts[r.action] += 1;
    io.out(values.json ? `${JSON.stringify(planJson(rows, counts), null, 2)}\n` : renderPlan(cmd, rows, counts));
    return values.check && counts.run + counts.restore > 0 ? EXIT.stageFailed : EXIT.ok;
  } finally {
    await images.close();
  }
}

/** The planner over the opened workspace; records a status snapshot when everything is up to date. */
async function fullPlan(
  ws: Workspace,
  names: readonly string[],
  downstream: boolean,
  imageState: (spec: ImageSpec) => Promise<ImageState>,
  snapshotKeyOrNull: string | null,
): Promise<PlanRow[]> {
  try {
    const ids = names.length === 0 ? ws.graph.ids : orderedSelection(ws.graph, names, downstream);
    const hashed = new Map<string, PathHash['kind']>();
    const hashPath = async (rel: string): Promise<PathHash> => {
      const h = await ws.hashPath(rel);
      hashed.set(rel, h.kind);
      return h;
    };
    // The planner and the dataset resolver (which loads the git and YAML libraries) only when the
    // stat snapshot could not answer: the no-op fast path must not pay for loading them.
    const [{ planStages }, { datasetDeps }] = await Promise.all([import('../engine/planner.js'), import('../datasets/stage-dep.js')]);
    const plans = await planStages({ graph: ws.graph, lock: ws.lock, imageState, hashPath, datasetDep: datasetDeps(ws.root, hashPath, ws.store), runs: ws.runs, store: ws.store }, ids, new Set());
    const rows = planRows(plans, ws.graph.upstream);
    if (snapshotKeyOrNull !== null && rows.every((r) => r.action === 'up-to-date')) {
      const images = new Map<string, { spec: ImageSpec; digest: string }>();
      for (const s of ws.pipeline.stages) {
        const st = await imageState(s.image);
        if (st.state === 'present') images.set(JSON.stringify(s.image), { spec: s.image, digest: st.image.digest });
      }
      await writeSnapshot({
        root: ws.root,
        key: snapshotKeyOrNull,
        spec: readSpecTrace(ws.root),
        lockPath: 'hpcflow.lock',
        hashed,
        filesIn: ws.filesIn,
        images: [...images.values()],
        stages: rows.map((r) => ({ id: r.id, fingerprint: r.fingerprint ?? '', upstream: r.upstream })),
      });
    }
    return rows;
  } finally {
    await ws.close();
  }
}

export function orderedSelection(graph: { ids: readonly string[] } & Parameters<typeof selectStages>[0], names: readonly string[], downstream: boolean): string[] {
  const sel = selectStages(graph, [...names], { downstream });
  return graph.ids.filter((id) => sel.has(id));
}

export function planRows(plans: ReadonlyMap<string, StagePlan>, upstream: ReadonlyMap<string, readonly string[]>): PlanRow[] {
  return [...plans.values()].map((p) => ({
    id: p.stage.id,
    action: p.decision.action,
    fingerprint: p.decision.fingerprint,
    upstream: upstream.get(p.stage.id) ?? [],
    reasons: p.decision.reasons,
  }));
}

function planJson(rows: readonly PlanRow[], counts: Counts) {
  return { counts, stages: rows.map((r) => ({ ...r, reasons: r.reasons.map((x) => ({ ...x, text: formatReason(x) })) })) };
}

/** Text rendering: one line per stage, its reasons indented below. Pure. */
export function renderPlan(cmd: 'status' | 'plan', rows: readonly PlanRow[], counts: Counts): string {
  const width = Math.min(60, Math.max(10, ...rows.map((r) => r.id.length)));
  const lines: string[] = [];
  rows.forEach((r, i) => {
    const prefix = cmd === 'plan' ? `${String(i + 1).padStart(String(rows.length).length)}. ` : '';
    lines.push(`${prefix}${r.id.padEnd(width)}  ${LABEL[r.action]}`);
    for (const x of r.reasons) lines.push(`${' '.repeat(prefix.length)}    ${formatReason(x)}`);
  });
  lines.push(`${rows.length} stage${rows.length === 1 ? '' : 's'}: ${counts['up-to-date']} up to date, ${counts.run} will run, ${counts.restore} restorable from cache`);
  return `${lines.join('\n')}\n`;
}
