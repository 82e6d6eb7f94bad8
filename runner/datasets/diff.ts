/** Differences between two manifests, with counts and bytes, for status, diff and checkout. */
import type { ManifestEntry } from '../fingerprint/manifest.js';
import { compareRel } from '../fingerprint/manifest.js';

/** A file present on both sides with other content or mode. */
export interface Modified {
  readonly path: string;
  readonly from: ManifestEntry;
  readonly to: ManifestEntry;
}

/** What changed from `a` to `b`. */
export interface ManifestDiff {
  readonly added: readonly ManifestEntry[];
  readonly removed: readonly ManifestEntry[];
  readonly modified: readonly Modified[];
  readonly unchanged: number;
}

/** Totals of a diff for one-line summaries. */
export interface DiffSummary {
  readonly added: { readonly files: number; readonly bytes: number };
  readonly removed: { readonly files: number; readonly bytes: number };
  readonly modified: { readonly files: number; readonly bytesBefore: number; readonly bytesAfter: number };
  readonly unchanged: number;
}

const sorted = (xs: readonly ManifestEntry[]): readonly ManifestEntry[] => {
  for (let i = 1; i < xs.length; i++) {
    if (compareRel((xs[i - 1] as ManifestEntry).path, (xs[i] as ManifestEntry).path) >= 0) return [...xs].sort((x, y) => compareRel(x.path, y.path));
  }
  return xs;
};

/** Merge-walks two manifests (sorted or not) in O(n). */
export function diffManifests(a: readonly ManifestEntry[], b: readonly ManifestEntry[]): ManifestDiff {
  const x = sorted(a);
  const y = sorted(b);
  const added: ManifestEntry[] = [];
  const removed: ManifestEntry[] = [];
  const modified: Modified[] = [];
  let unchanged = 0;
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const ea = x[i];
    const eb = y[j];
    const c = ea === undefined ? 1 : eb === undefined ? -1 : compareRel(ea.path, eb.path);
    if (c < 0) {
      removed.push(ea as ManifestEntry);
      i++;
    } else if (c > 0) {
      added.push(eb as ManifestEntry);
      j++;
    } else {
      const from = ea as ManifestEntry;
      const to = eb as ManifestEntry;
      if (from.hash !== to.hash || from.exec !== to.exec) modified.push({ path: from.path, from, to });
      else unchanged++;
      i++;
      j++;
    }
  }
  return { added, removed, modified, unchanged };
}

export function summarize(d: ManifestDiff): DiffSummary {
  const sum = (xs: readonly ManifestEntry[]): number => xs.reduce((s, e) => s + e.size, 0);
  return {
    added: { files: d.added.length, bytes: sum(d.added) },
    removed: { files: d.removed.length, bytes: sum(d.removed) },
    modified: { files: d.modified.length, bytesBefore: sum(d.modified.map((m) => m.from)), bytesAfter: sum(d.modified.map((m) => m.to)) },
    unchanged: d.unchanged,
  };
}

/** True when nothing differs. */
export const isEmptyDiff = (d: ManifestDiff): boolean => d.added.length === 0 && d.removed.length === 0 && d.modified.length === 0;

/** Human byte counts: 1.5 GiB, 12 KiB, 512 B. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[u] as string}`;
}
