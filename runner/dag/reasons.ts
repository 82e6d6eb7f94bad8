/**
 * Why a stage must run (or be restored). Every decision the runner makes carries a list of these,
 * each naming the component that changed, so `hpcflow status` can answer "why did this rerun?".
 */
export type Reason =
  | { readonly kind: 'new' }
  | { readonly kind: 'forced' }
  | { readonly kind: 'cmd'; readonly before: string; readonly after: string }
  | { readonly kind: 'wdir'; readonly before: string; readonly after: string }
  | { readonly kind: 'image-tag'; readonly before: string; readonly after: string }
  | { readonly kind: 'image-digest'; readonly tag: string; readonly before: string; readonly after: string }
  | { readonly kind: 'image-build'; readonly tag: string; readonly detail: string }
  | { readonly kind: 'dep-changed'; readonly path: string; readonly before?: string; readonly after?: string }
  /** A dataset dependency that cannot be used as it is (missing, uncommitted changes, other version). */
  | { readonly kind: 'dataset'; readonly dataset: string; readonly detail: string }
  | { readonly kind: 'dep-added'; readonly path: string }
  | { readonly kind: 'dep-removed'; readonly path: string }
  | { readonly kind: 'dep-missing'; readonly path: string }
  | { readonly kind: 'param-changed'; readonly name: string; readonly before: unknown; readonly after: unknown }
  | { readonly kind: 'param-added'; readonly name: string; readonly after: unknown }
  | { readonly kind: 'param-removed'; readonly name: string; readonly before: unknown }
  | { readonly kind: 'env'; readonly key: string; readonly before: string | null; readonly after: string | null }
  | { readonly kind: 'shape'; readonly before: string; readonly after: string }
  | { readonly kind: 'upstream-runs'; readonly stage: string }
  | { readonly kind: 'upstream-changed'; readonly stage: string }
  | { readonly kind: 'upstream-failed'; readonly stage: string }
  | { readonly kind: 'outs-declared'; readonly before: readonly string[]; readonly after: readonly string[] }
  | { readonly kind: 'out-missing'; readonly path: string }
  | { readonly kind: 'out-modified'; readonly path: string }
  | { readonly kind: 'run-cache-hit' };

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const shortDigest = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);

/** One line of prose per reason, as shown by `status` and in run records. Pure. */
export function formatReason(r: Reason): string {
  switch (r.kind) {
    case 'new':
      return 'never ran (no entry in hpcflow.lock)';
    case 'forced':
      return 'forced (--force)';
    case 'cmd':
      return `cmd changed: ${short(r.before)} → ${short(r.after)}`;
    case 'wdir':
      return `wdir changed: ${r.before || '.'} → ${r.after || '.'}`;
    case 'image-tag':
      return `image changed: ${r.before} → ${r.after}`;
    case 'image-digest':
      return `image digest changed although tag did not: ${r.tag} ${shortDigest(r.before)} → ${shortDigest(r.after)}`;
    case 'image-build':
      return `image ${r.tag} must be built: ${r.detail}`;
    case 'dep-changed':
      if (r.path.startsWith('dataset:') && r.before !== undefined && r.after !== undefined) {
        return `dataset ${r.path.slice(8)} version ${r.before.slice(0, 12)} → ${r.after.slice(0, 12)}`;
      }
      return `dep ${r.path} changed`;
    case 'dataset':
      return `dataset ${r.dataset}: ${r.detail}`;
    case 'dep-added':
      return `dep ${r.path} added`;
    case 'dep-removed':
      return `dep ${r.path} removed`;
    case 'dep-missing':
      return `dep ${r.path} is missing`;
    case 'param-changed':
      return `param ${r.name} ${short(r.before)}→${short(r.after)}`;
    case 'param-added':
      return `param ${r.name} added (${short(r.after)})`;
    case 'param-removed':
      return `param ${r.name} removed (was ${short(r.before)})`;
    case 'env':
      return `env ${r.key} ${r.before ?? '(unset)'}→${r.after ?? '(unset)'}`;
    case 'shape':
      return `launch shape ${r.before} → ${r.after}`;
    case 'upstream-runs':
      return `upstream ${r.stage} will run`;
    case 'upstream-changed':
      return `upstream ${r.stage} changed`;
    case 'upstream-failed':
      return `upstream ${r.stage} failed`;
    case 'outs-declared':
      return `declared outputs changed: [${r.before.join(', ')}] → [${r.after.join(', ')}]`;
    case 'out-missing':
      return `output ${r.path} is missing`;
    case 'out-modified':
      return `output ${r.path} was modified`;
    case 'run-cache-hit':
      return 'outputs for this fingerprint are in the run-cache';
    default: {
      const never: never = r;
      throw new Error(`unhandled reason ${JSON.stringify(never)}`);
    }
  }
}
