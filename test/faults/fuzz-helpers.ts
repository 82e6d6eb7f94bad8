/** Shared by the property tests of hostile input: addressing and replacing nodes of a plain value. */

/** Paths to the nodes of a value (not below `maxDepth`: a deeper nest is one node to mutate). */
export function valuePaths(v: unknown, maxDepth = Infinity, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (at.length >= maxDepth) return out;
  if (Array.isArray(v)) v.forEach((x, i) => valuePaths(x, maxDepth, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) valuePaths(x, maxDepth, [...at, k], out);
  return out;
}

/** `doc` with the node at `path` replaced (or, for `undefined`, removed). */
export function replaceAt(doc: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(doc)) return doc.map((x, i) => (i === head ? replaceAt(x, rest, value) : x)).filter((x) => x !== undefined);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(doc as Record<string, unknown>)) {
    const y = k === head ? replaceAt(x, rest, value) : x;
    if (y !== undefined) out[k] = y;
  }
  return out;
}
