import { Blake3Hasher } from '../util/blake3.js';
import type { Stage } from '../model/pipeline.js';
import { canonicalJson } from '../util/canonical-json.js';
import { FINGERPRINT_VERSION } from './version.js';

export { FINGERPRINT_VERSION };

/** A dependency's content identity as it enters the fingerprint. */
export interface DepState {
  readonly kind: 'file' | 'dir';
  readonly hash: string;
  readonly size: number;
}

/**
 * Everything that can change a stage's result — and nothing else. Each field:
 * - `cmd`: the interpolated command (params already substituted), and `wdir`.
 * - `image.digest`: the resolved content identity of the image (image id / repo digest), never
 *   the tag alone; the tag is kept beside it only to explain "digest changed although tag did not".
 * - `deps`: content hash of every path dependency (files by BLAKE3, directories by a hash of their
 *   sorted manifest). mtimes do not count.
 * - `params`: the values of the parameters the stage declares (not the whole params file).
 * - `env`: the environment variables the stage sets.
 * - `shape`: nodes × tasks per node × cpus per task. Memory and time limits are excluded: they
 *   bound a run, they do not change its result.
 * - `upstream`: fingerprints of the stages it depends on, so a change propagates downstream
 *   even when an upstream output happens to be byte-identical.
 * - `outs`: the declared output paths and whether they are cached.
 */
export interface StageComponents {
  readonly cmd: string;
  readonly wdir: string;
  readonly image: { readonly tag: string; readonly digest: string };
  readonly deps: Readonly<Record<string, DepState>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly env: Readonly<Record<string, string>>;
  readonly shape: { readonly nodes: number; readonly tasksPerNode: number; readonly cpusPerTask: number };
  readonly upstream: Readonly<Record<string, string>>;
  readonly outs: readonly string[];
}

export function stageShape(stage: Stage): StageComponents['shape'] {
  const r = stage.resources;
  return { nodes: r.nodes, tasksPerNode: r.tasksPerNode, cpusPerTask: r.cpusPerTask };
}

/** All outputs of a stage, metrics included, as `path` or `path (uncached)`. Sorted. */
export function declaredOuts(stage: Stage): string[] {
  const outs = stage.outs.map((o) => (o.cache ? o.path : `${o.path} (uncached)`));
  if (stage.metrics !== null) outs.push(stage.metrics);
  return outs.sort();
}

/** The fingerprint: BLAKE3 over the canonical JSON of the components and the recipe version. */
export function fingerprintOf(c: StageComponents): string {
  const h = new Blake3Hasher();
  h.update(`hpcflow-stage-v${FINGERPRINT_VERSION}\n`);
  h.update(componentsJson(c));
  return h.digest('hex');
}

function sorted<T>(r: Readonly<Record<string, T>>, f: (v: T) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(r).sort()) out[k] = f(r[k] as T);
  return out;
}

/**
 * `canonicalJson(c)`, byte for byte (a unit test holds them equal), but built by the native
 * JSON.stringify over objects created in sorted key order: a one-shot CLI runs this before the
 * JIT has warmed up, where the generic canonicaliser costs ~30 µs per stage.
 */
export function componentsJson(c: StageComponents): string {
  return JSON.stringify({
    cmd: c.cmd,
    deps: sorted(c.deps, (d) => ({ hash: d.hash, kind: d.kind, size: d.size })),
    env: sorted(c.env, (v) => v),
    image: { digest: c.image.digest, tag: c.image.tag },
    outs: c.outs,
    params: sorted(c.params, (v) => (v !== null && typeof v === 'object' ? JSON.parse(canonicalJson(v)) : v)),
    shape: { cpusPerTask: c.shape.cpusPerTask, nodes: c.shape.nodes, tasksPerNode: c.shape.tasksPerNode },
    upstream: sorted(c.upstream, (v) => v),
    wdir: c.wdir,
  });
}
