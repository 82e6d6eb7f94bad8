import { join } from 'node:path';
import { applyGc, planGc } from '../engine/gc.js';
import type { Workspace } from '../engine/workspace.js';
import { acquireWorkspaceLock } from '../engine/workspace-lock.js';
import { filesInHistory } from '../git/lockfile-history.js';
import { listDatasets, versionObjects } from '../datasets/datasets.js';
import { DATASETS_DIR, parseVersionFile, versionFileRel } from '../datasets/version-file.js';
import { readFileSync } from 'node:fs';
import type { Lockfile } from '../lockfile/lockfile.js';
import { LOCKFILE_NAME, parseLockfile } from '../lockfile/lockfile.js';
import { COMMON_OPTIONS, parse } from './args.js';
import { openFromArgs } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

/** `hpcflow gc`: keep what any lockfile in the git history (or the working tree) refers to. */
export async function cmdGc(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parse(args, { ...COMMON_OPTIONS, 'dry-run': { type: 'boolean', default: false } });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const ws = await openFromArgs(values, io);
  // A run in progress has stored objects it has not recorded in the lockfile yet.
  const release = acquireWorkspaceLock(join(ws.root, '.hpcflow', 'tmp', 'run.lock'));
  try {
    return await collect(ws, values, io);
  } finally {
    release();
  }
}

async function collect(ws: Workspace, values: { json: boolean; 'dry-run': boolean }, io: CliIO): Promise<number> {
  const history = await filesInHistory(ws.root, [LOCKFILE_NAME], DATASETS_DIR);
  if (history.gitRoot === null) io.err('hpcflow gc: not a git repository — keeping only what the working-tree hpcflow.lock refers to\n');
  const locks: Lockfile[] = [ws.lock];
  for (const t of history.texts) {
    try {
      locks.push(parseLockfile(t));
    } catch {
      io.err('hpcflow gc: skipping an unreadable hpcflow.lock in the history\n');
    }
  }
  // Dataset versions (working tree and history) keep their objects and manifests.
  const datasetObjects = new Set<string>();
  const versionTexts = [...history.dirTexts];
  for (const name of listDatasets(ws.root)) versionTexts.push(readFileSync(join(ws.root, versionFileRel(name)), 'utf8'));
  for (const t of versionTexts) {
    try {
      for (const o of versionObjects(parseVersionFile(t, 'datasets/*.yaml'))) datasetObjects.add(o.hash);
    } catch {
      io.err('hpcflow gc: skipping an unreadable dataset version file in the history\n');
    }
  }
  const plan = await planGc(locks, ws.runs, ws.store, datasetObjects);
  if (values['dry-run']) {
    const out = { dryRun: true, commitsScanned: history.commitsScanned, lockfiles: locks.length, entriesToRemove: plan.removeEntries.length, entriesKept: plan.keepFingerprints.size };
    io.out(values.json ? `${JSON.stringify(out)}\n` : `would remove ${plan.removeEntries.length} run-cache entr${plan.removeEntries.length === 1 ? 'y' : 'ies'} (and the objects only they use); ${history.commitsScanned} commits scanned\n`);
    return EXIT.ok;
  }
  const rep = await applyGc(plan, ws.runs, ws.store);
  io.out(
    values.json
      ? `${JSON.stringify({ ...rep, commitsScanned: history.commitsScanned })}\n`
      : `removed ${rep.entriesRemoved} run-cache entries and ${rep.objectsRemoved} objects (${(rep.bytesRemoved / 2 ** 20).toFixed(1)} MiB); kept ${rep.entriesKept} fingerprints from ${locks.length} lockfile versions in ${history.commitsScanned} commits\n`,
  );
  return EXIT.ok;
}
