/**
 * PURE: the classic builder's progress stream (`POST /build`): one JSON object a line, e.g.
 *   {"stream":"Step 1/2 : FROM hpcflow-test/busybox:1\n"}
 *   {"aux":{"ID":"sha256:…"}}
 *   {"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},
 *    "error":"The command '/bin/sh -c false' returned a non-zero code: 1"}
 *   {"status":"…","progress":"…","id":"…"}   (pull progress: not produced without a registry)
 */

export type BuildEvent =
  | { readonly kind: 'log'; readonly text: string }
  | { readonly kind: 'image-id'; readonly id: string }
  | { readonly kind: 'error'; readonly message: string };

export function parseBuildEvent(line: string): BuildEvent[] {
  const trimmed = line.trim();
  if (trimmed === '') return [];
  let o: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(trimmed);
    if (v === null || typeof v !== 'object') return [{ kind: 'log', text: trimmed }];
    o = v as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy or an old engine): show it rather than lose it.
    return [{ kind: 'log', text: trimmed }];
  }
  const out: BuildEvent[] = [];
  const detail = o['errorDetail'] as { message?: unknown } | undefined;
  const error =
    typeof o['error'] === 'string' ? o['error'] : typeof detail?.message === 'string' ? detail.message : null;
  if (error !== null) out.push({ kind: 'error', message: error });
  if (typeof o['stream'] === 'string') out.push({ kind: 'log', text: o['stream'] });
  if (typeof o['status'] === 'string') {
    const id = typeof o['id'] === 'string' ? `${o['id']}: ` : '';
    out.push({ kind: 'log', text: `${id}${o['status']}\n` });
  }
  const aux = o['aux'] as { ID?: unknown } | undefined;
  if (aux !== undefined && typeof aux.ID === 'string') out.push({ kind: 'image-id', id: aux.ID });
  return out;
}
