import { join } from 'node:path';
import { commitStages } from '../engine/commit.js';
import { acquireWorkspaceLock } from '../engine/workspace-lock.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { orderedSelection } from './cmd-status.js';
import { dockerExecutor, memoImageState, openFromArgs } from './context.js';
import { recordDatasetOutputs } from '../datasets/stage-outputs.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

/** `hpcflow commit [stage…]`: record the outputs on disk as the current inputs' result. */
export async function cmdCommit(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON_OPTIONS, downstream: { type: 'boolean', default: false } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const ws = await openFromArgs(values, io);
  const release = acquireWorkspaceLock(join(ws.root, '.hpcflow', 'tmp', 'run.lock'));
  const executor = await dockerExecutor(io);
  try {
    const ids = positionals.length === 0 ? ws.graph.ids : orderedSelection(ws.graph, positionals, values.downstream);
    const { committed } = await commitStages(ws, ids, memoImageState(executor, ws.root));
    await recordDatasetOutputs(ws.root, ws.graph, ws.lock, ws.store);
    io.out(values.json ? `${JSON.stringify({ committed })}\n` : `committed ${committed.length} stage${committed.length === 1 ? '' : 's'} to hpcflow.lock\n`);
    return EXIT.ok;
  } finally {
    await ws.close();
    await executor.close();
    release();
  }
}
