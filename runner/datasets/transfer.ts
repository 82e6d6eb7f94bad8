/**
 * `dataset push` / `dataset pull`: objects of dataset versions between the local store and a
 * remote. Transfers run in parallel; every object is verified by hash on arrival (remotes
 * guarantee it, see remotes/remote.ts) and published by rename, so an interrupted push or pull
 * leaves both sides consistent and is finished by running the same command again (objects
 * already present are skipped; large partial transfers resume).
 */
import { dirname, join } from 'node:path';
import { HpcflowError } from '../errors.js';
import type { WorkspaceConfig } from '../config/workspace-config.js';
import { mapLimit } from '../util/pool.js';
import type { DatasetContext, ResolvedVersion } from './datasets.js';
import { checkoutDataset, resolveVersion, versionObjects } from './datasets.js';
import type { Remote } from './remotes/remote.js';
import { openRemote } from './remotes/index.js';
import { makeVersion, readVersionFile, shortVersion } from './version-file.js';

/** Transfers at once (network/parallel-filesystem latency dominates; 8 overlaps it well). */
export const TRANSFER_CONCURRENCY = 8;

/** The remote named `name`, or the default one; a clear error when none is configured. */
export async function remoteFor(root: string, cfg: WorkspaceConfig, name: string | undefined): Promise<Remote> {
  const pick = name ?? cfg.defaultRemote;
  if (pick === null || pick === undefined) {
    throw new HpcflowError('HPCFLOW_USAGE', 'no remote configured', { hint: 'add one to hpcflow.yaml, e.g.\n    remotes:\n      shared: { url: /path/on/the/shared/filesystem }' });
  }
  const settings = cfg.remotes[pick];
  if (settings === undefined) {
    throw new HpcflowError('HPCFLOW_USAGE', `no remote "${pick}" in hpcflow.yaml`, { hint: `remotes: ${Object.keys(cfg.remotes).join(', ') || '(none)'}` });
  }
  return openRemote(pick, settings, root);
}

/** What a push or pull moved. */
export interface TransferResult {
  readonly name: string;
  readonly version: string;
  readonly remote: string;
  /** Objects the version has (files deduplicated by content, plus its manifest). */
  readonly objects: number;
  /** Objects moved now (the rest were already there). */
  readonly transferred: number;
  readonly bytes: number;
}

/** Pushes the objects of a dataset version (default: the current one) to `remote`. */
export async function pushDataset(ctx: DatasetContext, remote: Remote, spec: string, signal?: AbortSignal): Promise<TransferResult> {
  const { name, version } = await resolveVersion(ctx, spec);
  const objs = versionObjects(version);
  const local = await mapLimit(objs, 32, (o) => ctx.store.has(o.hash));
  const absent = objs.filter((_, i) => local[i] !== true);
  if (absent.length > 0) {
    throw new HpcflowError('HPCFLOW_CACHE_CORRUPT', `dataset "${name}" ${shortVersion(version.version)}: ${absent.length} objects are not in the local store (e.g. ${(absent[0] as { path: string }).path}); cannot push them`, {
      hint: 'pull them from another remote first, or commit the files again from a working copy that has them',
    });
  }
  const there = await remote.hasMany(objs.map((o) => o.hash));
  const todo = objs.filter((o) => !there.has(o.hash));
  let bytes = 0;
  await mapLimit(todo, TRANSFER_CONCURRENCY, async (o, _i, sig) => {
    await remote.put(o.hash, ctx.store.path(o.hash), o.size, sig);
    bytes += o.size;
  }, signal);
  return { name, version: version.version, remote: remote.name, objects: objs.length, transferred: todo.length, bytes };
}

/** Downloads one object into the store, verified. */
async function fetchObject(ctx: DatasetContext, remote: Remote, hash: string, signal?: AbortSignal): Promise<void> {
  // A stable name per object, so that an interrupted pull resumes its partial download.
  const tmp = join(dirname(await ctx.store.tempPath()), `pull-${hash}`);
  await remote.get(hash, tmp, signal);
  await ctx.store.adopt(tmp, hash);
}

/**
 * Resolves the version to pull. A full version id that no local history knows is fetched by id:
 * its manifest is an object on the remote like any other.
 */
async function versionToPull(ctx: DatasetContext, remote: Remote, spec: string): Promise<ResolvedVersion> {
  try {
    return await resolveVersion(ctx, spec);
  } catch (e) {
    const at = spec.indexOf('@');
    const rev = at === -1 ? '' : spec.slice(at + 1);
    if (!/^[0-9a-f]{64}$/.test(rev) || !(await remote.has(rev))) throw e;
    await fetchObject(ctx, remote, rev);
    const name = spec.slice(0, at);
    const entries = await ctx.store.readTree(rev);
    const cur = readVersionFile(ctx.root, name, { headerOnly: true });
    if (cur === null) throw e;
    return { name, version: makeVersion(name, cur.path, entries), source: `version ${shortVersion(rev)} (from ${remote.name})`, commit: null };
  }
}

/** Pulls the objects of a dataset version into the store and (unless `noCheckout`) checks it out. */
export async function pullDataset(
  ctx: DatasetContext,
  remote: Remote,
  spec: string,
  opts: { noCheckout?: boolean; force?: boolean; signal?: AbortSignal } = {},
): Promise<TransferResult & { checkedOut: boolean }> {
  const { name, version } = await versionToPull(ctx, remote, spec);
  const objs = versionObjects(version);
  const local = await mapLimit(objs, 32, (o) => ctx.store.has(o.hash));
  const todo = objs.filter((_, i) => local[i] !== true);
  let bytes = 0;
  await mapLimit(todo, TRANSFER_CONCURRENCY, async (o, _i, sig) => {
    await fetchObject(ctx, remote, o.hash, sig);
    bytes += o.size;
  }, opts.signal);
  let checkedOut = false;
  if (opts.noCheckout !== true) {
    await checkoutDataset(ctx, spec.includes('@') ? `${name}@${version.version}` : name, { force: opts.force ?? false });
    checkedOut = true;
  }
  return { name, version: version.version, remote: remote.name, objects: objs.length, transferred: todo.length, bytes, checkedOut };
}
