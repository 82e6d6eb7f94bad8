import type { ContentStore } from '../cache/store.js';
import type { RunCache } from '../cache/run-cache.js';
import { referencedObjects } from '../cache/run-cache.js';
import type { Lockfile } from '../lockfile/lockfile.js';

export interface GcPlan {
  readonly keepFingerprints: ReadonlySet<string>;
  readonly removeEntries: readonly string[];
  readonly keepObjects: ReadonlySet<string>;
}

export interface GcReport {
  readonly entriesRemoved: number;
  readonly objectsRemoved: number;
  readonly bytesRemoved: number;
  readonly entriesKept: number;
}

/**
 * What to keep: every fingerprint named by a lockfile (of any commit, plus the working tree),
 * the run-cache entries of those fingerprints, and every object their outputs refer to.
 */
export async function planGc(lockfiles: readonly Lockfile[], runs: RunCache, store: ContentStore, alsoKeep: Iterable<string> = []): Promise<GcPlan> {
  const keepFingerprints = new Set<string>();
  const keepObjects = new Set<string>(alsoKeep);
  const treeRoots: { hash: string; kind: 'file' | 'dir' }[] = [];
  for (const lock of lockfiles) {
    for (const e of Object.values(lock.stages)) {
      keepFingerprints.add(e.fingerprint);
      for (const r of e.outRecords) treeRoots.push({ hash: r.hash, kind: r.kind });
    }
  }
  const removeEntries: string[] = [];
  for (const fp of await runs.list()) {
    if (!keepFingerprints.has(fp)) {
      removeEntries.push(fp);
      continue;
    }
    const { entry } = await runs.get(fp);
    if (entry !== null) for (const h of await referencedObjects(entry, store)) keepObjects.add(h);
  }
  for (const t of treeRoots) {
    keepObjects.add(t.hash);
    if (t.kind === 'dir' && (await store.has(t.hash))) for (const f of await store.readTree(t.hash)) keepObjects.add(f.hash);
  }
  return { keepFingerprints, removeEntries, keepObjects };
}

export async function applyGc(plan: GcPlan, runs: RunCache, store: ContentStore): Promise<GcReport> {
  for (const fp of plan.removeEntries) await runs.remove(fp);
  const r = await store.gc(plan.keepObjects, { graceMs: 0 });
  return { entriesRemoved: plan.removeEntries.length, objectsRemoved: r.removed, bytesRemoved: r.bytes, entriesKept: plan.keepFingerprints.size };
}
