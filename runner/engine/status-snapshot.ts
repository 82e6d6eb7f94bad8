import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PathHash } from '../fingerprint/path-hasher.js';
import { FINGERPRINT_VERSION } from '../fingerprint/version.js';
import type { ImageState } from '../executors/executor.js';
import type { ImageSpec } from '../model/pipeline.js';
import type { LoadTrace } from '../spec/load.js';
import { specTraceValid } from '../spec/cached-load.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

/**
 * The "nothing changed" fast path of `status`, in the manner of git's index: after a status in
 * which every stage was up to date, record the stat identity (size, mtime ns, inode) of every
 * input that decision read — pipeline and params files, the lockfile, every dependency and
 * output file, every directory walked — and the digest of every image. A later `status` that
 * finds all of them unchanged knows the answer is still "all up to date" without parsing the
 * lockfile, building the graph or planning. Anything different, and the full planner runs.
 *
 * It is written only when no recorded file was modified within the racy window (2 s) of the
 * check, because a same-size edit within one timestamp tick would keep the same stat.
 * The run-cache plays no part in an all-up-to-date decision, so it is not recorded.
 *
 * A stamp holds the change time (ctime) besides the modification time, both as the millisecond
 * numbers of a plain `stat` (about 0.25 µs apart at today's dates; the bigint stat of exact
 * nanoseconds costs a third more, and this loop is most of a no-op status of a large pipeline).
 * Nothing is lost: every change to a file — a write, a rename onto it, `utimes` to any mtime —
 * sets its ctime to the current time, which no process can choose, so a file changed after its
 * stamp was taken never shows the stamp's ctime again. A metadata-only change (chmod, touch) also
 * moves the ctime: the full planner then runs and comes to the same answer.
 */
export const STATUS_SNAPSHOT_PATH = '.hpcflow/tmp/status-snapshot.json';
const SNAPSHOT_VERSION = 2;
const RACY_MS = 2000;

/** [workspace-relative path, size (-1 for a directory), mtime ms, ctime ms, inode]. */
type Stamp = [string, number, number, number, number];

export interface SnapshotStage {
  readonly id: string;
  readonly fingerprint: string;
  readonly upstream: readonly string[];
}

interface SnapshotFile {
  readonly v: number;
  /** Settings the decision depends on (fingerprint recipe, lenient mode). */
  readonly key: string;
  readonly spec: LoadTrace;
  readonly stamps: readonly Stamp[];
  readonly images: readonly { readonly spec: ImageSpec; readonly digest: string }[];
  readonly stages: readonly SnapshotStage[];
}

export function snapshotKey(lenient: boolean, siteDigest = '', executor = ''): string {
  // The site configuration changes images and commands of kernel stages: a snapshot holds only for the same one.
  return `fp${FINGERPRINT_VERSION}:${lenient ? 'lenient' : 'strict'}${siteDigest === '' ? '' : `:site-${siteDigest.slice(0, 16)}`}${executor === '' ? '' : `:${executor}`}`;
}

function stampOf(root: string, rel: string): Stamp | null {
  const st = statSync(join(root, rel), { throwIfNoEntry: false });
  if (st === undefined) return null;
  return [rel, st.isDirectory() ? -1 : st.size, st.mtimeMs, st.ctimeMs, st.ino];
}

/**
 * The stages, if the snapshot is still valid: same key, spec inputs unchanged, every stamp
 * unchanged, every image at its recorded digest. Otherwise null. Never throws.
 */
export async function readValidSnapshot(
  root: string,
  key: string,
  imageState: (spec: ImageSpec) => Promise<ImageState>,
): Promise<readonly SnapshotStage[] | null> {
  let snap: SnapshotFile;
  try {
    snap = JSON.parse(readFileSync(join(root, STATUS_SNAPSHOT_PATH), 'utf8')) as SnapshotFile;
  } catch {
    return null;
  }
  try {
    if (snap.v !== SNAPSHOT_VERSION || snap.key !== key) return null;
    // Ask the engine first, and let the requests go out (one turn of the event loop: connect,
    // write) before the synchronous stat loop below, so that the engine answers while the stamps
    // are checked instead of after.
    const images = Promise.all(snap.images.map(async (i) => ({ i, s: await imageState(i.spec) })));
    images.catch(() => undefined);
    if (snap.images.length > 0) await new Promise<void>((r) => setImmediate(r));
    let valid = specTraceValid(root, snap.spec);
    // The hot loop of a no-op status (two stats per stage at 1,000 stages): one stat per stamp,
    // compared field by field without building a stamp of it.
    const opts = { throwIfNoEntry: false } as const;
    const prefix = root.endsWith('/') ? root : `${root}/`;
    for (let k = 0; valid && k < snap.stamps.length; k++) {
      const s = snap.stamps[k] as Stamp;
      const st = statSync(prefix + s[0], opts);
      valid = st !== undefined && (st.isDirectory() ? -1 : st.size) === s[1] && st.mtimeMs === s[2] && st.ctimeMs === s[3] && st.ino === s[4];
    }
    const imgs = await images;
    if (!valid) return null;
    for (const { i, s } of imgs) if (s.state !== 'present' || s.image.digest !== i.digest) return null;
    return snap.stages;
  } catch {
    return null;
  }
}

/** Every directory at or below `rel` (they change mtime when entries are added or removed). */
function dirsBelow(root: string, rel: string): string[] {
  const out = [rel];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true, recursive: true })) {
    if (e.isDirectory()) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(root.length + 1));
  }
  return out;
}

/**
 * Record a snapshot after a status that found every stage up to date. `hashed` holds every path
 * the decision hashed; `filesIn(dir)` lists the files of a hashed directory. Returns false (and
 * writes nothing) when an input is too fresh to be trusted by its stat.
 */
export async function writeSnapshot(input: {
  readonly root: string;
  readonly key: string;
  readonly spec: LoadTrace | null;
  readonly lockPath: string;
  readonly hashed: ReadonlyMap<string, PathHash['kind']>;
  readonly filesIn: (dir: string) => Promise<readonly string[]>;
  readonly images: readonly { readonly spec: ImageSpec; readonly digest: string }[];
  readonly stages: readonly SnapshotStage[];
}): Promise<boolean> {
  if (input.spec === null) return false;
  const rels = new Set<string>([input.lockPath]);
  for (const [rel, kind] of input.hashed) {
    if (kind === 'missing') return false; // an absent input: nothing to stamp, so no shortcut
    rels.add(rel);
    if (kind === 'dir') {
      for (const d of dirsBelow(input.root, rel)) rels.add(d);
      for (const f of await input.filesIn(rel)) rels.add(`${rel}/${f}`);
    }
  }
  const now = Date.now();
  const stamps: Stamp[] = [];
  for (const rel of [...rels].sort()) {
    const s = stampOf(input.root, rel);
    if (s === null || now - s[2] < RACY_MS) return false;
    stamps.push(s);
  }
  // An existence check of the spec load whose path is also stamped needs no stat of its own:
  // the stamp (same inode, size — -1 for a directory — and times) holds only while the answer does.
  const stamped = new Map(stamps.map((s) => [s[0], s[1] === -1 ? 'dir' : 'file']));
  const spec: LoadTrace = { ...input.spec, checks: input.spec.checks.filter(([p, kind]) => kind === null || stamped.get(p) !== kind) };
  const body: SnapshotFile = { v: SNAPSHOT_VERSION, key: input.key, spec, stamps, images: input.images, stages: input.stages };
  await writeFileAtomic(join(input.root, STATUS_SNAPSHOT_PATH), JSON.stringify(body));
  return true;
}
